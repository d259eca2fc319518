//! Warnings that matter once, not once per alert (unknown settings keys, TLS verification off,
//! the legacy alert format): a marker file in the state directory `var/custom-misp/` records that
//! a notice was logged. Without that directory (not installed yet) the notice is logged each time.

use crate::wazuh::home::state_dir;
use crate::wazuh::log::IntegrationsLog;
use std::fs::OpenOptions;
use std::hash::{Hash, Hasher};
use std::path::Path;

/// Logs `message` as a warning unless a notice with the same `key` was logged before.
pub fn once(home: &Path, log: &IntegrationsLog, key: &str, message: &str) {
    if first_time(home, key) {
        log.warning(message);
    }
}

/// True the first time `key` is seen (always, without the state directory).
pub fn first_time(home: &Path, key: &str) -> bool {
    let dir = state_dir(home);
    if !dir.is_dir() {
        return true;
    }
    // FNV-1a: stable across builds, unlike std's randomly seeded hasher.
    let mut h = Fnv(0xcbf29ce484222325);
    key.hash(&mut h);
    let path = dir.join(format!("notice-{:016x}", h.0));
    match OpenOptions::new().write(true).create_new(true).open(&path) {
        Ok(file) => {
            crate::wazuh::log::adopt_owner_of_parent(&file, &path);
            true
        }
        Err(e) => e.kind() != std::io::ErrorKind::AlreadyExists,
    }
}

struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100000001b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_is_logged_once_per_key_when_the_state_dir_exists() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(state_dir(home.path())).unwrap();
        assert!(first_time(home.path(), "a"));
        assert!(!first_time(home.path(), "a"));
        assert!(first_time(home.path(), "b"));
        let bare = tempfile::tempdir().unwrap();
        assert!(first_time(bare.path(), "a") && first_time(bare.path(), "a"));
    }
}
