//! The mirror: a local, exact copy of the MISP attributes the lookup policy admits, kept in the
//! state directory by `wazuh-misp sync` and read by the runtime in `mirror` and `hybrid` modes,
//! so an alert is answered with no network at all. `format` owns the file, `policy` says what a
//! mirror answers for, `status` records what the syncs did.

pub mod cmd;
pub mod format;
pub mod policy;
pub mod status;

pub use format::{Builder, EventEntry, Meta, Mirror, MirrorError, MIRROR_FILE};
pub use status::Status;

/// Seconds since the mirror's data matched MISP: from the last successful sync, or the data time
/// of the file itself.
pub fn age_s(mirror: &Mirror, status: &Status, now: u64) -> u64 {
    now.saturating_sub(mirror.meta().data_at.max(status.verified_at))
}

use crate::ioc::Indicator;
use crate::misp::search::{self, Match, Policy};

/// Answers `indicators` from the mirror as online mode's searches would: for each indicator its
/// `lookup.limit` lowest-id candidates (what a search, and the follow-up search for indicators a
/// full page left unanswered, can return), in attribute id order, re-checked and de-duplicated
/// by `search::match_attributes`. The limit also bounds the work for a value held by thousands
/// of attributes.
pub fn answer(mirror: &Mirror, indicators: &[Indicator], policy: &Policy) -> Vec<Match> {
    let limit = policy.limit as usize;
    let mut candidates: Vec<(u64, search::Attribute)> = Vec::new();
    for i in indicators {
        let (kind, key) = search::key(i.kind, &i.value);
        candidates.extend(mirror.candidates(kind, &key, limit));
    }
    candidates.sort_by_key(|(id, _)| *id);
    candidates.dedup_by(|a, b| a.0 == b.0 && a.1.uuid == b.1.uuid);
    search::match_attributes(
        candidates.into_iter().map(|(_, a)| a).collect(),
        indicators,
        policy,
    )
}
