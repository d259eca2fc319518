//! The mirror file, `var/custom-misp/mirror.db`: its layout, the streaming [`Builder`] that sync
//! writes it with, and the memory-mapped [`Mirror`] that the runtime, `mirror stats|lookup` and
//! the next sync read. A process opens it, checks a 128-byte header and looks a value up in two
//! or three page reads, whatever the mirror's size; nothing is parsed but the records it hits.
//!
//! Layout (little-endian; every offset is absolute, every section bounds-checked on open):
//!
//! | section | content |
//! |---|---|
//! | header | magic `WZMISPM1`, format, hash key, section offsets and counts, file length, checksum |
//! | records | per attribute: `len u32, attribute id u64, event id u64, n u8, n × (kind u8, hash u64)`, then the attribute as JSON |
//! | event info | per event with records: `{"uuid":…,"info":…}` |
//! | events | sorted by id, 32 bytes each: `id u64, timestamp u64, flags u32, info length u32, info offset u64` |
//! | buckets | `2^bits + 1` × u32: where each bucket's entries start |
//! | entries | sorted by (hash, attribute id), 16 bytes each: `hash u64, record offset u64` |
//! | meta | JSON [`Meta`]: the policy it answers for, when its data was read, counts |
//!
//! An index key is a kind and the value's matching form (`search::key`), hashed with SipHash-1-3
//! under a random per-file key (MISP data cannot aim collisions). A hash match is only a
//! candidate: the caller re-checks each attribute against its indicator exactly as it re-checks
//! MISP's own answers, so a collision costs time, never a wrong match.
//!
//! The file is written beside the old one and renamed over it (after fsync), so a reader always
//! sees a whole old or a whole new mirror; a mapped old file stays valid after the rename.

use crate::ioc::IocKind;
use crate::misp::search::Attribute;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::File;
use std::hash::Hasher;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// In the state directory.
pub const MIRROR_FILE: &str = "mirror.db";
const MAGIC: &[u8; 8] = b"WZMISPM1";
const FORMAT: u32 = 1;
const HEADER_LEN: u64 = 128;
const EVENT_LEN: u64 = 32;
const ENTRY_LEN: u64 = 16;
const RECORD_HEAD: u64 = 4 + 8 + 8 + 1;
const KEY_LEN: u64 = 9;
/// The header checksum's fixed key (the header is not secret; this only detects damage).
const HEADER_KEY: (u64, u64) = (0x6d69_7272_6f72_6864, 0x7761_7a75_686d_6973);
const FLAG_PUBLISHED: u32 = 1;
const FLAG_INDEXED: u32 = 2;

/// What the mirror says about itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Meta {
    /// The policy fingerprint (MISP URL, key, filters, kinds, allowlist) it answers for; a
    /// mismatch means it answers for something else and must not be used.
    pub policy: String,
    /// The MISP URL, for humans (`mirror stats`) and event links.
    pub misp_url: String,
    /// Unix time at which the sync that wrote it began reading MISP: its data is at least as new.
    pub data_at: u64,
    /// Start of the last full sync whose data it holds.
    pub full_at: u64,
    /// The newest event timestamp MISP listed; events at or after it are read again next time
    /// (an edit in that same second would not move the timestamp).
    pub max_event_timestamp: u64,
    pub attributes: u64,
    /// Index keys per kind (`ip`, `domain`, …).
    pub keys: BTreeMap<String, u64>,
    pub events: u64,
}

/// An event as the mirror records it, for the next sync's comparison and for enrichment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventEntry {
    pub id: u64,
    pub timestamp: u64,
    pub published: bool,
    /// Listed by MISP's events/index. Protected events are not, so a sync cannot see them change
    /// and keeps their attributes until the next full sync.
    pub indexed: bool,
    pub uuid: String,
    pub info: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error("cannot read the mirror {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("the mirror {path} is damaged ({what}): run `wazuh-misp sync --full`")]
    Corrupt { path: PathBuf, what: String },
}

/// The attribute as a record stores it; event id, uuid and info come from the event table.
/// `Cow`: a value with an escape (a tag with quotes) cannot be borrowed from the JSON.
#[derive(Serialize, Deserialize)]
struct Stored<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    category: Cow<'a, str>,
    #[serde(borrow)]
    value: Cow<'a, str>,
    to_ids: bool,
    #[serde(borrow)]
    uuid: Cow<'a, str>,
    #[serde(borrow)]
    comment: Cow<'a, str>,
    #[serde(borrow)]
    tags: Vec<Cow<'a, str>>,
}

fn kind_byte(kind: IocKind) -> u8 {
    IocKind::ALL.iter().position(|k| *k == kind).unwrap_or(0) as u8
}

fn kind_of(byte: u8) -> Option<IocKind> {
    IocKind::ALL.get(byte as usize).copied()
}

fn key_hash(keys: (u64, u64), kind: IocKind, key: &str) -> u64 {
    let mut h = siphasher::sip::SipHasher13::new_with_keys(keys.0, keys.1);
    h.write_u8(kind_byte(kind));
    h.write(key.as_bytes());
    h.finish()
}

fn random_keys() -> (u64, u64) {
    let mut bytes = [0u8; 16];
    if File::open("/dev/urandom")
        .and_then(|mut f| io::Read::read_exact(&mut f, &mut bytes))
        .is_err()
    {
        // No /dev/urandom: std's per-process random hasher keys are the next best thing.
        use std::hash::BuildHasher;
        let s = std::collections::hash_map::RandomState::new();
        bytes[..8].copy_from_slice(&s.hash_one(std::process::id()).to_le_bytes());
        bytes[8..].copy_from_slice(&s.hash_one(std::time::SystemTime::now()).to_le_bytes());
    }
    (
        u64::from_le_bytes(bytes[..8].try_into().unwrap_or_default()),
        u64::from_le_bytes(bytes[8..].try_into().unwrap_or_default()),
    )
}

/// Writes a new mirror next to the old one; [`Builder::finish`] renames it into place.
pub struct Builder {
    tmp: PathBuf,
    out: BufWriter<File>,
    pos: u64,
    keys: (u64, u64),
    /// (hash, attribute id, record offset) of every index key.
    entries: Vec<(u64, u64, u64)>,
    events: BTreeMap<u64, EventEntry>,
    attributes: u64,
    per_kind: [u64; IocKind::ALL.len()],
}

impl Builder {
    /// A new mirror in `dir` under a fresh hash key, or under `keys` (those of the mirror whose
    /// records [`Builder::copy`] will take over).
    pub fn create(dir: &Path, keys: Option<(u64, u64)>) -> io::Result<Builder> {
        let tmp = dir.join(format!(".{MIRROR_FILE}.tmp.{}", std::process::id()));
        let file = crate::state::create_shared_truncated(&tmp)?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        out.write_all(&[0u8; HEADER_LEN as usize])?;
        Ok(Builder {
            tmp,
            out,
            pos: HEADER_LEN,
            keys: keys.unwrap_or_else(random_keys),
            entries: Vec::new(),
            events: BTreeMap::new(),
            attributes: 0,
            per_kind: [0; IocKind::ALL.len()],
        })
    }

    pub fn hash_keys(&self) -> (u64, u64) {
        self.keys
    }

    pub fn attributes(&self) -> u64 {
        self.attributes
    }

    /// Adds one attribute under its index keys (`search::attribute_keys`, already filtered by the
    /// policy). Its event's uuid and info are taken from it the first time.
    pub fn add(&mut self, a: &Attribute, keys: &[(IocKind, String)]) -> io::Result<()> {
        let attr_id: u64 = a.id.parse().unwrap_or(0);
        let event_id: u64 = a.event_id.parse().unwrap_or(0);
        let json = serde_json::to_vec(&Stored {
            id: Cow::Borrowed(&a.id),
            kind: Cow::Borrowed(&a.kind),
            category: Cow::Borrowed(&a.category),
            value: Cow::Borrowed(&a.value),
            to_ids: a.to_ids,
            uuid: Cow::Borrowed(&a.uuid),
            comment: Cow::Borrowed(&a.comment),
            tags: a.tags.iter().map(|t| Cow::Borrowed(t.as_str())).collect(),
        })
        .map_err(io::Error::other)?;
        let hashed: Vec<(u8, u64)> = keys
            .iter()
            .take(u8::MAX as usize)
            .map(|(kind, key)| (kind_byte(*kind), key_hash(self.keys, *kind, key)))
            .collect();
        let ev = self.events.entry(event_id).or_insert_with(|| EventEntry {
            id: event_id,
            ..EventEntry::default()
        });
        if ev.uuid.is_empty() && ev.info.is_empty() {
            ev.uuid = a.event_uuid.clone();
            ev.info = a.event_info.clone();
        }
        self.write_record(attr_id, event_id, &hashed, &json)
    }

    /// Takes a record of the mirror this builder shares its hash key with, byte for byte.
    pub fn copy(&mut self, r: &Record<'_>, from: &Mirror) -> io::Result<()> {
        debug_assert_eq!(from.keys, self.keys);
        let hashed: Vec<(u8, u64)> = r.keys().collect();
        // Once per event, not per record: its info is parsed from the old file.
        let known = self
            .events
            .get(&r.event_id)
            .is_some_and(|e| !e.uuid.is_empty() || !e.info.is_empty());
        if !known {
            if let Some(ev) = from.event(r.event_id) {
                let slot = self.events.entry(r.event_id).or_insert_with(|| ev.clone());
                slot.uuid = ev.uuid;
                slot.info = ev.info;
            }
        }
        self.write_record(r.attribute_id, r.event_id, &hashed, r.json)
    }

    fn write_record(
        &mut self,
        attr_id: u64,
        event_id: u64,
        keys: &[(u8, u64)],
        json: &[u8],
    ) -> io::Result<()> {
        let at = self.pos;
        let len = RECORD_HEAD - 4 + KEY_LEN * keys.len() as u64 + json.len() as u64;
        let len32 = u32::try_from(len).map_err(|_| io::Error::other("attribute too large"))?;
        self.out.write_all(&len32.to_le_bytes())?;
        self.out.write_all(&attr_id.to_le_bytes())?;
        self.out.write_all(&event_id.to_le_bytes())?;
        self.out.write_all(&[keys.len() as u8])?;
        for (kind, hash) in keys {
            self.out.write_all(&[*kind])?;
            self.out.write_all(&hash.to_le_bytes())?;
            self.entries.push((*hash, attr_id, at));
            if let Some(n) = self.per_kind.get_mut(*kind as usize) {
                *n += 1;
            }
        }
        self.out.write_all(json)?;
        self.pos += 4 + len;
        self.attributes += 1;
        Ok(())
    }

    /// Records an event's state as MISP listed it (keeps the uuid and info its records gave).
    pub fn event(&mut self, e: EventEntry) {
        let slot = self.events.entry(e.id).or_default();
        let (uuid, info) = (
            std::mem::take(&mut slot.uuid),
            std::mem::take(&mut slot.info),
        );
        *slot = e;
        if slot.uuid.is_empty() && slot.info.is_empty() {
            slot.uuid = uuid;
            slot.info = info;
        }
    }

    /// Writes the index, the events and `meta` (whose counts are filled in here), makes the file
    /// durable and renames it to `dest`. On any error the temporary file is removed (as it is
    /// when a builder is dropped unfinished).
    pub fn finish(mut self, mut meta: Meta, dest: &Path) -> io::Result<Meta> {
        self.finish_inner(&mut meta, dest).map(|()| meta)
    }

    fn finish_inner(&mut self, meta: &mut Meta, dest: &Path) -> io::Result<()> {
        let records = (HEADER_LEN, self.pos - HEADER_LEN);
        // Event info, then the fixed-size event table pointing into it.
        let mut table = Vec::with_capacity(self.events.len() * EVENT_LEN as usize);
        for e in self.events.values() {
            let (off, len) = if e.uuid.is_empty() && e.info.is_empty() {
                (0u64, 0u32)
            } else {
                let json = serde_json::to_vec(&serde_json::json!({"uuid": e.uuid, "info": e.info}))
                    .map_err(io::Error::other)?;
                let at = self.pos;
                self.out.write_all(&json)?;
                self.pos += json.len() as u64;
                (at, u32::try_from(json.len()).map_err(io::Error::other)?)
            };
            let flags = if e.published { FLAG_PUBLISHED } else { 0 }
                | if e.indexed { FLAG_INDEXED } else { 0 };
            table.extend_from_slice(&e.id.to_le_bytes());
            table.extend_from_slice(&e.timestamp.to_le_bytes());
            table.extend_from_slice(&flags.to_le_bytes());
            table.extend_from_slice(&len.to_le_bytes());
            table.extend_from_slice(&off.to_le_bytes());
        }
        let events_off = self.pos;
        self.out.write_all(&table)?;
        self.pos += table.len() as u64;
        drop(table);

        self.entries.sort_unstable();
        let n = self.entries.len() as u64;
        let bits = (64 - n.max(16).leading_zeros()).min(32);
        let buckets_off = self.pos;
        let mut next = 0usize;
        for b in 0..=(1u64 << bits) {
            while next < self.entries.len() && self.entries[next].0 >> (64 - bits) < b {
                next += 1;
            }
            self.out.write_all(&(next as u32).to_le_bytes())?;
        }
        self.pos += ((1u64 << bits) + 1) * 4;
        let entries_off = self.pos;
        for (hash, _, off) in &self.entries {
            self.out.write_all(&hash.to_le_bytes())?;
            self.out.write_all(&off.to_le_bytes())?;
        }
        self.pos += n * ENTRY_LEN;

        meta.attributes = self.attributes;
        meta.events = self.events.len() as u64;
        meta.keys = IocKind::ALL
            .iter()
            .zip(self.per_kind)
            .map(|(k, n)| (k.as_str().to_string(), n))
            .collect();
        let meta_json = serde_json::to_vec(meta).map_err(io::Error::other)?;
        let meta_off = self.pos;
        self.out.write_all(&meta_json)?;
        self.pos += meta_json.len() as u64;

        let mut header = Vec::with_capacity(HEADER_LEN as usize);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&FORMAT.to_le_bytes());
        header.extend_from_slice(&bits.to_le_bytes());
        for v in [
            self.keys.0,
            self.keys.1,
            records.0,
            records.1,
            events_off,
            self.events.len() as u64,
            buckets_off,
            entries_off,
            n,
            meta_off,
            meta_json.len() as u64,
            self.pos,
        ] {
            header.extend_from_slice(&v.to_le_bytes());
        }
        let sum = checksum(&header);
        header.extend_from_slice(&sum.to_le_bytes());
        header.resize(HEADER_LEN as usize, 0);

        self.out.flush()?;
        let file = self.out.get_mut();
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&header)?;
        file.sync_all()?;
        std::fs::rename(&self.tmp, dest)?;
        if let Some(dir) = dest.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

impl Drop for Builder {
    fn drop(&mut self) {
        // After a successful finish the file has been renamed away and this finds nothing.
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// Removes what builders killed mid-write left behind (the caller holds the sync lock).
pub fn remove_leftovers(dir: &Path) {
    let prefix = format!(".{MIRROR_FILE}.tmp.");
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

fn checksum(bytes: &[u8]) -> u64 {
    let mut h = siphasher::sip::SipHasher13::new_with_keys(HEADER_KEY.0, HEADER_KEY.1);
    h.write(bytes);
    h.finish()
}

/// A mirror file, mapped read-only.
pub struct Mirror {
    map: memmap2::Mmap,
    path: PathBuf,
    keys: (u64, u64),
    bits: u32,
    records: (u64, u64),
    events_off: u64,
    events_count: u64,
    buckets_off: u64,
    entries_off: u64,
    entries_count: u64,
    meta: Meta,
}

/// One attribute record, borrowed from the map.
pub struct Record<'m> {
    pub attribute_id: u64,
    pub event_id: u64,
    keys: &'m [u8],
    json: &'m [u8],
}

impl Record<'_> {
    /// (kind byte, hash) of each index key.
    fn keys(&self) -> impl Iterator<Item = (u8, u64)> + '_ {
        self.keys.chunks_exact(KEY_LEN as usize).map(|c| {
            (
                c[0],
                u64::from_le_bytes(c[1..9].try_into().unwrap_or_default()),
            )
        })
    }

    /// The kinds this record is indexed under (one per key).
    pub fn kinds(&self) -> impl Iterator<Item = IocKind> + '_ {
        self.keys().filter_map(|(k, _)| kind_of(k))
    }
}

impl Mirror {
    /// `Ok(None)` when there is no mirror yet.
    pub fn open(path: &Path) -> Result<Option<Mirror>, MirrorError> {
        let io_err = |source| MirrorError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(e)),
        };
        // SAFETY: the file is never modified in place (a new mirror is renamed over it), so the
        // mapping cannot change under us; every read below is bounds-checked against its length.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io_err)?;
        Mirror::from_map(map, path).map(Some)
    }

    fn from_map(map: memmap2::Mmap, path: &Path) -> Result<Mirror, MirrorError> {
        let corrupt = |what: &str| MirrorError::Corrupt {
            path: path.to_path_buf(),
            what: what.to_string(),
        };
        let len = map.len() as u64;
        if len < HEADER_LEN || &map[..8] != MAGIC {
            return Err(corrupt("not a mirror file"));
        }
        let u32_at = |o: usize| u32::from_le_bytes(map[o..o + 4].try_into().unwrap_or_default());
        let u64_at = |o: usize| u64::from_le_bytes(map[o..o + 8].try_into().unwrap_or_default());
        if u32_at(8) != FORMAT {
            return Err(corrupt("written by another version"));
        }
        if checksum(&map[..112]) != u64_at(112) {
            return Err(corrupt("header checksum"));
        }
        let bits = u32_at(12);
        let fields: Vec<u64> = (0..12).map(|i| u64_at(16 + 8 * i)).collect();
        let f = |i: usize| fields[i];
        let m = Mirror {
            keys: (f(0), f(1)),
            records: (f(2), f(3)),
            events_off: f(4),
            events_count: f(5),
            buckets_off: f(6),
            entries_off: f(7),
            entries_count: f(8),
            bits,
            meta: Meta::default(),
            path: path.to_path_buf(),
            map,
        };
        let (meta_off, meta_len, file_len) = (f(9), f(10), f(11));
        let within = |off: u64, n: u64, size: u64| {
            n.checked_mul(size)
                .and_then(|b| b.checked_add(off))
                .is_some_and(|end| end <= len)
        };
        if file_len != len
            || bits > 32
            || !within(m.records.0, m.records.1, 1)
            || !within(m.events_off, m.events_count, EVENT_LEN)
            || !within(m.buckets_off, (1u64 << bits) + 1, 4)
            || !within(m.entries_off, m.entries_count, ENTRY_LEN)
            || !within(meta_off, meta_len, 1)
        {
            return Err(corrupt("sections out of bounds"));
        }
        let meta: Meta =
            serde_json::from_slice(&m.map[meta_off as usize..(meta_off + meta_len) as usize])
                .map_err(|_| corrupt("meta"))?;
        Ok(Mirror { meta, ..m })
    }

    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn hash_keys(&self) -> (u64, u64) {
        self.keys
    }

    pub fn size(&self) -> u64 {
        self.map.len() as u64
    }

    fn u32_at(&self, o: u64) -> Option<u32> {
        let o = usize::try_from(o).ok()?;
        Some(u32::from_le_bytes(self.map.get(o..o + 4)?.try_into().ok()?))
    }

    fn u64_at(&self, o: u64) -> Option<u64> {
        let o = usize::try_from(o).ok()?;
        Some(u64::from_le_bytes(self.map.get(o..o + 8)?.try_into().ok()?))
    }

    fn record_at(&self, at: u64) -> Option<Record<'_>> {
        let len = u64::from(self.u32_at(at)?);
        let end = at.checked_add(4)?.checked_add(len)?;
        if at < self.records.0 || end > self.records.0 + self.records.1 || len < RECORD_HEAD - 4 {
            return None;
        }
        let attribute_id = self.u64_at(at + 4)?;
        let event_id = self.u64_at(at + 12)?;
        let n = u64::from(*self.map.get(at as usize + 20)?);
        let keys_end = at + RECORD_HEAD + n * KEY_LEN;
        if keys_end > end {
            return None;
        }
        Some(Record {
            attribute_id,
            event_id,
            keys: &self.map[(at + RECORD_HEAD) as usize..keys_end as usize],
            json: &self.map[keys_end as usize..end as usize],
        })
    }

    /// Every record, in file order (unreadable ones end the walk).
    pub fn records(&self) -> impl Iterator<Item = Record<'_>> + '_ {
        let mut at = self.records.0;
        std::iter::from_fn(move || {
            let r = self.record_at(at)?;
            at += RECORD_HEAD + r.keys.len() as u64 + r.json.len() as u64;
            Some(r)
        })
    }

    fn event_at(&self, i: u64) -> Option<EventEntry> {
        let o = self.events_off + i * EVENT_LEN;
        let flags = self.u32_at(o + 16)?;
        let info_len = u64::from(self.u32_at(o + 20)?);
        let info_off = self.u64_at(o + 24)?;
        let mut e = EventEntry {
            id: self.u64_at(o)?,
            timestamp: self.u64_at(o + 8)?,
            published: flags & FLAG_PUBLISHED != 0,
            indexed: flags & FLAG_INDEXED != 0,
            ..EventEntry::default()
        };
        if info_len > 0 {
            let end = info_off.checked_add(info_len)?;
            let bytes = self
                .map
                .get(usize::try_from(info_off).ok()?..usize::try_from(end).ok()?)?;
            let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
            e.uuid = v["uuid"].as_str().unwrap_or_default().to_string();
            e.info = v["info"].as_str().unwrap_or_default().to_string();
        }
        Some(e)
    }

    /// The recorded state of every event, by id.
    pub fn events(&self) -> impl Iterator<Item = EventEntry> + '_ {
        (0..self.events_count).filter_map(|i| self.event_at(i))
    }

    pub fn event(&self, id: u64) -> Option<EventEntry> {
        let (mut lo, mut hi) = (0u64, self.events_count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let at = self.u64_at(self.events_off + mid * EVENT_LEN)?;
            match at.cmp(&id) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return self.event_at(mid),
            }
        }
        None
    }

    /// The attribute a record holds, with its event's id, uuid and info.
    pub fn attribute(&self, r: &Record<'_>) -> Option<Attribute> {
        let s: Stored = serde_json::from_slice(r.json).ok()?;
        let event = self.event(r.event_id).unwrap_or_default();
        Some(Attribute {
            id: s.id.into_owned(),
            event_id: r.event_id.to_string(),
            kind: s.kind.into_owned(),
            category: s.category.into_owned(),
            value: s.value.into_owned(),
            to_ids: s.to_ids,
            deleted: false,
            uuid: s.uuid.into_owned(),
            event_uuid: event.uuid,
            event_info: event.info,
            comment: s.comment.into_owned(),
            tags: s.tags.into_iter().map(Cow::into_owned).collect(),
        })
    }

    /// Candidate attributes for one matching key (`search::key`), the `max` lowest attribute ids.
    /// Only a hash matched: re-check them (`search::match_attributes`).
    pub fn candidates(&self, kind: IocKind, key: &str, max: usize) -> Vec<(u64, Attribute)> {
        let hash = key_hash(self.keys, kind, key);
        let bucket = if self.bits == 0 {
            0
        } else {
            hash >> (64 - self.bits)
        };
        let (Some(start), Some(end)) = (
            self.u32_at(self.buckets_off + bucket * 4),
            self.u32_at(self.buckets_off + (bucket + 1) * 4),
        ) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for i in u64::from(start)..u64::from(end).min(self.entries_count) {
            if out.len() >= max {
                break;
            }
            let o = self.entries_off + i * ENTRY_LEN;
            if self.u64_at(o) != Some(hash) {
                continue;
            }
            let Some(r) = self.u64_at(o + 8).and_then(|at| self.record_at(at)) else {
                continue;
            };
            if let Some(a) = self.attribute(&r) {
                out.push((r.attribute_id, a));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::misp::search::{attribute_keys, key};

    impl Mirror {
        fn candidates_all(&self, kind: IocKind, key: &str) -> Vec<(u64, Attribute)> {
            self.candidates(kind, key, usize::MAX)
        }
    }

    fn attr(id: u64, event: u64, kind: &str, value: &str) -> Attribute {
        Attribute {
            id: id.to_string(),
            event_id: event.to_string(),
            kind: kind.into(),
            category: "Network activity".into(),
            value: value.into(),
            to_ids: true,
            deleted: false,
            uuid: format!("uuid-{id}"),
            event_uuid: format!("event-uuid-{event}"),
            event_info: format!("event {event}"),
            comment: "a \"quoted\" comment".into(),
            tags: vec![
                "tlp:white".into(),
                "misp-galaxy:threat-actor=\"TA542\"".into(),
            ],
        }
    }

    fn build(dir: &Path, attrs: &[Attribute]) -> Mirror {
        let mut b = Builder::create(dir, None).unwrap();
        for a in attrs {
            b.add(a, &attribute_keys(a)).unwrap();
        }
        b.event(EventEntry {
            id: 4,
            timestamp: 99,
            published: true,
            indexed: true,
            ..EventEntry::default()
        });
        let dest = dir.join(MIRROR_FILE);
        b.finish(
            Meta {
                policy: "p".into(),
                ..Meta::default()
            },
            &dest,
        )
        .unwrap();
        Mirror::open(&dest).unwrap().unwrap()
    }

    #[test]
    fn attributes_are_found_under_every_key_in_id_order_and_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let attrs = vec![
            attr(9, 4, "ip-src", "185.220.101.47"),
            attr(3, 1, "domain|ip", "bad-update.net|185.220.101.47"),
            attr(5, 1, "ip-dst", "2a0d:5600:24::abcd"),
            attr(7, 2, "url", "http://malware-drop.ru/payload.exe"),
        ];
        let m = build(dir.path(), &attrs);
        let ip = m.candidates_all(IocKind::Ip, "185.220.101.47");
        assert_eq!(ip.iter().map(|(id, _)| *id).collect::<Vec<_>>(), vec![3, 9]);
        assert_eq!(ip[1].1, attrs[0]);
        assert_eq!(
            m.candidates_all(IocKind::Domain, "bad-update.net")[0].1,
            attrs[1]
        );
        let (k, v) = key(IocKind::Url, "http://malware-drop.ru/payload.exe");
        assert_eq!(m.candidates_all(k, &v)[0].1, attrs[3]);
        assert!(m.candidates_all(IocKind::Ip, "8.8.8.8").is_empty());
        assert!(m
            .candidates_all(IocKind::Domain, "185.220.101.47")
            .is_empty());
        assert_eq!(m.meta().attributes, 4);
        assert_eq!(m.meta().keys["ip"], 3);
        assert_eq!(m.meta().keys["domain"], 1);
        assert_eq!(m.meta().policy, "p");
        // Event 4's listed state and its info from the records both survive.
        let e = m.event(4).unwrap();
        assert_eq!(
            (e.timestamp, e.published, e.indexed, e.info.as_str()),
            (99, true, true, "event 4")
        );
        assert_eq!(m.events().map(|e| e.id).collect::<Vec<_>>(), vec![1, 2, 4]);
        assert_eq!(m.records().count(), 4);
    }

    #[test]
    fn copied_records_keep_their_keys_and_an_empty_mirror_works() {
        let dir = tempfile::tempdir().unwrap();
        let old = build(
            dir.path(),
            &[
                attr(1, 1, "ip-src", "45.155.205.233"),
                attr(2, 2, "md5", "44d88612fea8a8f36de82e1278abb02f"),
            ],
        );
        let mut b = Builder::create(dir.path(), Some(old.hash_keys())).unwrap();
        for r in old.records().filter(|r| r.event_id == 2) {
            b.copy(&r, &old).unwrap();
        }
        let dest = dir.path().join("copy.db");
        b.finish(Meta::default(), &dest).unwrap();
        let m = Mirror::open(&dest).unwrap().unwrap();
        assert!(m.candidates_all(IocKind::Ip, "45.155.205.233").is_empty());
        let md5 = m.candidates_all(IocKind::Md5, "44d88612fea8a8f36de82e1278abb02f");
        assert_eq!(md5[0].1.event_info, "event 2");
        assert_eq!(m.meta().keys["md5"], 1);

        let empty = dir.path().join("empty.db");
        Builder::create(dir.path(), None)
            .unwrap()
            .finish(Meta::default(), &empty)
            .unwrap();
        let m = Mirror::open(&empty).unwrap().unwrap();
        assert!(m.candidates_all(IocKind::Ip, "45.155.205.233").is_empty());
        assert_eq!(m.records().count(), 0);
        assert!(Mirror::open(&dir.path().join("none.db")).unwrap().is_none());
    }

    #[test]
    fn damaged_files_are_refused_not_read() {
        let dir = tempfile::tempdir().unwrap();
        build(dir.path(), &[attr(1, 1, "ip-src", "45.155.205.233")]);
        let path = dir.path().join(MIRROR_FILE);
        let good = std::fs::read(&path).unwrap();
        for (what, bytes) in [
            ("truncated", good[..good.len() - 1].to_vec()),
            ("short", good[..20].to_vec()),
            ("header", { let mut b = good.clone(); b[40] ^= 1; b }),
            ("foreign", b"hello world, this is not a mirror file at all, but it is long enough to pass the length check of the header: 128 bytes........".to_vec()),
        ] {
            std::fs::write(&path, &bytes).unwrap();
            assert!(matches!(Mirror::open(&path), Err(MirrorError::Corrupt { .. })), "{what}");
        }
        // Damage past the header (a record) costs that record, never a panic.
        let mut b = good.clone();
        for byte in b[HEADER_LEN as usize..HEADER_LEN as usize + 30].iter_mut() {
            *byte = 0xff;
        }
        std::fs::write(&path, &b).unwrap();
        let m = Mirror::open(&path).unwrap().unwrap();
        assert!(m.candidates_all(IocKind::Ip, "45.155.205.233").is_empty());
        assert_eq!(m.records().count(), 0);
    }
}
