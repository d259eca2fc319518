//! Delivering the spool to MISP: one `POST /sightings/add {"id": <attribute uuid>, "type": "0",
//! "source": …, "timestamp": …}` per attribute hit since the last flush, at most one per
//! attribute per `sightings.min_interval_s`. By uuid, because MISP's `values` form would put the
//! sighting on every attribute holding the value, in any event the key can see
//! (`Sighting::saveSightings` in MISP's `app/Model/Sighting.php`), and one request carries only one
//! timestamp.
//!
//! At least once: a record leaves `sightings.sending` only after MISP answered a `Sighting`. MISP
//! has no idempotency key on this endpoint (the controller passes no sighting uuid), so an answer
//! lost on the way back repeats that one sighting at the next flush. MISP's refusals are final and
//! never retried: HTTP 403 (a key whose role may not add sightings) drops the batch, and a 200
//! with a `message` but no `Sighting` (the attribute is gone, or not visible to the key) drops that
//! record; both are counted and reported.

use super::spool::{self, Record};
use crate::misp::{ErrorKind, MispClient, MispError};
use crate::settings::Loaded;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

const SENT_FILE: &str = "sightings.sent";
const LOCK_FILE: &str = "sightings.lock";

struct FlushLock {
    _file: std::fs::File,
}

impl FlushLock {
    fn try_take(state_dir: &Path) -> std::io::Result<Option<FlushLock>> {
        use std::os::fd::AsRawFd;
        let (file, _) = crate::state::open_shared(&state_dir.join(LOCK_FILE))?;
        // SAFETY: flock on a descriptor we own for the guard's lifetime.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(Some(FlushLock { _file: file }));
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EWOULDBLOCK) => Ok(None),
            _ => Err(e),
        }
    }
}
pub const STATUS_FILE: &str = "sightings.status";

/// What the flushes did, for `sightings stats` and `doctor`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Status {
    pub last_flush: u64,
    /// `ok` or the error kind of the last flush.
    pub last_result: String,
    pub last_error: Option<String>,
    pub sent_total: u64,
    /// Records MISP refused (deleted or invisible attributes, a read-only key).
    pub rejected_total: u64,
    /// Start of the current run of failed flushes (0: the last one worked).
    pub failing_since: u64,
    pub reported_episode: u64,
}

impl Status {
    pub fn read(state_dir: &Path) -> Status {
        std::fs::read(state_dir.join(STATUS_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn write(&self, state_dir: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        crate::state::write_shared(&state_dir.join(STATUS_FILE), &bytes)
    }
}

#[derive(Debug, Default, Serialize)]
pub struct Outcome {
    pub sent: u64,
    /// Hits on attributes that had a sighting less than `min_interval_s` ago.
    pub folded: u64,
    pub rejected: u64,
    /// Still to deliver (MISP failed, or the time limit was reached).
    pub pending: u64,
    pub requests: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The source MISP records: `sightings.source`, else `wazuh:<host name>`.
pub fn source(loaded: &Loaded) -> String {
    loaded
        .settings
        .sightings
        .source
        .clone()
        .unwrap_or_else(|| format!("wazuh:{}", crate::wazuh::home::host_name()))
}

fn is_permission_denied(e: &MispError) -> bool {
    e.kind == ErrorKind::Auth && e.message.contains("HTTP 403") && e.message.contains("permission")
}

/// Sends what the spool holds. `Err` only for local problems (the state directory); MISP's
/// failures are in the outcome, with the records kept for the next flush.
pub fn flush(
    state_dir: &Path,
    loaded: &Loaded,
    client: &MispClient,
    now: u64,
    deadline: Instant,
) -> std::io::Result<(Outcome, Option<MispError>)> {
    // One flush at a time: two would both deliver the pending batch.
    let _lock = match FlushLock::try_take(state_dir)? {
        Some(l) => l,
        None => {
            return Ok((
                Outcome {
                    error: Some("another flush is running".into()),
                    ..Outcome::default()
                },
                None,
            ))
        }
    };
    let records = spool::take(state_dir)?;
    let mut out = Outcome::default();
    if records.is_empty() {
        return Ok((out, None));
    }
    let min_interval = loaded.settings.sightings.min_interval_s;
    let mut sent: BTreeMap<String, u64> = std::fs::read(state_dir.join(SENT_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    sent.retain(|_, at| at.saturating_add(min_interval) > now);

    // One group per attribute, in the order first seen; its earliest hit is the sighting's time.
    let mut order: Vec<String> = Vec::new();
    let mut groups: BTreeMap<String, Vec<Record>> = BTreeMap::new();
    for r in records {
        if !groups.contains_key(&r.attribute_uuid) {
            order.push(r.attribute_uuid.clone());
        }
        groups.entry(r.attribute_uuid.clone()).or_default().push(r);
    }
    let source = source(loaded);
    let mut failure = None;
    let mut left: Vec<Record> = Vec::new();
    for uuid in order {
        let group = groups.remove(&uuid).unwrap_or_default();
        if failure.is_some() || Instant::now() >= deadline {
            left.extend(group);
            continue;
        }
        if sent.contains_key(&uuid) {
            out.folded += group.len() as u64;
            continue;
        }
        let at = group.iter().map(|r| r.seen_at).min().unwrap_or(now);
        let body = json!({"id": uuid, "type": "0", "source": source, "timestamp": at});
        out.requests += 1;
        match client.post_json("/sightings/add", &body) {
            Ok(answer) => {
                let v: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
                if v.get("Sighting").is_some() {
                    out.sent += 1;
                    out.folded += group.len() as u64 - 1;
                    sent.insert(uuid, now);
                } else if v.get("message").is_some() {
                    // MISP's own refusal of this record (the attribute is gone or not visible).
                    out.rejected += group.len() as u64;
                } else {
                    // A 200 that is not MISP's answer (a proxy page, a cut body): keep it.
                    left.extend(group);
                    failure = Some(MispError::new(
                        ErrorKind::Protocol,
                        "/sightings/add answered 200 with something that is not MISP's JSON",
                    ));
                }
            }
            // A role that may not add sightings (403 "You do not have permission…"): the whole
            // batch would be refused too. A refused key, an expired one or a login page may be
            // fixed at any time, so those records are kept like any other failure's.
            Err(e) if is_permission_denied(&e) => {
                out.rejected += group.len() as u64;
                for rest in groups.values() {
                    out.rejected += rest.len() as u64;
                }
                groups.clear();
                failure = Some(e);
            }
            Err(e) => {
                left.extend(group);
                failure = Some(e);
            }
        }
    }
    out.pending = left.len() as u64;
    spool::keep_pending(state_dir, &left)?;
    let _ = crate::state::write_shared(
        &state_dir.join(SENT_FILE),
        &serde_json::to_vec(&sent).unwrap_or_default(),
    );
    out.error = failure.as_ref().map(ToString::to_string);
    Ok((out, failure))
}

/// Flushes and records the result in the status file; one event per failure episode.
pub fn flush_and_record(
    home: &Path,
    loaded: &Loaded,
    client: &MispClient,
    now: u64,
    deadline: Instant,
    log: &crate::wazuh::log::IntegrationsLog,
) -> Outcome {
    let dir = crate::wazuh::home::state_dir(home);
    let mut status = Status::read(&dir);
    let (outcome, failure) = match flush(&dir, loaded, client, now, deadline) {
        Ok(r) => r,
        Err(e) => {
            log.error(format!(
                "sightings: cannot use the spool in {}: {e}",
                dir.display()
            ));
            return Outcome {
                error: Some(e.to_string()),
                ..Outcome::default()
            };
        }
    };
    status.last_flush = now;
    status.sent_total += outcome.sent;
    status.rejected_total += outcome.rejected;
    if outcome.rejected > 0 {
        log.warning(format!(
            "sightings: MISP refused {} record(s) (attributes deleted or not visible to the key, or a key whose role may not add sightings); they are dropped",
            outcome.rejected
        ));
    }
    match &failure {
        None => {
            status.last_result = "ok".into();
            status.last_error = None;
            status.failing_since = 0;
        }
        Some(e) => {
            log.error(format!(
                "sightings: {e}; {} record(s) kept for the next flush",
                outcome.pending
            ));
            status.last_result = e.kind.as_str().into();
            status.last_error = Some(e.to_string());
            if status.failing_since == 0 {
                status.failing_since = now;
            }
            if status.reported_episode != status.failing_since
                && crate::sync::send_event(
                    home,
                    "sightings",
                    "flush_failed",
                    &e.to_string(),
                    status.failing_since,
                )
            {
                status.reported_episode = status.failing_since;
            }
        }
    }
    if let Err(e) = status.write(&dir) {
        log.warning(format!("sightings: cannot record the status: {e}"));
    }
    outcome
}
