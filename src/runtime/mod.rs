//! What `wazuh-integratord` runs once per alert: read the alert, extract its indicators, ask MISP
//! once, and send one event per match (or one error event) to analysisd, all inside a deadline
//! derived from integratord's `<timeout>`, because integratord waits for us with none of its own.
//!
//! Exit codes: 0 success (including MISP being unreachable: that is reported as an event),
//! 2 bad arguments, 3 alert file unreadable or invalid, 4 settings missing or invalid,
//! 5 analysisd queue socket unavailable. integratord logs the last line we print.

pub mod alert;
pub mod argv;
pub mod breaker;
pub mod cache;
pub mod cachecmd;
pub mod deadline;
pub mod event;
pub mod extract;
pub mod lookup;
pub mod notice;
pub mod seen;

pub mod testmode;

use crate::misp::{ErrorKind, MispError};
use crate::settings::{Loaded, Overrides, Settings, SettingsError};
use crate::wazuh::log::IntegrationsLog;
use crate::wazuh::queue::{Location, Queue};
use deadline::Deadline;
use event::AlertRef;
use serde_json::Value;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

pub const EXIT_OK: i32 = 0;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_ALERT: i32 = 3;
pub const EXIT_SETTINGS: i32 = 4;
pub const EXIT_QUEUE: i32 = 5;

/// True when integratord (or a copy installed as `custom-…`) started us. argv[0] is the literal
/// `integrations`; a second `<integration>` block may use another `custom-` name.
pub fn started_by_integratord(argv0: Option<&OsStr>, exe: Option<&Path>) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let custom = |name: Option<&OsStr>| name.is_some_and(|n| n.as_bytes().starts_with(b"custom-"));
    argv0.is_some_and(|a| a == crate::wazuh::home::INTEGRATIONS_DIR)
        || custom(argv0.and_then(|a| Path::new(a).file_name()))
        || custom(exe.and_then(Path::file_name))
}

/// The Wazuh home when integratord runs us: our grandparent (`<home>/integrations/custom-misp`),
/// else the working directory integratord gives its children, else the usual fallbacks.
pub fn integratord_home(exe: Option<&Path>) -> PathBuf {
    exe.and_then(crate::wazuh::home::from_executable)
        .or_else(|| {
            std::env::current_dir().ok().filter(|d| {
                d.join(crate::wazuh::queue::QUEUE_PATH)
                    .parent()
                    .is_some_and(Path::exists)
            })
        })
        .unwrap_or_else(|| crate::wazuh::home::resolve(None))
}

/// An alert of our CDB rules (native matching).
fn is_native_hit(alert: &Value) -> bool {
    alert
        .pointer("/rule/groups")
        .and_then(Value::as_array)
        .is_some_and(|g| {
            g.iter()
                .any(|g| g.as_str() == Some(crate::wazuh::native_rules::NATIVE_GROUP))
        })
}

/// Runs one alert and returns the process exit code.
pub fn run(home: &Path, args: &[OsString]) -> i32 {
    let inv = match argv::parse(args) {
        Ok(inv) => inv,
        Err(e) => return fatal(None, EXIT_USAGE, &e.to_string()),
    };
    let deadline = Deadline::for_timeout(inv.timeout);
    deadline.arm_watchdog();
    let mut log = IntegrationsLog::new(home, inv.debug);
    if let Some(key) = &inv.api_key {
        log.redact(key.expose());
    }
    log.debug(format!(
        "started: alert {}, api_key {}, hook_url {:?}, options {:?}, timeout {:?}, retries {:?}{}",
        inv.alert_file.display(),
        if inv.api_key.is_some() {
            "given"
        } else {
            "not given"
        },
        inv.hook_url,
        inv.options_file,
        inv.timeout,
        inv.retries,
        if inv.ignored.is_empty() {
            String::new()
        } else {
            format!(", ignored arguments {:?}", inv.ignored)
        },
    ));

    let (alert, format) = match alert::read(&inv.alert_file) {
        Ok(a) => a,
        Err(e) => return fatal(Some(&log), EXIT_ALERT, &e.to_string()),
    };
    if format == alert::AlertFormat::Legacy {
        notice::once(home, &log, "legacy-format", "received an alert in integratord's legacy text format (only srcip can be looked up): add <alert_format>json</alert_format> to every <integration> block in ossec.conf");
    }
    if extract::is_own_event(&alert) {
        log.debug("skipping an event produced by this integration");
        return EXIT_OK;
    }
    let alert_ref = AlertRef::of(&alert);
    let location = Location::for_alert(&alert);
    if is_native_hit(&alert) {
        match seen::first_time(&crate::wazuh::home::state_dir(home), &alert_ref.id) {
            Ok(true) => {}
            Ok(false) => {
                log.debug(format!(
                    "alert {}: enriched already by the other custom-misp block",
                    alert_ref.id
                ));
                return EXIT_OK;
            }
            // Enriching twice beats not enriching.
            Err(e) => log.debug(format!("cannot record native hit {}: {e}", alert_ref.id)),
        }
    }

    let overrides = Overrides {
        api_key: inv.api_key.clone(),
        hook_url: inv.hook_url.clone(),
        options_file: inv.options_file.clone(),
    };
    let loaded = match Settings::load(home, &overrides) {
        Ok(l) => l,
        Err(e) => return settings_failure(home, &log, &e, &alert_ref, &location, &deadline),
    };
    log.redact(loaded.api_key.expose());
    report_settings_notices(home, &log, &loaded);

    let extraction = extract::extract_with(&alert, &loaded.settings);
    if log.debug_enabled() {
        for s in &extraction.skipped {
            log.debug(format!("skipped {} {:?}: {}", s.field, s.value, s.reason));
        }
    }
    if extraction.indicators.is_empty() {
        log.debug(format!(
            "alert {} (rule {}): nothing to look up",
            alert_ref.id, alert_ref.rule_id
        ));
        return EXIT_OK;
    }

    let queue = match Queue::connect(home) {
        Ok(q) => q,
        Err(e) => return fatal(Some(&log), EXIT_QUEUE, &e.to_string()),
    };
    let outcome = lookup::lookup(home, &loaded, &extraction.indicators, &deadline, &log);
    log.debug(format!(
        "alert {} (rule {}): {} indicator(s), {} answered by the cache, {} asked, {} match(es){}",
        alert_ref.id,
        alert_ref.rule_id,
        extraction.indicators.len(),
        outcome.from_cache,
        outcome.asked,
        outcome.matches.len(),
        if outcome.skipped {
            ", MISP skipped (circuit breaker open)"
        } else {
            ""
        }
    ));
    let max = loaded.settings.lookup.max_events;
    if outcome.matches.len() > max {
        log.info(format!(
            "alert {}: {} matches, reporting the first {max} (lookup.max_events)",
            alert_ref.id,
            outcome.matches.len()
        ));
    }
    let mut payloads: Vec<Value> = outcome
        .matches
        .iter()
        .enumerate()
        .take(max)
        .map(|(i, m)| {
            let source = if i < outcome.from_mirror {
                event::Source::Mirror
            } else {
                event::Source::Misp
            };
            event::match_payload(m, &alert_ref, &loaded.misp_url, source)
        })
        .collect();
    if let Some((status, message)) = &outcome.mirror_notice {
        payloads.push(event::service_payload("mirror", status, message, 0));
    }
    let mut config_error = None;
    if let Some((e, report)) = &outcome.error {
        log.error(format!("alert {}: {e}", alert_ref.id));
        if *report {
            payloads.push(event::error_payload(e, &alert_ref));
        }
        if e.kind == ErrorKind::Config {
            config_error = Some(e.to_string());
        }
    }
    if loaded.settings.sightings.enabled {
        spool_sightings(
            home,
            &loaded,
            &outcome.matches[..outcome.matches.len().min(max)],
            &alert,
            &log,
        );
    }
    let code = send_all(&queue, &location, payloads, &deadline, &log);
    match config_error {
        Some(message) if code == EXIT_OK => fatal(None, EXIT_SETTINGS, &message),
        _ => code,
    }
}

fn send_all(
    queue: &Queue,
    location: &Location,
    payloads: Vec<Value>,
    deadline: &Deadline,
    log: &IntegrationsLog,
) -> i32 {
    for payload in payloads {
        let Some(msg) = event::frame_to_fit(location, payload) else {
            log.error("an event could not be made to fit in one analysisd message; dropped");
            continue;
        };
        if let Err(e) = queue.send(&msg, deadline.at()) {
            return fatal(Some(log), EXIT_QUEUE, &e.to_string());
        }
    }
    EXIT_OK
}

/// The reported hits go to the sightings spool; the scheduled run delivers them, so this costs
/// one local append and never a MISP request.
fn spool_sightings(
    home: &Path,
    loaded: &Loaded,
    reported: &[crate::misp::search::Match],
    alert: &Value,
    log: &IntegrationsLog,
) {
    let dir = crate::wazuh::home::state_dir(home);
    if reported.is_empty() || !dir.is_dir() {
        return;
    }
    let seen_at = alert::alert_time_ms(alert)
        .and_then(|ms| u64::try_from(ms / 1000).ok())
        .unwrap_or_else(cache::now_unix);
    let records: Vec<_> = reported
        .iter()
        .filter(|m| !m.attribute.uuid.is_empty())
        .map(|m| crate::sightings::spool::Record {
            value: m.attribute.value.clone(),
            kind: m.attribute.kind.clone(),
            attribute_uuid: m.attribute.uuid.clone(),
            seen_at,
        })
        .collect();
    let max = loaded.settings.sightings.max_spool_kb.saturating_mul(1024);
    match crate::sightings::spool::append(&dir, &records, max) {
        Ok(0) => {}
        Ok(dropped) => log.warning(format!(
            "sightings spool full (sightings.max_spool_kb): dropped its {dropped} oldest record(s); is the scheduled flush running?"
        )),
        Err(e) => log.warning(format!("sightings not recorded: {e}")),
    }
}

/// A settings problem is reported as a `config` error event too (when analysisd listens), so it
/// shows on the dashboard and not only in integratord's log.
fn settings_failure(
    home: &Path,
    log: &IntegrationsLog,
    e: &SettingsError,
    alert_ref: &AlertRef,
    location: &Location,
    deadline: &Deadline,
) -> i32 {
    let err = MispError::new(ErrorKind::Config, e.to_string());
    if let Ok(queue) = Queue::connect(home) {
        if let Some(msg) = event::frame_to_fit(location, event::error_payload(&err, alert_ref)) {
            let _ = queue.send(&msg, deadline.at());
        }
    }
    fatal(Some(log), EXIT_SETTINGS, &e.to_string())
}

fn report_settings_notices(home: &Path, log: &IntegrationsLog, loaded: &Loaded) {
    if !loaded.unknown_keys.is_empty() {
        let keys = loaded.unknown_keys.join(", ");
        notice::once(home, log, &format!("unknown-keys {keys}"), &format!(
            "settings keys unknown to this version were ignored: {keys} (is wazuh-misp older on this node than where setup ran?)"
        ));
    }
    if !loaded.settings.misp.verify_tls {
        notice::once(home, log, &format!("insecure {}", loaded.misp_url), &format!(
            "TLS certificate verification is OFF for {}: anyone on the path can read the API key; set misp.ca_file instead",
            loaded.misp_url
        ));
    }
}

/// Logs and prints one line (integratord logs the last line we print) and returns `code`.
fn fatal(log: Option<&IntegrationsLog>, code: i32, msg: &str) -> i32 {
    if let Some(log) = log {
        log.error(msg);
    }
    println!("custom-misp: {msg}");
    code
}
