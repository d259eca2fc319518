//! `var/custom-misp/native.status`: what native matching last put in force: when analysisd last
//! reloaded for us and how that went, a change waiting for the reload interval, and a digest of
//! the lists analysisd has loaded. `native::apply` writes it; `doctor` and `sync` read it.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const STATUS_FILE: &str = "native.status";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NativeStatus {
    /// When we last asked analysisd to reload (whatever it answered): the reload interval counts
    /// from here, so a reload that keeps failing is not retried on every sync.
    pub last_reload_at: u64,
    /// `ok`, `rejected` (our `-t` found a new problem), `failed` (analysisd refused the new
    /// ruleset), `new_warnings`, `protocol`, `not_restored` (one of those, and the previous lists
    /// could not all be put back), `local` (a file could not be written), `restart_failed`,
    /// `at_restart` (Wazuh before 4.13), `restarted`, `at_start` (analysisd was not running).
    pub last_result: String,
    pub last_message: Option<String>,
    /// When a list change was first held back by the reload interval (0: none waiting).
    pub pending_since: u64,
    /// When the lists in force were written.
    pub lists_written_at: u64,
    /// Keys per list file name, as last written.
    pub keys: BTreeMap<String, u64>,
    /// Indicators a CDB line cannot hold (quotes, line breaks, over-long), left to the runtime.
    pub refused: u64,
    /// A digest of the list texts in force, in list order.
    pub lists_digest: String,
    /// The mirror file (and list set) the lists in force were built from: while it stays the
    /// same, a sync skips rebuilding 1,000,000 keys only to find nothing changed.
    pub built_from: String,
    /// Lists analysisd (or our `-t`) refused, with the configuration they were judged against:
    /// not tried again (each try is a reload, which empties every correlation counter) until
    /// the lists or that configuration change.
    pub refused_key: String,
    /// The analysisd (pid, and its pid file's date in seconds: a pid can come back) the two
    /// counts below are for: what our hot reloads left it holding, which only its restart
    /// releases.
    pub held_pid: u32,
    pub held_since: u64,
    /// Bytes of replaced `.cdb` files it keeps mapped.
    pub held_bytes: u64,
    /// Hot reloads we asked of it (each keeps a descriptor per opened list).
    pub held_reloads: u64,
}

pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(STATUS_FILE)
}

impl NativeStatus {
    /// The recorded status, or the default when there is none or it cannot be read (it is a
    /// report and a rate limit, never a reason to fail).
    pub fn read(state_dir: &Path) -> NativeStatus {
        crate::state::read_json(&path(state_dir))
    }

    pub fn write(&self, state_dir: &Path) -> std::io::Result<()> {
        crate::state::write_json(&path(state_dir), self)
    }
}
