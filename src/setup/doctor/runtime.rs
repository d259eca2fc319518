//! What happens at run time: analysisd's queue socket, whether integratord runs, what it and
//! the integration logged in the last 24 hours, and the state directory's circuit breaker.

use super::{chown_chmod, one_line, Check, Ctx};
use crate::runtime::breaker::{BreakerState, Phase, BREAKER_FILE};
use crate::runtime::cache::{Cache, CACHE_FILE};
use crate::runtime::lookup;
use crate::wazuh::home::state_dir;
use crate::wazuh::log::LOG_PATH;
use crate::wazuh::queue::QUEUE_PATH;
use serde_json::json;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

const OSSEC_LOG: &str = "logs/ossec.log";
const DAY: i64 = 86_400;
/// How much of the end of a log is read.
const TAIL_BYTES: u64 = 4 << 20;
const DAEMONS: [&str; 2] = ["wazuh-integratord", "ossec-integratord"];

pub(super) fn queue_check(ctx: &Ctx) -> Check {
    const ID: &str = "queue.socket";
    let path = ctx.home.join(QUEUE_PATH);
    let start = "start the manager (`systemctl start wazuh-manager`) and check logs/ossec.log for wazuh-analysisd errors";
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Check::fail(
                ID,
                format!("{QUEUE_PATH} does not exist: wazuh-analysisd is not running, and the integration cannot send its events (exit 5)"),
                start,
            )
        }
        Err(e) => {
            return Check::fail(ID, format!("cannot inspect {QUEUE_PATH}: {e}"), "run `sudo wazuh-misp doctor`")
        }
    };
    if !meta.file_type().is_socket() {
        return Check::fail(
            ID,
            format!("{QUEUE_PATH} is not a socket"),
            format!("remove it and restart the manager; {start}"),
        );
    }
    if let Err(e) = std::os::unix::net::UnixDatagram::unbound().and_then(|s| s.connect(&path)) {
        return Check::fail(
            ID,
            format!("{QUEUE_PATH} exists but nobody listens on it ({e}): wazuh-analysisd is not running"),
            start,
        );
    }
    let mode = meta.mode() & 0o777;
    let writable = (ctx.gid == Some(meta.gid()) && mode & 0o020 != 0)
        || (ctx.daemon_uid == Some(meta.uid()) && mode & 0o200 != 0)
        || mode & 0o002 != 0;
    if !writable {
        return Check::warn(
            ID,
            format!(
                "{QUEUE_PATH} is mode {mode:04o}: the Wazuh user may not be able to send to it"
            ),
            chown_chmod(ctx, &path, 0o660).replace("chown root:", "chown wazuh:"),
        );
    }
    Check::pass(ID, format!("{QUEUE_PATH}: wazuh-analysisd listens"))
}

/// A process named wazuh-integratord, found from its pid file in `var/run` or in /proc.
pub(super) fn integratord_check(ctx: &Ctx) -> Check {
    const ID: &str = "integratord.running";
    let fix = "restart the manager the safe way (`systemctl reload wazuh-manager`, or `bin/wazuh-control restart`): integratord starts when ossec.conf has an <integration> block; if it stops again, see logs/ossec.log";
    if let Some((pid, how)) = from_pid_file(&ctx.home) {
        return Check::pass(ID, format!("wazuh-integratord runs (pid {pid}, {how})"))
            .data(json!({"pid": pid}));
    }
    let mut elsewhere = Vec::new();
    for (pid, exe) in scan_proc() {
        match &exe {
            Some(exe) if exe.starts_with(&ctx.home) => {
                return Check::pass(ID, format!("wazuh-integratord runs (pid {pid})"))
                    .data(json!({"pid": pid}));
            }
            Some(exe) => elsewhere.push(format!("pid {pid} from {}", exe.display())),
            None => elsewhere.push(format!("pid {pid}")),
        }
    }
    if !elsewhere.is_empty() {
        return Check::warn(
            ID,
            format!(
                "no integratord of this Wazuh home runs, but another does ({}): is --wazuh-home right?",
                elsewhere.join(", ")
            ),
            fix,
        );
    }
    Check::fail(
        ID,
        "wazuh-integratord is not running: no alert reaches any integration",
        fix,
    )
}

fn comm_matches(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| {
        let comm = comm.trim_end();
        // The kernel keeps the first 15 bytes of the name.
        DAEMONS
            .iter()
            .any(|d| !comm.is_empty() && d[..d.len().min(15)] == *comm)
    })
}

fn from_pid_file(home: &Path) -> Option<(u32, String)> {
    let dir = home.join("var/run");
    for entry in std::fs::read_dir(&dir).ok()?.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        for daemon in DAEMONS {
            let Some(pid) = name
                .strip_prefix(daemon)
                .and_then(|r| r.strip_prefix('-'))
                .and_then(|r| r.strip_suffix(".pid"))
                .and_then(|p| p.parse::<u32>().ok())
            else {
                continue;
            };
            if comm_matches(pid) {
                return Some((pid, format!("var/run/{name}")));
            }
        }
    }
    None
}

fn scan_proc() -> Vec<(u32, Option<PathBuf>)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| comm_matches(*pid))
        .map(|pid| (pid, std::fs::read_link(format!("/proc/{pid}/exe")).ok()))
        .collect()
}

/// `logs.integrations` and `logs.ossec`.
pub(super) fn log_checks(ctx: &Ctx) -> Vec<Check> {
    let key = ctx
        .loaded
        .as_ref()
        .ok()
        .map(|l| l.api_key.expose().to_string());
    let redact = |line: &str| redact_keys(line, key.as_deref());
    let since = ctx.now - DAY;

    let ours = match tail_lines(&ctx.home.join(LOG_PATH)) {
        None => Check::pass(
            "logs.integrations",
            format!("{LOG_PATH}: nothing logged yet"),
        ),
        Some(lines) => {
            let errors: Vec<(i64, String)> = lines
                .iter()
                .filter_map(|l| {
                    let (t, rest) = timestamped(l)?;
                    let msg = rest.strip_prefix("custom-misp: ERROR: ")?;
                    (t >= since).then(|| (t, msg.to_string()))
                })
                .collect();
            match errors.last() {
                None => Check::pass(
                    "logs.integrations",
                    format!("no ERROR from custom-misp in {LOG_PATH} in the last 24 h"),
                ),
                Some((t, msg)) => Check::warn(
                    "logs.integrations",
                    format!(
                        "{} ERROR line(s) from custom-misp in the last 24 h, the latest {} ago: {}",
                        errors.len(),
                        ago(ctx.now - t),
                        one_line(&redact(msg), 240)
                    ),
                    format!("read {LOG_PATH}; `wazuh-misp test` replays recent alerts and shows what happens"),
                )
                .data(json!({"errors_24h": errors.len()})),
            }
        }
    };

    let theirs = match tail_lines(&ctx.home.join(OSSEC_LOG)) {
        None => Check::pass(
            "logs.ossec",
            format!("{OSSEC_LOG}: not found, nothing to read"),
        ),
        Some(lines) => {
            let errors: Vec<(i64, String)> = lines
                .iter()
                .filter_map(|l| {
                    let (t, rest) = timestamped(l)?;
                    let daemon = DAEMONS.iter().any(|d| rest.starts_with(d));
                    let bad = rest.contains("ERROR")
                        || rest.contains("Couldn't execute")
                        || rest.contains("Unable to run integration");
                    (daemon && bad && t >= since).then(|| (t, rest.to_string()))
                })
                .collect();
            match errors.last() {
                None => Check::pass(
                    "logs.ossec",
                    format!("no integratord error in {OSSEC_LOG} in the last 24 h"),
                ),
                Some((t, msg)) => {
                    let any = |s: &str| errors.iter().any(|(_, m)| m.contains(s));
                    let fix = if any("Couldn't execute") {
                        "integratord could not execute an integration: correct binary.permissions, then restart the manager (integratord checks the file when it starts)"
                    } else if any("File not found inside") {
                        "an integration file was missing when integratord started: run `sudo wazuh-misp install`, then restart the manager"
                    } else if any("Unable to run integration") {
                        "an integration exited with an error: see logs/integrations.log for its reason"
                    } else {
                        "read logs/ossec.log around that time"
                    };
                    Check::warn(
                        "logs.ossec",
                        format!(
                            "{} integratord error line(s) in the last 24 h, the latest {} ago: {}",
                            errors.len(),
                            ago(ctx.now - t),
                            one_line(&redact(msg), 240)
                        ),
                        fix,
                    )
                    .data(json!({"errors_24h": errors.len()}))
                }
            }
        }
    };
    vec![ours, theirs]
}

/// The lines of the last few MiB of a log; `None` when it does not exist or cannot be read.
fn tail_lines(path: &Path) -> Option<Vec<String>> {
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    let start = len.saturating_sub(TAIL_BYTES);
    f.seek(SeekFrom::Start(start)).ok()?;
    let mut bytes = Vec::new();
    f.take(TAIL_BYTES).read_to_end(&mut bytes).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    if start > 0 && !lines.is_empty() {
        lines.remove(0); // cut in the middle
    }
    Some(lines)
}

/// `YYYY/MM/DD HH:MM:SS rest` in local time, as Wazuh's daemons write it.
fn timestamped(line: &str) -> Option<(i64, &str)> {
    let stamp = line.get(..19)?;
    let rest = line.get(19..)?.strip_prefix(' ')?;
    let b = stamp.as_bytes();
    if b[4] != b'/' || b[7] != b'/' || b[10] != b' ' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| stamp.get(r)?.parse::<i32>().ok();
    // SAFETY: mktime reads and normalises the zeroed struct we own.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    tm.tm_year = n(0..4)? - 1900;
    tm.tm_mon = n(5..7)? - 1;
    tm.tm_mday = n(8..10)?;
    tm.tm_hour = n(11..13)?;
    tm.tm_min = n(14..16)?;
    tm.tm_sec = n(17..19)?;
    tm.tm_isdst = -1;
    let t = unsafe { libc::mktime(&mut tm) };
    (t != -1).then_some((t as i64, rest))
}

fn ago(secs: i64) -> String {
    let secs = secs.max(0);
    if secs < 120 {
        format!("{secs} s")
    } else if secs < 7200 {
        format!("{} min", secs / 60)
    } else {
        format!("{} h", secs / 3600)
    }
}

/// The configured key, and anything shaped like a MISP key (40 letters and digits), masked:
/// integratord prints the whole command line, key included, when a run fails.
pub(super) fn redact_keys(line: &str, key: Option<&str>) -> String {
    let line = match key {
        Some(k) if !k.is_empty() => line.replace(k, "****"),
        _ => line.to_string(),
    };
    let mut out = String::with_capacity(line.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() == 40 {
            out.push_str("****");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in line.chars() {
        if c.is_ascii_alphanumeric() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// `state.dir` and `state.breaker` (with the cache's numbers when there is a cache).
pub(super) fn state_checks(ctx: &Ctx) -> Vec<Check> {
    let dir = state_dir(&ctx.home);
    let rel = ctx.rel(&dir);
    let meta = match std::fs::metadata(&dir) {
        Ok(m) if m.is_dir() => m,
        _ => {
            return vec![
                Check::warn(
                    "state.dir",
                    format!("{rel} is missing: the lookup cache and the circuit breaker are off, so every alert asks MISP"),
                    "run `sudo wazuh-misp install` (it creates it root:wazuh 0770)",
                ),
                Check::skip("state.breaker", format!("no {rel}")),
            ]
        }
    };
    let mode = meta.mode() & 0o7777;
    let writable = (ctx.gid == Some(meta.gid()) && mode & 0o070 == 0o070)
        || (ctx.daemon_uid == Some(meta.uid()) && mode & 0o700 == 0o700);
    let dir_check = if writable {
        Check::pass(
            "state.dir",
            format!("{rel} is writable by the Wazuh group ({mode:04o})"),
        )
    } else {
        Check::warn(
            "state.dir",
            format!("{rel} ({mode:04o}) is not writable by integratord's user: the cache and the circuit breaker do not work"),
            format!(
                "chown root:{g} {p} && chmod 0770 {p}",
                g = ctx.group,
                p = dir.display()
            ),
        )
    };

    let state: BreakerState = std::fs::read(dir.join(BREAKER_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let cache = match &ctx.loaded {
        Ok(l) if dir.join(CACHE_FILE).is_file() => {
            Cache::open(&dir, &l.settings.cache, &lookup::namespace(l))
                .ok()
                .map(|c| {
                    let s = c.stats(ctx.now as u64);
                    format!(
                        "; cache: {} live entries ({} known to MISP), capacity {}",
                        s.positive + s.negative,
                        s.positive,
                        s.capacity
                    )
                })
        }
        _ => None,
    }
    .unwrap_or_default();
    let last = state
        .last_error
        .as_ref()
        .map(|e| {
            format!(
                "; last MISP error: {} {}",
                e.kind.as_str(),
                one_line(&e.message, 200)
            )
        })
        .unwrap_or_default();
    let now = ctx.now.max(0) as u64;
    let fix = "correct the cause (see the misp.* checks); `sudo wazuh-misp cache clear` closes the breaker at once";
    let breaker = match state.phase {
        Phase::Open => Check::warn(
            "state.breaker",
            format!(
                "circuit breaker OPEN after {} failure(s): MISP is left alone for {} more s, alerts go unenriched meanwhile{last}{cache}",
                state.failures,
                state.retry_at.saturating_sub(now)
            ),
            fix,
        ),
        Phase::HalfOpen => Check::warn(
            "state.breaker",
            format!("circuit breaker half-open: one run is probing MISP{last}{cache}"),
            fix,
        ),
        Phase::Closed if state.failures > 0 => Check::pass(
            "state.breaker",
            format!("circuit breaker closed, {} recent failure(s){last}{cache}", state.failures),
        ),
        Phase::Closed => Check::pass("state.breaker", format!("circuit breaker closed (MISP healthy){cache}")),
    }
    .data(json!({"phase": state.phase, "failures": state.failures, "retry_at": state.retry_at}));
    vec![dir_check, breaker]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_masked_in_log_lines() {
        let key = "0123456789abcdefABCDEF0123456789abcdefAB";
        let line = format!("Couldn't execute command (integrations /tmp/a.alert {key} https://m  > /dev/null 2>&1)");
        let r = redact_keys(&line, None);
        assert!(
            !r.contains(key) && r.contains("/tmp/a.alert **** https://m"),
            "{r}"
        );
        assert_eq!(redact_keys("x KEY y", Some("KEY")), "x **** y");
    }

    #[test]
    fn wazuh_timestamps_parse_in_local_time() {
        let now = crate::wazuh::log::local_timestamp();
        let line = format!("{now} wazuh-integratord: ERROR: x");
        let (t, rest) = timestamped(&line).unwrap();
        assert!((t - crate::runtime::cache::now_unix() as i64).abs() < 5);
        assert_eq!(rest, "wazuh-integratord: ERROR: x");
        assert!(timestamped("2026-11-27 06:05:24 x").is_none());
        assert!(timestamped("short").is_none());
    }
}
