//! analysisd's queue socket `queue/sockets/queue`: the message framing (`1:<location>:<json>`,
//! with the agent form `[id] (name) ip->misp` and its `|`/`:` escaping) and a send that is
//! bounded in time and never truncates a message.

use serde_json::Value;
use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Relative to the Wazuh home.
pub const QUEUE_PATH: &str = "queue/sockets/queue";
/// analysisd reads at most this many bytes per datagram; anything longer is cut (broken JSON).
pub const MAX_MESSAGE: usize = 65535;
/// The program name that ends the location, as Wazuh's own integrations use theirs.
const PROGRAM: &str = "misp";

/// Where analysisd files our event: the manager, or the agent the original alert came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location(String);

impl Location {
    pub fn manager() -> Location {
        Location(PROGRAM.to_string())
    }

    pub fn for_alert(alert: &Value) -> Location {
        let agent = &alert["agent"];
        let id = match &agent["id"] {
            Value::String(s) => s.clone(),
            Value::Number(n) => format!("{:03}", n.as_u64().unwrap_or(0)),
            _ => return Location::manager(),
        };
        if id.is_empty() || id == "000" {
            return Location::manager();
        }
        let name = agent["name"].as_str().unwrap_or("");
        let ip = agent["ip"]
            .as_str()
            .filter(|s| !s.is_empty())
            .unwrap_or("any");
        let raw = format!("[{id}] ({name}) {ip}");
        Location(format!("{}->{PROGRAM}", escape(&raw)))
    }

    /// The full datagram for one JSON payload.
    pub fn frame(&self, payload: &str) -> Vec<u8> {
        let mut msg = Vec::with_capacity(payload.len() + self.0.len() + 3);
        msg.extend_from_slice(b"1:");
        msg.extend_from_slice(self.0.as_bytes());
        msg.push(b':');
        msg.extend_from_slice(payload.as_bytes());
        msg
    }

    /// Bytes the framing adds around a payload.
    pub fn overhead(&self) -> usize {
        self.0.len() + 3
    }
}

/// analysisd splits the location on `:`, so `|` and `:` inside it are escaped with `|`.
fn escape(raw: &str) -> String {
    raw.replace('|', "||").replace(':', "|:")
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error(
        "analysisd queue socket {path} is unavailable ({source}): is wazuh-analysisd running?"
    )]
    Unavailable { path: PathBuf, source: io::Error },
    #[error("sending to analysisd failed: {0}")]
    Send(io::Error),
    #[error("analysisd did not take the event within the time left (it is saturated)")]
    Timeout,
    #[error("event of {0} bytes is larger than analysisd accepts ({MAX_MESSAGE})")]
    TooLarge(usize),
}

pub struct Queue {
    socket: UnixDatagram,
}

impl Queue {
    pub fn connect(home: &Path) -> Result<Queue, QueueError> {
        let path = home.join(QUEUE_PATH);
        let unavailable = |source| QueueError::Unavailable {
            path: path.clone(),
            source,
        };
        let socket = UnixDatagram::unbound().map_err(unavailable)?;
        socket.connect(&path).map_err(unavailable)?;
        Ok(Queue { socket })
    }

    /// Sends one datagram, waiting at most until `deadline` while analysisd's queue is full.
    pub fn send(&self, msg: &[u8], deadline: Instant) -> Result<(), QueueError> {
        if msg.len() > MAX_MESSAGE {
            return Err(QueueError::TooLarge(msg.len()));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(QueueError::Timeout);
        }
        self.socket
            .set_write_timeout(Some(left.max(Duration::from_millis(1))))
            .map_err(QueueError::Send)?;
        match self.socket.send(msg) {
            Ok(n) if n == msg.len() => Ok(()),
            Ok(n) => Err(QueueError::Send(io::Error::other(format!(
                "only {n} of {} bytes sent",
                msg.len()
            )))),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Err(QueueError::Timeout)
            }
            Err(e) => Err(QueueError::Send(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn manager_alerts_use_the_short_form() {
        assert_eq!(Location::for_alert(&json!({})).frame("{}"), b"1:misp:{}");
        let a = json!({"agent": {"id": "000", "name": "wazuh-manager"}});
        assert_eq!(Location::for_alert(&a).frame("{}"), b"1:misp:{}");
    }

    #[test]
    fn agent_locations_escape_pipes_and_colons() {
        let a = json!({"agent": {"id": "017", "name": "web|01:prod", "ip": "2001:db8::5"}});
        assert_eq!(
            String::from_utf8(Location::for_alert(&a).frame("{\"a\":1}")).unwrap(),
            "1:[017] (web||01|:prod) 2001|:db8|:|:5->misp:{\"a\":1}"
        );
        let no_ip = json!({"agent": {"id": "002", "name": "db"}});
        assert_eq!(
            Location::for_alert(&no_ip).frame("{}"),
            b"1:[002] (db) any->misp:{}"
        );
    }
}
