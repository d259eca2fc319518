//! Why a stage did not happen: the likely causes, ranked by what the test could observe (the
//! preconditions' warnings, whether MISP knew the test IP, what the lookup cache and the circuit
//! breaker say the integration did, the daemons' pid files), and the log lines that bear on it.

use super::preflight::Context;
use super::Watched;
use crate::runtime::breaker::{Breaker, Phase};
use crate::runtime::cache::{self, Cache, Cached};
use crate::runtime::lookup;
use crate::wazuh::daemon::{self, Daemon};
use crate::wazuh::home::state_dir;
use crate::wazuh::log::LOG_PATH;
use crate::wazuh::rules::STOCK_SSHD_PARENTS;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

const OSSEC_LOG: &str = "logs/ossec.log";
/// At most this much of a log is read, from its end.
const TAIL_BYTES: u64 = 256 * 1024;
const MAX_LINES: usize = 8;
const RESTART: &str =
    "restart the manager the safe way (`systemctl reload wazuh-manager`, or `bin/wazuh-control restart`: both test the configuration before stopping anything)";

/// Sizes of the logs when the line was injected, to show only what was written since.
pub(crate) struct Offsets {
    integrations: u64,
    ossec: u64,
}

impl Offsets {
    pub fn take(home: &Path) -> Offsets {
        let len = |rel: &str| std::fs::metadata(home.join(rel)).map_or(0, |m| m.len());
        Offsets {
            integrations: len(LOG_PATH),
            ossec: len(OSSEC_LOG),
        }
    }
}

/// Lines of `rel` for which `keep` holds: those written after `from`, else (when `older` is
/// set) the last ones before it, marked as such.
fn log_lines(
    home: &Path,
    rel: &str,
    from: u64,
    older: bool,
    keep: &dyn Fn(&str) -> bool,
) -> Vec<String> {
    let Ok(mut f) = std::fs::File::open(home.join(rel)) else {
        return Vec::new();
    };
    let len = f.metadata().map_or(0, |m| m.len());
    let from = if from > len { 0 } else { from };
    let read = |f: &mut std::fs::File, start: u64, end: u64| -> Vec<String> {
        let start = start.max(end.saturating_sub(TAIL_BYTES));
        let mut buf = Vec::new();
        if f.seek(SeekFrom::Start(start)).is_err()
            || f.take(end - start).read_to_end(&mut buf).is_err()
        {
            return Vec::new();
        }
        let text = String::from_utf8_lossy(&buf);
        let mut lines: Vec<String> = text
            .lines()
            .filter(|l| keep(l))
            .map(|l| l.trim_end().to_string())
            .collect();
        let skip = lines.len().saturating_sub(MAX_LINES);
        lines.drain(..skip);
        lines
    };
    let new = read(&mut f, from, len);
    if !new.is_empty() || !older {
        return new.into_iter().map(|l| format!("{rel}: {l}")).collect();
    }
    read(&mut f, 0, from)
        .into_iter()
        .rev()
        .take(3)
        .rev()
        .map(|l| format!("{rel} (before this test): {l}"))
        .collect()
}

/// Our lines in `logs/integrations.log`.
pub(crate) fn our_log_lines(home: &Path, before: &Offsets) -> Vec<String> {
    log_lines(home, LOG_PATH, before.integrations, true, &|l| {
        l.contains("custom-misp")
    })
}

/// What integratord said about us in `logs/ossec.log`.
pub(crate) fn integratord_log_lines(home: &Path, before: &Offsets) -> Vec<String> {
    log_lines(home, OSSEC_LOG, before.ossec, true, &|l| {
        l.contains("integratord") && (l.contains("custom-misp") || l.contains("ERROR"))
    })
}

/// analysisd's complaints in `logs/ossec.log` since the injection.
pub(crate) fn analysisd_log_lines(home: &Path, before: &Offsets) -> Vec<String> {
    log_lines(home, OSSEC_LOG, before.ossec, false, &|l| {
        l.contains("analysisd")
            && ["ERROR", "CRITICAL", "WARNING"]
                .iter()
                .any(|w| l.contains(w))
    })
}

/// Stage A did not happen.
pub(crate) fn no_trigger_causes(home: &Path, ctx: &Context) -> Vec<String> {
    let mut causes = ctx.a_warnings.clone();
    if !matches!(daemon::status(home, "wazuh-analysisd"), Daemon::NotRunning) {
        causes.push(format!(
            "wazuh-analysisd did not alert: if the rules were installed or changed since its last start, it does not have the self-test rule {} yet ({RESTART}); `wazuh-analysisd -t` shows rule warnings (a duplicate id or a missing if_sid drops a rule silently)",
            ctx.sample_id
        ));
    }
    causes.push(format!(
        "the self-test rule's level {} must be at least <alerts><log_alert_level> in ossec.conf, or its alert is not written to alerts.json",
        ctx.sample_level
    ));
    causes.push("a custom decoder in etc/decoders overriding Wazuh's sshd decoders (0310-ssh_decoders.xml), or a local rule overwriting 5710, changes what the line becomes".into());
    causes
}

/// Stage A happened with another rule than the self-test rule.
pub(crate) fn other_rule_causes(_home: &Path, ctx: &Context, rule_id: &str) -> Vec<String> {
    let mut causes = Vec::new();
    let id: u32 = rule_id.parse().unwrap_or(0);
    if [5712, 5720, 5763].contains(&id) {
        causes.push(format!("rule {id} counts repeated failures from one IP (8 within 2 minutes): self tests run in a row trip it; wait two minutes and run again"));
    }
    if STOCK_SSHD_PARENTS.contains(&id) {
        causes.push(format!(
            "analysisd does not have the self-test rule {}: the rules are read at start, so {RESTART} after installing them; `wazuh-analysisd -t` shows rule warnings (a duplicate id or a missing if_sid drops a rule silently)",
            ctx.sample_id
        ));
    } else {
        causes.push(format!(
            "rule {rule_id} wins over the self-test rule: a rule that is a child of 5710/5716/5760 with a higher level, or that overwrites one of them; look for it in etc/rules"
        ));
    }
    causes
}

/// What the lookup cache says the integration did with the test IP (it was forgotten before
/// the injection, so any entry is this run's).
enum CacheSays {
    Hit,
    Unknown,
    NotAsked,
    CannotTell,
}

fn cache_says(home: &Path, ctx: &Context) -> CacheSays {
    let loaded = &ctx.loaded;
    let dir = state_dir(home);
    if !loaded.settings.cache.enabled || !dir.is_dir() {
        return CacheSays::CannotTell;
    }
    if !dir.join(cache::CACHE_FILE).is_file() {
        // Every lookup opens (and so creates) the cache: none was ever made with it.
        return CacheSays::NotAsked;
    }
    match Cache::open(&dir, &loaded.settings.cache, &lookup::namespace(loaded)) {
        Ok(c) => match c.get(&ctx.indicator, cache::now_unix()) {
            Cached::Positive(_) => CacheSays::Hit,
            Cached::Negative => CacheSays::Unknown,
            Cached::Miss => CacheSays::NotAsked,
        },
        Err(_) => CacheSays::CannotTell,
    }
}

/// Stage A happened, stage B did not.
pub(crate) fn no_enriched_causes(
    home: &Path,
    ctx: &Context,
    misp_knew: Option<bool>,
    w: &Watched,
) -> Vec<String> {
    let ip = &ctx.test_ip;
    let mut causes = ctx.b_warnings.clone();
    match cache_says(home, ctx) {
        CacheSays::Hit => causes.push(format!(
            "wazuh-misp ran and MISP knew {ip}, so its event went to analysisd, but no alert came of it: analysisd does not have our rules (installed or changed since its last start: {RESTART}), or another rule overrides them"
        )),
        CacheSays::Unknown => causes.push(format!(
            "wazuh-misp ran and asked MISP, which does not know {ip} with the integration's filters (IDS flag, published, warninglists): it sends no event then"
        )),
        CacheSays::NotAsked => causes.push(format!(
            "wazuh-misp did not ask MISP about {ip}: integratord did not run it on the alert (the block's filters do not pass the self-test rule, integratord was not restarted after the install, or it logs \"Couldn't execute command\" in ossec.log), or the circuit breaker kept it from asking"
        )),
        CacheSays::CannotTell => {
            if misp_knew == Some(false) {
                causes.push(format!("MISP does not know {ip} (see the test indicator stage): wazuh-misp finds nothing and sends no event"));
            }
            causes.push(format!("integratord did not run wazuh-misp on the alert: the block's filters do not pass the self-test rule, or integratord was not restarted after the install ({RESTART})"));
            causes.push(format!("wazuh-misp ran, and its event reached analysisd, but our rules are not loaded ({RESTART})"));
        }
    }
    if misp_knew == Some(false) && !causes.iter().any(|c| c.contains("does not know")) {
        causes.push(format!(
            "MISP did not know {ip} before the injection either (see the test indicator stage)"
        ));
    }
    let dir = state_dir(home);
    if dir.join(crate::runtime::breaker::BREAKER_FILE).is_file() {
        if let Ok(b) = Breaker::open(&dir, &ctx.loaded.settings.breaker) {
            let s = b.state();
            if s.phase != Phase::Closed {
                causes.push(format!(
                    "the circuit breaker is {}: after repeated MISP failures the integration leaves MISP alone (and reports the error once, not per alert){}; `wazuh-misp cache clear` closes it",
                    if s.phase == Phase::Open { "open" } else { "half-open" },
                    s.last_error
                        .as_ref()
                        .map(|e| format!("; last error: {} {}", e.kind.as_str(), e.message))
                        .unwrap_or_default()
                ));
            }
        }
    }
    causes.push("integratord runs integrations one alert at a time: a backlog (an alert storm, a slow integration) delays it; run again with a longer --timeout".into());
    if w.rotated {
        causes.push("alerts.json was rotated or truncated during the test".into());
    }
    causes
}

/// What to do about an error event's kind.
pub(crate) fn error_kind_fix(kind: &str) -> String {
    match kind {
        "connect" => "connect: MISP cannot be reached from this manager: check misp.url, DNS and the firewall",
        "tls" => "tls: the handshake or the certificate check failed: set misp.ca_file to the CA that signed MISP's certificate",
        "timeout" => "timeout: MISP did not answer in time: check its load, or raise misp.timeout_ms and the block's <timeout>",
        "auth" => "auth: MISP refused the API key: put a valid automation key in misp.api_key (`wazuh-misp setup`)",
        "not_found" => "not_found: MISP answered 404: set misp.url to MISP's base URL, including any path prefix",
        "rate_limited" => "rate_limited: MISP rate-limits the key: raise its rate limit in MISP",
        "server" => "server: MISP failed with a server error: see MISP's error logs",
        "protocol" => "protocol: the answer was not MISP's API JSON: check that misp.url reaches MISP itself, not a proxy or a login page",
        "config" => "config: the wazuh-misp settings are unusable as integratord runs it: fix etc/custom-misp.json (owner root, group wazuh, mode 0640)",
        _ => "see the message, and logs/integrations.log",
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_since_the_injection_else_the_last_ones_marked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("logs")).unwrap();
        let log = dir.path().join(LOG_PATH);
        std::fs::write(&log, "2026/11/27 06:00:00 custom-misp: ERROR: old\nnoise\n").unwrap();
        let before = Offsets::take(dir.path());
        let lines = our_log_lines(dir.path(), &before);
        assert_eq!(lines, ["logs/integrations.log (before this test): 2026/11/27 06:00:00 custom-misp: ERROR: old"]);
        std::fs::write(&log, "2026/11/27 06:00:00 custom-misp: ERROR: old\nnoise\n2026/11/27 07:00:00 custom-misp: ERROR: new\n").unwrap();
        assert_eq!(
            our_log_lines(dir.path(), &before),
            ["logs/integrations.log: 2026/11/27 07:00:00 custom-misp: ERROR: new"]
        );
    }
}
