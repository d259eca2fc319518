//! Whether a Wazuh daemon runs, and since when. Wazuh writes `var/run/<daemon>-<pid>.pid` when
//! a daemon starts (`CreatePID` in src/shared/file_op.c, 4.x): its modification time is the
//! daemon's start, which tells whether a file changed after it last read it.

use std::path::Path;
use std::time::SystemTime;

/// What a daemon's pid files say.
pub enum Daemon {
    Running {
        pid: u32,
        since: SystemTime,
    },
    NotRunning,
    /// No `var/run` to tell (not a packaged layout).
    Unknown,
}

/// Whether `name` runs, from its pid file.
pub fn status(home: &Path, name: &str) -> Daemon {
    let Ok(dir) = std::fs::read_dir(home.join("var/run")) else {
        return Daemon::Unknown;
    };
    let prefix = format!("{name}-");
    let proc_visible = Path::new("/proc/self").exists();
    let mut best: Option<(u32, SystemTime)> = None;
    for entry in dir.flatten() {
        let file = entry.file_name();
        let Some(pid) = file
            .to_str()
            .and_then(|f| f.strip_prefix(&prefix))
            .and_then(|f| f.strip_suffix(".pid"))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if proc_visible && !Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let since = entry
            .metadata()
            .and_then(|m| m.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        if best.is_none_or(|(_, t)| since > t) {
            best = Some((pid, since));
        }
    }
    match best {
        Some((pid, since)) => Daemon::Running { pid, since },
        None => Daemon::NotRunning,
    }
}

/// The first of these files (relative to the home) modified after `since`.
pub fn newer_than(home: &Path, rels: &[&str], since: SystemTime) -> Option<String> {
    rels.iter()
        .find(|rel| {
            std::fs::metadata(home.join(rel))
                .and_then(|m| m.modified())
                .is_ok_and(|t| t > since)
        })
        .map(|rel| rel.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_files_tell_running_daemons_and_their_start() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            status(dir.path(), "wazuh-analysisd"),
            Daemon::Unknown
        ));
        std::fs::create_dir_all(dir.path().join("var/run")).unwrap();
        assert!(matches!(
            status(dir.path(), "wazuh-analysisd"),
            Daemon::NotRunning
        ));
        // A stale pid file (no such process) does not count.
        std::fs::write(dir.path().join("var/run/wazuh-analysisd-999999999.pid"), "").unwrap();
        assert!(matches!(
            status(dir.path(), "wazuh-analysisd"),
            Daemon::NotRunning
        ));
        let me = std::process::id();
        std::fs::write(
            dir.path().join(format!("var/run/wazuh-analysisd-{me}.pid")),
            "",
        )
        .unwrap();
        match status(dir.path(), "wazuh-analysisd") {
            Daemon::Running { pid, since } => {
                assert_eq!(pid, me);
                std::fs::create_dir_all(dir.path().join("etc")).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(20));
                std::fs::write(dir.path().join("etc/x"), "").unwrap();
                assert_eq!(
                    newer_than(dir.path(), &["etc/y", "etc/x"], since).as_deref(),
                    Some("etc/x")
                );
            }
            _ => panic!("running"),
        }
        assert!(matches!(
            status(dir.path(), "wazuh-integratord"),
            Daemon::NotRunning
        ));
    }
}
