//! Native matching's rules file `etc/rules/custom-misp_native_rules.xml`: rendering it from the
//! compiled-in template (`templates/custom-misp_native_rules.xml`) for a rule id base and the
//! manager's `log_alert_level`, the lists it reads, and the ids it needs.
//!
//! Its rules are CDB children of stock rules (`<list field=… lookup="match_key">`), which fire
//! instead of their parent for a listed value, at the parent's level; the facts behind every
//! parent, level and companion counter are in the template's notes and checked by
//! `tests/native_rules.rs` against facts read from Wazuh 4.14.7's ruleset.

use super::rules::{self, Collision, RulesError};
use crate::ioc::IocKind;
use std::ops::RangeInclusive;
use std::path::Path;

/// Relative to the Wazuh home. Sorts after every stock file (`0…`), so every parent is loaded.
pub const NATIVE_RULES_FILE: &str = "etc/rules/custom-misp_native_rules.xml";
/// Every CDB hit rule carries it (and the integration's second block takes it). Never
/// [`rules::GROUP`]: the runtime skips alerts of that group.
pub const NATIVE_GROUP: &str = "misp_native";
/// Offsets from the rule id base: after the 20 ids of `custom-misp_rules.xml` (base+19 is the
/// self-test rule).
pub const FIRST_NATIVE_OFFSET: u32 = 20;
pub const LAST_NATIVE_OFFSET: u32 = 99;
/// The lowest level a hit rule gets: a level-0 final rule is never stored nor alerted
/// (`src/analysisd/analysisd.c`), and 3 is the packaged `log_alert_level`.
pub const MIN_HIT_LEVEL: u8 = 3;

/// Groups whose every alert that carries an indicator the runtime would look up ends at one of
/// our parents, so with native matching the runtime's `<integration>` block can leave them out:
/// `syscheck` (file and registry-value hashes: 550, 554, 750, 752 in `0015-ossec_rules.xml`;
/// the group's other alerts carry no hash) and `accesslog` (only `0245-web_rules.xml`, all under
/// 31100; its `url` is the request path, which no MISP URL attribute equals).
pub const COVERED_GROUPS: &[&str] = &["syscheck", "accesslog"];

const TEMPLATE: &str = include_str!("../../templates/custom-misp_native_rules.xml");

/// The ids the native rules may use for a base.
pub fn native_rule_ids(base: u32) -> RangeInclusive<u32> {
    base.saturating_add(FIRST_NATIVE_OFFSET)..=base.saturating_add(LAST_NATIVE_OFFSET)
}

/// A list's file name, in our folder [`super::home::LISTS_DIR`].
pub fn list_name(kind: IocKind) -> String {
    format!("misp-{}", kind.as_str())
}

/// A list's path as `<list>` declares it and the rules name it, relative to the home.
pub fn list_path(kind: IocKind) -> String {
    format!("{}/{}", super::home::LISTS_DIR, list_name(kind))
}

/// The kinds whose lists the rules read, in `IocKind` order.
pub fn lists_used() -> Vec<IocKind> {
    let mut kinds: Vec<IocKind> = placeholders()
        .filter_map(|p| p.strip_prefix("LIST:").and_then(kind_named))
        .collect();
    kinds.sort();
    kinds.dedup();
    kinds
}

fn kind_named(name: &str) -> Option<IocKind> {
    IocKind::ALL.into_iter().find(|k| k.as_str() == name)
}

fn placeholders() -> impl Iterator<Item = &'static str> {
    TEMPLATE
        .split("{{")
        .skip(1)
        .filter_map(|s| s.split_once("}}"))
        .map(|(p, _)| p)
}

/// The rules file for `base`, each hit rule at least at `log_alert_level`.
pub fn render(base: u32, log_alert_level: u8) -> Result<String, RulesError> {
    rules::check_base(base)?;
    if base
        .checked_add(LAST_NATIVE_OFFSET)
        .is_none_or(|last| last > rules::MAX_RULE_ID)
    {
        return Err(RulesError::BaseOutOfRange { base });
    }
    let mut out = String::with_capacity(TEMPLATE.len());
    let mut in_notes = false;
    for line in TEMPLATE.lines() {
        if line.contains("{{#NOTES}}") {
            in_notes = true;
            continue;
        }
        if line.contains("{{/NOTES}}") {
            in_notes = false;
            continue;
        }
        if in_notes {
            continue;
        }
        out.push_str(&substitute(line, base, log_alert_level)?);
        out.push('\n');
    }
    if in_notes {
        return Err(RulesError::Template("section NOTES not closed".into()));
    }
    Ok(out)
}

fn substitute(line: &str, base: u32, log_alert_level: u8) -> Result<String, RulesError> {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let (name, tail) = after
            .split_once("}}")
            .ok_or_else(|| RulesError::Template(format!("unclosed placeholder in {line:?}")))?;
        let unknown = || RulesError::Template(format!("unknown placeholder {{{{{name}}}}}"));
        if let Some(n) = name.strip_prefix("BASE+") {
            let n: u32 = n.parse().map_err(|_| unknown())?;
            if n > LAST_NATIVE_OFFSET {
                return Err(unknown());
            }
            out.push_str(&(base + n).to_string());
        } else if let Some(n) = name.strip_prefix("LEVEL:") {
            let n: u8 = n.parse().map_err(|_| unknown())?;
            out.push_str(&hit_level(n, log_alert_level).to_string());
        } else if let Some(kind) = name.strip_prefix("LIST:").and_then(kind_named) {
            out.push_str(&list_path(kind));
        } else {
            return Err(unknown());
        }
        rest = tail;
    }
    out.push_str(rest);
    Ok(out)
}

/// The level of a hit rule that replaces a stock alert of level `stock`.
pub fn hit_level(stock: u8, log_alert_level: u8) -> u8 {
    stock.max(MIN_HIT_LEVEL).max(log_alert_level)
}

/// Someone else's rules with ids in the native range of `base` (ours excepted).
pub fn find_native_collisions(home: &Path, base: u32) -> Result<Vec<Collision>, RulesError> {
    rules::find_collisions(home, native_rule_ids(base))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_render_and_bad_ones_are_refused() {
        assert_eq!(
            substitute("{{BASE+20}} {{LEVEL:0}} {{LEVEL:7}} {{LIST:ip}}", 117100, 3).unwrap(),
            "117120 3 7 etc/lists/wazuh-misp/misp-ip"
        );
        assert_eq!(substitute("{{LEVEL:5}}", 1, 9).unwrap(), "9");
        for bad in [
            "{{BASE+100}}",
            "{{LIST:x}}",
            "{{LEVEL:a}}",
            "{{OTHER}}",
            "{{BASE+20",
        ] {
            assert!(substitute(bad, 117100, 3).is_err(), "{bad}");
        }
        assert!(
            render(999_950, 3).is_err(),
            "the native ids must stay 6 digits"
        );
    }

    #[test]
    fn the_template_renders_without_placeholders_or_notes() {
        let text = render(117100, 3).unwrap();
        assert!(!text.contains("{{") && !text.contains("NOTES"), "{text}");
        // Wazuh's XML reader: no double hyphen inside a comment, and it parses.
        for comment in text.split("<!--").skip(1) {
            let body = comment.split("-->").next().unwrap();
            assert!(!body.contains("--"), "{body}");
        }
        crate::wazuh::xml::parse(text.as_bytes()).unwrap();
        assert_eq!(
            lists_used(),
            [
                IocKind::Ip,
                IocKind::Domain,
                IocKind::Md5,
                IocKind::Sha1,
                IocKind::Sha256
            ]
        );
    }
}
