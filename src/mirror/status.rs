//! `var/custom-misp/mirror.status`: what the last syncs did (when, how, with what result), which
//! the sync writes and the runtime, `mirror stats` and `doctor` read. It also remembers which
//! failure episode was already reported, so a MISP outage raises one event, not one per run.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const STATUS_FILE: &str = "mirror.status";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Status {
    /// When the last sync started.
    pub last_attempt: u64,
    /// Start of the last successful sync: the mirror matched MISP as of then.
    pub verified_at: u64,
    /// `ok` or the error kind of the last attempt.
    pub last_result: String,
    pub last_error: Option<String>,
    /// `full` or `incremental`.
    pub last_kind: String,
    pub last_changed: bool,
    pub last_duration_ms: u64,
    pub last_requests: u64,
    /// Start of the current run of failures (0: the last sync succeeded).
    pub failing_since: u64,
    pub consecutive_failures: u64,
    /// The `failing_since` whose event was sent already.
    pub reported_episode: u64,
}

pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(STATUS_FILE)
}

impl Status {
    /// The recorded status, or the default when there is none (or it is unreadable: it is only a
    /// report, never a reason to fail).
    pub fn read(state_dir: &Path) -> Status {
        crate::state::read_json(&path(state_dir))
    }

    pub fn write(&self, state_dir: &Path) -> std::io::Result<()> {
        crate::state::write_json(&path(state_dir), self)
    }
}
