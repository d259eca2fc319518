//! Files in the state directory `<home>/var/custom-misp/` (its path is the Wazuh home layout's,
//! [`crate::wazuh::home::state_dir`]; `install` creates it, mode 0770, group the Wazuh group):
//! whoever creates one (integratord's runs as user wazuh, or `test`/`doctor`/`cache` run as root)
//! it ends up with the directory's owner and group and mode 0660, so the Wazuh user can always
//! write it.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Opens `path` read-write, creating it (and giving it the directory's owner, group, mode 0660)
/// when missing. Returns the file and whether this call created it.
pub fn open_shared(path: &Path) -> io::Result<(File, bool)> {
    let mut opts = OpenOptions::new();
    opts.read(true).write(true).mode(0o660);
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

/// Creates (or empties) `path` for writing, with the shared ownership: the start of a file that
/// is written in full and then renamed into place.
pub fn create_shared_truncated(path: &Path) -> io::Result<File> {
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o660)
        .open(path)?;
    adopt_directory_owner(&f, path)?;
    Ok(f)
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
