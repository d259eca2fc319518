//! Which alerts go to MISP: presets that translate to correct integratord filters, custom groups
//! and rule ids, and the explanations the wizard gives about them.
//!
//! integratord's filters in one `<integration>` block are AND-ed (`<level>`, `<group>`,
//! `<rule_id>`, `<event_location>`); within `<group>` any one listed group is enough. So presets
//! made of groups combine as a union of their groups, while a level or rule ids narrow them.

use crate::wazuh::ossec_conf::{Filters, MAX_LEVEL};
use crate::wazuh::rules;

/// A named set of rule groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    pub name: PresetName,
    /// What the admin sees in the list.
    pub title: &'static str,
    /// The groups it adds to `<group>`; empty for [`PresetName::Level`].
    pub groups: &'static [&'static str],
}

/// The names `--preset` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PresetName {
    /// Authentication failures: group authentication_failed (sshd, PAM, web and Windows logons)
    #[value(alias = "auth", alias = "authentication_failed")]
    Authentication,
    /// Windows Sysmon: process hashes, network connections, image/driver loads, DNS queries
    Sysmon,
    /// File integrity monitoring: hashes of added and modified files (group syscheck)
    #[value(alias = "syscheck", alias = "file-integrity")]
    Fim,
    /// IDS / Suricata alerts (groups ids, suricata)
    #[value(alias = "suricata")]
    Ids,
    /// Web server access logs (groups web, accesslog)
    Web,
    /// Every alert at or above a level (needs --level N; no group filter)
    Level,
}

/// Stock Wazuh group names: `sysmon_event1` … `sysmon_event9`, but `sysmon_event_10` and above.
pub const SYSMON_GROUPS: &[&str] = &[
    "sysmon_event1",
    "sysmon_event3",
    "sysmon_event6",
    "sysmon_event7",
    "sysmon_event_15",
    "sysmon_event_22",
];

/// The group presets, in the order the wizard lists them.
pub const GROUP_PRESETS: [Preset; 5] = [
    Preset {
        name: PresetName::Authentication,
        title: "Authentication failures (group authentication_failed): source IPs of failed logins",
        groups: &["authentication_failed"],
    },
    Preset {
        name: PresetName::Sysmon,
        title: "Windows Sysmon (sysmon_event1,3,6,7,_15,_22): process hashes, connections, DNS",
        groups: SYSMON_GROUPS,
    },
    Preset {
        name: PresetName::Fim,
        title: "File integrity monitoring (group syscheck): hashes of added and modified files",
        groups: &["syscheck"],
    },
    Preset {
        name: PresetName::Ids,
        title: "IDS / Suricata (groups ids, suricata): IPs, DNS names, URLs, file hashes",
        groups: &["ids", "suricata"],
    },
    Preset {
        name: PresetName::Web,
        title: "Web access logs (groups web, accesslog): client IPs and URLs",
        groups: &["web", "accesslog"],
    },
];

/// The level-only preset.
pub const LEVEL_PRESET_TITLE: &str =
    "A minimum rule level (alone: every alert at or above it; with groups: AND-ed)";

/// Used when the admin picks the level preset and no level was set before.
pub const DEFAULT_LEVEL: u8 = 7;

/// Told to the admin before choosing.
pub const AND_EXPLANATION: &str = "integratord hands an alert to wazuh-misp only if it passes EVERY filter of the block: \
the rule level (>= N), the groups (any one listed group is enough) and the rule ids are AND-ed. \
Picking several presets below adds their groups together (OR); a level or rule ids narrow them down.";

/// Told whenever the Sysmon preset or a Sysmon group is chosen.
pub const SYSMON_WARNING: &str =
    "Wazuh's stock Sysmon rules 61603-61617 are level 0, so those events never reach alerts.json \
and integratord never sees them: add a custom rule that raises the events you want, for example in \
etc/rules/local_rules.xml:\n\
\x20   <group name=\"sysmon,\">\n\
\x20     <rule id=\"100500\" level=\"3\">\n\
\x20       <if_sid>61603</if_sid>\n\
\x20       <description>Sysmon - Event 1: process creation</description>\n\
\x20       <group>sysmon_event1,</group>\n\
\x20     </rule>\n\
\x20   </group>\n\
\x20 (`wazuh-misp doctor` checks that every chosen group can reach alerts.json).";

pub fn preset(name: PresetName) -> Option<&'static Preset> {
    GROUP_PRESETS.iter().find(|p| p.name == name)
}

/// The groups of the chosen presets and the extra groups, in order, without duplicates.
pub fn union_groups(presets: &[PresetName], extra: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let from_presets = presets
        .iter()
        .filter_map(|n| preset(*n))
        .flat_map(|p| p.groups.iter().map(|g| g.to_string()));
    for g in from_presets.chain(extra.iter().cloned()) {
        if !out.contains(&g) {
            out.push(g);
        }
    }
    out
}

/// Splits the stored groups into the presets they cover and the groups left over (what the
/// wizard offers as defaults on a re-run).
pub fn split_groups(groups: &[String]) -> (Vec<PresetName>, Vec<String>) {
    let chosen: Vec<PresetName> = GROUP_PRESETS
        .iter()
        .filter(|p| p.groups.iter().all(|g| groups.iter().any(|x| x == g)))
        .map(|p| p.name)
        .collect();
    let covered = union_groups(&chosen, &[]);
    let rest = groups
        .iter()
        .filter(|g| !covered.contains(g))
        .cloned()
        .collect();
    (chosen, rest)
}

/// A comma (or blank) separated list, trimmed, without empty items or duplicates.
pub fn parse_list(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in text.split([',', ' ', '\t']).map(str::trim) {
        if !item.is_empty() && !out.iter().any(|x| x == item) {
            out.push(item.to_string());
        }
    }
    out
}

/// Checks group names as Wazuh writes them.
pub fn check_groups(groups: &[String]) -> Result<(), String> {
    match groups.iter().find(|g| !rules::valid_group(g)) {
        Some(bad) => Err(format!(
            "invalid group name {bad:?}: use only letters, digits, '_', '.' and '-'"
        )),
        None => Ok(()),
    }
}

/// Checks rule ids: Wazuh reads at most 6 digits.
pub fn check_rule_ids(ids: &[String]) -> Result<(), String> {
    match ids
        .iter()
        .find(|id| id.is_empty() || id.len() > 6 || !id.bytes().all(|b| b.is_ascii_digit()))
    {
        Some(bad) => Err(format!(
            "invalid rule id {bad:?}: a Wazuh rule id is a number of at most 6 digits"
        )),
        None => Ok(()),
    }
}

pub fn check_level(level: u8) -> Result<(), String> {
    if level > MAX_LEVEL {
        return Err(format!("a rule level is 0-{MAX_LEVEL}, not {level}"));
    }
    Ok(())
}

/// A warning for group names that look like a misspelt stock Sysmon group.
pub fn group_hint(group: &str) -> Option<String> {
    if let Some(n) = group.strip_prefix("sysmon_event_") {
        if let Ok(n) = n.parse::<u32>() {
            if n < 10 {
                return Some(format!(
                    "{group}: Wazuh's stock group is sysmon_event{n} (no underscore below 10); {group} matches no stock rule"
                ));
            }
        }
    } else if let Some(n) = group.strip_prefix("sysmon_event") {
        if let Ok(v) = n.parse::<u32>() {
            if v >= 10 {
                return Some(format!(
                    "{group}: Wazuh's stock group is sysmon_event_{v} (underscore from 10 on); {group} matches no stock rule"
                ));
            }
        }
    }
    None
}

/// Whether any of the groups is a Sysmon one (the level-0 warning applies).
pub fn mentions_sysmon(groups: &[String]) -> bool {
    groups.iter().any(|g| g.starts_with("sysmon"))
}

/// "level >= 7 AND one of the groups a,b AND rule ids 1,2", or "every alert".
pub fn describe(f: &Filters) -> String {
    let mut parts = Vec::new();
    if let Some(l) = f.level {
        parts.push(format!("rule level >= {l}"));
    }
    if !f.groups.is_empty() {
        parts.push(if f.groups.len() == 1 {
            format!("group {}", f.groups[0])
        } else {
            format!("any of the groups {}", f.groups.join(","))
        });
    }
    if !f.rule_ids.is_empty() {
        parts.push(if f.rule_ids.len() == 1 {
            format!("rule id {}", f.rule_ids[0])
        } else {
            format!("one of the rule ids {}", f.rule_ids.join(","))
        });
    }
    if parts.is_empty() {
        "every alert written to alerts.json (no filter)".into()
    } else {
        parts.join(" AND ")
    }
}

/// A note when filters of different kinds are combined (they are AND-ed).
pub fn and_note(f: &Filters) -> Option<String> {
    let kinds = usize::from(f.level.is_some())
        + usize::from(!f.groups.is_empty())
        + usize::from(!f.rule_ids.is_empty());
    (kinds >= 2).then(|| {
        format!(
            "these filters are AND-ed: an alert is looked up only if it matches {}; alerts that pass one filter but not the other are NOT looked up",
            describe(f)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_union_their_groups_in_order() {
        let g = union_groups(
            &[PresetName::Authentication, PresetName::Ids, PresetName::Ids],
            &["suricata".into(), "custom".into()],
        );
        assert_eq!(g, ["authentication_failed", "ids", "suricata", "custom"]);
        assert_eq!(
            union_groups(&[PresetName::Sysmon], &[]),
            [
                "sysmon_event1",
                "sysmon_event3",
                "sysmon_event6",
                "sysmon_event7",
                "sysmon_event_15",
                "sysmon_event_22"
            ]
        );
        assert!(union_groups(&[PresetName::Level], &[]).is_empty());
    }

    #[test]
    fn stored_groups_map_back_to_presets() {
        let stored = union_groups(
            &[PresetName::Web, PresetName::Fim],
            &["my_group".into(), "ids".into()],
        );
        let (presets, rest) = split_groups(&stored);
        assert_eq!(presets, [PresetName::Fim, PresetName::Web]);
        assert_eq!(rest, ["my_group", "ids"]);
    }

    #[test]
    fn lists_and_checks() {
        assert_eq!(parse_list(" a, b,,a  c "), ["a", "b", "c"]);
        assert!(check_groups(&["ok_1.x-y".into()]).is_ok());
        assert!(check_groups(&["no<".into()]).is_err());
        assert!(check_rule_ids(&["5710".into(), "100100".into()]).is_ok());
        assert!(check_rule_ids(&["1234567".into()]).is_err());
        assert!(check_rule_ids(&["12a".into()]).is_err());
        assert!(check_level(16).is_ok() && check_level(17).is_err());
    }

    #[test]
    fn misspelt_sysmon_groups_are_caught() {
        assert!(group_hint("sysmon_event_1")
            .unwrap()
            .contains("sysmon_event1"));
        assert!(group_hint("sysmon_event22")
            .unwrap()
            .contains("sysmon_event_22"));
        assert_eq!(group_hint("sysmon_event1"), None);
        assert_eq!(group_hint("sysmon_event_10"), None);
        assert_eq!(group_hint("web"), None);
    }

    #[test]
    fn combinations_are_explained() {
        let groups_only = Filters {
            level: None,
            groups: vec!["web".into(), "accesslog".into()],
            rule_ids: vec![],
        };
        assert_eq!(and_note(&groups_only), None);
        let both = Filters {
            level: Some(7),
            ..groups_only
        };
        let note = and_note(&both).unwrap();
        assert!(note.contains("AND"), "{note}");
        assert!(note.contains("rule level >= 7 AND any of the groups web,accesslog"));
        assert!(describe(&Filters::default()).contains("no filter"));
    }
}
