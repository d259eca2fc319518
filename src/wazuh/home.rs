//! The Wazuh home: finding it (the grandparent of `integrations/custom-misp` when integratord
//! runs us, else `--wazuh-home`, `WAZUH_HOME`, or the packaged default `/var/ossec`), and where
//! our state directory lies in it.

use std::path::{Path, PathBuf};

pub const DEFAULT_HOME: &str = "/var/ossec";
/// integratord's `INTEGRATORDIR`, which is also the argv[0] it passes.
pub const INTEGRATIONS_DIR: &str = "integrations";
/// Our state directory (lookup cache, circuit breaker, notices), relative to the Wazuh home: the
/// installer creates and purges it, the runtime keeps its files in it.
pub const STATE_DIR: &str = "var/custom-misp";

/// `<home>/var/custom-misp`.
pub fn state_dir(home: &Path) -> PathBuf {
    home.join(STATE_DIR)
}

/// This process's executable, without the ` (deleted)` Linux appends while a reinstall has
/// replaced the file we are running from.
pub fn current_executable() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    use std::os::unix::ffi::OsStrExt;
    let bytes = exe.as_os_str().as_bytes();
    match bytes.strip_suffix(b" (deleted)") {
        Some(stripped) => Some(PathBuf::from(std::ffi::OsStr::from_bytes(stripped))),
        None => Some(exe),
    }
}

/// `<home>/integrations/<name>` gives `<home>`.
pub fn from_executable(exe: &Path) -> Option<PathBuf> {
    let dir = exe.parent()?;
    (dir.file_name()? == INTEGRATIONS_DIR)
        .then(|| dir.parent().map(Path::to_path_buf))
        .flatten()
}

/// The home for commands run by an admin.
pub fn resolve(explicit: Option<&Path>) -> PathBuf {
    explicit
        .map(Path::to_path_buf)
        .or_else(|| {
            std::env::var_os("WAZUH_HOME")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from(DEFAULT_HOME))
}

/// Our CDB lists (native matching), relative to the Wazuh home: a folder of ours under
/// `etc/lists/`, which the cluster ships from the master to every worker.
pub const LISTS_DIR: &str = "etc/lists/wazuh-misp";

/// The first argument with which Wazuh's command wodle runs the installed copy for the scheduled
/// sync (`<command>` in our managed ossec.conf block). integratord's first argument is always
/// the alert file's path, never this, so the two invocations cannot be mistaken for each other.
pub const SCHEDULED_SYNC_ARG: &str = "--scheduled-sync";

/// This host's name as one token (letters, digits, `.-_`): the word after the time in a syslog
/// line, and the default source of our sightings.
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into our buffer.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let raw = if rc == 0 {
        let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        String::new()
    };
    let clean: String = raw
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .collect();
    if clean.is_empty() {
        "wazuh-manager".into()
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_is_the_grandparent_of_the_integration() {
        assert_eq!(
            from_executable(Path::new("/var/ossec/integrations/custom-misp")),
            Some(PathBuf::from("/var/ossec"))
        );
        assert_eq!(from_executable(Path::new("/usr/bin/wazuh-misp")), None);
    }

    #[test]
    fn explicit_home_wins() {
        assert_eq!(resolve(Some(Path::new("/opt/w"))), PathBuf::from("/opt/w"));
    }
}
