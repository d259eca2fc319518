//! Files in the state directory `<home>/var/custom-misp/` (its path is the Wazuh home layout's,
//! [`crate::wazuh::home::state_dir`]; `install` creates it, mode 0770, group the Wazuh group):
//! whoever creates one (integratord's runs as user wazuh, or `test`/`doctor`/`cache` run as root)
//! it ends up with the directory's owner and group and mode 0660, so the Wazuh user can always
//! write it.
//!
//! The directory is writable by the Wazuh user, and the sync and the sightings flush run as root:
//! no file here is ever opened through a symlink (`O_NOFOLLOW`), and a file root writes in full
//! is always created fresh (`O_EXCL`), so a planted link cannot point root's writes, truncation or
//! `fchown` at another file.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Opens `path` read-write, creating it (and giving it the directory's owner, group, mode 0660)
/// when missing. Returns the file and whether this call created it.
pub fn open_shared(path: &Path) -> io::Result<(File, bool)> {
    let mut opts = OpenOptions::new();
    opts.read(true)
        .write(true)
        .mode(0o660)
        .custom_flags(libc::O_NOFOLLOW);
    match opts.open(path) {
        Ok(f) => Ok((f, false)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            match opts.clone().create_new(true).open(path) {
                Ok(f) => {
                    adopt_directory_owner(&f, path)?;
                    Ok((f, true))
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok((opts.open(path)?, false)),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// Mode 0660 and, when we are root, the owner and group of the containing directory.
pub fn adopt_directory_owner(file: &File, path: &Path) -> io::Result<()> {
    if nix::unistd::geteuid().is_root() {
        if let Some(dir) = path.parent().and_then(|d| std::fs::metadata(d).ok()) {
            std::os::unix::fs::fchown(file, Some(dir.uid()), Some(dir.gid()))?;
        }
    }
    file.set_permissions(std::fs::Permissions::from_mode(0o660))
}

/// Creates `path` afresh for writing (whatever was there is unlinked first, never followed), with
/// the shared ownership: the start of a file that is written in full and then renamed into place.
pub fn create_shared_truncated(path: &Path) -> io::Result<File> {
    for _ in 0..10 {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o660)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
        {
            Ok(f) => {
                adopt_directory_owner(&f, path)?;
                return Ok(f);
            }
            // Someone put a name there again between the unlink and the create: try again.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("{} keeps being recreated by someone else", path.display()),
    ))
}

/// A JSON state file that is a report (or a rate limit), never a reason to fail: the default
/// when it is missing or unreadable.
pub fn read_json<T: serde::de::DeserializeOwned + Default>(path: &Path) -> T {
    use std::io::Read;
    let mut bytes = Vec::new();
    File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .and_then(|f| f.take(MAX_JSON_BYTES).read_to_end(&mut bytes))
        .ok()
        .and_then(|_| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Far above any state file we write: a larger one is not ours.
const MAX_JSON_BYTES: u64 = 1 << 20;

/// Writes `value` as a pretty JSON state file, atomically, with the shared ownership.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    write_shared(path, &bytes)
}

/// Writes a small state file atomically (temp file + rename) with the shared ownership.
pub fn write_shared(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = create_shared_truncated(&tmp)?;
        f.write_all(bytes)?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planted_symlinks_are_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let planted = dir.path().join(".mirror.db.tmp.1");
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        let mut f = create_shared_truncated(&planted).unwrap();
        std::io::Write::write_all(&mut f, b"ours").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(!std::fs::symlink_metadata(&planted)
            .unwrap()
            .file_type()
            .is_symlink());
        let link = dir.path().join("sightings.spool");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        assert!(
            open_shared(&link).is_err(),
            "an existing symlink is refused"
        );
        let status = dir.path().join("mirror.status");
        std::os::unix::fs::symlink(&victim, &status).unwrap();
        write_shared(&status, b"{}").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert_eq!(std::fs::read(&status).unwrap(), b"{}");
    }
}
