//! The synthetic sshd line and its injection into analysisd.
//!
//! Wazuh facts (checked in wazuh/wazuh v4.14.1):
//! - `src/headers/mq_op.h`: `LOCALFILE_MQ` is `'1'`; `src/shared/mq_op.c` `SendMSGAction` frames
//!   every message `"%c:%s:%s"` (queue id, location with `|` and `:` escaped as `||` and `|:`,
//!   message). logcollector sends each line of a syslog-format `<localfile>` that way, e.g.
//!   `1:/var/log/auth.log:<line>`; `wazuh-logtest` is a different path (its own socket and
//!   JSON protocol) and produces no alert.
//! - `ruleset/decoders/0310-ssh_decoders.xml`: the parent `sshd` decoder keys on the syslog
//!   program name `sshd`; `ssh-invalid-user` has prematch `^Invalid user|^Illegal user`, regex
//!   `(\S+) from (\S+)` (order `srcuser,srcip`) then `port (\S+)` (`srcport`).
//! - `ruleset/rules/0095-sshd_rules.xml`: 5710 (level 5, `if_sid` 5700, `<match>illegal
//!   user|invalid user</match>`) fires on it (the stock test `sshd.ini` has "Invalid user
//!   opcione from 192.241.237.101" → 5710); our self-test rule is its child and matches the
//!   marker.
//!
//! The line is `<Mmm dd hh:mm:ss> <host> sshd[<n>]: Invalid user wazuh-misp-selftest from <ip>
//! port <p>`: the user name is the marker, and the pid and port vary per run so that the alert of
//! this run is told apart from an earlier run's by its `full_log`.

use crate::wazuh::queue::{QueueError, QUEUE_PATH};
use crate::wazuh::rules::SELFTEST_MARKER;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The location the line is filed under (no `:` or `|`, so nothing to escape).
pub const LOCATION: &str = "wazuh-misp-selftest";
pub(super) const QUEUE_DISPLAY: &str = QUEUE_PATH;
const SEND_TIMEOUT: Duration = Duration::from_secs(2);

/// What was injected, and how to recognise its alert.
#[derive(Debug, Clone)]
pub(super) struct Probe {
    pub ip: String,
    /// The whole syslog line.
    pub line: String,
    /// The part after the syslog header, unique to this run; `full_log` contains it.
    pub needle: String,
}

impl Probe {
    pub fn new(ip: &str) -> Probe {
        let now = SystemTime::now();
        let nanos = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        // Both vary per run: the pid with the process, the port with the clock.
        let pid = std::process::id();
        let port = 1024 + (nanos.subsec_micros() + nanos.as_secs() as u32) % 64_000;
        let line = syslog_line(
            &syslog_time(now),
            &crate::wazuh::home::host_name(),
            pid,
            ip,
            port,
        );
        let needle = line
            .split_once(" sshd[")
            .map(|(_, rest)| format!("sshd[{rest}"))
            .unwrap_or_else(|| line.clone());
        Probe {
            ip: ip.to_string(),
            line,
            needle,
        }
    }

    /// The datagram for analysisd's queue.
    pub fn datagram(&self) -> Vec<u8> {
        format!("1:{LOCATION}:{}", self.line).into_bytes()
    }
}

/// The sshd line the stock decoders turn into `srcuser` = the marker, `srcip` = `ip`, `srcport`.
pub fn syslog_line(time: &str, host: &str, pid: u32, ip: &str, port: u32) -> String {
    format!("{time} {host} sshd[{pid}]: Invalid user {SELFTEST_MARKER} from {ip} port {port}")
}

/// `Mmm dd hh:mm:ss` in local time, the day space-padded, as syslog writes it.
fn syslog_time(now: SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as libc::time_t)
        .unwrap_or(0);
    // SAFETY: localtime_r only writes into the zeroed struct we own.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { libc::localtime_r(&secs, &mut tm) }.is_null() {
        return "Jan  1 00:00:00".into();
    }
    format!(
        "{} {:>2} {:02}:{:02}:{:02}",
        MONTHS[tm.tm_mon.clamp(0, 11) as usize],
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

/// Sends the line as logcollector would.
pub(super) fn send(home: &Path, probe: &Probe) -> Result<(), String> {
    let path = home.join(QUEUE_PATH);
    let unavailable = |e: std::io::Error| {
        QueueError::Unavailable {
            path: path.clone(),
            source: e,
        }
        .to_string()
    };
    let socket = UnixDatagram::unbound().map_err(unavailable)?;
    socket.connect(&path).map_err(unavailable)?;
    socket
        .set_write_timeout(Some(SEND_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let msg = probe.datagram();
    match socket.send(&msg) {
        Ok(n) if n == msg.len() => Ok(()),
        Ok(n) => Err(format!("only {n} of {} bytes sent to analysisd", msg.len())),
        Err(e) => Err(format!("sending to analysisd failed: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_is_what_the_stock_sshd_decoder_reads() {
        let line = syslog_line("Nov  7 07:00:00", "wazuh-1", 4242, "192.31.196.200", 2222);
        assert_eq!(line, "Nov  7 07:00:00 wazuh-1 sshd[4242]: Invalid user wazuh-misp-selftest from 192.31.196.200 port 2222");
        // Rule 5710's <match>illegal user|invalid user</match> (case-insensitive) and the marker.
        assert!(line.to_lowercase().contains("invalid user"));
        assert!(line.contains(SELFTEST_MARKER));
        // ssh-invalid-user: prematch ^Invalid user after "sshd[pid]: ", then (\S+) from (\S+).
        let msg = line.split_once("]: ").unwrap().1;
        assert!(msg.starts_with("Invalid user"));
        let words: Vec<&str> = msg["Invalid user".len()..].split_whitespace().collect();
        assert_eq!(
            words[..4],
            [SELFTEST_MARKER, "from", "192.31.196.200", "port"]
        );
    }

    #[test]
    fn probes_frame_like_logcollector_and_differ_per_run() {
        let p = Probe::new("192.31.196.200");
        let d = String::from_utf8(p.datagram()).unwrap();
        assert!(d.starts_with("1:wazuh-misp-selftest:"), "{d}");
        assert!(d.ends_with(&p.needle));
        assert!(p
            .needle
            .starts_with(&format!("sshd[{}]: Invalid user", std::process::id())));
        let time = &p.line[..15];
        assert_eq!(time.as_bytes()[3], b' ', "{time}");
        assert_eq!(&time[9..10], ":");
        assert!(!crate::wazuh::home::host_name().contains(' '));
    }
}
