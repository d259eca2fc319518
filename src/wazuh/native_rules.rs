//! Placeholder until the native rules land: the lists the native rules use.

use crate::ioc::IocKind;

pub const NATIVE_RULES_FILE: &str = "etc/rules/custom-misp_native_rules.xml";
pub const NATIVE_GROUP: &str = "misp_native";

pub fn list_path(kind: IocKind) -> String {
    format!("{}/misp-{}", crate::wazuh::home::LISTS_DIR, kind.as_str())
}

pub fn lists_used() -> Vec<IocKind> {
    vec![
        IocKind::Ip,
        IocKind::Domain,
        IocKind::Md5,
        IocKind::Sha1,
        IocKind::Sha256,
    ]
}

/// Groups whose every alert our CDB rules see first (placeholder).
pub const COVERED_GROUPS: &[&str] = &["syscheck"];

pub fn native_rule_ids(base: u32) -> std::ops::RangeInclusive<u32> {
    base + 20..=base + 99
}

pub fn render(base: u32, _log_alert_level: u8) -> Result<String, crate::wazuh::rules::RulesError> {
    Ok(format!(
        "<!-- wazuh-misp native rules {base} -->\n<group name=\"misp_native,\">\n</group>\n"
    ))
}

pub fn find_native_collisions(
    home: &std::path::Path,
    base: u32,
) -> Result<Vec<crate::wazuh::rules::Collision>, crate::wazuh::rules::RulesError> {
    crate::wazuh::rules::find_collisions(home, native_rule_ids(base))
}
