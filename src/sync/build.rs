//! How a sync turns MISP's answers into a new mirror: a full read (every attribute the policy
//! admits, paged in `Attribute.id` order), or an incremental one (events/index compared with the
//! events the mirror recorded; new and changed events re-read by `eventid` batches, the rest
//! copied from the old mirror). Both list the events before and after reading, and whatever
//! changed while they read is recorded as unknown so that the next run reads it again.

use crate::mirror::{Builder, EventEntry, Meta, Mirror};
use crate::misp::index::{self, IndexedEvent};
use crate::misp::search::{self, Policy};
use crate::misp::{ErrorKind, MispClient, MispError};
use crate::settings::Loaded;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Full,
    Incremental,
}

/// What one sync did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    pub kind: Kind,
    /// Why it was a full sync.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_reason: Option<String>,
    /// A new mirror was written (or, with `--dry-run`, would have been).
    pub changed: bool,
    pub requests: u64,
    pub events_listed: u64,
    pub events_read: u64,
    pub events_dropped: u64,
    /// Events that changed while this sync read MISP: the next sync reads them again.
    pub events_moved: u64,
    pub attributes_read: u64,
    pub attributes: u64,
    /// Attributes MISP returned that no lookup could ever match (excluded kinds, private IPs,
    /// allowlisted values, unparsable halves).
    pub attributes_skipped: u64,
}

pub enum Failure {
    Misp(MispError),
    /// Writing the new mirror failed (a full disk, say); the old one is untouched.
    Local(std::io::Error),
    /// The sync's own time limit.
    TimeLimit,
    /// The old mirror's records end early (the header checksum covers only the header): it
    /// must not be copied from; a full sync replaces it.
    Damaged,
}

impl From<MispError> for Failure {
    fn from(e: MispError) -> Self {
        Failure::Misp(e)
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Local(e)
    }
}

pub struct Job<'a> {
    pub loaded: &'a Loaded,
    pub client: &'a MispClient,
    pub state_dir: &'a Path,
    pub started: u64,
    pub deadline: Instant,
    pub dry_run: bool,
    /// Called with a line of progress (pages, batches).
    pub progress: &'a dyn Fn(&str),
}

struct Reader<'j, 'a> {
    job: &'j Job<'a>,
    types: Vec<&'static str>,
    policy: Policy,
    requests: u64,
    read: u64,
    skipped: u64,
}

impl Reader<'_, '_> {
    fn index(&mut self) -> Result<Vec<IndexedEvent>, Failure> {
        self.check_time()?;
        self.requests += 1;
        Ok(index::minimal_index(self.job.client)?)
    }

    fn check_time(&self) -> Result<(), Failure> {
        if Instant::now() >= self.job.deadline {
            return Err(Failure::TimeLimit);
        }
        Ok(())
    }

    /// Every admitted attribute of these events (all events when `None`), page by page, into
    /// `out`. Pages are in id order; an id at or below the last one seen is a page shift (MISP
    /// changed under us) and is skipped rather than stored twice. Only an empty page ends the
    /// read: MISP filters a page after fetching it (`search::parse_page`), so a short one may not
    /// be the last.
    fn read(&mut self, events: Option<&[u64]>, out: &mut Builder) -> Result<(), Failure> {
        let limit = self.job.loaded.settings.mirror.page_size;
        let mut last_id = 0u64;
        for page in 1u32.. {
            self.check_time()?;
            let body = search::bulk_body(&self.types, &self.policy, events, page, limit);
            self.requests += 1;
            let answer = self.job.client.post_json(search::RESTSEARCH, &body)?;
            let (attributes, sent) = search::parse_page(&answer.body)?;
            for a in attributes {
                let id: u64 = a.id.parse().unwrap_or(0);
                if id != 0 && id <= last_id {
                    continue;
                }
                last_id = last_id.max(id);
                self.read += 1;
                match crate::mirror::policy::admitted_keys(self.job.loaded, &a) {
                    Some(keys) => out.add(&a, &keys)?,
                    None => self.skipped += 1,
                }
            }
            if events.is_none() && page % 10 == 0 {
                (self.job.progress)(&format!("read {} attributes", self.read));
            }
            if sent == 0 {
                return Ok(());
            }
        }
        Ok(())
    }
}

fn indexed(e: &IndexedEvent) -> EventEntry {
    EventEntry {
        id: e.id,
        timestamp: e.timestamp,
        published: e.published,
        indexed: true,
        ..EventEntry::default()
    }
}

/// Events whose listing differs between two indexes (changed, new or gone).
fn moved(before: &[IndexedEvent], after: &[IndexedEvent]) -> HashSet<u64> {
    let a: HashMap<u64, &IndexedEvent> = before.iter().map(|e| (e.id, e)).collect();
    let b: HashMap<u64, &IndexedEvent> = after.iter().map(|e| (e.id, e)).collect();
    let mut out: HashSet<u64> = a
        .iter()
        .filter(|(id, e)| b.get(id).is_none_or(|x| x != *e))
        .map(|(id, _)| *id)
        .collect();
    out.extend(b.keys().filter(|id| !a.contains_key(id)));
    out
}

/// Reads MISP and writes the new mirror to `dest` (unless dry-run). `old` is the current mirror
/// when it answers for the same policy; `full_reason` says why an incremental sync is not enough.
pub fn sync(
    job: &Job<'_>,
    old: Option<&Mirror>,
    full_reason: Option<String>,
    dest: &Path,
) -> Result<Outcome, Failure> {
    let settings = &job.loaded.settings;
    let kinds = crate::mirror::policy::kinds(job.loaded);
    let mut reader = Reader {
        job,
        types: search::types_for(&kinds),
        policy: Policy::from(&settings.lookup),
        requests: 0,
        read: 0,
        skipped: 0,
    };
    let old = if full_reason.is_some() { None } else { old };
    let before = reader.index()?;
    // An edit in the same second as this listing would leave its event's timestamp unchanged:
    // when the newest event is that recent, the next sync reads the events of that second again.
    let newest = before.iter().map(|e| e.timestamp).max().unwrap_or(0);
    let max_event_timestamp = if newest.abs_diff(job.started) <= 2 {
        newest
    } else {
        0
    };
    let mut outcome = Outcome {
        kind: if old.is_some() {
            Kind::Incremental
        } else {
            Kind::Full
        },
        full_reason,
        changed: true,
        requests: 0,
        events_listed: before.len() as u64,
        events_read: 0,
        events_dropped: 0,
        events_moved: 0,
        attributes_read: 0,
        attributes: 0,
        attributes_skipped: 0,
    };
    // Which events each read covered, so that a change during the read marks exactly those.
    let mut batches: Vec<Vec<u64>> = Vec::new();
    let mut builder;
    match old {
        None => {
            builder = Builder::create(job.state_dir, None)?;
            (job.progress)("full sync: reading every attribute the lookup policy admits");
            reader.read(None, &mut builder)?;
            outcome.events_read = before.len() as u64;
        }
        Some(old) => {
            let recorded: HashMap<u64, EventEntry> = old.events().map(|e| (e.id, e)).collect();
            let listed: HashSet<u64> = before.iter().map(|e| e.id).collect();
            let guard = old.meta().max_event_timestamp;
            let changed: Vec<&IndexedEvent> = before
                .iter()
                .filter(|e| match recorded.get(&e.id) {
                    None => true,
                    Some(r) => {
                        r.timestamp != e.timestamp
                            || r.published != e.published
                            || !r.indexed
                            || (guard > 0 && e.timestamp >= guard)
                    }
                })
                .collect();
            // Gone from the index: deleted, emptied, or now protected (the full sync brings a
            // protected event back). Events never listed (protected at the last full sync) stay.
            let dropped: HashSet<u64> = recorded
                .values()
                .filter(|r| r.indexed && !listed.contains(&r.id))
                .map(|r| r.id)
                .collect();
            // Under `published`, an unpublished event has nothing to read.
            let to_read: Vec<u64> = changed
                .iter()
                .filter(|e| e.published || !reader.policy.published)
                .map(|e| e.id)
                .collect();
            let recorded_same = changed.iter().all(|e| {
                recorded.get(&e.id).is_some_and(|r| {
                    r.timestamp == e.timestamp
                        && r.published == e.published
                        && !e.published
                        && r.indexed
                })
            });
            if dropped.is_empty() && (changed.is_empty() || (to_read.is_empty() && recorded_same)) {
                outcome.changed = false;
                outcome.requests = reader.requests;
                outcome.attributes = old.meta().attributes;
                return Ok(outcome);
            }
            builder = Builder::create(job.state_dir, Some(old.hash_keys()))?;
            outcome.events_dropped = dropped.len() as u64;
            let changed_ids: HashSet<u64> = changed.iter().map(|e| e.id).collect();
            let mut walked = 0u64;
            for r in old.records() {
                walked += 1;
                if !changed_ids.contains(&r.event_id) && !dropped.contains(&r.event_id) {
                    builder.copy(&r, old)?;
                }
            }
            if walked != old.meta().attributes {
                return Err(Failure::Damaged);
            }
            for e in recorded
                .values()
                .filter(|r| !r.indexed && !listed.contains(&r.id))
            {
                builder.event(e.clone());
            }
            outcome.events_read = to_read.len() as u64;
            let per_batch = settings.mirror.batch_events as usize;
            for (i, batch) in to_read.chunks(per_batch).enumerate() {
                if i % 10 == 9 {
                    (job.progress)(&format!(
                        "read {} of {} changed events",
                        i * per_batch,
                        to_read.len()
                    ));
                }
                reader.read(Some(batch), &mut builder)?;
                batches.push(batch.to_vec());
            }
        }
    }
    let after = reader.index()?;
    let moved = moved(&before, &after);
    for e in &before {
        builder.event(indexed(e));
    }
    if !moved.is_empty() {
        // What was read while these events changed may be partial: record them (and, for a
        // paged full read, everything, since a page boundary may have shifted) as unknown.
        let unknown: HashSet<u64> = match old {
            None => before.iter().map(|e| e.id).collect(),
            Some(_) => {
                let mut set: HashSet<u64> = moved.clone();
                for batch in &batches {
                    if batch.iter().any(|id| moved.contains(id)) {
                        set.extend(batch);
                    }
                }
                set
            }
        };
        for e in before.iter().filter(|e| unknown.contains(&e.id)) {
            builder.event(EventEntry {
                timestamp: 0,
                ..indexed(e)
            });
        }
        outcome.events_moved = moved.len() as u64;
    }
    outcome.requests = reader.requests;
    outcome.attributes_read = reader.read;
    outcome.attributes_skipped = reader.skipped;
    outcome.attributes = builder.attributes();
    if job.dry_run {
        return Ok(outcome);
    }
    let meta = Meta {
        policy: crate::mirror::policy::fingerprint(job.loaded),
        misp_url: job.loaded.misp_url.clone(),
        data_at: job.started,
        full_at: match old {
            None => job.started,
            Some(m) => m.meta().full_at,
        },
        max_event_timestamp,
        ..Meta::default()
    };
    builder.finish(meta, dest).map_err(|e| {
        if e.kind() == std::io::ErrorKind::StorageFull {
            Failure::Local(std::io::Error::new(
                e.kind(),
                format!("{e} (the disk is full)"),
            ))
        } else {
            Failure::Local(e)
        }
    })?;
    Ok(outcome)
}

impl Failure {
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::Misp(e) => e.kind.as_str(),
            Failure::Local(_) | Failure::Damaged => "local",
            Failure::TimeLimit => ErrorKind::Timeout.as_str(),
        }
    }

    pub fn message(&self, time_limit_s: u64) -> String {
        match self {
            Failure::Misp(e) => e.to_string(),
            Failure::Local(e) => format!("cannot write the new mirror: {e}"),
            Failure::TimeLimit => {
                format!("the sync took longer than mirror.time_limit_s ({time_limit_s} s)")
            }
            Failure::Damaged => "the mirror's records are damaged".into(),
        }
    }
}
