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
