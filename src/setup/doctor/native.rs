//! `native.*` checks, when `native.enabled` is on: this node's ossec.conf declares our lists,
//! our CDB rules are installed and the second `<integration>` block takes their alerts, each
//! list is compiled (`.cdb` at least as new as its text, as analysisd requires), how old the
//! lists are, and what the last reload did. On a worker the rules and lists are the master's
//! (delivered by the cluster), and the `<list>` lines and the block this node's own.

use super::{Check, Ctx};
use crate::lists::cdb;
use crate::native::status::NativeStatus;
use crate::wazuh::home::state_dir;
use crate::wazuh::native_rules;
use crate::wazuh::ossec_conf::{lists::declared_lists, ClusterRole, ManagedState};

pub(super) fn native_checks(ctx: &Ctx) -> Vec<Check> {
    let Ok(loaded) = &ctx.loaded else {
        return Vec::new();
    };
    if !loaded.settings.native.enabled {
        // Left behind by a hand edit or an older install: our rules would match stale lists.
        let ours = ctx
            .conf_text
            .as_deref()
            .and_then(declared_lists)
            .is_some_and(|d| {
                d.iter()
                    .any(|p| p.starts_with(crate::wazuh::home::LISTS_DIR))
            });
        let rules = ctx.home.join(native_rules::NATIVE_RULES_FILE).is_file();
        if (ours || rules) && ctx.cluster != Some(ClusterRole::Worker) {
            return vec![Check::warn(
                "native.leftover",
                "native matching is off in the settings, but its lists or rules are still installed: analysisd keeps matching lists that no sync updates",
                "run `sudo wazuh-misp install --restart` (it removes them), or turn native matching on with `sudo wazuh-misp setup --native`",
            )];
        }
        return Vec::new();
    }
    let install_fix = "run `sudo wazuh-misp install --restart` and read its message";
    let mut out = Vec::new();
    let worker = ctx.cluster == Some(ClusterRole::Worker);
    let install_fix = if worker {
        "turn native matching on on the master first (its rules and lists reach this worker by the cluster's sync), then run `sudo wazuh-misp install --restart` here"
    } else {
        install_fix
    };
    if let Some(v) = ctx.version.filter(|v| !v.hot_reloads_ruleset()) {
        out.push(Check::warn(
            "native.reload",
            format!("Wazuh {v} cannot hot-reload lists (4.13+ can): new lists apply at the next manager restart"),
            "restart the manager after syncs, or set native.restart_without_reload to let the sync restart it safely",
        ));
    }
    let wanted: Vec<String> = native_rules::lists_used()
        .into_iter()
        .map(native_rules::list_path)
        .collect();
    let declared = ctx
        .conf_text
        .as_deref()
        .and_then(declared_lists)
        .unwrap_or_default();
    let missing: Vec<&String> = wanted.iter().filter(|p| !declared.contains(p)).collect();
    out.push(if missing.is_empty() {
        Check::pass(
            "native.lists_declared",
            format!("ossec.conf declares our {} lists in the stock <ruleset>", wanted.len()),
        )
    } else {
        Check::fail(
            "native.lists_declared",
            format!(
                "ossec.conf does not declare {} in its effective <ruleset> (the last one with <list> lines: each replaces the lists of those before it): analysisd drops every rule using it (warning 7616)",
                missing
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            install_fix,
        )
    });
    let rules_path = ctx.home.join(native_rules::NATIVE_RULES_FILE);
    let hits_block = match &ctx.inspection {
        Ok(i) => matches!(&i.managed, Some(ManagedState::Intact(b))
            if b.native_hits.is_some()
                || b.filters.groups.iter().any(|g| g == native_rules::NATIVE_GROUP)),
        Err(_) => false,
    };
    out.push(match (rules_path.is_file(), hits_block) {
        (true, true) => Check::pass(
            "native.rules",
            format!(
                "{} is installed and an <integration> block takes its alerts (group {})",
                native_rules::NATIVE_RULES_FILE,
                native_rules::NATIVE_GROUP
            ),
        ),
        (false, _) => Check::fail(
            "native.rules",
            format!(
                "{} is missing: the lists match nothing",
                native_rules::NATIVE_RULES_FILE
            ),
            install_fix,
        ),
        (true, false) => Check::fail(
            "native.rules",
            format!(
                "no <integration> block takes the alerts of group {}: native hits are not enriched",
                native_rules::NATIVE_GROUP
            ),
            install_fix,
        ),
    });
    if !worker && rules_path.is_file() {
        out.extend(shadow_check(ctx, loaded));
    }
    let mut stale = Vec::new();
    let mut absent = Vec::new();
    let mut newest = 0u64;
    for rel in &wanted {
        let path = ctx.home.join(rel);
        let secs = |p: &std::path::Path| {
            std::fs::metadata(p)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs())
        };
        match (secs(&path), secs(&cdb::cdb_path(&path))) {
            (None, _) => absent.push(rel.clone()),
            (Some(text), Some(compiled)) if compiled >= text => newest = newest.max(text),
            (Some(text), _) => {
                stale.push(rel.clone());
                newest = newest.max(text);
            }
        }
    }
    out.push(if !absent.is_empty() {
        Check::fail(
            "native.lists_compiled",
            format!("missing: {}", absent.join(", ")),
            install_fix,
        )
    } else if !stale.is_empty() {
        Check::warn(
            "native.lists_compiled",
            format!(
                "not compiled since their last change: {} (analysisd compiles at its start and at each hot reload)",
                stale.join(", ")
            ),
            "run `sudo wazuh-misp sync` (it reloads analysisd), or restart the manager",
        )
    } else {
        Check::pass(
            "native.lists_compiled",
            "every list is compiled (.cdb at least as new as its text)",
        )
    });
    let status = NativeStatus::read(&state_dir(&ctx.home));
    let now = ctx.now.max(0) as u64;
    let keys: u64 = status.keys.values().sum();
    out.push(if status.lists_written_at == 0 {
        Check::warn(
            "native.lists_age",
            "no sync has written the lists yet: they are empty",
            "run `sudo wazuh-misp sync`",
        )
    } else {
        Check::pass(
            "native.lists_age",
            format!(
                "{keys} keys in {} lists, written {} s ago{}",
                status.keys.len(),
                now.saturating_sub(status.lists_written_at),
                if status.refused > 0 {
                    format!(
                        "; {} indicators a CDB line cannot hold stay with the runtime",
                        status.refused
                    )
                } else {
                    String::new()
                }
            ),
        )
    });
    let last = match status.last_result.as_str() {
        "" => Check::skip(
            "native.last_reload",
            "no list change has been put in force yet",
        ),
        "ok" => Check::pass(
            "native.last_reload",
            format!(
                "the last hot reload ({}) succeeded",
                crate::civil::format_utc(status.last_reload_at as i64)
            ),
        ),
        "at_start" | "at_restart" | "restarted" => Check::pass(
            "native.last_reload",
            status
                .last_message
                .clone()
                .unwrap_or_else(|| status.last_result.clone()),
        ),
        "held" => Check::warn(
            "native.last_reload",
            status.last_message.clone().unwrap_or_default(),
            "restart the manager when you can (`sudo systemctl reload wazuh-manager`, or `bin/wazuh-control restart`): it releases what analysisd holds and loads the new lists; or set native.restart_without_reload, or raise native.max_held_mb / native.max_reloads_per_start if the disk and descriptors allow",
        ),
        verdict @ ("rejected" | "failed" | "new_warnings") => Check::warn(
            "native.last_reload",
            format!(
                "the last change was refused ({verdict}): {}; the previous lists stay in force",
                status.last_message.clone().unwrap_or_default()
            ),
            "read the message and fix its cause: the same lists are not tried again until they change, or Wazuh's configuration, rules or decoders do, or `sudo wazuh-misp sync --full`",
        ),
        _ => Check::warn(
            "native.last_reload",
            format!(
                "the last change was not put in force ({}): {}; the previous lists stay in force",
                status.last_result,
                status.last_message.clone().unwrap_or_default()
            ),
            "read the message; the next sync tries again (`sudo wazuh-misp sync`)",
        ),
    };
    out.push(last);
    if status.pending_since != 0 {
        out.push(Check::pass(
            "native.pending",
            format!(
                "a list change waits since {} for native.min_reload_interval_s ({} s)",
                crate::civil::format_utc(status.pending_since as i64),
                loaded.settings.native.min_reload_interval_s
            ),
        ));
    }
    out
}

/// The admin's own rules that analysisd tries before ours under the same stock rule: the events
/// they take keep the admin's alert and are not matched natively.
fn shadow_check(ctx: &Ctx, loaded: &crate::settings::Loaded) -> Option<Check> {
    let base = loaded.settings.install.base();
    let lal = ctx
        .inspection
        .as_ref()
        .map_or(native_rules::MIN_HIT_LEVEL, |i| i.log_alert_level);
    let shadows = match native_rules::shadowing_rules(&ctx.home, base, lal) {
        Ok(s) => s,
        Err(e) => {
            return Some(Check::skip(
                "native.shadowed",
                format!("the rules could not be read ({e}): not checked"),
            ))
        }
    };
    let distinct: std::collections::BTreeSet<(&std::path::Path, u32)> =
        shadows.iter().map(|s| (s.file.as_path(), s.id)).collect();
    Some(if shadows.is_empty() {
        Check::pass(
            "native.shadowed",
            "no rule of yours in etc/rules/ is tried before native matching's rules",
        )
    } else {
        let listed: Vec<String> = shadows
            .iter()
            .take(5)
            .map(|s| {
                format!(
                    "rule {} ({}, level {}) under {} before our {}",
                    s.id,
                    s.file.strip_prefix(&ctx.home).unwrap_or(&s.file).display(),
                    s.level,
                    s.parent,
                    s.ours
                )
            })
            .collect();
        Check::warn(
            "native.shadowed",
            format!(
                "{} of your rules are tried before native matching's (level 0, or a higher level): an event they take keeps your alert and a MISP-listed value in it is not matched natively: {}{}",
                distinct.len(),
                listed.join("; "),
                if shadows.len() > 5 { "; …" } else { "" }
            ),
            "lower those rules' level below ours, or give them a CDB child of your own reading etc/lists/wazuh-misp/ (docs/native-rules.md); the runtime's <integration> block still enriches their alerts when its filters pass",
        )
    })
}
