//! Answers an alert's indicators. In `online` mode: first from the shared cache, then (for the
//! rest, and only while the circuit breaker allows) with one MISP search, whose answers go back
//! into the cache. In `mirror` mode: from the local mirror only, with no network at all. In
//! `hybrid` mode: the mirror for its kinds while it is fresh, `online` for the rest.
//! Without the state directory (not installed yet) every run simply asks MISP.

use super::breaker::{Breaker, Decision};
use super::cache::{self, Cache, Cached};
use super::deadline::Deadline;
use crate::ioc::Indicator;
use crate::mirror::Mirror;
use crate::misp::search::{self, Match, Policy};
use crate::misp::{ErrorKind, MispClient, MispError};
use crate::settings::{Loaded, LookupMode};
use crate::wazuh::log::IntegrationsLog;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Default)]
pub struct Outcome {
    /// Every attribute that answers one of the indicators, once each.
    pub matches: Vec<Match>,
    /// Those of `matches` (at the front) that the mirror answered.
    pub from_mirror: usize,
    /// A mirror problem worth an event (at most once a day): `(status, message)`.
    pub mirror_notice: Option<MirrorNotice>,
    /// MISP failed; `report` says whether this failure is news worth an error event.
    pub error: Option<(MispError, bool)>,
    pub from_cache: usize,
    pub asked: usize,
    /// The breaker is open: MISP was left alone.
    pub skipped: bool,
}

/// Identifies the answers of one MISP instance, seen by one key (another user or organisation may
/// see other events), under one policy. The key enters only as a hash: the namespace is stored in
/// the hit files.
pub fn namespace(loaded: &Loaded) -> String {
    use std::hash::Hasher;
    let l = &loaded.settings.lookup;
    let mut h =
        siphasher::sip::SipHasher24::new_with_keys(0x7761_7a75_686d_6973, 0x7020_6b65_7920_6964);
    h.write(loaded.api_key.expose().as_bytes());
    format!(
        "{}\nkey={:016x} to_ids={} published={} warninglist={} limit={}",
        loaded.misp_url,
        h.finish(),
        l.to_ids,
        l.published,
        l.enforce_warninglist,
        l.limit
    )
}

pub fn lookup(
    home: &Path,
    loaded: &Loaded,
    indicators: &[Indicator],
    deadline: &Deadline,
    log: &IntegrationsLog,
) -> Outcome {
    let mode = loaded.settings.lookup.mode;
    if mode == LookupMode::Online {
        return online(home, loaded, indicators, deadline, log);
    }
    let now = cache::now_unix();
    let (mirror, notice) = open_mirror(home, loaded, now);
    let fresh = mirror.as_ref().filter(|(_, stale)| !stale).map(|(m, _)| m);
    let usable = mirror.as_ref().map(|(m, _)| m);
    // Hybrid asks MISP for the kinds the mirror lacks, and for everything while it is stale.
    let (from_mirror, rest): (Vec<Indicator>, Vec<Indicator>) = match (mode, fresh, usable) {
        (LookupMode::Hybrid, Some(_), _) => {
            let kinds = crate::mirror::policy::kinds(loaded);
            indicators
                .iter()
                .cloned()
                .partition(|i| kinds.contains(&i.kind))
        }
        (LookupMode::Hybrid, None, _) => (Vec::new(), indicators.to_vec()),
        (_, _, Some(_)) => (indicators.to_vec(), Vec::new()),
        (_, _, None) => (Vec::new(), Vec::new()),
    };
    let mut out = if rest.is_empty() {
        Outcome::default()
    } else {
        online(home, loaded, &rest, deadline, log)
    };
    if let (Some(m), false) = (usable, from_mirror.is_empty()) {
        let policy = Policy::from(&loaded.settings.lookup);
        let mut found = crate::mirror::answer(m, &from_mirror, &policy);
        out.from_mirror = found.len();
        out.from_cache += from_mirror.len();
        found.append(&mut out.matches);
        out.matches = found;
    }
    if let Some((status, message)) = notice {
        // Once a day, not once per alert of a storm.
        if super::notice::first_time(home, &format!("mirror-{status} {}", now / 86_400)) {
            log.warning(format!("mirror {status}: {message}"));
            out.mirror_notice = Some((status, message));
        }
    }
    dedupe(out)
}

/// A mirror problem for an event: its status (`missing`, `stale`) and what to do.
type MirrorNotice = (&'static str, String);

/// The mirror and whether it is stale, or a problem to report (missing, unreadable, built for
/// another MISP or policy: then it is not used at all; stale: it is still used).
fn open_mirror(
    home: &Path,
    loaded: &Loaded,
    now: u64,
) -> (Option<(Mirror, bool)>, Option<MirrorNotice>) {
    let dir = crate::wazuh::home::state_dir(home);
    let fix = "run `sudo wazuh-misp sync` and check `wazuh-misp mirror stats`";
    let mirror = match Mirror::open(&dir.join(crate::mirror::MIRROR_FILE)) {
        Ok(Some(m)) => m,
        Ok(None) => {
            return (
                None,
                Some((
                    "missing",
                    format!(
                        "there is no mirror yet, so lookup.mode {:?} matches nothing: {fix}",
                        loaded.settings.lookup.mode
                    )
                    .to_lowercase(),
                )),
            )
        }
        Err(e) => return (None, Some(("missing", format!("{e}")))),
    };
    if mirror.meta().policy != crate::mirror::policy::fingerprint(loaded) {
        return (
            None,
            Some(("missing", format!("the mirror was built for another MISP, key or lookup policy and is not used: {fix}"))),
        );
    }
    let status = crate::mirror::Status::read(&dir);
    let age = crate::mirror::age_s(&mirror, &status, now);
    let max = loaded.settings.mirror.max_age_s();
    let stale = age > max;
    let notice = stale.then(|| {
        (
            "stale",
            format!(
                "the mirror last matched MISP {age} s ago (mirror.max_age_s {max}){}: {fix}",
                status
                    .last_error
                    .as_ref()
                    .map(|e| format!("; the last sync failed: {e}"))
                    .unwrap_or_default()
            ),
        )
    });
    (Some((mirror, stale)), notice)
}

fn online(
    home: &Path,
    loaded: &Loaded,
    indicators: &[Indicator],
    deadline: &Deadline,
    log: &IntegrationsLog,
) -> Outcome {
    let settings = &loaded.settings;
    let policy = Policy::from(&settings.lookup);
    let state_dir = crate::wazuh::home::state_dir(home);
    let stateful = state_dir.is_dir();
    let now = cache::now_unix();
    let cache = if stateful && settings.cache.enabled {
        Cache::open(&state_dir, &settings.cache, &namespace(loaded))
            .inspect_err(|e| log.warning(format!("cache unavailable ({e}); asking MISP directly")))
            .ok()
    } else {
        None
    };
    let mut out = Outcome::default();
    let mut missing: Vec<Indicator> = Vec::new();
    for indicator in indicators {
        match cache
            .as_ref()
            .map_or(Cached::Miss, |c| c.get(indicator, now))
        {
            Cached::Miss => missing.push(indicator.clone()),
            Cached::Negative => out.from_cache += 1,
            Cached::Positive(attributes) => {
                out.from_cache += 1;
                out.matches.extend(search::match_attributes(
                    attributes,
                    std::slice::from_ref(indicator),
                    &policy,
                ));
            }
        }
    }
    if missing.is_empty() {
        return dedupe(out);
    }
    let breaker = if stateful {
        Breaker::open(&state_dir, &settings.breaker)
            .inspect_err(|e| log.warning(format!("circuit breaker state unavailable ({e})")))
            .ok()
    } else {
        None
    };
    if let Some(b) = &breaker {
        if let Decision::Skip { retry_at } = b.decide(now, deadline.at()) {
            log.debug(format!(
                "MISP is failing; not asking it until {} s from now",
                retry_at.saturating_sub(now)
            ));
            out.skipped = true;
            return dedupe(out);
        }
    }
    out.asked = missing.len();
    let ask = |indicators: &[Indicator]| {
        MispClient::new(
            &loaded.misp_url,
            loaded.api_key.clone(),
            &settings.misp,
            deadline.http_budget(Duration::from_millis(settings.misp.timeout_ms)),
        )
        .and_then(|client| search::search(&client, indicators, &policy))
    };
    let result = ask(&missing).map(|mut found| {
        // `limit` attributes came back, perhaps all for one popular indicator: ask once more
        // for the indicators still unanswered, if time allows.
        if found.truncated && deadline.http_budget(Duration::MAX) > Duration::from_millis(500) {
            let unanswered: Vec<Indicator> = missing
                .iter()
                .filter(|i| !found.matches.iter().any(|m| m.indicator == **i))
                .cloned()
                .collect();
            if !unanswered.is_empty() && unanswered.len() < missing.len() {
                if let Ok(more) = ask(&unanswered) {
                    found.matches.extend(more.matches);
                    found.truncated = more.truncated;
                }
            }
        }
        found
    });
    match result {
        Ok(found) => {
            if let Some(before) = breaker
                .as_ref()
                .and_then(|b| b.record_success(now, deadline.at()))
            {
                if before.failures > 0 {
                    log.info(format!(
                        "MISP answers again after {} failed attempt(s)",
                        before.failures
                    ));
                }
            }
            if let Some(c) = &cache {
                let answers: Vec<(Indicator, Vec<search::Attribute>)> = missing
                    .iter()
                    .map(|i| {
                        let attrs = found
                            .matches
                            .iter()
                            .filter(|m| m.indicator == *i)
                            .map(|m| m.attribute.clone())
                            .collect();
                        (i.clone(), attrs)
                    })
                    // A truncated answer cannot prove a negative.
                    .filter(|(_, attrs): &(Indicator, Vec<_>)| {
                        !(found.truncated && attrs.is_empty())
                    })
                    .collect();
                if let Err(e) = c.put_all(&answers, now, deadline.at()) {
                    log.debug(format!("cache not updated: {e}"));
                }
            }
            out.matches.extend(found.matches);
        }
        Err(e) => {
            let report = match (&breaker, e.kind) {
                (Some(b), kind) if kind != ErrorKind::Config => {
                    b.record_failure(&e, now, deadline.at())
                }
                // Our own settings are broken, not MISP: one event per problem and day, not
                // one per alert of a storm (integrations.log and the exit code say it each time).
                (Some(_), _) => super::notice::first_time(
                    home,
                    &format!("config-event {} {}", now / 86_400, e.message),
                ),
                (None, _) => true,
            };
            out.error = Some((e, report));
        }
    }
    dedupe(out)
}

fn dedupe(mut out: Outcome) -> Outcome {
    let mut seen = std::collections::HashSet::new();
    out.matches
        .retain(|m| m.attribute.uuid.is_empty() || seen.insert(m.attribute.uuid.clone()));
    out
}
