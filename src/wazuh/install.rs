//! `wazuh-misp install` and `uninstall`: plan every file change (binary copy, state directory,
//! ossec.conf block, rules file, stored choices), show it (`--dry-run`), or apply it as one
//! transaction: lock, back up ossec.conf, write atomically, let Wazuh's own `-t` checks judge the
//! result, and roll every file back if they find a new problem or the restart fails. We never
//! leave a manager that cannot start.

use super::atomic::{self, DirLock, FileMeta};
use super::detect::{self, Manager, OSSEC_CONF};
use super::home;
use super::ossec_conf::{self, ClusterRole, Filters, IntegrationBlock, Outcome, Schedule};
use super::rules::{self, RulesSpec, SampleRule};
use super::service::{self, Restart, ServiceManager};
use crate::settings::{self, Settings, SETTINGS_PATH};
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod native;

/// Relative to the Wazuh home.
pub const INTEGRATION_PATH: &str = "integrations/custom-misp";
const BACKUPS_KEPT: usize = 5;
/// integratord's own default, written explicitly where the version accepts it.
const INTEGRATION_TIMEOUT_S: u32 = 10;

#[derive(Debug, Clone)]
pub struct InstallOptions {
    pub dry_run: bool,
    pub restart: bool,
    pub service: ServiceManager,
    /// Moves the rule id block (stored in the settings).
    pub rule_id_base: Option<u32>,
    /// Installs (or drops) the sample test rule (stored in the settings).
    pub sample_rule: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct UninstallOptions {
    pub dry_run: bool,
    pub restart: bool,
    pub purge: bool,
    pub service: ServiceManager,
}

/// One file the transaction may change.
struct FileChange {
    label: &'static str,
    path: PathBuf,
    before: Option<(Vec<u8>, FileMeta)>,
    after: Option<(Vec<u8>, FileMeta)>,
    /// Show a text diff (not for the binary).
    text: bool,
}

impl FileChange {
    fn read(label: &'static str, path: PathBuf, text: bool) -> Result<FileChange> {
        // Replacing a link by a file would give the file the link's mode (0777) and lose the
        // admin's layout: refuse instead.
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
            bail!(
                "{} is a symbolic link; refusing to replace it (point --wazuh-home at the real files, or replace the link by the file)",
                path.display()
            );
        }
        let before = match std::fs::read(&path) {
            Ok(bytes) => Some((bytes, FileMeta::of(&path)?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        Ok(FileChange {
            label,
            path,
            after: before.clone(),
            before,
            text,
        })
    }

    fn changes(&self) -> bool {
        self.before != self.after
    }
}

/// Binary copy, state directory, block and rules, from the stored settings.
pub fn install(home: &Path, opts: &InstallOptions, out: &mut dyn Write) -> Result<()> {
    let plan = plan_install(home, opts, None, out)?;
    let configured = plan.configured;
    if opts.dry_run {
        plan.show(out)?;
        return Ok(());
    }
    let changed = plan.apply(opts.restart, opts.service, out)?;
    if !configured {
        writeln!(
            out,
            "{}",
            if changed {
                "integration binary installed"
            } else {
                "integration binary already up to date"
            }
        )?;
        writeln!(out, "not configured yet: run `sudo wazuh-misp setup` to connect MISP and register the integration")?;
    } else if !changed {
        writeln!(out, "already installed; nothing changed")?;
    }
    Ok(())
}

/// Every change `install` would make, computed under the lock (held until the plan is applied or
/// dropped). `new_settings` is a settings file `setup` wants written in the same transaction.
pub fn plan_install(
    home: &Path,
    opts: &InstallOptions,
    new_settings: Option<Vec<u8>>,
    out: &mut dyn Write,
) -> Result<Plan> {
    let manager = precheck(home, opts.dry_run)?;
    let lock = lock(&manager, opts.dry_run)?;
    let mut plan: Vec<FileChange> = Vec::new();

    let source =
        super::home::current_executable().context("cannot find this program's own executable")?;
    let target = home.join(INTEGRATION_PATH);
    if std::fs::symlink_metadata(&target).is_ok_and(|m| m.file_type().is_symlink()) {
        bail!(
            "{} is a symbolic link; refusing to write through it (remove it first)",
            target.display()
        );
    }
    let mut binary = FileChange::read("integration binary", target.clone(), false)?;
    if source != target {
        let bytes =
            std::fs::read(&source).with_context(|| format!("cannot read {}", source.display()))?;
        binary.after = Some((
            bytes,
            FileMeta {
                uid: 0,
                gid: manager.gid,
                mode: 0o750,
            },
        ));
    }
    plan.push(binary);

    let settings_path = home.join(SETTINGS_PATH);
    if !settings_path.exists() && new_settings.is_none() {
        return Ok(Plan {
            manager,
            changes: plan,
            configured: false,
            purge_state_dir: false,
            create_state_dir: true,
            native_removed: false,
            _lock: lock,
        });
    }

    let loaded = match &new_settings {
        Some(bytes) => Settings::from_bytes(bytes, &settings_path)?,
        None => Settings::load(home, &Default::default())
            .with_context(|| format!("{} cannot be used", settings_path.display()))?,
    };
    let mut choices = loaded.settings.install.clone();
    if let Some(base) = opts.rule_id_base {
        choices.rule_id_base = Some(base);
    }
    if let Some(sample) = opts.sample_rule {
        choices.sample_rule = sample;
    }

    let conf_path = home.join(OSSEC_CONF);
    let mut conf = FileChange::read("ossec.conf", conf_path.clone(), true)?;
    let original = conf.before.clone().context("ossec.conf vanished")?;
    let inspection = ossec_conf::inspect(&original.0)?;
    let no_filters =
        choices.level.is_none() && choices.groups.is_empty() && choices.rule_ids.is_empty();
    if no_filters {
        if let Some(legacy) = inspection.legacy.first() {
            writeln!(
                out,
                "taking over the filters of the existing hand-written custom-misp block: {}",
                describe(legacy)
            )?;
            choices.level = legacy.level;
            choices.groups = legacy.groups.clone();
            choices.rule_ids = legacy.rule_ids.clone();
        }
    }
    let base = choices.base();
    let mut filters = Filters {
        level: choices.level,
        groups: choices.groups.clone(),
        rule_ids: choices.rule_ids.clone(),
    };
    if choices.sample_rule && !filters.rule_ids.is_empty() {
        // The sample rule must pass the block's filters, whatever they are.
        let id = rules::sample_rule_id(base).to_string();
        if !filters.rule_ids.contains(&id) {
            filters.rule_ids.push(id);
        }
    }
    if filters == Filters::default() {
        writeln!(out, "note: no alert filter chosen, so every alert in alerts.json is looked up; `wazuh-misp setup` offers presets")?;
    }
    let native_on = native::wanted(home, &loaded.settings, &manager, base, out)?;
    let (filters, native_hits) = if native_on {
        let runtime = native::runtime_filters(&filters, out)?;
        if !filters.groups.is_empty() && runtime.groups.is_empty() {
            // Every chosen group is matched natively: one block, for our CDB rules' alerts.
            (native::hits_filters(), None)
        } else {
            (runtime, Some(native::hits_filters()))
        }
    } else {
        (filters, None)
    };
    let block = IntegrationBlock {
        filters: filters.clone(),
        native_hits,
        timeout: manager
            .version
            .is_none_or(|v| v.accepts_integration_timeout())
            .then_some(INTEGRATION_TIMEOUT_S),
        retries: None,
        schedule: loaded.settings.needs_schedule().then(|| Schedule {
            command: format!(
                "{} {}",
                home.join(INTEGRATION_PATH).display(),
                home::SCHEDULED_SYNC_ARG
            ),
            interval_s: loaded.settings.mirror.interval_s,
            // The sync checks its time limit between requests, one request may take its own
            // timeout, and the sightings flush (at most 120 s) follows: modulesd's timeout is
            // only the backstop behind all three.
            timeout_s: loaded.settings.mirror.time_limit_s
                + loaded.settings.mirror.request_timeout_s
                + 300,
        }),
    };
    let edit = ossec_conf::upsert(&original.0, &block)?;
    for notice in &edit.notices {
        writeln!(out, "note: {notice}")?;
    }
    if edit.outcome == Outcome::KeptHandEdited {
        writeln!(
            out,
            "warning: the managed block in ossec.conf was edited by hand; it was left as it is"
        )?;
    }
    let on = native_on.then_some((base, inspection.log_alert_level));
    let (conf_text, native_changes) = native::plan(home, &manager, on, &edit.text, out)?;
    let native_removed = on.is_none() && native_changes.iter().any(FileChange::changes);
    conf.after = Some((conf_text, original.1));
    plan.push(conf);
    plan.extend(native_changes);

    if manager.cluster == ClusterRole::Worker {
        writeln!(out, "cluster worker: the rules belong on the master (the cluster syncs etc/rules/ to workers); not installing them here")?;
    } else {
        if let Some(warning) = rules::base_warning(base) {
            writeln!(out, "note: {warning}")?;
        }
        rules::ensure_free(home, base)?;
        let spec = RulesSpec {
            base,
            sample: choices.sample_rule.then(|| SampleRule {
                level: filters.level.unwrap_or(3),
                groups: filters.groups.clone(),
            }),
        };
        let text = rules::render(&spec)?;
        let meta = FileMeta::of(&home.join("etc/rules/local_rules.xml")).unwrap_or(FileMeta {
            uid: 0,
            gid: manager.gid,
            mode: 0o660,
        });
        let mut rules_change = FileChange::read("rules", home.join(rules::RULES_FILE), true)?;
        rules_change.after = Some((text.into_bytes(), meta));
        plan.push(rules_change);
    }

    let mut settings_change = FileChange::read("settings", settings_path.clone(), true)?;
    // Always the safe owner and mode, whatever an earlier hand-made file had.
    let meta = FileMeta {
        uid: 0,
        gid: manager.gid,
        mode: 0o640,
    };
    let base_bytes =
        new_settings.or_else(|| settings_change.before.as_ref().map(|(b, _)| b.clone()));
    if let Some(bytes) = base_bytes {
        let text = if choices != loaded.settings.install {
            settings::with_install_choices(&bytes, &choices).context("settings file is not JSON")?
        } else {
            bytes
        };
        settings_change.after = Some((text, meta));
    }
    plan.push(settings_change);
    Ok(Plan {
        manager,
        changes: plan,
        configured: true,
        purge_state_dir: false,
        create_state_dir: true,
        native_removed,
        _lock: lock,
    })
}

/// Removes our block, rules and binary (and with `purge` the settings and state directory).
pub fn uninstall(home: &Path, opts: &UninstallOptions, out: &mut dyn Write) -> Result<()> {
    let manager = precheck(home, opts.dry_run)?;
    let lock = lock(&manager, opts.dry_run)?;
    let mut plan = Vec::new();
    let mut conf = FileChange::read("ossec.conf", home.join(OSSEC_CONF), true)?;
    let original = conf.before.clone().context("ossec.conf vanished")?;
    let edit = ossec_conf::remove(&original.0)?;
    for notice in &edit.notices {
        writeln!(out, "note: {notice}")?;
    }
    let block_kept = edit.outcome == Outcome::KeptHandEdited;
    // On the master this removes the rules and lists from every worker too (the cluster syncs
    // etc/); a worker only takes its own <list> lines out.
    let (conf_text, native_changes) = native::plan(home, &manager, None, &edit.text, out)?;
    let native_removed = native_changes.iter().any(FileChange::changes);
    conf.after = Some((conf_text, original.1));
    plan.push(conf);
    plan.extend(native_changes);
    if manager.cluster != ClusterRole::Worker {
        let mut r = FileChange::read("rules", home.join(rules::RULES_FILE), true)?;
        r.after = None;
        plan.push(r);
    }
    if block_kept {
        writeln!(out, "warning: the managed block was edited by hand and is kept, so the integration binary stays too (integratord would fail on every alert without it); remove the block by hand, then run uninstall again")?;
    } else {
        let mut b = FileChange::read("integration binary", home.join(INTEGRATION_PATH), false)?;
        b.after = None;
        plan.push(b);
    }
    if opts.purge {
        let mut s = FileChange::read("settings", home.join(SETTINGS_PATH), true)?;
        s.after = None;
        plan.push(s);
    }
    let plan = Plan {
        manager,
        changes: plan,
        configured: true,
        purge_state_dir: opts.purge,
        create_state_dir: false,
        native_removed,
        _lock: lock,
    };
    if opts.dry_run {
        return plan.show(out);
    }
    if !plan.apply(opts.restart, opts.service, out)? {
        writeln!(out, "nothing to remove")?;
    }
    Ok(())
}

fn precheck(home: &Path, dry_run: bool) -> Result<Manager> {
    if !dry_run && !nix::unistd::geteuid().is_root() {
        bail!("changing a Wazuh manager needs root: run it with sudo (or use --dry-run to see the changes)");
    }
    Ok(detect::detect(home)?)
}

fn lock(manager: &Manager, dry_run: bool) -> Result<Option<DirLock>> {
    if dry_run {
        return Ok(None);
    }
    let etc = manager.home.join("etc");
    let lock = DirLock::acquire(&etc, Duration::from_secs(30))
        .with_context(|| format!("cannot lock {}", etc.display()))?;
    for dir in ["etc", "etc/rules", "integrations"] {
        atomic::remove_stale_temps(&manager.home.join(dir))?;
    }
    Ok(Some(lock))
}

fn ensure_state_dir(dir: &Path, gid: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if !dir.is_dir() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::os::unix::fs::chown(dir, Some(0), Some(gid))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o770))?;
    Ok(())
}

fn describe(f: &Filters) -> String {
    let mut parts = Vec::new();
    if let Some(l) = f.level {
        parts.push(format!("level >= {l}"));
    }
    if !f.groups.is_empty() {
        parts.push(format!("groups {}", f.groups.join(",")));
    }
    if !f.rule_ids.is_empty() {
        parts.push(format!("rule ids {}", f.rule_ids.join(",")));
    }
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(" AND ")
    }
}

/// A computed set of file changes, holding the lock until applied or dropped.
pub struct Plan {
    manager: Manager,
    changes: Vec<FileChange>,
    /// A settings file exists (or is part of the plan).
    pub configured: bool,
    purge_state_dir: bool,
    create_state_dir: bool,
    /// The plan takes native matching's rules and lists away: analysisd must drop them too.
    native_removed: bool,
    _lock: Option<DirLock>,
}

impl Plan {
    /// True when applying would change at least one file.
    pub fn changes_anything(&self) -> bool {
        self.changes.iter().any(FileChange::changes)
            || (self.purge_state_dir && home::state_dir(&self.manager.home).exists())
    }

    /// A unified diff of every text file that would change (the API key masked), and a line
    /// for each binary file.
    pub fn show(&self, out: &mut dyn Write) -> Result<()> {
        let mut any = false;
        for c in self.changes.iter().filter(|c| c.changes()) {
            show_diff(c, out)?;
            any = true;
        }
        let state_dir = home::state_dir(&self.manager.home);
        if self.purge_state_dir && state_dir.exists() {
            writeln!(out, "would remove {}", state_dir.display())?;
            any = true;
        }
        if !any {
            writeln!(out, "dry run: nothing would change")?;
        }
        Ok(())
    }

    /// Applies the changes as one transaction. Returns whether anything changed.
    pub fn apply(
        self,
        restart: bool,
        service_manager: ServiceManager,
        out: &mut dyn Write,
    ) -> Result<bool> {
        let manager = &self.manager;
        let state_dir = home::state_dir(&manager.home);
        let changed = apply(manager, &self.changes, restart, service_manager, out)?;
        if self.native_removed && changed {
            let _ = std::fs::remove_dir(manager.home.join(home::LISTS_DIR));
            // A restart already dropped them; without one, analysisd would keep rules whose
            // `.cdb` is gone and log an error at every lookup.
            if !restart {
                native::reload_after_removal(&manager.home, out)?;
            }
        }
        if self.purge_state_dir {
            if state_dir.exists() {
                std::fs::remove_dir_all(&state_dir)
                    .with_context(|| format!("cannot remove {}", state_dir.display()))?;
                writeln!(out, "removed {}", state_dir.display())?;
                return Ok(true);
            }
        } else if self.create_state_dir {
            ensure_state_dir(&state_dir, manager.gid)?;
        }
        Ok(changed)
    }
}

/// Shows or applies the plan. Returns whether anything changed.
fn apply(
    manager: &Manager,
    plan: &[FileChange],
    restart: bool,
    service_manager: ServiceManager,
    out: &mut dyn Write,
) -> Result<bool> {
    let changes: Vec<&FileChange> = plan.iter().filter(|c| c.changes()).collect();
    if changes.is_empty() {
        return Ok(false);
    }
    let home = &manager.home;
    let before = service::check_config(home).context("running Wazuh's configuration checks")?;
    if !before.failures.is_empty() {
        writeln!(
            out,
            "note: Wazuh's checks already fail before any change: {}",
            before.failures.join("; ")
        )?;
    }
    if let Some(conf) = changes.iter().find(|c| c.label == "ossec.conf") {
        let b = atomic::backup(&conf.path, BACKUPS_KEPT)
            .with_context(|| format!("cannot back up {}", conf.path.display()))?;
        writeln!(out, "backup of ossec.conf: {}", b.display())?;
    }
    let mut applied: Vec<&FileChange> = Vec::new();
    for c in changes.iter().copied() {
        if c.label == native::LIST_LABEL && c.after.is_some() {
            if let Some(dir) = c.path.parent() {
                if let Err(e) = native::ensure_lists_dir(dir, manager.gid) {
                    rollback(&applied, out);
                    return Err(e).with_context(|| {
                        format!(
                            "cannot create {}; every change was rolled back",
                            dir.display()
                        )
                    });
                }
            }
        }
        if let Err(e) = write_change(&c.path, c.after.as_ref()) {
            rollback(&applied, out);
            return Err(e).with_context(|| {
                format!(
                    "cannot write {}; every change was rolled back",
                    c.path.display()
                )
            });
        }
        applied.push(c);
    }
    let after = match service::check_config(home) {
        Ok(report) => report,
        Err(e) => {
            rollback(&applied, out);
            return Err(e).context(
                "running Wazuh's configuration checks failed, so every file was restored",
            );
        }
    };
    let problems = after.new_problems(&before);
    if !problems.is_empty() {
        rollback(&applied, out);
        bail!(
            "Wazuh's own checks reject the change, so every file was restored:\n  {}",
            problems.join("\n  ")
        );
    }
    for c in &changes {
        let verb = match (&c.before, &c.after) {
            (None, Some(_)) => "created",
            (Some(_), None) => "removed",
            _ => "updated",
        };
        writeln!(out, "{verb} {} ({})", c.path.display(), c.label)?;
    }
    if !after.ran.is_empty() {
        writeln!(
            out,
            "checked by {}: no new problem",
            after.ran.join(" -t, ") + " -t"
        )?;
    }
    if restart {
        match service::restart(home, service_manager) {
            Ok(Restart::NotRunning) => writeln!(
                out,
                "the manager is not running; the change applies when it starts"
            )?,
            Ok(how) => writeln!(
                out,
                "manager restarted ({})",
                match how {
                    Restart::SystemdReload => "systemctl reload wazuh-manager",
                    _ => "wazuh-control restart",
                }
            )?,
            Err(message) => {
                rollback(&applied, out);
                // The failed restart may have left the daemons stopped: start them again with
                // the previous files whatever `status` says now.
                let again = service::restart_forced(home, service_manager);
                bail!(
                    "the restart failed, so every file was restored{}:\n  {message}",
                    match again {
                        Ok(_) => " and the manager restarted with the previous configuration",
                        Err(_) => "; restarting with the previous configuration failed too, check `wazuh-control status`",
                    }
                );
            }
        }
    } else {
        writeln!(
            out,
            "restart the manager to apply: `sudo systemctl reload wazuh-manager` (or `sudo {} restart`)",
            home.join("bin/wazuh-control").display()
        )?;
    }
    Ok(true)
}

fn write_change(path: &Path, after: Option<&(Vec<u8>, FileMeta)>) -> std::io::Result<()> {
    match after {
        Some((bytes, meta)) => atomic::write_atomic(path, bytes, *meta),
        None => atomic::remove_durable(path).map(|_| ()),
    }
}

fn rollback(applied: &[&FileChange], out: &mut dyn Write) {
    for c in applied.iter().rev() {
        if let Err(e) = write_change(&c.path, c.before.as_ref()) {
            let _ = writeln!(out, "error: could not restore {}: {e}", c.path.display());
        }
        // `-t` compiled the list we created: its .cdb goes with it.
        if c.label == native::LIST_LABEL && c.before.is_none() {
            let _ = atomic::remove_durable(&crate::lists::cdb::cdb_path(&c.path));
        }
    }
}

fn show_diff(c: &FileChange, out: &mut dyn Write) -> Result<()> {
    let path = c.path.display().to_string();
    if !c.text {
        let what = match (&c.before, &c.after) {
            (None, Some((b, m))) => format!(
                "would create {path} ({} bytes, mode {:04o})",
                b.len(),
                m.mode
            ),
            (Some(_), None) => format!("would remove {path}"),
            (_, Some((b, m))) => format!(
                "would replace {path} ({} bytes, mode {:04o})",
                b.len(),
                m.mode
            ),
            (None, None) => return Ok(()),
        };
        writeln!(out, "{what}")?;
        return Ok(());
    }
    let show = |side: &Option<(Vec<u8>, FileMeta)>| {
        side.as_ref()
            .map(|(b, _)| redact_key(&String::from_utf8_lossy(b)))
            .unwrap_or_default()
    };
    let (old, new) = (show(&c.before), show(&c.after));
    let diff = similar::TextDiff::from_lines(&old, &new);
    let from = if c.before.is_some() {
        format!("a{path}")
    } else {
        "/dev/null".into()
    };
    let to = if c.after.is_some() {
        format!("b{path}")
    } else {
        "/dev/null".into()
    };
    write!(
        out,
        "{}",
        diff.unified_diff().context_radius(3).header(&from, &to)
    )?;
    Ok(())
}

/// Diffs of the settings file must not print the API key.
fn redact_key(text: &str) -> String {
    text.lines()
        .map(|line| {
            // An old hand-written block may carry `<api_key>…</api_key>` in ossec.conf.
            match (line.find("<api_key>"), line.find("</api_key>")) {
                (Some(a), Some(b)) if b > a => {
                    return format!("{}<api_key>****{}", &line[..a], &line[b..]);
                }
                (Some(a), None) => return format!("{}<api_key>****", &line[..a]),
                _ => {}
            }
            line.to_string()
        })
        .map(|line| match line.find("\"api_key\"") {
            Some(at) => format!(
                "{}\"api_key\": \"****\"{}",
                &line[..at],
                if line.trim_end().ends_with(',') {
                    ","
                } else {
                    ""
                }
            ),
            None => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + if text.ends_with('\n') { "\n" } else { "" }
}
