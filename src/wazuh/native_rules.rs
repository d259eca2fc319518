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
use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

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

/// A rule of the admin's (in `etc/rules/`) that analysisd tries before one of our hit rules under
/// the same parent: an event it takes is not matched natively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shadow {
    pub file: PathBuf,
    pub id: u32,
    pub level: u8,
    pub parent: u32,
    pub ours: u32,
}

/// The admin's rules tried before ours. Siblings are tried level 0 first, then by level, highest
/// first, equal levels in load order (files by name): `_OS_AddRule` in
/// `src/analysisd/rules_list.c`. A rule's parents are its `<if_sid>` rules and, for
/// `<if_group>`, the rules of that group loaded before it. Files that do not parse are left to
/// analysisd's own check.
pub fn shadowing_rules(
    home: &Path,
    base: u32,
    log_alert_level: u8,
) -> Result<Vec<Shadow>, RulesError> {
    // Our hit rules: (id, level, parents).
    let text = render(base, log_alert_level)?;
    let doc = super::xml::parse(text.as_bytes())
        .map_err(|e| RulesError::Template(format!("the rendered rules do not parse: {e}")))?;
    let ours: Vec<(u32, u8, Vec<u32>)> = doc
        .roots()
        .flat_map(|g| g.children_named("rule"))
        .filter(|r| r.child("list").is_some())
        .filter_map(|r| {
            Some((
                number(r.attribute("id")?)?,
                number(r.attribute("level")?)?,
                ids(r, "if_sid"),
            ))
        })
        .collect();
    // Every loaded rule's groups and load position, for <if_group>.
    let loaded: Vec<rules::RuleEntry> = rules::all_rule_ids(home)?;
    let position: BTreeMap<u32, usize> = loaded.iter().enumerate().map(|(i, r)| (r.1, i)).collect();
    let native_name = Path::new(NATIVE_RULES_FILE).file_name();
    let etc_rules = home.join("etc/rules");
    let mut out = Vec::new();
    for file in rules::rule_files(home, false)?
        .into_iter()
        .filter(|f| f.parent() == Some(etc_rules.as_path()))
    {
        let Ok(bytes) = std::fs::read(&file) else {
            continue;
        };
        let Ok(doc) = super::xml::parse(&bytes) else {
            continue;
        };
        for rule in doc.roots().flat_map(|g| g.children_named("rule")) {
            let (Some(id), Some(level)) = (
                rule.attribute("id").and_then(number::<u32>),
                rule.attribute("level").and_then(number::<u8>),
            ) else {
                continue;
            };
            // An overwrite changes a stock rule in place (`OS_AddRuleInfo`): not a new sibling.
            if rule
                .attribute("overwrite")
                .is_some_and(|v| v.eq_ignore_ascii_case(b"yes"))
            {
                continue;
            }
            let mut parents = ids(rule, "if_sid");
            if let Some(group) = rule
                .child("if_group")
                .map(|g| g.trimmed_text().into_owned())
            {
                // `OS_WordMatch`: `|` separates alternatives, compared without case.
                let wanted: Vec<String> = group
                    .split('|')
                    .map(|g| g.trim().to_ascii_lowercase())
                    .collect();
                let me = position.get(&id).copied().unwrap_or(usize::MAX);
                parents.extend(
                    loaded
                        .iter()
                        .enumerate()
                        .filter(|(i, r)| {
                            *i < me && r.3.iter().any(|g| wanted.contains(&g.to_ascii_lowercase()))
                        })
                        .map(|(_, r)| r.1),
                );
            }
            let loads_first = file.file_name() < native_name;
            for (our_id, our_level, our_parents) in &ours {
                let first =
                    level == 0 || level > *our_level || (level == *our_level && loads_first);
                if !first {
                    continue;
                }
                if let Some(parent) = our_parents.iter().find(|p| parents.contains(p)) {
                    out.push(Shadow {
                        file: file.clone(),
                        id,
                        level,
                        parent: *parent,
                        ours: *our_id,
                    });
                }
            }
        }
    }
    Ok(out)
}

fn number<T: std::str::FromStr>(bytes: &[u8]) -> Option<T> {
    std::str::from_utf8(bytes).ok()?.trim().parse().ok()
}

fn ids(rule: &super::xml::Element, name: &str) -> Vec<u32> {
    rule.child(name)
        .map(|e| {
            e.trimmed_text()
                .split(',')
                .filter_map(|i| i.trim().parse().ok())
                .collect()
        })
        .unwrap_or_default()
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
    fn the_admins_rules_tried_before_ours_are_found() {
        let home = tempfile::tempdir().unwrap();
        let write = |rel: &str, text: &str| {
            let p = home.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        write(
            "ruleset/rules/0095-sshd_rules.xml",
            r#"<group name="syslog,sshd,">
  <rule id="5710" level="5"><description>x</description><group>authentication_failed,</group></rule>
  <rule id="5715" level="3"><description>x</description><group>authentication_success,</group></rule>
  <rule id="5716" level="5"><description>x</description><group>authentication_failed,</group></rule>
</group>
"#,
        );
        write(
            "etc/rules/local_rules.xml",
            r#"<group name="local,">
  <rule id="100200" level="10"><if_sid>5716</if_sid><description>a</description></rule>
  <rule id="100201" level="3"><if_sid>5716</if_sid><description>b</description></rule>
  <rule id="100202" level="0"><if_sid>5710</if_sid><description>c</description></rule>
  <rule id="100203" level="9"><if_group>authentication_success</if_group><description>d</description></rule>
  <rule id="100204" level="5"><if_sid>5716</if_sid><description>e</description></rule>
  <rule id="5716" level="10" overwrite="yes"><if_sid>5700</if_sid><description>raised</description></rule>
  <rule id="100206" level="12"><if_group>Authentication_Failed|nothing</if_group><description>g</description></rule>
</group>
"#,
        );
        write(
            "etc/rules/0100-early.xml",
            r#"<group name="local,"><rule id="100205" level="5"><if_sid>5716</if_sid><description>f</description></rule></group>"#,
        );
        let found: Vec<(u32, u32, u32)> = shadowing_rules(home.path(), 117100, 3)
            .unwrap()
            .into_iter()
            .map(|s| (s.id, s.parent, s.ours))
            .collect();
        // 100201 is below ours, 100204 has our level and loads after our file, the overwrite of
        // 5716 is no sibling; 100206's group matches without case, one alternative of two.
        assert_eq!(
            found,
            [
                (100205, 5716, 117121),
                (100200, 5716, 117121),
                (100202, 5710, 117120),
                (100203, 5715, 117123),
                (100206, 5710, 117120),
                (100206, 5716, 117121),
            ]
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
