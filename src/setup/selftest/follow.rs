//! Following `logs/alerts/alerts.json` from a remembered offset, as `tail -F` would: complete
//! lines only (a line being written is kept until its newline arrives), and through rotation
//! (Wazuh moves the file away at midnight and starts a new one: the rest of the old file is read
//! through the open handle, then the new file from its start) and truncation (read again from
//! the start).

use serde_json::Value;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Relative to the Wazuh home.
pub const ALERTS_PATH: &str = "logs/alerts/alerts.json";
/// A longer "line" is not an alert; it is dropped rather than held in memory.
const MAX_LINE: usize = 16 << 20;

pub struct Follower {
    path: PathBuf,
    file: File,
    /// Device and inode of the open file.
    id: (u64, u64),
    offset: u64,
    partial: Vec<u8>,
    /// Skipping the rest of an overlong line.
    discarding: bool,
    rotated: bool,
}

impl Follower {
    /// Starts at the current end of the file: only what is written from now on is seen.
    pub fn at_end(path: &Path) -> io::Result<Follower> {
        let mut file = File::open(path)?;
        let md = file.metadata()?;
        let offset = file.seek(SeekFrom::End(0))?;
        Ok(Follower {
            path: path.to_path_buf(),
            file,
            id: (md.dev(), md.ino()),
            offset,
            partial: Vec::new(),
            discarding: false,
            rotated: false,
        })
    }

    /// Whether a rotation or truncation was seen so far.
    pub fn rotated(&self) -> bool {
        self.rotated
    }

    /// The alerts written since the last call (lines that are not JSON objects are skipped).
    pub fn poll(&mut self) -> Vec<Value> {
        let mut out = Vec::new();
        self.drain(&mut out);
        match std::fs::metadata(&self.path) {
            Ok(md) if (md.dev(), md.ino()) != self.id => {
                // Rotated: the old file was read to its end above; go on with the new one.
                if let Ok(file) = File::open(&self.path) {
                    let md = file.metadata().unwrap_or(md);
                    self.file = file;
                    self.id = (md.dev(), md.ino());
                    self.reset();
                    self.drain(&mut out);
                }
            }
            // Truncated in place.
            Ok(md) if md.len() < self.offset && self.file.seek(SeekFrom::Start(0)).is_ok() => {
                self.reset();
                self.drain(&mut out);
            }
            // Same file, or none at the moment (mid-rotation): keep the handle.
            _ => {}
        }
        out
    }

    fn reset(&mut self) {
        self.offset = 0;
        self.partial.clear();
        self.discarding = false;
        self.rotated = true;
    }

    fn drain(&mut self, out: &mut Vec<Value>) {
        let mut buf = [0u8; 64 * 1024];
        loop {
            let n = match self.file.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            self.offset += n as u64;
            let mut rest = &buf[..n];
            while let Some(nl) = rest.iter().position(|b| *b == b'\n') {
                if !self.discarding {
                    self.partial.extend_from_slice(&rest[..nl]);
                    if let Ok(v) = crate::runtime::alert::parse_json(&self.partial) {
                        out.push(v);
                    }
                }
                self.partial.clear();
                self.discarding = false;
                rest = &rest[nl + 1..];
            }
            if !self.discarding {
                self.partial.extend_from_slice(rest);
                if self.partial.len() > MAX_LINE {
                    self.partial.clear();
                    self.discarding = true;
                }
            }
        }
    }
}

pub use crate::runtime::alert::alert_time_ms;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn append(path: &Path, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn ids(v: &[Value]) -> Vec<i64> {
        v.iter().map(|a| a["id"].as_i64().unwrap()).collect()
    }

    #[test]
    fn starts_at_the_end_and_waits_for_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("alerts.json");
        append(&p, "{\"id\":1}\n{\"id\":2}\n");
        let mut f = Follower::at_end(&p).unwrap();
        assert!(f.poll().is_empty());
        append(&p, "{\"id\":3}\n{\"id\":");
        assert_eq!(ids(&f.poll()), [3]);
        append(&p, "4}\nnot json\n[1]\n");
        assert_eq!(ids(&f.poll()), [4]);
        assert!(!f.rotated());
    }

    #[test]
    fn follows_a_rotation_after_reading_the_old_file_to_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("alerts.json");
        append(&p, "{\"id\":1}\n");
        let mut f = Follower::at_end(&p).unwrap();
        append(&p, "{\"id\":2}\n");
        std::fs::rename(&p, dir.path().join("ossec-alerts-27.json")).unwrap();
        assert_eq!(ids(&f.poll()), [2], "the file is gone for a moment");
        append(&dir.path().join("ossec-alerts-27.json"), "{\"id\":3}\n");
        append(&p, "{\"id\":4}\n");
        assert_eq!(ids(&f.poll()), [3, 4]);
        assert!(f.rotated());
        append(&p, "{\"id\":5}\n");
        assert_eq!(ids(&f.poll()), [5]);
    }

    #[test]
    fn alert_timestamps_are_read_with_their_zone() {
        let t = |s: &str| alert_time_ms(&serde_json::json!({ "timestamp": s }));
        assert_eq!(t("1970-01-01T00:00:00.000+0000"), Some(0));
        assert_eq!(t("2026-11-27T06:05:24.123+0000"), Some(1_795_759_524_123));
        assert_eq!(t("2026-11-27T07:05:24.123+0100"), Some(1_795_759_524_123));
        assert_eq!(t("2026-11-27T01:05:24.123-0500"), Some(1_795_759_524_123));
        assert_eq!(t("2024-02-29T00:00:00Z"), Some(1_709_164_800_000));
        assert_eq!(t("Nov 27 06:05:24"), None);
        assert_eq!(alert_time_ms(&serde_json::json!({})), None);
    }

    #[test]
    fn starts_over_after_a_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("alerts.json");
        append(&p, "{\"id\":1}\n{\"id\":2}\n");
        let mut f = Follower::at_end(&p).unwrap();
        std::fs::write(&p, "{\"id\":7}\n").unwrap();
        assert_eq!(ids(&f.poll()), [7]);
        assert!(f.rotated());
    }
}
