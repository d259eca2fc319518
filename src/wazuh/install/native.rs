//! Native matching's share of an install: our CDB rules file, the list files (created empty
//! where missing; `sync` fills them), the `<list>` lines in the stock `<ruleset>` and the second
//! `<integration>` block, all in `install`'s one validated transaction. Switching native
//! matching off, and `uninstall`, take every one of them away again.
//!
//! On a cluster worker the rules and lists are the master's (the cluster's integrity sync copies
//! `etc/rules/` and `etc/lists/` and deletes a worker's own files there, `cluster.json`): only the
//! worker's own ossec.conf is ours to edit, with the `<list>` lines and the second block, once the
//! master's lists have arrived (declaring a missing list drops our rules with warning 7616).

use super::FileChange;
use crate::lists::cdb;
use crate::settings::Settings;
use crate::wazuh::atomic::FileMeta;
use crate::wazuh::detect::Manager;
use crate::wazuh::native_rules;
use crate::wazuh::ossec_conf::lists::{remove_lists, upsert_lists};
use crate::wazuh::ossec_conf::{ClusterRole, Filters, Outcome};
use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;

/// The label of a list file's change: `apply` creates their folder first.
pub(super) const LIST_LABEL: &str = "native list";
pub(super) const COMPILED_LABEL: &str = "compiled list";

/// Whether this install puts native matching in place, telling the admin why not when the
/// settings ask for it and it cannot be.
pub(super) fn wanted(
    home: &Path,
    settings: &Settings,
    manager: &Manager,
    base: u32,
    out: &mut dyn Write,
) -> Result<bool> {
    if !settings.native.enabled {
        return Ok(false);
    }
    if manager.cluster == ClusterRole::Worker {
        let missing: Vec<String> = native_rules::lists_used()
            .into_iter()
            .map(native_rules::list_path)
            .filter(|rel| !home.join(rel).is_file())
            .chain(
                (!home.join(native_rules::NATIVE_RULES_FILE).is_file())
                    .then(|| native_rules::NATIVE_RULES_FILE.to_string()),
            )
            .collect();
        if !missing.is_empty() {
            writeln!(out, "note: native matching stays off on this worker until the master's lists and rules arrive by the cluster's sync (missing: {}); turn it on on the master, then run `sudo wazuh-misp install` here again", missing.join(", "))?;
            return Ok(false);
        }
        return Ok(true);
    }
    let collisions = native_rules::find_native_collisions(home, base)?;
    if let Some(first) = collisions.first() {
        let ids = native_rules::native_rule_ids(base);
        writeln!(
            out,
            "warning: native matching stays off: {first} is one of the ids its rules need ({}-{}); move every wazuh-misp rule with `wazuh-misp setup --rule-id-base N`, or free those ids",
            ids.start(),
            ids.end()
        )?;
        return Ok(false);
    }
    Ok(true)
}

/// The runtime's filters with native matching on: the groups native rules cover fully are left
/// to analysisd, so their ordinary alerts start no process. With no group filter every alert
/// still goes to the runtime (nothing may stop being looked up), and the admin is told.
pub(super) fn runtime_filters(user: &Filters, out: &mut dyn Write) -> Result<Filters> {
    if user.groups.is_empty() {
        writeln!(out, "note: native matching saves a process per alert only for the sources it covers, and the alert filter names no group: every alert still starts a lookup (choose groups with `wazuh-misp setup`)")?;
        return Ok(user.clone());
    }
    let kept: Vec<String> = user
        .groups
        .iter()
        .filter(|g| !native_rules::COVERED_GROUPS.contains(&g.as_str()))
        .cloned()
        .collect();
    Ok(Filters {
        groups: kept,
        ..user.clone()
    })
}

/// The second block: every alert of our CDB rules, whatever its level.
pub(super) fn hits_filters() -> Filters {
    Filters {
        level: None,
        groups: vec![native_rules::NATIVE_GROUP.to_string()],
        rule_ids: Vec::new(),
    }
}

/// The changes that put native matching in place (`on`) or take it away, and the ossec.conf
/// text with our `<list>` lines added to, or removed from, `conf`.
pub(super) fn plan(
    home: &Path,
    manager: &Manager,
    on: Option<(u32, u8)>,
    conf: &[u8],
    out: &mut dyn Write,
) -> Result<(Vec<u8>, Vec<FileChange>)> {
    let lists: Vec<String> = native_rules::lists_used()
        .into_iter()
        .map(native_rules::list_path)
        .collect();
    if manager.cluster == ClusterRole::Worker {
        let edit = match on {
            Some(_) => upsert_lists(conf, &lists),
            None => remove_lists(conf),
        }
        .context("cannot change the native lists' lines in ossec.conf")?;
        if edit.outcome == Outcome::KeptHandEdited {
            writeln!(out, "warning: the wazuh-misp lists section in ossec.conf was edited by hand; it was left as it is")?;
        }
        return Ok((edit.text, Vec::new()));
    }
    let mut changes = Vec::new();
    let mut rules = FileChange::read(
        "native rules",
        home.join(native_rules::NATIVE_RULES_FILE),
        true,
    )?;
    let conf = match on {
        Some((base, log_alert_level)) => {
            let meta = FileMeta::of(&home.join("etc/rules/local_rules.xml")).unwrap_or(FileMeta {
                uid: 0,
                gid: manager.gid,
                mode: 0o660,
            });
            let text = native_rules::render(base, log_alert_level)?;
            rules.after = Some((text.into_bytes(), meta));
            let list_meta = FileMeta {
                uid: manager.user_uid(),
                gid: manager.gid,
                mode: 0o660,
            };
            for rel in &lists {
                let mut list = FileChange::read(LIST_LABEL, home.join(rel), false)?;
                if list.after.is_none() {
                    list.after = Some((Vec::new(), list_meta));
                }
                changes.push(list);
            }
            let edit = upsert_lists(conf, &lists)
                .context("cannot declare the native lists in ossec.conf")?;
            if edit.outcome == Outcome::KeptHandEdited {
                writeln!(out, "warning: the wazuh-misp lists section in ossec.conf was edited by hand; it was left as it is")?;
            }
            edit.text
        }
        None => {
            rules.after = None;
            for rel in &lists {
                let path = home.join(rel);
                let mut list = FileChange::read(LIST_LABEL, path.clone(), false)?;
                list.after = None;
                changes.push(list);
                let mut compiled = FileChange::read(COMPILED_LABEL, cdb::cdb_path(&path), false)?;
                compiled.after = None;
                changes.push(compiled);
            }
            let edit =
                remove_lists(conf).context("cannot take the native lists out of ossec.conf")?;
            if edit.outcome == Outcome::KeptHandEdited {
                writeln!(out, "warning: the wazuh-misp lists section in ossec.conf was edited by hand; it was left as it is")?;
            }
            edit.text
        }
    };
    changes.insert(0, rules);
    Ok((conf, changes))
}

/// The folder of our lists: root, group Wazuh, 0770 like `etc/lists/` itself.
pub(super) fn ensure_lists_dir(dir: &Path, gid: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if !dir.is_dir() {
        std::fs::create_dir_all(dir)?;
    }
    if nix::unistd::geteuid().is_root() {
        std::os::unix::fs::chown(dir, Some(0), Some(gid))?;
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o770))
}

/// After `install` (native matching turned off) or `uninstall` took our rules and lists away
/// without a restart: analysisd stops matching them at once where it can hot-reload (4.13+);
/// elsewhere at the restart it already asks for.
pub(super) fn reload_after_removal(home: &Path, out: &mut dyn Write) -> Result<()> {
    use crate::wazuh::reload::{reload_ruleset, Reload};
    match reload_ruleset(home, std::time::Duration::from_secs(60)) {
        Ok(Reload::Done { .. }) => writeln!(out, "analysisd reloaded its ruleset: native matching's rules and lists are gone")?,
        Ok(Reload::Failed { messages }) => writeln!(out, "warning: analysisd refused to reload its ruleset ({}); it keeps native matching's rules until the restart", messages.join("; "))?,
        Ok(Reload::Unsupported) | Err(_) => {}
    }
    Ok(())
}
