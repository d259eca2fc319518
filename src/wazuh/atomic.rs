//! Crash-safe file changes for the installer: replace a file through a temp file in the same
//! directory (owner, group and mode set before it becomes visible; fsync; rename; fsync of the
//! directory), timestamped backups next to a file with pruning, and an exclusive lock against
//! concurrent runs. A kill at any moment leaves either the old or the new file, never a mix.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Owner, group and permission bits a file must end up with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMeta {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

impl FileMeta {
    pub fn of(path: &Path) -> io::Result<FileMeta> {
        let m = fs::symlink_metadata(path)?;
        Ok(FileMeta {
            uid: m.uid(),
            gid: m.gid(),
            mode: m.mode() & 0o7777,
        })
    }
}

/// Replaces (or creates) `path` with `bytes` so that readers only ever see the old or the new
/// content. Works while another process executes the old file (rename, not overwrite).
pub fn write_atomic(path: &Path, bytes: &[u8], meta: FileMeta) -> io::Result<()> {
    write_atomic_at(path, bytes, meta, None)
}

/// [`write_atomic`], the new file dated `mtime` before it takes the name: setting it afterwards
/// would open the name again, which someone else may have replaced by then.
pub fn write_atomic_at(
    path: &Path,
    bytes: &[u8],
    meta: FileMeta,
    mtime: Option<std::time::SystemTime>,
) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let (tmp_path, mut tmp) = create_temp(dir, &name.to_string_lossy())?;
    let result = (|| {
        tmp.write_all(bytes)?;
        if nix::unistd::geteuid().is_root() {
            std::os::unix::fs::fchown(&tmp, Some(meta.uid), Some(meta.gid))?;
        }
        // After chown: chown clears set-id bits.
        tmp.set_permissions(fs::Permissions::from_mode(meta.mode))?;
        if let Some(mtime) = mtime {
            tmp.set_modified(mtime)?;
        }
        tmp.sync_all()?;
        fs::rename(&tmp_path, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp_path);
    }
    result
}

/// Removes `path` (if present) and makes the removal durable.
pub fn remove_durable(path: &Path) -> io::Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => {
            if let Some(dir) = path.parent() {
                sync_dir(dir)?;
            }
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

fn create_temp(dir: &Path, name: &str) -> io::Result<(PathBuf, File)> {
    let pid = std::process::id();
    for attempt in 0..100u32 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let tmp = dir.join(format!(".{name}.wazuh-misp-{pid}-{nanos:x}-{attempt}.tmp"));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
        {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("cannot create a temporary file"))
}

/// Removes temp files a killed run of ours left in `dir`. Call only while holding the lock.
pub fn remove_stale_temps(dir: &Path) -> io::Result<usize> {
    let mut removed = 0;
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(0);
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.contains(".wazuh-misp-") && name.ends_with(".tmp") {
            fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Tag of our backup files: `ossec.conf.wazuh-misp-20261127T063500Z-000.bak` (UTC).
const BACKUP_TAG: &str = ".wazuh-misp-";

/// Copies `path` to a timestamped backup next to it (same owner, group and mode) and keeps the
/// newest `keep` of our backups of that file. Returns the backup's path.
pub fn backup(path: &Path, keep: usize) -> io::Result<PathBuf> {
    let bytes = fs::read(path)?;
    let meta = FileMeta::of(path)?;
    // UTC, so names sort in time order across daylight-saving changes.
    let stamp = utc_stamp();
    let base = format!("{}{BACKUP_TAG}{stamp}", path.display());
    // The sequence number keeps names unique and in order within one second, even after pruning.
    let next = backups_of(path)?
        .iter()
        .filter_map(|p| {
            let name = p.to_string_lossy();
            let rest = name.strip_prefix(base.as_str())?.strip_prefix('-')?;
            rest.strip_suffix(".bak")?.parse::<u32>().ok()
        })
        .max()
        .map_or(0, |n| n + 1);
    let target = PathBuf::from(format!("{base}-{next:03}.bak"));
    write_atomic(&target, &bytes, meta)?;
    prune_backups(path, keep)?;
    Ok(target)
}

/// `20261127T063500Z`.
fn utc_stamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (y, m, d, h, mi, s) = crate::civil::utc_fields(now);
    format!("{y:04}{m:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

/// Our backups of `path`, oldest first.
pub fn backups_of(path: &Path) -> io::Result<Vec<PathBuf>> {
    let Some(dir) = path.parent() else {
        return Ok(Vec::new());
    };
    let prefix = format!(
        "{}{BACKUP_TAG}",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    );
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) && name.ends_with(".bak") {
            found.push((name, entry.path()));
        }
    }
    // Names carry a sortable timestamp and sequence number.
    found.sort();
    Ok(found.into_iter().map(|(_, p)| p).collect())
}

fn prune_backups(path: &Path, keep: usize) -> io::Result<()> {
    let all = backups_of(path)?;
    let excess = all.len().saturating_sub(keep);
    for old in &all[..excess] {
        fs::remove_file(old)?;
    }
    Ok(())
}

/// An exclusive advisory lock on a directory, held until dropped. Locking the directory itself
/// leaves no lock file behind.
pub struct DirLock {
    _dir: File,
}

impl DirLock {
    /// Waits up to `wait` for another holder to finish.
    pub fn acquire(dir: &Path, wait: std::time::Duration) -> io::Result<DirLock> {
        let file = File::open(dir)?;
        let started = std::time::Instant::now();
        loop {
            // SAFETY: flock on a descriptor we own.
            let rc = unsafe {
                libc::flock(
                    std::os::fd::AsRawFd::as_raw_fd(&file),
                    libc::LOCK_EX | libc::LOCK_NB,
                )
            };
            if rc == 0 {
                return Ok(DirLock { _dir: file });
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::WouldBlock || started.elapsed() >= wait {
                return Err(if err.kind() == io::ErrorKind::WouldBlock {
                    io::Error::new(
                        io::ErrorKind::WouldBlock,
                        format!(
                            "another wazuh-misp is changing {} (lock held)",
                            dir.display()
                        ),
                    )
                } else {
                    err
                });
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_with_meta_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ossec.conf");
        fs::write(&p, "old").unwrap();
        let meta = FileMeta {
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
            mode: 0o640,
        };
        write_atomic(&p, b"new", meta).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"new");
        assert_eq!(FileMeta::of(&p).unwrap(), meta);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn backups_are_pruned_to_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ossec.conf");
        fs::write(&p, "v0").unwrap();
        let mut made = Vec::new();
        for i in 0..7 {
            fs::write(&p, format!("v{i}")).unwrap();
            made.push(backup(&p, 3).unwrap());
        }
        let kept = backups_of(&p).unwrap();
        assert_eq!(kept.len(), 3);
        assert_eq!(fs::read_to_string(kept.last().unwrap()).unwrap(), "v6");
        assert!(!made[0].exists());
    }

    #[test]
    fn the_lock_is_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let held = DirLock::acquire(dir.path(), std::time::Duration::ZERO).unwrap();
        let second = DirLock::acquire(dir.path(), std::time::Duration::from_millis(100));
        assert!(second.is_err());
        drop(held);
        DirLock::acquire(dir.path(), std::time::Duration::ZERO).unwrap();
    }
}
