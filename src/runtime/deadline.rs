//! The run's time budget. integratord waits for us with no timeout of its own and runs every
//! integration one at a time, so we end well inside its `<timeout>`: the HTTP request gets what is
//! left minus a reserve for sending events, and a kernel timer kills the process as a last
//! resort should anything still block past the deadline.

use std::time::{Duration, Instant};

/// Kept for sending the events after MISP has answered (or failed).
const SEND_RESERVE: Duration = Duration::from_millis(150);
const MIN_BUDGET: Duration = Duration::from_millis(300);

pub struct Deadline {
    at: Instant,
    budget: Duration,
}

impl Deadline {
    /// A tenth of integratord's timeout (between 0.2 and 1 s) is kept as a safety margin.
    pub fn for_timeout(timeout: Duration) -> Deadline {
        let margin = (timeout / 10).clamp(Duration::from_millis(200), Duration::from_secs(1));
        let budget = timeout.saturating_sub(margin).max(MIN_BUDGET);
        Deadline {
            at: Instant::now() + budget,
            budget,
        }
    }

    pub fn at(&self) -> Instant {
        self.at
    }

    /// Time for the MISP request: the configured timeout, capped by what the run has left.
    pub fn http_budget(&self, configured: Duration) -> Duration {
        let left = self.at.saturating_duration_since(Instant::now());
        configured
            .min(left.saturating_sub(SEND_RESERVE))
            .max(Duration::from_millis(50))
    }

    /// SIGALRM (default action: terminate) shortly after the deadline. It only fires if a
    /// bounded operation failed to bound itself.
    pub fn arm_watchdog(&self) {
        let after = self.budget + Duration::from_millis(100);
        let timer = libc::itimerval {
            it_interval: libc::timeval {
                tv_sec: 0,
                tv_usec: 0,
            },
            it_value: libc::timeval {
                tv_sec: after.as_secs() as libc::time_t,
                tv_usec: after.subsec_micros() as libc::suseconds_t,
            },
        };
        // SAFETY: setitimer only reads the struct we pass; a null old-value pointer is allowed.
        unsafe {
            libc::setitimer(libc::ITIMER_REAL, &timer, std::ptr::null_mut());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_leave_a_margin_inside_integratords_timeout() {
        assert_eq!(
            Deadline::for_timeout(Duration::from_secs(10)).budget,
            Duration::from_secs(9)
        );
        assert_eq!(
            Deadline::for_timeout(Duration::from_secs(30)).budget,
            Duration::from_secs(29)
        );
        assert_eq!(
            Deadline::for_timeout(Duration::from_secs(1)).budget,
            Duration::from_millis(800)
        );
        let d = Deadline::for_timeout(Duration::from_secs(10));
        assert_eq!(
            d.http_budget(Duration::from_secs(5)),
            Duration::from_secs(5)
        );
        assert!(d.http_budget(Duration::from_secs(60)) < Duration::from_secs(9));
    }
}
