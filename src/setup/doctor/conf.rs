//! ossec.conf as integratord reads it (src/config/integrator-config.c and
//! src/os_integrator/integrator.c, 4.x): our block, every `<integration>` block's syntax, the
//! settings that decide whether alerts reach integratord, whether any rule can produce an alert
//! the block's filters let through, and our rules file and id block.

use super::{one_line, Check, Ctx};
use crate::wazuh::ossec_conf::{ClusterRole, ManagedState, INTEGRATION_NAME, MAX_LEVEL};
use crate::wazuh::rules::{self, RuleEntry, RULES_FILE};
use crate::wazuh::xml;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

const SETUP: &str = "`sudo wazuh-misp setup`";

/// Children integratord accepts in `<integration>`, and the version that brought the newer ones.
const CHILDREN: [&str; 9] = [
    "name",
    "api_key",
    "hook_url",
    "level",
    "rule_id",
    "group",
    "event_location",
    "max_log",
    "alert_format",
];
const BUILTIN: [&str; 6] = [
    "slack",
    "pagerduty",
    "virustotal",
    "shuffle",
    "maltiverse",
    "msteams",
];

/// One `<integration>` element, read the way integratord reads it.
#[derive(Debug, Default, Clone)]
pub(super) struct Block {
    pub line: usize,
    pub name: Option<String>,
    /// The last `<level>` (integratord keeps the last).
    pub level: Option<u32>,
    /// The last `<group>`, split on commas exactly as integratord does (no trimming).
    pub groups: Vec<String>,
    /// Every `<rule_id>`, accumulated.
    pub rule_ids: Vec<u32>,
    pub event_location: bool,
    pub alert_format: Option<String>,
    pub api_key: bool,
    pub hook_url: bool,
    pub options: bool,
    /// What makes integratord (and the manager) refuse the file.
    pub fatal: Vec<String>,
}

pub(super) fn read_blocks(ctx: &Ctx) -> Option<Vec<Block>> {
    let text = ctx.conf_text.as_ref()?;
    let doc = xml::parse(text).ok()?;
    let version = ctx.version;
    let mut blocks = Vec::new();
    for root in doc.roots() {
        for el in root.children_named("integration") {
            let mut b = Block {
                line: el.line,
                ..Block::default()
            };
            for child in el.children() {
                let value = child.trimmed_text().into_owned();
                let name = child.name.as_str();
                let known = CHILDREN.contains(&name)
                    || (name == "options" && version.is_none_or(|v| (v.major, v.minor) >= (4, 7)))
                    || (matches!(name, "timeout" | "retries")
                        && version.is_none_or(|v| v.accepts_integration_timeout()));
                if !known {
                    b.fatal.push(format!(
                        "line {}: <{name}> is not an element integratord{} accepts",
                        child.line,
                        version.map(|v| format!(" {v}")).unwrap_or_default()
                    ));
                    continue;
                }
                if value.is_empty() {
                    b.fatal
                        .push(format!("line {}: <{name}> is empty", child.line));
                    continue;
                }
                let numeric = value.bytes().all(|c| c.is_ascii_digit());
                match name {
                    "name" => b.name = Some(value),
                    "level" | "timeout" | "retries" | "max_log" if !numeric => b.fatal.push(
                        format!("line {}: <{name}> {value:?} is not a number", child.line),
                    ),
                    "level" => b.level = value.parse().ok().or(Some(u32::MAX)),
                    "max_log" if !(165..=1024).contains(&value.parse::<u32>().unwrap_or(0)) => {
                        b.fatal.push(format!(
                            "line {}: <max_log> must be from 165 to 1024",
                            child.line
                        ))
                    }
                    "group" => {
                        b.groups = String::from_utf8_lossy(child.text())
                            .split(',')
                            .filter(|g| !g.is_empty())
                            .map(str::to_string)
                            .collect();
                    }
                    "rule_id" => b.rule_ids.extend(integratord_rule_ids(child.text())),
                    "event_location" => b.event_location = true,
                    "alert_format" => b.alert_format = Some(value),
                    "api_key" => b.api_key = true,
                    "hook_url" => b.hook_url = true,
                    "options" => b.options = true,
                    _ => {}
                }
            }
            match &b.name {
                None => b.fatal.push(format!(
                    "line {}: an <integration> without <name>",
                    el.line
                )),
                Some(n) if !n.starts_with("custom-") && !BUILTIN.contains(&n.as_str()) => {
                    b.fatal.push(format!(
                        "line {}: integration name {n:?} is neither a built-in one nor custom-…: integratord does not run it",
                        el.line
                    ))
                }
                _ => {}
            }
            blocks.push(b);
        }
    }
    Some(blocks)
}

/// integratord's reading of a `<rule_id>` list (shared with the editor), as numbers.
fn integratord_rule_ids(text: &[u8]) -> Vec<u32> {
    crate::wazuh::ossec_conf::integratord_rule_ids(text)
        .iter()
        .map(|id| id.parse().unwrap_or(u32::MAX))
        .collect()
}

fn ours(blocks: &[Block]) -> Vec<&Block> {
    blocks
        .iter()
        .filter(|b| b.name.as_deref() == Some(INTEGRATION_NAME))
        .collect()
}

pub(super) fn conf_checks(ctx: &Ctx) -> Vec<Check> {
    let blocks = read_blocks(ctx);
    let inspection = match &ctx.inspection {
        Ok(i) => i,
        Err(e) => {
            return vec![
                Check::fail(
                    "ossec_conf.block",
                    format!("etc/ossec.conf cannot be used: {}", one_line(e, 300)),
                    "correct etc/ossec.conf (Wazuh refuses to start with it as it is)",
                ),
                match &blocks {
                    Some(blocks) => syntax_check(ctx, blocks),
                    None => Check::skip("ossec_conf.integratord", "ossec.conf unreadable"),
                },
                Check::skip("ossec_conf.jsonout", "ossec.conf unreadable"),
            ];
        }
    };
    let blocks = blocks.unwrap_or_default();
    let mine = ours(&blocks);
    let lines: Vec<String> = mine.iter().map(|b| b.line.to_string()).collect();
    let mut checks = Vec::new();

    let block = match (&inspection.managed, inspection.legacy.len()) {
        (None, 0) => Check::fail(
            "ossec_conf.block",
            "no <integration> block runs custom-misp: integratord never calls the integration",
            format!("run {SETUP} (or `sudo wazuh-misp install` when the settings exist)"),
        ),
        (Some(_), n) if n > 0 => Check::warn(
            "ossec_conf.block",
            format!(
                "custom-misp appears in {} <integration> blocks (lines {}): integratord runs it once per matching block, so alerts are looked up and reported more than once",
                mine.len().max(n + 1),
                lines.join(", ")
            ),
            "run `sudo wazuh-misp install`: it keeps the managed block and removes the hand-written ones",
        ),
        (None, _) => Check::warn(
            "ossec_conf.block",
            format!(
                "a hand-written custom-misp block (line {}), as the old manual guide wrote it",
                lines.join(", ")
            ),
            "run `sudo wazuh-misp install`: it takes the block over, keeping its filters",
        ),
        (Some(ManagedState::HandEdited), _) => Check::warn(
            "ossec_conf.block",
            format!(
                "the block wazuh-misp manages (line {}) was edited by hand: setup and install leave it alone from now on",
                lines.join(", ")
            ),
            format!("run {SETUP} to choose the filters, after deleting the block and its two wazuh-misp comments"),
        ),
        (Some(ManagedState::Intact(b)), _) => Check::pass(
            "ossec_conf.block",
            format!(
                "managed block (line {}): {}",
                lines.join(", "),
                describe(b.filters.level.map(u32::from), &b.filters.groups, &b.filters.rule_ids)
            ),
        ),
    };
    checks.push(block);
    checks.push(syntax_check(ctx, &blocks));

    checks.push(if inspection.jsonout_output {
        Check::pass(
            "ossec_conf.jsonout",
            "<jsonout_output> is on: alerts.json, which integratord reads, is written",
        )
    } else {
        Check::fail(
            "ossec_conf.jsonout",
            "<jsonout_output> is no: alerts.json is not written, so integratord receives no alert at all",
            "set <jsonout_output>yes</jsonout_output> in <global> of etc/ossec.conf and restart the manager",
        )
    });
    checks
}

/// Every block's syntax as integratord (and wazuh-control before a start) judges it, and what
/// of ours integratord accepts but works against us.
fn syntax_check(ctx: &Ctx, blocks: &[Block]) -> Check {
    let mine = ours(blocks);
    let fatal: Vec<String> = blocks.iter().flat_map(|b| b.fatal.clone()).collect();
    let mut warns = Vec::new();
    let mut fixes = Vec::new();
    for b in &mine {
        match b.alert_format.as_deref() {
            Some(f) if f.starts_with("json") => {}
            _ => {
                warns.push(format!(
                    "the custom-misp block on line {} has no <alert_format>json</alert_format>: integratord sends the legacy text format, where only srcip can be looked up",
                    b.line
                ));
                fixes.push(
                    "add <alert_format>json</alert_format> (or run `sudo wazuh-misp install`)"
                        .to_string(),
                );
            }
        }
        if b.api_key {
            warns.push(format!(
                "the custom-misp block on line {} carries <api_key>: integratord prints it in ossec.log whenever a run fails",
                b.line
            ));
            fixes.push("move the key to etc/custom-misp.json (`sudo wazuh-misp setup`) and delete <api_key>".into());
        }
        for g in b.groups.iter().filter(|g| g.trim() != g.as_str()) {
            warns.push(format!(
                "group {g:?} on line {} has spaces, which integratord compares too: it never matches",
                b.line
            ));
            fixes.push("write the groups without spaces: <group>a,b</group>".into());
        }
    }
    if ctx.version.is_some_and(|v| (v.major, v.minor) <= (4, 5)) {
        if let Some(first) = mine.first() {
            let earlier_text = blocks
                .iter()
                .take_while(|b| b.line < first.line)
                .filter(|b| !b.alert_format.as_deref().unwrap_or("").starts_with("json"))
                .map(|b| b.name.clone().unwrap_or_default())
                .collect::<Vec<_>>();
            if !earlier_text.is_empty() {
                warns.push(format!(
                    "before Wazuh 4.6 an alert is written once, in the format of the first matching block, and {} comes first without json",
                    earlier_text.join(", ")
                ));
                fixes.push(
                    "add <alert_format>json</alert_format> to every <integration> block".into(),
                );
            }
        }
    }
    if !fatal.is_empty() {
        Check::fail(
            "ossec_conf.integratord",
            format!(
                "integratord refuses this configuration (and the manager does not start): {}",
                fatal.join("; ")
            ),
            "correct those elements (integratord accepts name, api_key, hook_url, level, rule_id, group, event_location, max_log, alert_format, and options, timeout, retries from 4.7/4.8), then check with `bin/wazuh-integratord -t`",
        )
    } else if !warns.is_empty() {
        fixes.dedup();
        Check::warn("ossec_conf.integratord", warns.join("; "), fixes.join("; "))
    } else {
        Check::pass(
            "ossec_conf.integratord",
            format!(
                "{} <integration> block(s) read as integratord reads them: {}",
                blocks.len(),
                blocks
                    .iter()
                    .map(|b| b.name.clone().unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    }
}

fn describe(level: Option<u32>, groups: &[String], rule_ids: &[impl ToString]) -> String {
    let mut parts = Vec::new();
    if let Some(l) = level {
        parts.push(format!("level >= {l}"));
    }
    if !groups.is_empty() {
        parts.push(format!("group {}", groups.join(",")));
    }
    if !rule_ids.is_empty() {
        parts.push(format!(
            "rule_id {}",
            rule_ids
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        ));
    }
    if parts.is_empty() {
        "no filter: every alert".into()
    } else {
        parts.join(" AND ")
    }
}

/// `filters.*`: can any alert pass our block's filters?
pub(super) fn filter_checks(ctx: &Ctx) -> Vec<Check> {
    let Ok(inspection) = &ctx.inspection else {
        return vec![Check::skip("filters.level", "ossec.conf unreadable")];
    };
    let blocks = read_blocks(ctx).unwrap_or_default();
    let mine = ours(&blocks);
    if mine.is_empty() {
        return vec![Check::skip("filters.level", "no custom-misp block")];
    }
    let lal = u32::from(inspection.log_alert_level);
    let several = mine.len() > 1;
    let mut checks = Vec::new();
    for b in mine {
        let prefix = if several {
            format!("line {}: ", b.line)
        } else {
            String::new()
        };
        let named = |c: Check, name: String| {
            if several {
                c.named(format!("{name} (line {})", b.line))
            } else {
                c.named(name)
            }
        };
        let threshold = lal.max(b.level.unwrap_or(0));
        let level = match b.level {
            None => Check::pass(
                "filters.level",
                format!("{prefix}no <level>: alerts from level {lal} (log_alert_level) reach the integration"),
            ),
            Some(l) if l > u32::from(MAX_LEVEL) => Check::fail(
                "filters.level",
                format!("{prefix}<level>{l}</level> is above 16, the highest rule level: no alert passes"),
                format!("choose a level from {lal} to 16 with {SETUP}"),
            ),
            Some(l) if l < lal => Check::warn(
                "filters.level",
                format!("{prefix}<level>{l}</level> is below log_alert_level {lal}: alerts under {lal} are never written to alerts.json, so the integration sees levels >= {lal} only"),
                format!("set <level> to {lal} or more with {SETUP}, or lower <log_alert_level> in <alerts> if lower alerts are wanted"),
            ),
            Some(l) => Check::pass(
                "filters.level",
                format!("{prefix}<level>{l}</level> >= log_alert_level {lal}"),
            ),
        }
        .data(json!({"level": b.level, "log_alert_level": lal}));
        checks.push(named(level, "filters.level".into()));

        let rules = match &ctx.rules {
            Ok(r) => r,
            Err(e) => {
                if !b.groups.is_empty() || !b.rule_ids.is_empty() {
                    checks.push(named(
                        Check::skip(
                            "filters.group",
                            format!("the rules cannot be read: {}", one_line(e, 200)),
                        ),
                        "filters.group".into(),
                    ));
                }
                continue;
            }
        };
        for g in &b.groups {
            checks.push(named(
                group_check(g, threshold, rules),
                format!("filters.group {}", g.trim()),
            ));
        }
        if !b.rule_ids.is_empty() {
            checks.push(named(
                rule_ids_check(&b.rule_ids, threshold, rules),
                "filters.rule_ids".into(),
            ));
        }
        if !b.groups.is_empty() && !b.rule_ids.is_empty() {
            let any = rules.iter().any(|(_, id, level, groups)| {
                u32::from(*level) >= threshold
                    && b.rule_ids.contains(id)
                    && groups.iter().any(|rg| b.groups.contains(rg))
            });
            let c = if any {
                Check::pass(
                    "filters.combined",
                    "some rules pass <group>, <rule_id> and <level> together (the filters are AND-ed)",
                )
            } else {
                Check::fail(
                    "filters.combined",
                    format!(
                        "no rule is among <rule_id> {} AND carries one of <group> {} at level >= {threshold}: integratord AND-s the filters, so the block never fires",
                        b.rule_ids.iter().map(u32::to_string).collect::<Vec<_>>().join(","),
                        b.groups.join(",")
                    ),
                    format!("keep either <group> or <rule_id> (re-run {SETUP})"),
                )
            };
            checks.push(named(c, "filters.combined".into()));
        }
    }
    checks
}

fn group_check(group: &str, threshold: u32, rules: &[RuleEntry]) -> Check {
    const ID: &str = "filters.group";
    if group.trim() != group {
        return Check::fail(
            ID,
            format!("group {group:?} has spaces around it; integratord compares them too, so it matches no alert"),
            "write the groups without spaces: <group>a,b</group>",
        );
    }
    let carriers: Vec<&RuleEntry> = rules
        .iter()
        .filter(|(_, _, _, groups)| groups.iter().any(|g| g == group))
        .collect();
    let reaching: Vec<&&RuleEntry> = carriers
        .iter()
        .filter(|(_, _, level, _)| u32::from(*level) >= threshold)
        .collect();
    let data = json!({
        "group": group,
        "rules": carriers.len(),
        "rules_reaching": reaching.len(),
        "threshold": threshold,
    });
    if let Some((_, id, level, _)) = reaching.first() {
        return Check::pass(
            ID,
            format!(
                "carried by {} rule(s) at level >= {threshold} (e.g. rule {id}, level {level})",
                reaching.len()
            ),
        )
        .data(data);
    }
    if !carriers.is_empty() {
        let ids: BTreeSet<u32> = carriers.iter().map(|(_, id, _, _)| *id).collect();
        let shown: Vec<String> = carriers
            .iter()
            .take(6)
            .map(|(_, id, level, _)| format!("{id} (level {level})"))
            .collect();
        let if_sid: Vec<String> = ids.iter().take(20).map(u32::to_string).collect();
        let free = free_custom_id(rules);
        let sysmon = if group.starts_with("sysmon_event") {
            " (the stock Sysmon rules 61603-61617 are level 0)"
        } else {
            ""
        };
        return Check::fail(
            ID,
            format!(
                "{group} is carried only by rules below level {threshold}: {}{}{sysmon}; those events never become alerts in alerts.json, so integratord never sees them",
                shown.join(", "),
                if carriers.len() > shown.len() { ", …" } else { "" },
            ),
            format!(
                "raise them with a rule in etc/rules/local_rules.xml, e.g. <rule id=\"{free}\" level=\"{}\"><if_sid>{}</if_sid><description>{group} (raised for MISP lookups)</description><group>{group},</group></rule>, then restart the manager",
                threshold.max(3),
                if_sid.join(",")
            ),
        )
        .data(data);
    }
    let suggestion = closest_group(group, rules);
    Check::fail(
        ID,
        format!(
            "no rule carries the group {group:?}{}: the block matches no alert",
            suggestion
                .as_ref()
                .map(|s| format!(" (did you mean {s}?)"))
                .unwrap_or_default()
        ),
        match suggestion {
            Some(s) => format!("replace {group} with {s} (re-run {SETUP})"),
            None => {
                format!("use a group a rule carries (see rule.groups in alerts.json), via {SETUP}")
            }
        },
    )
    .data(data)
}

fn rule_ids_check(ids: &[u32], threshold: u32, rules: &[RuleEntry]) -> Check {
    const ID: &str = "filters.rule_ids";
    let mut by_id: BTreeMap<u32, u8> = BTreeMap::new();
    for (_, id, level, _) in rules {
        // The highest definition counts (an overwrite="yes" in etc/rules raises a stock rule).
        let e = by_id.entry(*id).or_insert(*level);
        *e = (*e).max(*level);
    }
    let mut missing = Vec::new();
    let mut low = Vec::new();
    for id in ids {
        match by_id.get(id) {
            None => missing.push(id.to_string()),
            Some(l) if u32::from(*l) < threshold => low.push(format!("{id} (level {l})")),
            Some(_) => {}
        }
    }
    let data = json!({"rule_ids": ids, "missing": missing, "below_threshold": low});
    if missing.is_empty() && low.is_empty() {
        return Check::pass(
            ID,
            format!("all {} rule id(s) exist at level >= {threshold}", ids.len()),
        )
        .data(data);
    }
    let mut problems = Vec::new();
    if !missing.is_empty() {
        problems.push(format!("no such rule: {}", missing.join(", ")));
    }
    if !low.is_empty() {
        problems.push(format!(
            "below level {threshold}, never in alerts.json: {}",
            low.join(", ")
        ));
    }
    let all_bad = missing.len() + low.len() == ids.len();
    let detail = format!(
        "{}{}",
        problems.join("; "),
        if all_bad {
            ": the block matches no alert"
        } else {
            ""
        }
    );
    let fix = format!("correct <rule_id> (re-run {SETUP}), or raise those rules' level with overwrite=\"yes\" in etc/rules/local_rules.xml");
    if all_bad {
        Check::fail(ID, detail, fix).data(data)
    } else {
        Check::warn(ID, detail, fix).data(data)
    }
}

/// The first id in Wazuh's custom range used by no rule and outside our block.
fn free_custom_id(rules: &[RuleEntry]) -> u32 {
    let used: BTreeSet<u32> = rules.iter().map(|(_, id, _, _)| *id).collect();
    rules::CUSTOM_RULE_IDS
        .clone()
        .find(|id| !used.contains(id) && !rules::rule_ids(rules::DEFAULT_RULE_ID_BASE).contains(id))
        .unwrap_or(*rules::CUSTOM_RULE_IDS.start())
}

/// A known group close to a misspelt one: the same once `_`, `-`, `.` and case are ignored, or
/// at most two edits away.
fn closest_group(wanted: &str, rules: &[RuleEntry]) -> Option<String> {
    let norm = |s: &str| -> String {
        s.chars()
            .filter(|c| !matches!(c, '_' | '-' | '.'))
            .flat_map(char::to_lowercase)
            .collect()
    };
    let wanted_norm = norm(wanted);
    let known: BTreeSet<&str> = rules
        .iter()
        .flat_map(|(_, _, _, groups)| groups.iter().map(String::as_str))
        .collect();
    let mut best: Option<(usize, &str)> = None;
    for g in known {
        let d = if norm(g) == wanted_norm {
            0
        } else {
            levenshtein(&wanted.to_lowercase(), &g.to_lowercase())
        };
        let limit = if wanted.chars().count() >= 6 { 2 } else { 1 };
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, g));
        }
    }
    best.map(|(_, g)| g.to_string())
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// `rules.file` and `rules.collisions`.
pub(super) fn rules_checks(ctx: &Ctx) -> Vec<Check> {
    let base = ctx
        .loaded
        .as_ref()
        .ok()
        .and_then(|l| l.settings.install.rule_id_base)
        .unwrap_or(rules::DEFAULT_RULE_ID_BASE);
    let ids = rules::rule_ids(base);
    let path = ctx.home.join(RULES_FILE);
    let worker = ctx.cluster == Some(ClusterRole::Worker);
    let mut checks = Vec::new();
    let file = if !path.is_file() {
        if worker {
            Check::warn(
                "rules.file",
                format!("{RULES_FILE} is not here yet: on a worker it arrives with the master's cluster sync"),
                "install wazuh-misp on the master (`sudo wazuh-misp setup` there); the cluster then copies the rules here",
            )
        } else {
            Check::fail(
                "rules.file",
                format!("{RULES_FILE} is missing: the events the integration sends match no rule, so MISP hits never become alerts"),
                "run `sudo wazuh-misp install`",
            )
        }
    } else {
        let ours: Vec<u32> = match &ctx.rules {
            Ok(rules) => rules
                .iter()
                .filter(|(f, _, _, _)| *f == path)
                .map(|(_, id, _, _)| *id)
                .collect(),
            Err(_) => Vec::new(),
        };
        let outside: Vec<String> = ours
            .iter()
            .filter(|id| !ids.contains(id))
            .map(u32::to_string)
            .collect();
        if ctx.rules.is_ok() && ours.is_empty() {
            Check::warn(
                "rules.file",
                format!("{RULES_FILE} holds no rule"),
                "run `sudo wazuh-misp install` to write it again",
            )
        } else if !outside.is_empty() {
            Check::warn(
                "rules.file",
                format!(
                    "{RULES_FILE} uses ids {} outside the block {}-{} the settings record",
                    outside.join(","),
                    ids.start(),
                    ids.end()
                ),
                "run `sudo wazuh-misp install` to write it for the recorded block",
            )
        } else {
            Check::pass(
                "rules.file",
                format!(
                    "{RULES_FILE}: {} rules, ids {}-{}{}",
                    ours.len(),
                    ids.start(),
                    ids.end(),
                    if worker {
                        " (synced from the master)"
                    } else {
                        ""
                    }
                ),
            )
        }
    };
    checks.push(file);
    let collisions = match rules::ensure_free(&ctx.home, base) {
        Ok(()) => Check::pass(
            "rules.collisions",
            format!("no other rule uses the ids {}-{}", ids.start(), ids.end()),
        ),
        Err(e @ rules::RulesError::Collision { .. }) => {
            let suggestion = match &e {
                rules::RulesError::Collision {
                    suggestion: Some(n),
                    ..
                } => format!("run `sudo wazuh-misp install --rule-id-base {n}`"),
                _ => "run `sudo wazuh-misp install --rule-id-base N` with a free block".into(),
            };
            Check::fail(
                "rules.collisions",
                format!(
                    "{}: Wazuh keeps only the first rule of a duplicated id, so one set is silently dropped",
                    e.to_string().split("; choose").next().unwrap_or_default()
                ),
                suggestion,
            )
        }
        Err(e) => Check::fail(
            "rules.collisions",
            one_line(&e.to_string(), 300),
            "run `sudo wazuh-misp install --rule-id-base N` with a valid base",
        ),
    };
    checks.push(collisions);
    checks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::setup::doctor::Status;
    use std::path::PathBuf;

    fn rule(id: u32, level: u8, groups: &[&str]) -> RuleEntry {
        (
            PathBuf::from("r.xml"),
            id,
            level,
            groups.iter().map(|g| g.to_string()).collect(),
        )
    }

    #[test]
    fn rule_id_lists_follow_integratord() {
        assert_eq!(
            integratord_rule_ids(b" 5710, 5716,,0100 x"),
            vec![5710, 5716, 100]
        );
        assert_eq!(integratord_rule_ids(b"12a,13"), vec![12, 13]);
        assert_eq!(integratord_rule_ids(b"x,13"), Vec::<u32>::new());
    }

    #[test]
    fn misspelt_groups_get_a_suggestion() {
        let rules = vec![
            rule(61603, 0, &["sysmon", "sysmon_event1"]),
            rule(61612, 0, &["sysmon", "sysmon_event_10"]),
            rule(5716, 5, &["syslog", "sshd", "authentication_failed"]),
        ];
        assert_eq!(
            closest_group("sysmon_event_1", &rules).as_deref(),
            Some("sysmon_event1")
        );
        assert_eq!(
            closest_group("authentication_faild", &rules).as_deref(),
            Some("authentication_failed")
        );
        assert_eq!(closest_group("web", &rules), None);
        let c = group_check("sysmon_event1", 3, &rules);
        assert_eq!(c.status, Status::Fail);
        assert!(c.fix.unwrap().contains("<if_sid>61603</if_sid>"));
        assert_eq!(group_check("sshd", 3, &rules).status, Status::Pass);
        assert_eq!(group_check("sshd", 6, &rules).status, Status::Fail);
    }

    #[test]
    fn rule_ids_must_exist_and_reach_alerts() {
        let rules = vec![rule(5700, 0, &["sshd"]), rule(5716, 5, &["sshd"])];
        assert_eq!(rule_ids_check(&[5716], 3, &rules).status, Status::Pass);
        assert_eq!(rule_ids_check(&[5716, 1], 3, &rules).status, Status::Warn);
        let c = rule_ids_check(&[5700, 1], 3, &rules);
        assert_eq!(c.status, Status::Fail);
        assert!(c.detail.contains("no such rule: 1"), "{}", c.detail);
    }
}
