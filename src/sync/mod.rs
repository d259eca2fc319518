//! `wazuh-misp sync`: refreshes the mirror from MISP, one sync at a time (a lock in the state
//! directory), within its own request timeout, body limit and overall time limit. A failure of
//! any kind leaves the previous mirror in place and in use, is written to the status file and
//! `logs/integrations.log`, and raises one event per failure episode (not one per run).
//!
//! Exit codes: 0 the mirror is up to date (changed or not), 4 settings missing or invalid (or
//! not installed), 6 MISP failed (the previous mirror stays), 7 another sync holds the lock,
//! 8 the new mirror could not be written (a full disk, say; the previous one stays), 9 native
//! matching could not put the new lists in force (the previous lists stay in force).
//!
//! With native matching on, a successful sync then hands the mirror to `native::apply`, which
//! writes the CDB lists and hot-reloads analysisd when they changed.

pub mod build;

use crate::mirror::{self, format, Mirror, Status};
use crate::misp::MispClient;
use crate::runtime::event;
use crate::settings::{Loaded, Overrides, Settings};
use crate::wazuh::log::IntegrationsLog;
use crate::wazuh::queue::{Location, Queue};
use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

pub const EXIT_OK: i32 = 0;
pub const EXIT_SETTINGS: i32 = 4;
pub const EXIT_MISP: i32 = 6;
pub const EXIT_LOCKED: i32 = 7;
pub const EXIT_LOCAL: i32 = 8;
pub const EXIT_NATIVE: i32 = 9;

const LOCK_FILE: &str = "sync.lock";

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub full: bool,
    pub dry_run: bool,
    pub json: bool,
    /// No progress lines (the scheduled run).
    pub quiet: bool,
}

fn now_unix() -> u64 {
    crate::runtime::cache::now_unix()
}

/// Holds the exclusive sync lock while alive.
struct Lock {
    _file: File,
}

impl Lock {
    fn try_take(dir: &Path) -> std::io::Result<Option<Lock>> {
        let (file, _) = crate::state::open_shared(&dir.join(LOCK_FILE))?;
        // SAFETY: flock on a descriptor we own for the lifetime of the guard.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            Ok(Some(Lock { _file: file }))
        } else {
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EWOULDBLOCK) => Ok(None),
                _ => Err(e),
            }
        }
    }
}

pub fn run(home: &Path, opts: &Options, out: &mut dyn Write) -> i32 {
    let log = IntegrationsLog::new(home, false);
    let say = |out: &mut dyn Write, code: i32, msg: &str| {
        let _ = writeln!(out, "{msg}");
        code
    };
    let loaded = match Settings::load(home, &Overrides::default()) {
        Ok(l) => l,
        Err(e) => {
            log.error(format!("sync: {e}"));
            return say(out, EXIT_SETTINGS, &format!("wazuh-misp sync: {e}"));
        }
    };
    let dir = crate::wazuh::home::state_dir(home);
    if !dir.is_dir() {
        return say(
            out,
            EXIT_SETTINGS,
            &format!(
                "wazuh-misp sync: {} does not exist: run `sudo wazuh-misp install` first",
                dir.display()
            ),
        );
    }
    let _lock = match Lock::try_take(&dir) {
        Ok(Some(l)) => l,
        Ok(None) => {
            return say(
                out,
                EXIT_LOCKED,
                "wazuh-misp sync: another sync is running; this one did nothing",
            )
        }
        Err(e) => {
            return say(
                out,
                EXIT_LOCAL,
                &format!(
                    "wazuh-misp sync: cannot take the lock in {}: {e}",
                    dir.display()
                ),
            )
        }
    };
    format::remove_leftovers(&dir);
    let started = now_unix();
    let clock = Instant::now();
    let path = dir.join(mirror::MIRROR_FILE);
    let (old, damaged) = match Mirror::open(&path) {
        Ok(m) => (m, None),
        Err(e) => (None, Some(e.to_string())),
    };
    let full_reason = full_reason(&loaded, old.as_ref(), damaged, opts.full, started);
    let m = &loaded.settings.mirror;
    let client = match MispClient::new(
        &loaded.misp_url,
        loaded.api_key.clone(),
        &loaded.settings.misp,
        Duration::from_secs(m.request_timeout_s),
    ) {
        Ok(c) => c.with_body_limit(m.max_body_mb.saturating_mul(1 << 20)),
        Err(e) => return say(out, EXIT_SETTINGS, &format!("wazuh-misp sync: {e}")),
    };
    let quiet = opts.quiet || opts.json;
    let progress = |line: &str| {
        if !quiet {
            eprintln!("sync: {line}");
        }
    };
    let job = build::Job {
        loaded: &loaded,
        client: &client,
        state_dir: &dir,
        started,
        deadline: clock + Duration::from_secs(m.time_limit_s),
        dry_run: opts.dry_run,
        progress: &progress,
    };
    let result = match build::sync(&job, old.as_ref(), full_reason, &path) {
        Err(build::Failure::Damaged) => {
            log.warning("sync: the mirror's records are damaged; reading everything again");
            let reason = Some("the mirror's records are damaged".to_string());
            build::sync(&job, None, reason, &path)
        }
        other => other,
    };
    drop(old);
    let elapsed = clock.elapsed().as_millis() as u64;
    let mut status = Status::read(&dir);
    status.last_attempt = started;
    status.last_duration_ms = elapsed;
    match result {
        Ok(outcome) => {
            if !opts.dry_run {
                if status.failing_since != 0 {
                    log.info(format!(
                        "sync: MISP answers again after {} failed sync(s)",
                        status.consecutive_failures
                    ));
                }
                status.verified_at = started;
                status.last_result = "ok".into();
                status.last_error = None;
                status.last_kind = serde_json::to_value(outcome.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                status.last_changed = outcome.changed;
                status.last_requests = outcome.requests;
                status.failing_since = 0;
                status.consecutive_failures = 0;
                if let Err(e) = status.write(&dir) {
                    log.warning(format!("sync: cannot record its status: {e}"));
                }
            }
            report(out, opts, &outcome, elapsed, &path);
            if opts.dry_run {
                return EXIT_OK;
            }
            native(home, &loaded, &path, &log, out, opts, false)
        }
        Err(failure) => {
            let kind = failure.kind();
            let message = failure.message(m.time_limit_s);
            log.error(format!(
                "sync failed ({kind}): {message}; the previous mirror stays in use"
            ));
            let code = match failure {
                build::Failure::Local(_) => EXIT_LOCAL,
                _ => EXIT_MISP,
            };
            if opts.dry_run {
                return say(out, code, &format!("wazuh-misp sync: {message}"));
            }
            if status.failing_since == 0 {
                status.failing_since = started;
            }
            status.consecutive_failures += 1;
            status.last_result = kind.into();
            status.last_error = Some(message.clone());
            if status.reported_episode != status.failing_since
                && send_event(
                    home,
                    "mirror",
                    "sync_failed",
                    &message,
                    status.failing_since,
                )
            {
                status.reported_episode = status.failing_since;
            }
            if let Err(e) = status.write(&dir) {
                log.warning(format!("sync: cannot record its status: {e}"));
            }
            // The previous mirror stays in use, and so does native matching: a change deferred
            // by the reload interval, or lists the cluster delivered to a worker, still apply.
            let _ = native(home, &loaded, &path, &log, out, opts, true);
            if opts.json {
                let _ = writeln!(
                    out,
                    "{}",
                    serde_json::json!({"ok": false, "error": {"kind": kind, "message": message}})
                );
                return code;
            }
            say(
                out,
                code,
                &format!("wazuh-misp sync: {message}; the previous mirror stays in use"),
            )
        }
    }
}

/// Native matching's step after a sync; `after_failure`: the sync could not reach MISP, and only
/// what is already there (a waiting change, a worker's delivered lists) is put in force.
fn native(
    home: &Path,
    loaded: &Loaded,
    mirror_path: &Path,
    log: &IntegrationsLog,
    out: &mut dyn Write,
    opts: &Options,
    after_failure: bool,
) -> i32 {
    use crate::native::apply::{self, Applied, ApplyError};
    use crate::native::status::NativeStatus;
    let json = opts.json;
    if !loaded.settings.native.enabled {
        return EXIT_OK;
    }
    if opts.full {
        // `sync --full` is the way to try lists that were refused again by hand.
        let dir = crate::wazuh::home::state_dir(home);
        let mut status = NativeStatus::read(&dir);
        if !status.refused_key.is_empty() {
            status.refused_key.clear();
            if let Err(e) = status.write(&dir) {
                log.warning(format!("sync: cannot record native matching's status: {e}"));
            }
        }
    }
    let result = crate::wazuh::detect::detect(home)
        .map_err(|e| e.to_string())
        .and_then(|manager| {
            let mirror = match Mirror::open(mirror_path) {
                Ok(mirror) => mirror,
                // A worker puts the master's lists in force without a mirror of its own.
                Err(_) if manager.cluster == crate::wazuh::ossec_conf::ClusterRole::Worker => None,
                Err(e) => return Err(format!("the mirror cannot be read: {e}")),
            };
            match apply::apply(&manager, loaded, mirror.as_ref(), now_unix()) {
                // Said by the sync's own failure already.
                Err(ApplyError::NoMirror) if after_failure => Ok(Applied::Unchanged),
                other => other.map_err(|e| e.to_string()),
            }
        });
    let line = match &result {
        Ok(Applied::Off) | Ok(Applied::Unchanged) => return EXIT_OK,
        // Reported (log, event) when it was refused; said again here, not sent again.
        Ok(Applied::StillRefused) => {
            if !json {
                let _ = writeln!(out, "wazuh-misp sync: native matching: these lists were refused already and are not tried again until they or the rules change, or `wazuh-misp sync --full` (`wazuh-misp doctor` says why)");
            }
            return EXIT_NATIVE;
        }
        Ok(Applied::Deferred { until }) => format!(
            "native matching: the lists changed; they apply at the first sync after {} (native.min_reload_interval_s)",
            crate::civil::format_utc(*until as i64)
        ),
        Ok(Applied::Reloaded { lists }) => {
            format!("native matching: analysisd reloaded {}", lists.join(", "))
        }
        Ok(Applied::AtRestart { lists }) => format!(
            "native matching: wrote {}; this Wazuh has no hot reload (before 4.13), so they apply at the next manager restart (or set native.restart_without_reload)",
            lists.join(", ")
        ),
        Ok(Applied::Restarted { lists }) => format!(
            "native matching: wrote {} and restarted the manager",
            lists.join(", ")
        ),
        Ok(Applied::Held { lists }) => format!(
            "native matching: wrote {}; analysisd holds as much as native.max_held_mb and native.max_reloads_per_start allow of what hot reloads leave it (it never releases them), so they apply at its next start (`wazuh-misp doctor` says more)",
            lists.join(", ")
        ),
        Ok(Applied::AtStart { lists }) => format!(
            "native matching: wrote {}; analysisd is not running and loads them when it starts",
            lists.join(", ")
        ),
        Err(e) => {
            log.error(format!("sync: native matching: {e}"));
            send_event(home, "native", "apply_failed", e, now_unix());
            if !json {
                let _ = writeln!(out, "wazuh-misp sync: native matching: {e}");
            }
            return EXIT_NATIVE;
        }
    };
    log.info(format!("sync: {line}"));
    if !json {
        let _ = writeln!(out, "{line}");
    }
    EXIT_OK
}

/// Why this sync must read everything, if it must.
fn full_reason(
    loaded: &Loaded,
    old: Option<&Mirror>,
    damaged: Option<String>,
    asked: bool,
    now: u64,
) -> Option<String> {
    if asked {
        return Some("--full".into());
    }
    if let Some(d) = damaged {
        return Some(format!("the mirror could not be read ({d})"));
    }
    let Some(old) = old else {
        return Some("there is no mirror yet".into());
    };
    if old.meta().policy != mirror::policy::fingerprint(loaded) {
        return Some("the MISP URL, the key or the lookup policy changed".into());
    }
    if now
        >= old
            .meta()
            .full_at
            .saturating_add(loaded.settings.mirror.full_interval_s)
    {
        return Some("the periodic full sync (mirror.full_interval_s) is due".into());
    }
    None
}

/// One event to analysisd, if it listens; false when it could not be sent.
pub fn send_event(home: &Path, component: &str, status: &str, message: &str, since: u64) -> bool {
    let Ok(queue) = Queue::connect(home) else {
        return false;
    };
    let Some(msg) = event::frame_to_fit(
        &Location::manager(),
        event::service_payload(component, status, message, since),
    ) else {
        return false;
    };
    queue
        .send(&msg, Instant::now() + Duration::from_secs(2))
        .is_ok()
}

fn report(out: &mut dyn Write, opts: &Options, o: &build::Outcome, elapsed_ms: u64, path: &Path) {
    if opts.json {
        let mut v = serde_json::to_value(o).unwrap_or_default();
        v["ok"] = true.into();
        v["dry_run"] = opts.dry_run.into();
        v["duration_ms"] = elapsed_ms.into();
        let _ = writeln!(out, "{v}");
        return;
    }
    let what = match (o.kind, &o.full_reason) {
        (build::Kind::Full, Some(why)) => format!("full sync ({why})"),
        _ => "incremental sync".into(),
    };
    let verb = if opts.dry_run { "would write" } else { "wrote" };
    let result = if o.changed {
        format!("{verb} {} attributes to {}", o.attributes, path.display())
    } else {
        "no change in MISP; the mirror is up to date".into()
    };
    let _ = writeln!(
        out,
        "{what}: {} events listed, {} read, {} dropped; {} attributes read ({} never matchable); {result}; {} requests in {:.1} s",
        o.events_listed,
        o.events_read,
        o.events_dropped,
        o.attributes_read,
        o.attributes_skipped,
        o.requests,
        elapsed_ms as f64 / 1000.0
    );
    if o.events_moved > 0 {
        let _ = writeln!(
            out,
            "{} events changed in MISP during this sync: the next sync reads them again",
            o.events_moved
        );
    }
}
