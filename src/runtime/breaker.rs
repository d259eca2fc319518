//! The circuit breaker shared by every run: `var/custom-misp/breaker` (JSON). After
//! `breaker.failures` consecutive failures (connect, TLS, timeout, 5xx, auth, rate limit, …) MISP
//! is left alone for a back-off that doubles up to a cap; then one run (the probe) asks again and
//! decides. While it is open a run costs about a millisecond, and the error event goes out once
//! per change of state (or of error kind), not once per alert. A 429 opens it at once for the
//! server's `X-Rate-Limit-Reset`.

use super::cache::Lock;
use crate::misp::{ErrorKind, MispError};
use crate::settings::BreakerSettings;
use crate::state;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

pub const BREAKER_FILE: &str = "breaker";
/// A probe that has not reported back within this time is presumed dead (killed run).
const PROBE_GRACE_S: u64 = 60;
const MAX_RATE_LIMIT_WAIT_S: u64 = 86_400;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    #[default]
    Closed,
    Open,
    HalfOpen,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastError {
    pub kind: ErrorKind,
    pub status: Option<u16>,
    pub message: String,
}

impl From<&MispError> for LastError {
    fn from(e: &MispError) -> Self {
        LastError {
            kind: e.kind,
            status: e.status,
            message: e.message.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BreakerState {
    pub phase: Phase,
    pub failures: u32,
    pub opened_at: u64,
    pub retry_at: u64,
    pub backoff_s: u64,
    pub probe_started: u64,
    pub last_error: Option<LastError>,
    pub last_success: u64,
}

/// What a run should do about MISP.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Ask,
    /// Ask, as the one probe of an open breaker.
    Probe,
    /// Leave MISP alone until `retry_at`.
    Skip {
        retry_at: u64,
    },
}

pub struct Breaker {
    file: File,
    settings: BreakerSettings,
}

impl Breaker {
    pub fn open(state_dir: &Path, settings: &BreakerSettings) -> io::Result<Breaker> {
        let (file, _) = state::open_shared(&state_dir.join(BREAKER_FILE))?;
        Ok(Breaker {
            file,
            settings: settings.clone(),
        })
    }

    /// The stored state; anything unreadable counts as a healthy, closed breaker.
    pub fn state(&self) -> BreakerState {
        // A writer holds the lock for microseconds; without the shared lock (busy for too
        // long) the checksum-free JSON is read as is and a torn read parses as closed.
        let _shared = Lock::shared(&self.file, Instant::now() + Duration::from_millis(20)).ok();
        self.read_unlocked()
    }

    fn read_unlocked(&self) -> BreakerState {
        let len = self.file.metadata().map_or(0, |m| m.len()).min(64 * 1024);
        let mut text = vec![0u8; len as usize];
        if len == 0 || self.file.read_exact_at(&mut text, 0).is_err() {
            return BreakerState::default();
        }
        serde_json::from_slice(&text).unwrap_or_default()
    }

    /// Callers hold the exclusive lock. Writing before truncating means a reader never sees an
    /// empty file (and readers take the shared lock anyway).
    fn store(&self, state: &BreakerState) -> io::Result<()> {
        let mut bytes = serde_json::to_vec(state).map_err(io::Error::other)?;
        bytes.push(b'\n');
        self.file.write_all_at(&bytes, 0)?;
        self.file.set_len(bytes.len() as u64)
    }

    pub fn decide(&self, now: u64, deadline: Instant) -> Decision {
        let s = self.state();
        match s.phase {
            Phase::Closed => Decision::Ask,
            _ if now < s.retry_at => Decision::Skip {
                retry_at: s.retry_at,
            },
            _ => {
                // The first run past the back-off probes; the others keep skipping meanwhile.
                let Ok(_lock) = Lock::exclusive(&self.file, lock_deadline(deadline)) else {
                    return Decision::Skip {
                        retry_at: s.retry_at,
                    };
                };
                let mut s = self.read_unlocked();
                if s.phase == Phase::Closed {
                    return Decision::Ask;
                }
                if s.phase == Phase::HalfOpen && now < s.probe_started + PROBE_GRACE_S {
                    return Decision::Skip {
                        retry_at: s.retry_at,
                    };
                }
                s.phase = Phase::HalfOpen;
                s.probe_started = now;
                match self.store(&s) {
                    Ok(()) => Decision::Probe,
                    Err(_) => Decision::Skip {
                        retry_at: s.retry_at,
                    },
                }
            }
        }
    }

    /// Returns the previous state when this success changed something (so it can be logged).
    pub fn record_success(&self, now: u64, deadline: Instant) -> Option<BreakerState> {
        let quick = self.state();
        if quick.phase == Phase::Closed && quick.failures == 0 {
            return None;
        }
        let _lock = Lock::exclusive(&self.file, lock_deadline(deadline)).ok()?;
        let before = self.read_unlocked();
        let after = BreakerState {
            last_success: now,
            ..BreakerState::default()
        };
        self.store(&after).ok()?;
        Some(before)
    }

    /// Counts a failure. Returns true when the error event should be sent: the first failure
    /// after health, a new kind of error, or the breaker opening.
    pub fn record_failure(&self, err: &MispError, now: u64, deadline: Instant) -> bool {
        let Ok(_lock) = Lock::exclusive(&self.file, lock_deadline(deadline)) else {
            return true;
        };
        let before = self.read_unlocked();
        let mut s = before.clone();
        s.failures = s.failures.saturating_add(1);
        s.last_error = Some(err.into());
        let rate_limited = err.kind == ErrorKind::RateLimited;
        let opens = match before.phase {
            Phase::Closed => s.failures >= self.settings.failures || rate_limited,
            // A failed probe: open again, for longer.
            Phase::HalfOpen | Phase::Open => true,
        };
        if opens {
            s.backoff_s = match before.phase {
                Phase::Closed => self.settings.backoff_s,
                _ => (before.backoff_s.max(self.settings.backoff_s) * 2)
                    .min(self.settings.max_backoff_s),
            };
            // A proxy may send anything as the reset: never longer than a day.
            let wait = match (rate_limited, err.retry_after) {
                (true, Some(reset)) => reset.clamp(1, MAX_RATE_LIMIT_WAIT_S),
                _ => s.backoff_s,
            };
            if before.phase == Phase::Closed {
                s.opened_at = now;
            }
            s.phase = Phase::Open;
            s.retry_at = now + wait;
            s.probe_started = 0;
        }
        if self.store(&s).is_err() {
            return true;
        }
        let kind_changed = before.last_error.as_ref().map(|e| e.kind) != Some(err.kind);
        let newly_open = opens && before.phase == Phase::Closed;
        before.failures == 0 || kind_changed || newly_open
    }

    pub fn reset(&self) -> io::Result<()> {
        let _lock = Lock::exclusive(&self.file, Instant::now() + Duration::from_secs(1))?;
        self.store(&BreakerState::default())
    }
}

/// State I/O never eats more than a sliver of the run's time.
fn lock_deadline(deadline: Instant) -> Instant {
    (Instant::now() + Duration::from_millis(50)).min(deadline)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(kind: ErrorKind) -> MispError {
        MispError::new(kind, "boom")
    }

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[test]
    fn closed_open_half_open_closed() {
        let dir = tempfile::tempdir().unwrap();
        let b = Breaker::open(
            dir.path(),
            &BreakerSettings {
                failures: 3,
                backoff_s: 30,
                max_backoff_s: 100,
            },
        )
        .unwrap();
        assert_eq!(b.decide(100, far()), Decision::Ask);
        assert!(
            b.record_failure(&err(ErrorKind::Timeout), 100, far()),
            "first failure is reported"
        );
        assert!(
            !b.record_failure(&err(ErrorKind::Timeout), 101, far()),
            "same failure again is not"
        );
        assert_eq!(b.decide(101, far()), Decision::Ask);
        assert!(
            b.record_failure(&err(ErrorKind::Timeout), 102, far()),
            "opening is reported"
        );
        assert_eq!(b.state().phase, Phase::Open);
        assert_eq!(b.decide(110, far()), Decision::Skip { retry_at: 132 });
        // After the back-off one run probes; a concurrent one keeps skipping.
        assert_eq!(b.decide(132, far()), Decision::Probe);
        assert_eq!(b.decide(133, far()), Decision::Skip { retry_at: 132 });
        assert!(
            !b.record_failure(&err(ErrorKind::Timeout), 134, far()),
            "a failed probe is no news"
        );
        let s = b.state();
        assert_eq!((s.phase, s.backoff_s, s.retry_at), (Phase::Open, 60, 194));
        assert_eq!(b.decide(194, far()), Decision::Probe);
        b.record_failure(&err(ErrorKind::Timeout), 194, far());
        assert_eq!(b.state().backoff_s, 100, "capped");
        assert_eq!(b.decide(294, far()), Decision::Probe);
        assert!(b.record_success(295, far()).is_some());
        assert_eq!(b.state().phase, Phase::Closed);
        assert_eq!(b.decide(296, far()), Decision::Ask);
        assert!(
            b.record_success(297, far()).is_none(),
            "healthy successes write nothing"
        );
    }

    #[test]
    fn rate_limits_open_at_once_for_the_reset_time_and_kind_changes_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let b = Breaker::open(dir.path(), &BreakerSettings::default()).unwrap();
        let mut e = err(ErrorKind::RateLimited);
        e.retry_after = Some(420);
        assert!(b.record_failure(&e, 1000, far()));
        assert_eq!(b.decide(1000, far()), Decision::Skip { retry_at: 1420 });
        let dir = tempfile::tempdir().unwrap();
        let b = Breaker::open(dir.path(), &BreakerSettings::default()).unwrap();
        assert!(b.record_failure(&err(ErrorKind::Connect), 1, far()));
        assert!(b.record_failure(&err(ErrorKind::Auth), 2, far()));
    }

    #[test]
    fn a_garbled_state_file_is_a_closed_breaker() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(BREAKER_FILE), b"{not json").unwrap();
        let b = Breaker::open(dir.path(), &BreakerSettings::default()).unwrap();
        assert_eq!(b.decide(1, far()), Decision::Ask);
        assert!(b.record_failure(&err(ErrorKind::Server), 1, far()));
        assert_eq!(b.state().failures, 1);
    }
}
