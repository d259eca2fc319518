//! Puts the mirror's indicators in force as CDB lists, as one transaction, after each sync that
//! may have changed them. Rules and the `<list>` lines are `install`'s (they change with the
//! settings); the list contents are ours (they change with MISP).
//!
//! The order, and why (facts in `docs/research/native-matching.md` §3-§4):
//! 1. Nothing changes, nothing happens: an unchanged list is not even touched, because a reload
//!    drops events in flight and empties every correlation counter.
//! 2. A change within `native.min_reload_interval_s` of the last reload waits, touching nothing,
//!    for the first sync after the interval (`pending_since` in the status).
//! 3. Under the `etc` lock: `wazuh-analysisd -t` as a baseline, the previous text and `.cdb` of
//!    each changed list kept (the text in memory, the `.cdb` held open: analysisd compiles a new
//!    one beside it and renames it over, so the open inode keeps the old bytes; no copy lands in
//!    `etc/lists/`, which the cluster syncs to the workers, nor in the wazuh-writable state
//!    directory), the new texts written atomically and dated after their `.cdb`, and `-t` again:
//!    a new finding restores the previous files, `.cdb` included, owner and date too (`-t`
//!    compiles, as user wazuh). A finding that names our lists or rules file is a problem even
//!    when the baseline had it: it means the lists match nothing.
//! 4. One hot reload (4.13+). A refused ruleset (the old one stays active) or warnings that
//!    `-t` did not print before our change restore the previous files; after warnings the old
//!    files are reloaded too. Before 4.13 the lists apply at the next restart, or at once with
//!    `native.restart_without_reload` through the safe restart. With analysisd not running they
//!    apply when it starts: `-t` already judged them.
//! 5. Lists on disk that were never put in force (a run killed before its reload, a restore that
//!    failed) are judged and reloaded by the next run: the status records the digest of the
//!    lists in force, not of the files.

use super::findings::{new_warnings, ours, rule_base};
use super::refusal::refusal_key;
use super::status::NativeStatus;
use crate::ioc::IocKind;
use crate::lists::{self, cdb};
use crate::mirror::Mirror;
use crate::settings::Loaded;
use crate::wazuh::atomic::{self, DirLock, FileMeta};
use crate::wazuh::detect::{Manager, OSSEC_CONF};
use crate::wazuh::ossec_conf::{lists::declared_lists, ClusterRole};
use crate::wazuh::reload::{self, Reload, ReloadError};
use crate::wazuh::service::{self, ServiceManager};
use crate::wazuh::{home, native_rules};
use std::collections::BTreeSet;
use std::fs::File;
use std::hash::Hasher;
use std::io::{self, Read, Seek};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
/// A reload of a 1,000,000-key list took 0.68 s on a real 4.14.7; this is the backstop.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(60);

/// What a call did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Native matching is off (or this node writes no lists): nothing to do.
    Off,
    /// The lists on disk are the mirror's already.
    Unchanged,
    /// These lists were refused against this configuration already (`native.status` says why):
    /// not tried again until either changes.
    StillRefused,
    /// A change waits for the reload interval, until this time.
    Deferred { until: u64 },
    /// analysisd reloaded with the new lists.
    Reloaded { lists: Vec<String> },
    /// Wazuh before 4.13: the new lists are on disk and apply at the next restart.
    AtRestart { lists: Vec<String> },
    /// Wazuh before 4.13, `restart_without_reload`: the manager restarted with them.
    Restarted { lists: Vec<String> },
    /// analysisd is not running: it loads the new lists when it starts.
    AtStart { lists: Vec<String> },
    /// analysisd holds as much as `native.max_held_mb`/`max_reloads_per_start` allow of what
    /// hot reloads leave it (it never releases opened lists): the new lists are on disk and
    /// apply at its next start.
    Held { lists: Vec<String> },
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("native matching is on but not installed here ({0}): run `sudo wazuh-misp install`")]
    NotInstalled(String),
    #[error("there is no mirror to list yet: the first sync that completes writes the lists")]
    NoMirror,
    #[error("wazuh-analysisd -t did not finish ({0}), so the previous lists were restored; the next sync tries again")]
    CheckUnfinished(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("wazuh-analysisd -t finds a new problem with the new lists, so the previous lists were restored: {}", .0.join("; "))]
    Rejected(Vec<String>),
    #[error("analysisd refused the new ruleset and keeps the previous one; the previous lists were restored: {}", .0.join("; "))]
    ReloadFailed(Vec<String>),
    #[error("the reload brought warnings `-t` did not print before, so the previous lists were restored and reloaded: {}", .0.join("; "))]
    NewWarnings(Vec<String>),
    #[error("analysisd's answer to the reload could not be read ({0}); the previous lists stay in force")]
    Protocol(String),
    #[error("the restart failed, so the previous lists were restored: {0}")]
    Restart(String),
    #[error("{cause}; BUT the previous lists could not all be restored ({}): the next sync judges and reloads what is on disk", .failures.join("; "))]
    NotRestored {
        cause: Box<ApplyError>,
        failures: Vec<String>,
    },
    #[error("analysisd refused the ruleset with the lists the master delivered and keeps its previous one: {}", .0.join("; "))]
    DeliveredRefused(Vec<String>),
    #[error("analysisd reloaded the lists the master delivered but warns about native matching's lists or rules, which then match nothing here (run `wazuh-misp doctor`): {}", .0.join("; "))]
    DeliveredWarned(Vec<String>),
}

impl ApplyError {
    /// analysisd or our `-t` judged the lists and said no: trying the same lists against the
    /// same configuration again would only reload for the same answer. (A failure to talk to
    /// analysisd, to write or to restart is worth another try.)
    fn is_verdict(&self) -> bool {
        match self {
            ApplyError::Rejected(_)
            | ApplyError::ReloadFailed(_)
            | ApplyError::NewWarnings(_)
            | ApplyError::DeliveredRefused(_)
            | ApplyError::DeliveredWarned(_) => true,
            // The refused lists may still be on disk: the next sync must judge them again.
            _ => false,
        }
    }

    /// The status file's word for it.
    pub fn kind(&self) -> &'static str {
        match self {
            ApplyError::NotInstalled(_) => "not_installed",
            ApplyError::NoMirror => "no_mirror",
            ApplyError::CheckUnfinished(_) => "check_unfinished",
            ApplyError::Io { .. } => "local",
            ApplyError::Rejected(_) => "rejected",
            ApplyError::ReloadFailed(_) => "failed",
            ApplyError::NewWarnings(_) => "new_warnings",
            ApplyError::Protocol(_) => "protocol",
            ApplyError::Restart(_) => "restart_failed",
            ApplyError::DeliveredRefused(_) => "failed",
            ApplyError::DeliveredWarned(_) => "new_warnings",
            ApplyError::NotRestored { .. } => "not_restored",
        }
    }
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> ApplyError {
    let what = what.into();
    move |source| ApplyError::Io { what, source }
}

/// One list as it should be.
struct Desired {
    kind: IocKind,
    /// Relative to the home, as `<list>` declares it.
    rel: String,
    path: PathBuf,
    text: Vec<u8>,
    keys: u64,
    /// Keys a list line cannot hold (left to the runtime, which matches them from the mirror).
    refused: u64,
}

/// A changed list's previous state, to restore it exactly.
struct Previous {
    path: PathBuf,
    text: Option<(Vec<u8>, FileMeta, SystemTime)>,
    /// The previous `.cdb`, held open (analysisd renames a new one over the name,
    /// `Lists_OP_MakeCDB` in `src/analysisd/lists_make.c`, so this inode keeps the old bytes).
    cdb: Option<(File, FileMeta, SystemTime)>,
}

/// Writes the lists the mirror implies and puts them in force (on a cluster worker: puts the
/// lists the master delivered in force; no mirror needed). `now` is the Unix time.
pub fn apply(
    manager: &Manager,
    loaded: &Loaded,
    mirror: Option<&Mirror>,
    now: u64,
) -> Result<Applied, ApplyError> {
    let native = &loaded.settings.native;
    if !native.enabled {
        return Ok(Applied::Off);
    }
    if manager.cluster == ClusterRole::Worker {
        return apply_delivered(manager, loaded, now);
    }
    let mirror = mirror.ok_or(ApplyError::NoMirror)?;
    let home = &manager.home;
    let state_dir = home::state_dir(home);
    check_installed(home)?;
    let mut status = NativeStatus::read(&state_dir);
    let built_from = source_stamp(home, &state_dir);
    if status.pending_since == 0 && !built_from.is_empty() && status.built_from == built_from {
        return Ok(Applied::Unchanged);
    }
    let desired = desired_lists(home, loaded, mirror);
    let desired_digest = digest(desired.iter().map(|d| &d.text[..]));
    let key = refusal_key(home, &desired_digest);
    if status.refused_key == key {
        return still_refused(&mut status, &state_dir);
    }
    let changed: Vec<&Desired> = desired
        .iter()
        .filter(|d| std::fs::read(&d.path).ok().as_deref() != Some(&d.text[..]))
        .collect();
    // On disk already, but never put in force (empty lists are what install put in force, and
    // an analysisd started after the lists were written has loaded them).
    let unapplied = changed.is_empty()
        && status.lists_digest != desired_digest
        && !(status.lists_digest.is_empty() && desired.iter().all(|d| d.text.is_empty()));
    let paths: Vec<PathBuf> = desired.iter().map(|d| d.path.clone()).collect();
    if unapplied && started_after(home, &status, &paths) {
        record_in_force(&mut status, &desired, desired_digest, now);
        status.pending_since = 0;
        status.built_from = built_from;
        status.last_result = "at_start".into();
        status.last_message = Some("analysisd loaded the lists when it started".into());
        write_status(&status, &state_dir)?;
        return Ok(Applied::Unchanged);
    }
    if changed.is_empty() && !unapplied {
        if status.pending_since != 0 || status.built_from != built_from {
            status.pending_since = 0;
            status.built_from = built_from;
            write_status(&status, &state_dir)?;
        }
        return Ok(Applied::Unchanged);
    }
    let until = status
        .last_reload_at
        .saturating_add(native.min_reload_interval_s);
    if status.last_reload_at != 0 && now < until {
        if status.pending_since == 0 {
            status.pending_since = now;
            write_status(&status, &state_dir)?;
        }
        return Ok(Applied::Deferred { until });
    }
    // What analysisd keeps mapped once it reloads: the `.cdb` files this change replaces (or,
    // for lists already on disk, the ones it may still hold). Judged before anything is
    // written, so a held change costs no `-t`.
    let replacing: Vec<&Path> = if changed.is_empty() {
        paths.iter().map(PathBuf::as_path).collect()
    } else {
        changed.iter().map(|d| d.path.as_path()).collect()
    };
    let replaced = cdb_bytes(&replacing);
    let over_budget = !within_budget(home, &mut status, native, replaced);
    if over_budget && !native.restart_without_reload {
        return finish(
            &mut status,
            &state_dir,
            now,
            Ok(Applied::Held {
                lists: replacing.iter().map(|p| rel_of(home, p)).collect(),
            }),
            false,
            &key,
        );
    }

    let etc = home.join("etc");
    let _lock = DirLock::acquire(&etc, Duration::from_secs(30))
        .map_err(io_err(format!("cannot lock {}", etc.display())))?;
    // Again under the lock: an install may have turned native matching off meanwhile.
    check_installed(home)?;
    let lists_dir = home.join(home::LISTS_DIR);
    atomic::remove_stale_temps(&lists_dir).map_err(io_err("cannot tidy the lists folder"))?;
    let baseline =
        service::check_analysisd(home).map_err(io_err("cannot run wazuh-analysisd -t"))?;
    let previous = keep_previous(&changed)?;
    let names: Vec<String> = if unapplied {
        desired.iter().map(|d| d.rel.clone()).collect()
    } else {
        changed.iter().map(|d| d.rel.clone()).collect()
    };
    let meta = list_meta(manager);

    let mut outcome = write_all(&changed, meta);
    if outcome.is_ok() {
        outcome = match service::check_analysisd(home) {
            Ok(after) if !after.unfinished.is_empty() => {
                Err(ApplyError::CheckUnfinished(after.failures.join("; ")))
            }
            Ok(after) => {
                let mut p = after.new_problems(&baseline);
                let known: Vec<String> = ours(rule_base(loaded), after.findings.iter())
                    .filter(|f| !p.contains(f))
                    .cloned()
                    .collect();
                p.extend(known);
                if p.is_empty() {
                    Ok(())
                } else {
                    Err(ApplyError::Rejected(p))
                }
            }
            Err(e) => Err(io_err("cannot run wazuh-analysisd -t")(e)),
        };
    }
    if let Err(e) = outcome {
        let e = restored(&previous, e);
        return finish(&mut status, &state_dir, now, Err(e), false, &key);
    }

    let reload = if over_budget {
        // A restart releases everything (restart_without_reload): the way before 4.13.
        Ok(Reload::Unsupported)
    } else {
        let r = reload::reload_ruleset(home, RELOAD_TIMEOUT);
        count_reload(&mut status, &r, replaced);
        r
    };
    let result = match reload {
        Ok(Reload::Done { warnings }) => {
            let new = new_warnings(rule_base(loaded), &warnings, &baseline);
            if new.is_empty() {
                Ok(Applied::Reloaded { lists: names })
            } else {
                let e = restored(&previous, ApplyError::NewWarnings(new));
                let again = reload::reload_ruleset(home, RELOAD_TIMEOUT);
                count_reload(&mut status, &again, replaced);
                Err(e)
            }
        }
        Ok(Reload::Failed { messages }) => {
            // The old ruleset stays active; it opens a list lazily, so the previous .cdb must
            // be back in place for lists it has not opened yet.
            Err(restored(&previous, ApplyError::ReloadFailed(messages)))
        }
        Ok(Reload::Unsupported) if native.restart_without_reload => {
            match service::restart(home, ServiceManager::Auto) {
                Ok(service::Restart::NotRunning) => Ok(Applied::AtStart { lists: names }),
                Ok(_) => {
                    (status.held_bytes, status.held_reloads) = (0, 0);
                    Ok(Applied::Restarted { lists: names })
                }
                Err(message) => {
                    let e = restored(&previous, ApplyError::Restart(message));
                    let _ = service::restart_forced(home, ServiceManager::Auto);
                    Err(e)
                }
            }
        }
        Ok(Reload::Unsupported) => Ok(Applied::AtRestart { lists: names }),
        Err(ReloadError::Connect { .. }) => Ok(Applied::AtStart { lists: names }),
        Err(ReloadError::Protocol(message)) => {
            let e = restored(&previous, ApplyError::Protocol(message));
            let again = reload::reload_ruleset(home, RELOAD_TIMEOUT);
            count_reload(&mut status, &again, replaced);
            Err(e)
        }
    };
    if result.is_ok() {
        record_in_force(&mut status, &desired, desired_digest, now);
        status.built_from = source_stamp(home, &state_dir);
    }
    let reached = !matches!(result, Ok(Applied::AtStart { .. }));
    finish(&mut status, &state_dir, now, result, reached, &key)
}

/// A cluster worker: the lists and rules are the master's, copied by the cluster's integrity
/// sync, which never asks analysisd to reload. When the delivered lists differ from the ones
/// last put in force here, one local hot reload (same interval rule). Nothing can be rolled back
/// (the cluster would copy the master's files again); a refused reload leaves the previous
/// ruleset active, and is tried again when the master delivers other lists or this node's
/// configuration changes.
fn apply_delivered(manager: &Manager, loaded: &Loaded, now: u64) -> Result<Applied, ApplyError> {
    let home = &manager.home;
    let state_dir = home::state_dir(home);
    check_installed(home)?;
    let mut texts = Vec::new();
    let mut keys = std::collections::BTreeMap::new();
    for kind in native_rules::lists_used() {
        let rel = native_rules::list_path(kind);
        let text = std::fs::read(home.join(&rel)).map_err(|e| {
            ApplyError::NotInstalled(format!("the master's {rel} has not arrived ({e})"))
        })?;
        keys.insert(
            lists::list_name(kind),
            text.iter().filter(|&&b| b == b'\n').count() as u64,
        );
        texts.push(text);
    }
    let delivered = digest(texts.iter().map(Vec::as_slice));
    let mut status = NativeStatus::read(&state_dir);
    let key = refusal_key(home, &delivered);
    if status.refused_key == key {
        return still_refused(&mut status, &state_dir);
    }
    if delivered == status.lists_digest {
        if status.pending_since != 0 {
            status.pending_since = 0;
            write_status(&status, &state_dir)?;
        }
        return Ok(Applied::Unchanged);
    }
    let until = status
        .last_reload_at
        .saturating_add(loaded.settings.native.min_reload_interval_s);
    if status.last_reload_at != 0 && now < until {
        if status.pending_since == 0 {
            status.pending_since = now;
            write_status(&status, &state_dir)?;
        }
        return Ok(Applied::Deferred { until });
    }
    let names: Vec<String> = native_rules::lists_used()
        .into_iter()
        .map(native_rules::list_path)
        .collect();
    let paths: Vec<PathBuf> = native_rules::lists_used()
        .into_iter()
        .map(|k| home.join(native_rules::list_path(k)))
        .collect();
    if started_after(home, &status, &paths) {
        // Restarted since the cluster delivered them: loaded at its start.
        status.lists_digest = delivered;
        status.keys = keys;
        status.lists_written_at = now;
        status.pending_since = 0;
        status.last_result = "at_start".into();
        status.last_message = Some("analysisd loaded the delivered lists when it started".into());
        write_status(&status, &state_dir)?;
        return Ok(Applied::Unchanged);
    }
    // The cluster renamed new files over the old ones: about their size stays held.
    let replaced = cdb_bytes(&paths.iter().map(PathBuf::as_path).collect::<Vec<_>>());
    if !within_budget(home, &mut status, &loaded.settings.native, replaced) {
        return finish(
            &mut status,
            &state_dir,
            now,
            Ok(Applied::Held { lists: names }),
            false,
            &key,
        );
    }
    let reload = reload::reload_ruleset(home, RELOAD_TIMEOUT);
    count_reload(&mut status, &reload, replaced);
    let result = match reload {
        // A worker has no baseline of its own to compare with (the master judged the files),
        // but a warning naming our lists or rules means they match nothing here.
        Ok(Reload::Done { warnings }) => match ours(rule_base(loaded), warnings.iter())
            .cloned()
            .collect::<Vec<_>>()
        {
            w if w.is_empty() => Ok(Applied::Reloaded { lists: names }),
            w => Err(ApplyError::DeliveredWarned(w)),
        },
        Ok(Reload::Failed { messages }) => Err(ApplyError::DeliveredRefused(messages)),
        Ok(Reload::Unsupported) => Ok(Applied::AtRestart { lists: names }),
        Err(ReloadError::Connect { .. }) => Ok(Applied::AtStart { lists: names }),
        Err(ReloadError::Protocol(message)) => Err(ApplyError::Protocol(message)),
    };
    if result.is_ok() {
        status.lists_digest = delivered;
        status.keys = keys;
        status.lists_written_at = now;
    }
    let reached = !matches!(result, Ok(Applied::AtStart { .. }));
    finish(&mut status, &state_dir, now, result, reached, &key)
}

/// The mirror file's identity (inode, size, mtime) and each list file's: what the lists in force
/// were built from, and what they are (an install that recreates them changes it). Empty when
/// there is no mirror.
fn source_stamp(home: &Path, state_dir: &Path) -> String {
    let identity = |p: &Path| {
        std::fs::symlink_metadata(p).map_or_else(
            |_| "-".to_string(),
            |m| format!("{}:{}:{}.{}", m.ino(), m.size(), m.mtime(), m.mtime_nsec()),
        )
    };
    let mirror = state_dir.join(crate::mirror::MIRROR_FILE);
    if !mirror.is_file() {
        return String::new();
    }
    let mut out = identity(&mirror);
    for rel in native_rules::lists_used()
        .into_iter()
        .map(native_rules::list_path)
    {
        out.push_str(&format!(" {rel}={}", identity(&home.join(&rel))));
    }
    out
}

/// Our lists must be declared in ossec.conf and our rules installed, or the lists match nothing.
fn check_installed(home: &Path) -> Result<(), ApplyError> {
    let conf = std::fs::read(home.join(OSSEC_CONF)).map_err(io_err(format!(
        "cannot read {}",
        home.join(OSSEC_CONF).display()
    )))?;
    let declared: BTreeSet<String> = declared_lists(&conf)
        .unwrap_or_default()
        .into_iter()
        .collect();
    if let Some(missing) = native_rules::lists_used()
        .into_iter()
        .map(native_rules::list_path)
        .find(|p| !declared.contains(p))
    {
        return Err(ApplyError::NotInstalled(format!(
            "ossec.conf does not declare {missing} in its effective <ruleset> (the last one with <list> lines)"
        )));
    }
    if !home.join(native_rules::NATIVE_RULES_FILE).is_file() {
        return Err(ApplyError::NotInstalled(format!(
            "{} is missing",
            native_rules::NATIVE_RULES_FILE
        )));
    }
    Ok(())
}

fn desired_lists(home: &Path, loaded: &Loaded, mirror: &Mirror) -> Vec<Desired> {
    let mut by_kind = lists::keys_by_kind(mirror, loaded);
    native_rules::lists_used()
        .into_iter()
        .map(|kind| {
            let keys = by_kind.remove(&kind).unwrap_or_default();
            let (text, refused) = cdb::render(&keys, lists::LIST_VALUE);
            let rel = native_rules::list_path(kind);
            Desired {
                kind,
                path: home.join(&rel),
                rel,
                text,
                keys: (keys.len() - refused.len()) as u64,
                refused: refused.len() as u64,
            }
        })
        .collect()
}

/// List files belong to the Wazuh user: analysisd compiles them as that user.
fn list_meta(manager: &Manager) -> FileMeta {
    FileMeta {
        uid: manager.user_uid(),
        gid: manager.gid,
        mode: 0o660,
    }
}

fn keep_previous(changed: &[&Desired]) -> Result<Vec<Previous>, ApplyError> {
    let mut kept = Vec::new();
    for d in changed {
        let text = match std::fs::read(&d.path) {
            Ok(bytes) => {
                let meta = FileMeta::of(&d.path)
                    .map_err(io_err(format!("cannot read {}", d.path.display())))?;
                let mtime = std::fs::symlink_metadata(&d.path)
                    .and_then(|m| m.modified())
                    .map_err(io_err(format!("cannot read {}", d.path.display())))?;
                Some((bytes, meta, mtime))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err(format!("cannot read {}", d.path.display()))(e)),
        };
        let compiled = cdb::cdb_path(&d.path);
        let cdb = match File::options()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&compiled)
        {
            Ok(file) => {
                let m = file
                    .metadata()
                    .map_err(io_err(format!("cannot read {}", compiled.display())))?;
                let meta = FileMeta {
                    uid: m.uid(),
                    gid: m.gid(),
                    mode: m.mode() & 0o7777,
                };
                let mtime = m
                    .modified()
                    .map_err(io_err(format!("cannot read {}", compiled.display())))?;
                Some((file, meta, mtime))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err(format!("cannot keep {}", compiled.display()))(e)),
        };
        kept.push(Previous {
            path: d.path.clone(),
            text,
            cdb,
        });
    }
    Ok(kept)
}

fn write_all(changed: &[&Desired], default_meta: FileMeta) -> Result<(), ApplyError> {
    for d in changed {
        let meta = FileMeta::of(&d.path).unwrap_or(default_meta);
        cdb::write_list(&d.path, &d.text, meta)
            .map_err(io_err(format!("cannot write {}", d.path.display())))?;
    }
    Ok(())
}

/// `cause`, after putting the previous files back; a restore that failed is said, never hidden.
fn restored(previous: &[Previous], cause: ApplyError) -> ApplyError {
    match restore(previous) {
        failures if failures.is_empty() => cause,
        failures => ApplyError::NotRestored {
            cause: Box::new(cause),
            failures,
        },
    }
}

/// Puts every kept text and `.cdb` back as it was (owner, mode and mtime included, so the old
/// `.cdb` is readable by analysisd and not stale), and removes the `.cdb` our `-t` compiled where
/// there was none. Returns what could not be restored.
fn restore(previous: &[Previous]) -> Vec<String> {
    let mut failures = Vec::new();
    for p in previous {
        let compiled = cdb::cdb_path(&p.path);
        let text = match &p.text {
            Some((bytes, meta, mtime)) => {
                atomic::write_atomic_at(&p.path, bytes, *meta, Some(*mtime))
            }
            None => atomic::remove_durable(&p.path).map(|_| ()),
        };
        if let Err(e) = text {
            failures.push(format!("{}: {e}", p.path.display()));
        }
        let cdb = match &p.cdb {
            Some((file, meta, mtime)) => {
                let mut bytes = Vec::new();
                let mut file = file;
                file.rewind()
                    .and_then(|_| file.read_to_end(&mut bytes))
                    .and_then(|_| atomic::write_atomic_at(&compiled, &bytes, *meta, Some(*mtime)))
            }
            None => atomic::remove_durable(&compiled).map(|_| ()),
        };
        if let Err(e) = cdb {
            failures.push(format!("{}: {e}", compiled.display()));
        }
    }
    failures
}

/// A digest of the lists in force (not a security boundary: it tells "the same lists" apart).
pub fn digest<'a>(texts: impl Iterator<Item = &'a [u8]>) -> String {
    let mut h = siphasher::sip128::SipHasher13::new();
    for t in texts {
        h.write_u64(t.len() as u64);
        h.write(t);
    }
    format!(
        "{:032x}",
        siphasher::sip128::Hasher128::finish128(&h).as_u128()
    )
}

fn write_status(status: &NativeStatus, dir: &Path) -> Result<(), ApplyError> {
    status
        .write(dir)
        .map_err(io_err("cannot record native matching's status"))
}

/// These lists are the ones in force now.
fn record_in_force(status: &mut NativeStatus, desired: &[Desired], digest: String, now: u64) {
    status.keys = desired
        .iter()
        .map(|d| (lists::list_name(d.kind), d.keys))
        .collect();
    status.refused = desired.iter().map(|d| d.refused).sum();
    status.lists_digest = digest;
    status.lists_written_at = now;
}

/// The running analysisd: its pid and its pid file's date (written at its start, `CreatePID`,
/// before it loads any list), or `None` without a pid file to tell.
fn analysisd(home: &Path) -> Option<(u32, SystemTime)> {
    match crate::wazuh::daemon::status(home, "wazuh-analysisd") {
        crate::wazuh::daemon::Daemon::Running { pid, since } => Some((pid, since)),
        _ => None,
    }
}

fn whole_secs(t: SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Whether an analysisd other than the one last counted started after every list was last
/// written: then it loaded them. (Another one: a clock stepped back must not make lists written
/// after the start look older than it.)
fn started_after(home: &Path, status: &NativeStatus, lists: &[PathBuf]) -> bool {
    let Some((pid, since)) = analysisd(home) else {
        return false;
    };
    if (pid, whole_secs(since)) == (status.held_pid, status.held_since) {
        return false;
    }
    lists.iter().all(|p| {
        std::fs::symlink_metadata(p)
            .and_then(|m| m.modified())
            .is_ok_and(|written| written < since)
    })
}

/// The sizes of these lists' `.cdb` files.
fn cdb_bytes(lists: &[&Path]) -> u64 {
    lists
        .iter()
        .filter_map(|p| std::fs::symlink_metadata(cdb::cdb_path(p)).ok())
        .map(|m| m.len())
        .sum()
}

/// A list's path relative to the home, as `<list>` declares it.
fn rel_of(home: &Path, path: &Path) -> String {
    path.strip_prefix(home)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// Whether one more hot reload, leaving analysisd `adding` more bytes of replaced lists, stays
/// within `native.max_held_mb` and `max_reloads_per_start`. The counts start again for a new
/// analysisd (another pid); without a pid file to tell which analysisd runs (not running, or
/// no `var/run`), nothing is counted against it.
fn within_budget(
    home: &Path,
    status: &mut NativeStatus,
    native: &crate::settings::NativeSettings,
    adding: u64,
) -> bool {
    let Some((pid, since)) = analysisd(home) else {
        return true;
    };
    let since = whole_secs(since);
    if (pid, since) != (status.held_pid, status.held_since) {
        (status.held_pid, status.held_since) = (pid, since);
        (status.held_bytes, status.held_reloads) = (0, 0);
    }
    status.held_reloads < native.max_reloads_per_start
        && status.held_bytes.saturating_add(adding) <= native.max_held_mb.saturating_mul(1 << 20)
}

/// A reload analysisd answered keeps a descriptor per opened list; one that loaded new lists
/// keeps the replaced ones mapped too.
fn count_reload(status: &mut NativeStatus, reload: &Result<Reload, ReloadError>, replaced: u64) {
    if status.held_pid == 0 {
        return;
    }
    match reload {
        Ok(Reload::Done { .. }) => {
            status.held_reloads += 1;
            status.held_bytes = status.held_bytes.saturating_add(replaced);
        }
        Ok(Reload::Failed { .. }) | Err(ReloadError::Protocol(_)) => status.held_reloads += 1,
        Ok(Reload::Unsupported) | Err(ReloadError::Connect { .. }) => {}
    }
}

/// The lists were refused already: nothing is tried, and nothing waits either.
fn still_refused(status: &mut NativeStatus, dir: &Path) -> Result<Applied, ApplyError> {
    if status.pending_since != 0 {
        status.pending_since = 0;
        write_status(status, dir)?;
    }
    Ok(Applied::StillRefused)
}

fn finish(
    status: &mut NativeStatus,
    dir: &Path,
    now: u64,
    result: Result<Applied, ApplyError>,
    reached_analysisd: bool,
    key: &str,
) -> Result<Applied, ApplyError> {
    if reached_analysisd {
        status.last_reload_at = now;
    }
    status.pending_since = 0;
    status.refused_key = match &result {
        Err(e) if e.is_verdict() => key.to_string(),
        _ => String::new(),
    };
    let (word, message) = match &result {
        Ok(Applied::Reloaded { .. }) => ("ok", None),
        Ok(Applied::AtRestart { .. }) => (
            "at_restart",
            Some(
                "this Wazuh has no hot reload (before 4.13): the lists apply at the next restart"
                    .to_string(),
            ),
        ),
        Ok(Applied::Restarted { .. }) => ("restarted", None),
        Ok(Applied::AtStart { .. }) => (
            "at_start",
            Some("analysisd is not running: the lists apply when it starts".to_string()),
        ),
        Ok(Applied::Held { .. }) => (
            "held",
            Some(format!(
                "analysisd never releases the lists it opened when it hot-reloads (os_remove_cdblist, src/analysisd/lists_list.c) and holds {} MiB of replaced lists after {} reloads since it started: the new lists apply at its next start (or set native.restart_without_reload to restart the manager safely now)",
                status.held_bytes >> 20,
                status.held_reloads
            )),
        ),
        Ok(_) => return result,
        Err(e) => (e.kind(), Some(e.to_string())),
    };
    status.last_result = word.into();
    status.last_message = message;
    write_status(status, dir)?;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_tells_lists_apart() {
        let a = digest([&b"1.2.3.4:misp\n"[..], b""].into_iter());
        assert_eq!(a, digest([&b"1.2.3.4:misp\n"[..], b""].into_iter()));
        assert_ne!(a, digest([&b""[..], b"1.2.3.4:misp\n"].into_iter()));
    }
}
