//! Wazuh's CDB text lists, as analysisd compiles them (`Lists_OP_MakeCDB` in
//! `src/analysisd/lists_make.c`, 4.14.7): one `key:value` a line; a line is read with
//! `fgets(…, OS_MAXSTR - 1)` and cut at the first CR or LF; a key holding `:` is written in double
//! quotes (`"2001:db8::1":v`), and a `"` anywhere before the first `:` starts a quoted key. So a key
//! with a `"`, a CR, a LF or a NUL, or one too long for a line, cannot be written: [`encode_key`]
//! refuses it rather than write a broken list. The `.cdb` is rebuilt only when the text file's
//! mtime (whole seconds, strictly: `File_DateofChange(txt) > File_DateofChange(cdb)`) is newer,
//! so [`write_list`] dates the new text at least one second after the old `.cdb`: the next
//! compile (a hot reload, `-t`, a restart) always reads the new text, and the old `.cdb` stays in
//! place until then (analysisd opens a list lazily, and a missing `.cdb` fails every lookup).

use crate::wazuh::atomic;
use std::io;
use std::path::{Path, PathBuf};

/// Well below `OS_MAXSTR - 2` (65534), the longest line analysisd reads whole.
pub const MAX_KEY_BYTES: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("empty")]
    Empty,
    #[error("longer than {MAX_KEY_BYTES} bytes")]
    TooLong,
    #[error("holds a double quote, a CR, a LF or a NUL, which a CDB list line cannot carry")]
    Unrepresentable,
}

/// The key as a list line writes it: quoted when it holds `:`.
pub fn encode_key(key: &str) -> Result<String, KeyError> {
    if key.is_empty() {
        return Err(KeyError::Empty);
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(KeyError::TooLong);
    }
    if key.contains(['"', '\r', '\n', '\0']) {
        return Err(KeyError::Unrepresentable);
    }
    Ok(if key.contains(':') {
        format!("\"{key}\"")
    } else {
        key.to_string()
    })
}

/// The text of a list: `keys` (already sorted and de-duplicated), each with `value`, which must
/// itself be a plain word. Keys that cannot be written are returned, not written.
pub fn render(keys: &[String], value: &str) -> (Vec<u8>, Vec<(String, KeyError)>) {
    debug_assert!(!value.contains([':', '"', '\r', '\n']));
    let mut text = Vec::with_capacity(keys.len() * 24);
    let mut refused = Vec::new();
    for key in keys {
        match encode_key(key) {
            Ok(k) => {
                text.extend_from_slice(k.as_bytes());
                text.push(b':');
                text.extend_from_slice(value.as_bytes());
                text.push(b'\n');
            }
            Err(e) => refused.push((key.clone(), e)),
        }
    }
    (text, refused)
}

pub fn cdb_path(list: &Path) -> PathBuf {
    let mut p = list.as_os_str().to_owned();
    p.push(".cdb");
    PathBuf::from(p)
}

/// Replaces the list at `path` atomically (owner, group and mode `meta`), dated so that its
/// `.cdb` is stale. Returns whether the text changed; an unchanged list is not touched at all, so
/// analysisd has nothing to recompile.
pub fn write_list(path: &Path, text: &[u8], meta: atomic::FileMeta) -> io::Result<bool> {
    if std::fs::read(path).is_ok_and(|old| old == text) {
        return Ok(false);
    }
    atomic::write_atomic_at(path, text, meta, Some(stale_mtime(path)))?;
    Ok(true)
}

/// A date for a new text of `list` at least one whole second after its `.cdb`, if there is one,
/// so analysisd's strict seconds comparison rebuilds it even when both were written within the
/// same second.
fn stale_mtime(list: &Path) -> std::time::SystemTime {
    let now = std::time::SystemTime::now();
    let secs = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    };
    match std::fs::symlink_metadata(cdb_path(list)).and_then(|m| m.modified()) {
        Ok(compiled) if secs(now) <= secs(compiled) => {
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs(compiled) + 1)
        }
        _ => now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads a list back the way `Lists_OP_MakeCDB` does, to prove what we write parses to the
    /// keys we meant.
    fn wazuh_keys(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        for line in text.split('\n') {
            let line = line.split('\r').next().unwrap_or("");
            let (key, rest) = match (line.find('"'), line.find(':')) {
                (Some(q), Some(c)) if c > q => {
                    let after = &line[q + 1..];
                    let Some(end) = after.find('"') else { continue };
                    (after[..end].to_string(), &after[end + 1..])
                }
                _ => match line.find(':') {
                    Some(c) => (line[..c].to_string(), &line[c..]),
                    None => continue,
                },
            };
            if rest.starts_with(':') {
                out.push(key);
            }
        }
        out
    }

    #[test]
    fn keys_round_trip_through_analysisds_reader() {
        let keys: Vec<String> = [
            "185.220.101.47",
            "2a0d:5600:24::abcd",
            "http://malware-drop.ru/payload.exe",
            "https://x.example/a?b=c:d&e=%22",
            "bad-update.net",
            "44d88612fea8a8f36de82e1278abb02f",
        ]
        .map(String::from)
        .into();
        let (text, refused) = render(&keys, "misp");
        assert!(refused.is_empty());
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("\"2a0d:5600:24::abcd\":misp\n"), "{text}");
        assert!(text.contains("185.220.101.47:misp\n"), "{text}");
        assert_eq!(wazuh_keys(&text), keys);
    }

    #[test]
    fn unwritable_keys_are_refused_never_written() {
        let long = "a".repeat(MAX_KEY_BYTES + 1);
        let keys: Vec<String> = [
            "ok.example",
            "http://x/\"quoted\"",
            "a\nb",
            "c\rd",
            "",
            &long,
            "n\0ul",
        ]
        .map(String::from)
        .into();
        let (text, refused) = render(&keys, "misp");
        assert_eq!(String::from_utf8(text).unwrap(), "ok.example:misp\n");
        let reasons: Vec<KeyError> = refused.into_iter().map(|(_, e)| e).collect();
        assert_eq!(
            reasons,
            vec![
                KeyError::Unrepresentable,
                KeyError::Unrepresentable,
                KeyError::Unrepresentable,
                KeyError::Empty,
                KeyError::TooLong,
                KeyError::Unrepresentable
            ]
        );
    }

    #[test]
    fn a_changed_list_is_dated_after_its_cdb_and_an_unchanged_one_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("misp-ip");
        let meta = atomic::FileMeta {
            uid: nix::unistd::getuid().as_raw(),
            gid: nix::unistd::getgid().as_raw(),
            mode: 0o660,
        };
        assert!(write_list(&list, b"1.2.3.4:misp\n", meta).unwrap());
        std::fs::write(cdb_path(&list), b"compiled").unwrap();
        assert!(!write_list(&list, b"1.2.3.4:misp\n", meta).unwrap());
        assert!(cdb_path(&list).exists(), "nothing to recompile");
        // A .cdb compiled in the same second (or dated later, by a clock step) than the text.
        let future = std::time::SystemTime::now() + std::time::Duration::from_secs(30);
        std::fs::File::options()
            .write(true)
            .open(cdb_path(&list))
            .unwrap()
            .set_modified(future)
            .unwrap();
        assert!(write_list(&list, b"5.6.7.8:misp\n", meta).unwrap());
        assert_eq!(std::fs::read(&list).unwrap(), b"5.6.7.8:misp\n");
        assert_eq!(
            std::fs::read(cdb_path(&list)).unwrap(),
            b"compiled",
            "the old .cdb serves until analysisd rebuilds it"
        );
        let secs = |p: &Path| {
            std::fs::metadata(p)
                .unwrap()
                .modified()
                .unwrap()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
        };
        assert!(
            secs(&list) > secs(&cdb_path(&list)),
            "analysisd rebuilds only when the text is newer, in whole seconds"
        );
    }
}
