//! The lookup cache shared by every run on the manager: `var/custom-misp/cache.db`, a fixed-size
//! hash table of 32-byte slots in 256-byte buckets (bounded: the oldest entry of a full bucket is
//! evicted), plus one small JSON file per known-bad indicator under `hits/` holding the attributes
//! MISP returned. Chosen by measurement over SQLite: a cache hit costs one open and one 256-byte
//! read here, against about 0.5 ms of open and schema work per process for SQLite.
//!
//! Keys are a SipHash-2-4 of (namespace, kind, value) under a random key stored in the file, so
//! alert data cannot aim collisions; the namespace covers the MISP URL and the lookup policy, so a
//! change of either never serves stale answers. Readers take no lock; each slot carries a
//! checksum, so a torn read is a miss. Writers hold `flock` for a few microseconds. A corrupt or
//! foreign file is rebuilt, never fatal.

use crate::ioc::{Indicator, IocKind};
use crate::misp::search::Attribute;
use crate::settings::CacheSettings;
use crate::state;
use serde::{Deserialize, Serialize};
use siphasher::sip128::{Hasher128, SipHasher24};
use std::fs::File;
use std::hash::Hasher;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const CACHE_FILE: &str = "cache.db";
pub const HITS_DIR: &str = "hits";
const MAGIC: &[u8; 8] = b"WMCACHE1";
const HEADER: u64 = 64;
const SLOT: usize = 32;
const SLOTS_PER_BUCKET: usize = 8;
const BUCKET: usize = SLOT * SLOTS_PER_BUCKET;
/// Bumped whenever what a lookup means changes (type lists, matching), to drop old answers.
const SEMANTICS: &str = "types-v1";

const NEGATIVE: u32 = 1;
const POSITIVE: u32 = 2;

#[derive(Debug, Clone, PartialEq)]
pub enum Cached {
    Miss,
    /// MISP knew nothing about it.
    Negative,
    /// The attributes that answered it.
    Positive(Vec<Attribute>),
}

pub struct Cache {
    file: File,
    hits: PathBuf,
    key: [u8; 16],
    buckets: u64,
    namespace: String,
    settings: CacheSettings,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Stats {
    pub capacity: u64,
    pub negative: u64,
    pub positive: u64,
    pub expired: u64,
    pub file_bytes: u64,
}

#[derive(Serialize, Deserialize)]
struct HitFile {
    kind: IocKind,
    value: String,
    namespace: String,
    expires: u64,
    attributes: Vec<Attribute>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Slot {
    fp: u64,
    expires: u64,
    inserted: u32,
    flags: u32,
}

impl Slot {
    fn encode(&self) -> [u8; SLOT] {
        let mut b = [0u8; SLOT];
        b[0..8].copy_from_slice(&self.fp.to_le_bytes());
        b[8..16].copy_from_slice(&self.expires.to_le_bytes());
        b[16..20].copy_from_slice(&self.inserted.to_le_bytes());
        b[20..24].copy_from_slice(&self.flags.to_le_bytes());
        let check = checksum(&b[..28]);
        b[28..32].copy_from_slice(&check.to_le_bytes());
        b
    }

    /// `None` for an empty or torn slot.
    fn decode(b: &[u8]) -> Option<Slot> {
        let word = |r: std::ops::Range<usize>| b.get(r).map(|s| s.to_vec());
        let fp = u64::from_le_bytes(word(0..8)?.try_into().ok()?);
        if fp == 0 {
            return None;
        }
        let check = u32::from_le_bytes(word(28..32)?.try_into().ok()?);
        if check != checksum(&b[..28]) {
            return None;
        }
        Some(Slot {
            fp,
            expires: u64::from_le_bytes(word(8..16)?.try_into().ok()?),
            inserted: u32::from_le_bytes(word(16..20)?.try_into().ok()?),
            flags: u32::from_le_bytes(word(20..24)?.try_into().ok()?),
        })
    }
}

fn checksum(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c9dc5;
    for b in bytes {
        h = (h ^ u32::from(*b)).wrapping_mul(0x01000193);
    }
    h
}

pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Cache {
    /// Opens (creating or rebuilding when needed) the cache in `state_dir`. `namespace` names the
    /// MISP instance and lookup policy the answers belong to.
    pub fn open(state_dir: &Path, settings: &CacheSettings, namespace: &str) -> io::Result<Cache> {
        let path = state_dir.join(CACHE_FILE);
        let buckets = u64::from(settings.max_entries.max(64))
            .div_ceil(SLOTS_PER_BUCKET as u64)
            .next_power_of_two();
        let (file, _) = state::open_shared(&path)?;
        let namespace = format!("{SEMANTICS}\n{namespace}");
        let mut cache = Cache {
            file,
            hits: state_dir.join(HITS_DIR),
            key: [0; 16],
            buckets,
            namespace,
            settings: settings.clone(),
        };
        match cache.read_header() {
            Some(key) => cache.key = key,
            None => {
                cache.rebuild(&path)?;
            }
        }
        Ok(cache)
    }

    fn expected_len(&self) -> u64 {
        HEADER + self.buckets * BUCKET as u64
    }

    /// The SipHash key, when the header is ours and the size matches the configured capacity.
    fn read_header(&self) -> Option<[u8; 16]> {
        let mut h = [0u8; HEADER as usize];
        self.file.read_exact_at(&mut h, 0).ok()?;
        let buckets = u64::from_le_bytes(h[8..16].try_into().ok()?);
        let len = self.file.metadata().ok()?.len();
        let sum = u32::from_le_bytes(h[32..36].try_into().ok()?);
        (&h[0..8] == MAGIC
            && buckets == self.buckets
            && len == self.expected_len()
            && sum == checksum(&h[..32]))
        .then(|| h[16..32].try_into().ok())
        .flatten()
    }

    /// Replaces the file with an empty table and a fresh key (atomically: readers holding the
    /// old file keep a consistent view of it).
    fn rebuild(&mut self, path: &Path) -> io::Result<()> {
        let locked = self.file.try_clone()?;
        let _lock = Lock::exclusive(&locked, Instant::now() + Duration::from_millis(200))?;
        // Someone else may have rebuilt it while we waited.
        if let Ok((fresh, _)) = state::open_shared(path) {
            self.file = fresh;
            if let Some(key) = self.read_header() {
                self.key = key;
                return Ok(());
            }
        }
        let mut key = [0u8; 16];
        random(&mut key);
        let mut header = [0u8; HEADER as usize];
        header[0..8].copy_from_slice(MAGIC);
        header[8..16].copy_from_slice(&self.buckets.to_le_bytes());
        header[16..32].copy_from_slice(&key);
        let sum = checksum(&header[..32]);
        header[32..36].copy_from_slice(&sum.to_le_bytes());
        let tmp = path.with_extension(format!("rebuild-{}", std::process::id()));
        let result = (|| {
            let (f, _) = state::open_shared(&tmp)?;
            f.set_len(self.expected_len())?;
            f.write_all_at(&header, 0)?;
            std::fs::rename(&tmp, path)?;
            Ok::<File, io::Error>(f)
        })();
        let f = result.inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })?;
        self.file = f;
        self.key = key;
        let _ = std::fs::remove_dir_all(&self.hits);
        Ok(())
    }

    fn locate(&self, kind: IocKind, value: &str) -> (u64, u64) {
        let mut h = SipHasher24::new_with_key(&self.key);
        h.write(self.namespace.as_bytes());
        h.write_u8(0);
        h.write(kind.as_str().as_bytes());
        h.write_u8(0);
        h.write(value.to_ascii_lowercase().as_bytes());
        let out = h.finish128();
        let bucket = out.h1 & (self.buckets - 1);
        (bucket, out.h2 | 1)
    }

    fn read_bucket(&self, bucket: u64) -> Option<[u8; BUCKET]> {
        let mut b = [0u8; BUCKET];
        self.file
            .read_exact_at(&mut b, HEADER + bucket * BUCKET as u64)
            .ok()?;
        Some(b)
    }

    pub fn get(&self, indicator: &Indicator, now: u64) -> Cached {
        let (bucket, fp) = self.locate(indicator.kind, &indicator.value);
        let Some(bytes) = self.read_bucket(bucket) else {
            return Cached::Miss;
        };
        let Some(slot) = bytes
            .chunks(SLOT)
            .filter_map(Slot::decode)
            .find(|s| s.fp == fp && s.expires > now)
        else {
            return Cached::Miss;
        };
        match slot.flags {
            NEGATIVE => Cached::Negative,
            POSITIVE => self
                .read_hit(fp, indicator, now)
                .map_or(Cached::Miss, Cached::Positive),
            _ => Cached::Miss,
        }
    }

    fn hit_path(&self, fp: u64) -> PathBuf {
        self.hits.join(format!("{fp:016x}.json"))
    }

    fn read_hit(&self, fp: u64, indicator: &Indicator, now: u64) -> Option<Vec<Attribute>> {
        let bytes = std::fs::read(self.hit_path(fp)).ok()?;
        let hit: HitFile = serde_json::from_slice(&bytes).ok()?;
        (hit.kind == indicator.kind
            && hit.value.eq_ignore_ascii_case(&indicator.value)
            && hit.namespace == self.namespace
            && hit.expires > now)
            .then_some(hit.attributes)
    }

    /// Stores MISP's answers: each indicator with the attributes that answered it (none: a
    /// negative answer). Gives up quietly if the lock is not free before `deadline`.
    pub fn put_all(
        &self,
        answers: &[(Indicator, Vec<Attribute>)],
        now: u64,
        deadline: Instant,
    ) -> io::Result<()> {
        if answers.is_empty() {
            return Ok(());
        }
        for (indicator, attributes) in answers.iter().filter(|(_, a)| !a.is_empty()) {
            let (_, fp) = self.locate(indicator.kind, &indicator.value);
            let hit = HitFile {
                kind: indicator.kind,
                value: indicator.value.clone(),
                namespace: self.namespace.clone(),
                expires: now + self.settings.positive_ttl_s,
                attributes: attributes.clone(),
            };
            if !self.hits.is_dir() {
                std::fs::create_dir(&self.hits).or_else(|e| {
                    if e.kind() == io::ErrorKind::AlreadyExists {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })?;
                if let Ok(d) = File::open(&self.hits) {
                    let _ = state::adopt_directory_owner(&d, &self.hits);
                    use std::os::unix::fs::PermissionsExt;
                    let _ = std::fs::set_permissions(
                        &self.hits,
                        std::fs::Permissions::from_mode(0o770),
                    );
                }
            }
            state::write_shared(
                &self.hit_path(fp),
                &serde_json::to_vec(&hit).map_err(io::Error::other)?,
            )?;
        }
        // The run's last milliseconds belong to sending the events, not to caching.
        let _lock = Lock::exclusive(
            &self.file,
            (Instant::now() + Duration::from_millis(50)).min(deadline),
        )?;
        let inserted = u32::try_from(now).unwrap_or(u32::MAX);
        for (indicator, attributes) in answers {
            let (bucket, fp) = self.locate(indicator.kind, &indicator.value);
            let (flags, ttl) = if attributes.is_empty() {
                (NEGATIVE, self.settings.negative_ttl_s)
            } else {
                (POSITIVE, self.settings.positive_ttl_s)
            };
            let Some(bytes) = self.read_bucket(bucket) else {
                continue;
            };
            let slots: Vec<Option<Slot>> = bytes.chunks(SLOT).map(Slot::decode).collect();
            let index = slots
                .iter()
                .position(|s| s.is_some_and(|s| s.fp == fp))
                .or_else(|| {
                    slots
                        .iter()
                        .position(|s| s.is_none_or(|s| s.expires <= now))
                })
                .unwrap_or_else(|| {
                    // Full bucket: evict the oldest entry.
                    (0..SLOTS_PER_BUCKET)
                        .min_by_key(|i| slots[*i].map_or(0, |s| s.inserted))
                        .unwrap_or(0)
                });
            if let Some(old) = slots[index] {
                if old.flags == POSITIVE && (old.fp != fp || flags == NEGATIVE) {
                    let _ = std::fs::remove_file(self.hit_path(old.fp));
                }
            }
            let slot = Slot {
                fp,
                expires: now + ttl,
                inserted,
                flags,
            };
            self.file.write_all_at(
                &slot.encode(),
                HEADER + bucket * BUCKET as u64 + (index * SLOT) as u64,
            )?;
        }
        Ok(())
    }

    /// Forgets one indicator's answer, so the next run asks MISP. Returns whether there was one.
    pub fn forget(&self, indicator: &Indicator, deadline: Instant) -> io::Result<bool> {
        let (bucket, fp) = self.locate(indicator.kind, &indicator.value);
        let _lock = Lock::exclusive(&self.file, deadline)?;
        let Some(bytes) = self.read_bucket(bucket) else {
            return Ok(false);
        };
        let Some((index, slot)) = bytes
            .chunks(SLOT)
            .enumerate()
            .find_map(|(i, b)| Slot::decode(b).filter(|s| s.fp == fp).map(|s| (i, s)))
        else {
            return Ok(false);
        };
        self.file.write_all_at(
            &[0u8; SLOT],
            HEADER + bucket * BUCKET as u64 + (index * SLOT) as u64,
        )?;
        if slot.flags == POSITIVE {
            let _ = std::fs::remove_file(self.hit_path(fp));
        }
        Ok(true)
    }

    pub fn stats(&self, now: u64) -> Stats {
        let mut stats = Stats {
            capacity: self.buckets * SLOTS_PER_BUCKET as u64,
            file_bytes: self.expected_len(),
            ..Stats::default()
        };
        for bucket in 0..self.buckets {
            let Some(bytes) = self.read_bucket(bucket) else {
                continue;
            };
            for slot in bytes.chunks(SLOT).filter_map(Slot::decode) {
                match (slot.expires > now, slot.flags) {
                    (false, _) => stats.expired += 1,
                    (true, NEGATIVE) => stats.negative += 1,
                    (true, _) => stats.positive += 1,
                }
            }
        }
        stats
    }
}

/// Removes the cache file and the hit files (the next run starts empty).
pub fn clear(state_dir: &Path) -> io::Result<()> {
    for p in [state_dir.join(CACHE_FILE)] {
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    match std::fs::remove_dir_all(state_dir.join(HITS_DIR)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// `flock`, waiting at most until `deadline`.
pub struct Lock<'a> {
    file: &'a File,
}

impl<'a> Lock<'a> {
    pub fn exclusive(file: &'a File, deadline: Instant) -> io::Result<Lock<'a>> {
        Self::take(file, libc::LOCK_EX, deadline)
    }

    pub fn shared(file: &'a File, deadline: Instant) -> io::Result<Lock<'a>> {
        Self::take(file, libc::LOCK_SH, deadline)
    }

    fn take(file: &'a File, kind: libc::c_int, deadline: Instant) -> io::Result<Lock<'a>> {
        use std::os::fd::AsRawFd;
        loop {
            // SAFETY: flock on a descriptor we own for the lifetime of the guard.
            if unsafe { libc::flock(file.as_raw_fd(), kind | libc::LOCK_NB) } == 0 {
                return Ok(Lock { file });
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::WouldBlock {
                return Err(err);
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "state file busy"));
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

impl Drop for Lock<'_> {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        // SAFETY: unlocking the descriptor we locked.
        unsafe { libc::flock(self.file.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// The cache's hash key. /dev/urandom rather than getrandom(2): the packaged binary targets
/// glibc 2.17 and RHEL 7's kernel, which have neither the wrapper nor the system call.
fn random(buf: &mut [u8]) {
    use std::io::Read;
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(buf));
    if read.is_err() {
        // Never fatal: a weak key only weakens collision resistance against a crafted alert.
        let t = now_unix() ^ u64::from(std::process::id());
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (t >> (i % 8 * 8)) as u8 ^ i as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ind(kind: IocKind, v: &str) -> Indicator {
        Indicator {
            kind,
            value: v.into(),
            field: "data.srcip".into(),
        }
    }

    fn attr(v: &str) -> Attribute {
        Attribute {
            id: "1".into(),
            event_id: "4".into(),
            kind: "ip-src".into(),
            category: "Network activity".into(),
            value: v.into(),
            to_ids: true,
            deleted: false,
            uuid: "u".into(),
            event_uuid: "e".into(),
            event_info: "SSH brute force".into(),
            comment: String::new(),
            tags: vec!["tlp:white".into()],
        }
    }

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[test]
    fn hits_misses_negatives_and_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let s = CacheSettings::default();
        let c = Cache::open(dir.path(), &s, "https://misp|1|1").unwrap();
        let bad = ind(IocKind::Ip, "185.220.101.47");
        let fine = ind(IocKind::Ip, "8.8.8.8");
        assert_eq!(c.get(&bad, 1000), Cached::Miss);
        c.put_all(
            &[
                (bad.clone(), vec![attr("185.220.101.47")]),
                (fine.clone(), vec![]),
            ],
            1000,
            far(),
        )
        .unwrap();
        assert_eq!(
            c.get(&bad, 1001),
            Cached::Positive(vec![attr("185.220.101.47")])
        );
        assert_eq!(c.get(&fine, 1001), Cached::Negative);
        assert_eq!(
            c.get(&fine, 1000 + s.negative_ttl_s),
            Cached::Miss,
            "negatives expire first"
        );
        assert!(matches!(
            c.get(&bad, 1000 + s.negative_ttl_s),
            Cached::Positive(_)
        ));
        assert_eq!(c.get(&bad, 1000 + s.positive_ttl_s), Cached::Miss);
        // Another process sees the same answers.
        let again = Cache::open(dir.path(), &s, "https://misp|1|1").unwrap();
        assert_eq!(again.get(&fine, 1001), Cached::Negative);
        // A different MISP or policy never sees them.
        let other = Cache::open(dir.path(), &s, "https://other|1|1").unwrap();
        assert_eq!(other.get(&fine, 1001), Cached::Miss);
        // Forgetting one answer leaves the others.
        assert!(c.forget(&bad, far()).unwrap());
        assert_eq!(c.get(&bad, 1001), Cached::Miss);
        assert_eq!(c.get(&fine, 1001), Cached::Negative);
        assert!(!c.forget(&bad, far()).unwrap());
    }

    #[test]
    fn the_table_is_bounded_and_evicts_the_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let s = CacheSettings {
            max_entries: 64,
            ..CacheSettings::default()
        };
        let c = Cache::open(dir.path(), &s, "ns").unwrap();
        for i in 0..1000u64 {
            c.put_all(
                &[(
                    ind(IocKind::Ip, &format!("9.9.{}.{}", i / 256, i % 256)),
                    vec![],
                )],
                1000 + i,
                far(),
            )
            .unwrap();
        }
        let len = std::fs::metadata(dir.path().join(CACHE_FILE))
            .unwrap()
            .len();
        assert_eq!(len, HEADER + 8 * BUCKET as u64);
        let stats = c.stats(1000);
        assert_eq!(stats.negative, 64);
        assert_eq!(
            c.get(&ind(IocKind::Ip, "9.9.3.231"), 2000),
            Cached::Negative,
            "the newest survive"
        );
    }

    #[test]
    fn corrupt_or_foreign_files_are_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let s = CacheSettings::default();
        std::fs::write(dir.path().join(CACHE_FILE), b"garbage that is not a cache").unwrap();
        let c = Cache::open(dir.path(), &s, "ns").unwrap();
        let i = ind(IocKind::Domain, "bad-update.net");
        c.put_all(&[(i.clone(), vec![])], 10, far()).unwrap();
        assert_eq!(c.get(&i, 11), Cached::Negative);
        // Flip bytes inside the bucket: the torn slot reads as a miss, never as garbage.
        let (bucket, _) = c.locate(i.kind, &i.value);
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join(CACHE_FILE))
            .unwrap();
        f.write_all_at(&[0xAA; BUCKET], HEADER + bucket * BUCKET as u64)
            .unwrap();
        assert_eq!(c.get(&i, 11), Cached::Miss);
        // A capacity change rebuilds with the new size.
        let bigger = CacheSettings {
            max_entries: 200_000,
            ..s
        };
        Cache::open(dir.path(), &bigger, "ns").unwrap();
        assert_eq!(
            std::fs::metadata(dir.path().join(CACHE_FILE))
                .unwrap()
                .len(),
            HEADER + 32768 * BUCKET as u64
        );
    }
}
