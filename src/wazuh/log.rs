//! `logs/integrations.log`, where Wazuh's own integrations log, in Wazuh's daemon style
//! (`2026/11/27 06:05:24 custom-misp: ERROR: …`). The file is opened only when there is something
//! to write; a file this process creates gets mode 0640 and the owner and group of `logs/`
//! (the Wazuh user's), even when a root-run command creates it. The API key is scrubbed from
//! every line as a last line of defence.

use std::cell::OnceCell;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub const LOG_PATH: &str = "logs/integrations.log";
const TAG: &str = "custom-misp";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warning,
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
        }
    }
}

pub struct IntegrationsLog {
    path: PathBuf,
    debug: bool,
    secret: Option<String>,
    file: OnceCell<Option<File>>,
}

impl IntegrationsLog {
    pub fn new(home: &Path, debug: bool) -> Self {
        IntegrationsLog {
            path: home.join(LOG_PATH),
            debug,
            secret: None,
            file: OnceCell::new(),
        }
    }

    /// A value that must never be written, whatever message carries it.
    pub fn redact(&mut self, secret: &str) {
        if !secret.is_empty() {
            self.secret = Some(secret.to_string());
        }
    }

    pub fn debug_enabled(&self) -> bool {
        self.debug
    }

    pub fn debug(&self, msg: impl AsRef<str>) {
        if self.debug {
            self.write(Level::Debug, msg.as_ref());
        }
    }
    pub fn info(&self, msg: impl AsRef<str>) {
        self.write(Level::Info, msg.as_ref());
    }
    pub fn warning(&self, msg: impl AsRef<str>) {
        self.write(Level::Warning, msg.as_ref());
    }
    pub fn error(&self, msg: impl AsRef<str>) {
        self.write(Level::Error, msg.as_ref());
    }

    fn write(&self, level: Level, msg: &str) {
        let Some(mut file) = self.file.get_or_init(|| open_log(&self.path)).as_ref() else {
            return;
        };
        let mut msg = msg.replace(['\n', '\r'], " ");
        if let Some(secret) = &self.secret {
            msg = msg.replace(secret.as_str(), "****");
        }
        let line = format!("{} {TAG}: {}: {msg}\n", local_timestamp(), level.as_str());
        // One write per line keeps lines whole when several processes append at once.
        let _ = file.write_all(line.as_bytes());
    }
}

fn open_log(path: &Path) -> Option<File> {
    let mut opts = OpenOptions::new();
    opts.append(true).mode(0o640);
    if let Ok(f) = opts.open(path) {
        return Some(f);
    }
    let file = opts.create_new(true).open(path).ok().or_else(|| {
        // Another process created it between our two opens.
        OpenOptions::new().append(true).open(path).ok()
    })?;
    adopt_owner_of_parent(&file, path);
    Some(file)
}

/// Gives a file we created the mode 0640 and the owner and group of its directory, so a log or
/// state file created by root stays writable by the Wazuh user.
pub fn adopt_owner_of_parent(file: &File, path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = file.set_permissions(std::fs::Permissions::from_mode(0o640));
    if nix::unistd::geteuid().is_root() {
        if let Some(dir) = path.parent().and_then(|d| std::fs::metadata(d).ok()) {
            let _ = std::os::unix::fs::fchown(file, Some(dir.uid()), Some(dir.gid()));
        }
    }
}

/// `YYYY/MM/DD HH:MM:SS` in local time, as Wazuh's daemons write it.
pub fn local_timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as libc::time_t)
        .unwrap_or(0);
    // SAFETY: localtime_r only writes into the zeroed struct we own.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&now, &mut tm).is_null() };
    if !ok {
        return "1970/01/01 00:00:00".into();
    }
    format!(
        "{:04}/{:02}/{:02} {:02}:{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_wazuh_style_and_never_show_the_secret() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir(home.path().join("logs")).unwrap();
        let mut log = IntegrationsLog::new(home.path(), false);
        log.redact("SECRETKEY");
        log.debug("hidden without debug");
        log.error("auth failed for SECRETKEY\nsecond line");
        let text = std::fs::read_to_string(home.path().join(LOG_PATH)).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(
            text.contains(" custom-misp: ERROR: auth failed for **** second line"),
            "{text}"
        );
        assert!(!text.contains("SECRETKEY"));
        let b = text.as_bytes();
        assert!(
            b[4] == b'/' && b[7] == b'/' && b[10] == b' ' && b[13] == b':',
            "{text}"
        );
        let mode = std::fs::metadata(home.path().join(LOG_PATH))
            .unwrap()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o640);
    }

    #[test]
    fn a_missing_logs_directory_is_not_fatal() {
        let home = tempfile::tempdir().unwrap();
        IntegrationsLog::new(home.path(), true).error("nowhere to go");
    }
}
