//! The sightings spool, `var/custom-misp/sightings.spool`: one JSON line per reported hit
//! (value, MISP type, attribute uuid, the alert's time), appended by the per-alert run in a single
//! `write` under a short `flock`, and taken whole by the flush (renamed to `sightings.sending`,
//! which stays until every record in it is delivered or dropped). The spool is bounded: when an
//! append would pass `sightings.max_spool_kb`, the oldest half is dropped first and counted in
//! `sightings.dropped`.

use crate::state;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

pub const SPOOL_FILE: &str = "sightings.spool";
/// The batch a flush is delivering; a kill leaves it for the next flush (at least once).
pub const SENDING_FILE: &str = "sightings.sending";
const DROPPED_FILE: &str = "sightings.dropped";

/// One hit to report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The attribute's value as MISP has it.
    #[serde(rename = "v")]
    pub value: String,
    /// Its MISP type.
    #[serde(rename = "t")]
    pub kind: String,
    /// The attribute the sighting goes on.
    #[serde(rename = "u")]
    pub attribute_uuid: String,
    /// When the alert happened (Unix seconds).
    #[serde(rename = "ts")]
    pub seen_at: u64,
}

pub fn spool_path(state_dir: &Path) -> PathBuf {
    state_dir.join(SPOOL_FILE)
}

pub fn sending_path(state_dir: &Path) -> PathBuf {
    state_dir.join(SENDING_FILE)
}

struct Locked(File);

impl Locked {
    /// The spool, locked. If a flush renamed it away while we waited for the lock, the file we
    /// hold is the flush's batch: open the new spool instead.
    fn open(path: &Path) -> io::Result<Locked> {
        use std::os::unix::fs::MetadataExt;
        loop {
            let (file, _) = state::open_shared(path)?;
            // SAFETY: flock on a descriptor we own for the guard's lifetime.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
                return Err(io::Error::last_os_error());
            }
            let held = file.metadata()?.ino();
            match std::fs::metadata(path) {
                Ok(m) if m.ino() == held => return Ok(Locked(file)),
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        // SAFETY: as above.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

fn encode(records: &[Record]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records {
        if serde_json::to_writer(&mut out, r).is_ok() {
            out.push(b'\n');
        }
    }
    out
}

/// Appends `records`; returns how many older records had to be dropped to stay within `max_bytes`.
pub fn append(state_dir: &Path, records: &[Record], max_bytes: u64) -> io::Result<u64> {
    if records.is_empty() {
        return Ok(0);
    }
    let bytes = encode(records);
    let mut spool = Locked::open(&spool_path(state_dir))?;
    let size = spool.0.metadata()?.len();
    let mut dropped = 0;
    if size + bytes.len() as u64 > max_bytes {
        // Keep the newest half: the oldest hits go first.
        let mut text = Vec::new();
        spool.0.seek(SeekFrom::Start(0))?;
        spool.0.read_to_end(&mut text)?;
        let lines: Vec<&[u8]> = text
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        let keep_from = lines.len() / 2;
        dropped = keep_from as u64;
        let mut kept: Vec<u8> = Vec::with_capacity(text.len() / 2);
        for l in &lines[keep_from..] {
            kept.extend_from_slice(l);
            kept.push(b'\n');
        }
        if kept.len() as u64 + bytes.len() as u64 > max_bytes {
            dropped = lines.len() as u64;
            kept.clear();
        }
        spool.0.set_len(0)?;
        spool.0.seek(SeekFrom::Start(0))?;
        spool.0.write_all(&kept)?;
        add_dropped(state_dir, dropped);
    }
    // A line a killed writer left without its newline must not swallow ours.
    let end = spool.0.seek(SeekFrom::End(0))?;
    let mut last = [0u8; 1];
    if end > 0 {
        spool.0.seek(SeekFrom::Start(end - 1))?;
        spool.0.read_exact(&mut last)?;
        spool.0.seek(SeekFrom::End(0))?;
    }
    if end > 0 && last[0] != b'\n' {
        spool.0.write_all(b"\n")?;
    }
    spool.0.write_all(&bytes)?;
    Ok(dropped)
}

/// Moves the spool to `sightings.sending` for delivery, unless a batch is still pending there.
/// Returns the records to deliver (the pending batch first).
pub fn take(state_dir: &Path) -> io::Result<Vec<Record>> {
    let sending = sending_path(state_dir);
    if !sending.exists() {
        let spool = Locked::open(&spool_path(state_dir))?;
        if spool.0.metadata()?.len() > 0 {
            std::fs::rename(spool_path(state_dir), &sending)?;
        }
    }
    match std::fs::read(&sending) {
        Ok(bytes) => Ok(decode(&bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Records what is still to deliver of the batch (nothing: the batch is done).
pub fn keep_pending(state_dir: &Path, records: &[Record]) -> io::Result<()> {
    let sending = sending_path(state_dir);
    if records.is_empty() {
        return match std::fs::remove_file(&sending) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    state::write_shared(&sending, &encode(records))
}

/// Lines that do not parse (a torn last line after a crash) are skipped.
fn decode(bytes: &[u8]) -> Vec<Record> {
    bytes
        .split(|b| *b == b'\n')
        .filter_map(|l| serde_json::from_slice(l).ok())
        .collect()
}

/// Records waiting: in the spool and in the batch being delivered.
pub fn pending(state_dir: &Path) -> (u64, u64) {
    let count = |p: PathBuf| {
        std::fs::read(p)
            .map(|b| b.split(|c| *c == b'\n').filter(|l| !l.is_empty()).count() as u64)
            .unwrap_or(0)
    };
    (count(spool_path(state_dir)), count(sending_path(state_dir)))
}

/// Records dropped since the state directory was made (the spool was full).
pub fn dropped(state_dir: &Path) -> u64 {
    std::fs::read_to_string(state_dir.join(DROPPED_FILE))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn add_dropped(state_dir: &Path, n: u64) {
    let total = dropped(state_dir) + n;
    let _ = state::write_shared(
        &state_dir.join(DROPPED_FILE),
        format!("{total}\n").as_bytes(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(i: u64) -> Record {
        Record {
            value: format!("45.155.205.{}", i % 250),
            kind: "ip-dst".into(),
            attribute_uuid: format!("uuid-{i}"),
            seen_at: 1_700_000_000 + i,
        }
    }

    #[test]
    fn appends_are_taken_whole_and_a_pending_batch_comes_first() {
        let dir = tempfile::tempdir().unwrap();
        append(dir.path(), &[rec(1), rec(2)], 1 << 20).unwrap();
        let batch = take(dir.path()).unwrap();
        assert_eq!(batch, vec![rec(1), rec(2)]);
        // Not delivered yet: new hits go to a fresh spool, the batch stays.
        append(dir.path(), &[rec(3)], 1 << 20).unwrap();
        assert_eq!(take(dir.path()).unwrap(), vec![rec(1), rec(2)]);
        assert_eq!(pending(dir.path()), (1, 2));
        keep_pending(dir.path(), &[rec(2)]).unwrap();
        assert_eq!(take(dir.path()).unwrap(), vec![rec(2)]);
        keep_pending(dir.path(), &[]).unwrap();
        assert_eq!(take(dir.path()).unwrap(), vec![rec(3)]);
        keep_pending(dir.path(), &[]).unwrap();
        assert!(take(dir.path()).unwrap().is_empty());
    }

    #[test]
    fn a_full_spool_drops_its_oldest_records_and_counts_them() {
        let dir = tempfile::tempdir().unwrap();
        let one = encode(&[rec(1)]).len() as u64;
        let max = one * 10;
        for i in 0..25 {
            append(dir.path(), &[rec(i)], max).unwrap();
        }
        let size = std::fs::metadata(spool_path(dir.path())).unwrap().len();
        assert!(size <= max, "{size} > {max}");
        let left = take(dir.path()).unwrap();
        assert_eq!(left.last(), Some(&rec(24)), "the newest survive");
        assert_eq!(dropped(dir.path()) + left.len() as u64, 25);
        // A torn line (a crash mid-write) costs that line only.
        std::fs::write(
            sending_path(dir.path()),
            b"{\"v\":\"1.2.3.4\",\"t\":\"ip-src\",\"u\":\"a\",\"ts\":1}\n{\"v\":\"x",
        )
        .unwrap();
        assert_eq!(take(dir.path()).unwrap().len(), 1);
    }
}
