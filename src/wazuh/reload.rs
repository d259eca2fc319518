//! analysisd's hot reload of rules, decoders and CDB lists (Wazuh 4.13+): `{"command":
//! "reload-ruleset"}` on the stream socket `queue/sockets/analysis`, every message both ways a
//! 4-byte little-endian length and the bytes (`OS_SendSecureTCP`/`OS_RecvSecureTCP` in
//! `src/os_net/os_net.c`). The answer is `{"error":0,"message":"ok","data":[warnings…]}`, or
//! `"error":1` (`due`) when the new ruleset failed and the old one stays active; an analysisd
//! from 4.4 to 4.12 answers `"error":4` (`Unrecognized command`), and 4.3 or older the text
//! `err Unrecognized command`: either doubles as the version check (`src/analysisd/asyscom.c`).

use serde_json::Value;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// Relative to the Wazuh home.
pub const ANALYSIS_SOCKET: &str = "queue/sockets/analysis";
/// asyscom's `ERROR_UNRECOGNIZED_COMMAND`.
const UNRECOGNIZED_COMMAND: i64 = 4;
/// Far above any answer (analysisd's own buffer is `OS_MAXSTR`, 64 KiB).
const MAX_ANSWER: u32 = 16 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    /// The new ruleset is active; these are its warnings.
    Done { warnings: Vec<String> },
    /// The new ruleset failed; analysisd kept the old one. Its messages say why.
    Failed { messages: Vec<String> },
    /// This analysisd has no hot reload (before 4.13): changes apply at the next restart.
    Unsupported,
}

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("cannot reach analysisd at {path}: {source} (is the manager running?)")]
    Connect {
        path: String,
        source: std::io::Error,
    },
    #[error("analysisd's answer to the reload could not be read: {0}")]
    Protocol(String),
}

/// Asks analysisd to reload its ruleset and waits up to `timeout` for the answer (a reload of a
/// 1,000,000-key list took 0.68 s on a real 4.14.7).
pub fn reload_ruleset(home: &Path, timeout: Duration) -> Result<Reload, ReloadError> {
    let path = home.join(ANALYSIS_SOCKET);
    let connect = |source| ReloadError::Connect {
        path: path.display().to_string(),
        source,
    };
    let mut stream = UnixStream::connect(&path).map_err(connect)?;
    stream.set_read_timeout(Some(timeout)).map_err(connect)?;
    stream.set_write_timeout(Some(timeout)).map_err(connect)?;
    let request = br#"{"command":"reload-ruleset"}"#;
    let mut frame = (request.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(request);
    let protocol = |e: std::io::Error| ReloadError::Protocol(e.to_string());
    stream.write_all(&frame).map_err(protocol)?;
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).map_err(protocol)?;
    let len = u32::from_le_bytes(len);
    if len > MAX_ANSWER {
        return Err(ReloadError::Protocol(format!("an answer of {len} bytes")));
    }
    let mut body = vec![0u8; len as usize];
    stream.read_exact(&mut body).map_err(protocol)?;
    parse_answer(&body)
}

fn parse_answer(body: &[u8]) -> Result<Reload, ReloadError> {
    // 4.3 and older speak a text protocol on this socket.
    if body.starts_with(b"err ") {
        return Ok(Reload::Unsupported);
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ReloadError::Protocol(format!("not JSON: {e}")))?;
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    match v.get("error").and_then(Value::as_i64) {
        Some(0) => Ok(Reload::Done {
            warnings: strings(&v["data"]),
        }),
        Some(UNRECOGNIZED_COMMAND) => Ok(Reload::Unsupported),
        Some(_) => Ok(Reload::Failed {
            messages: strings(&v["data"]),
        }),
        None => Err(ReloadError::Protocol(format!(
            "no error code in {}",
            String::from_utf8_lossy(body)
                .chars()
                .take(200)
                .collect::<String>()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    /// A stand-in analysisd on a real stream socket: checks the request's framing and answers.
    fn stand_in(answer: &'static str) -> (tempfile::TempDir, std::thread::JoinHandle<Vec<u8>>) {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join("queue/sockets")).unwrap();
        let listener = UnixListener::bind(home.path().join(ANALYSIS_SOCKET)).unwrap();
        let handle = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut len = [0u8; 4];
            s.read_exact(&mut len).unwrap();
            let mut req = vec![0u8; u32::from_le_bytes(len) as usize];
            s.read_exact(&mut req).unwrap();
            let mut out = (answer.len() as u32).to_le_bytes().to_vec();
            out.extend_from_slice(answer.as_bytes());
            s.write_all(&out).unwrap();
            req
        });
        (home, handle)
    }

    #[test]
    fn ok_failed_and_unrecognized_answers() {
        for (answer, expected) in [
            (
                r#"{"error":0,"message":"ok","data":["WARNING: (7617): Signature ID '1' was found"]}"#,
                Reload::Done {
                    warnings: vec!["WARNING: (7617): Signature ID '1' was found".into()],
                },
            ),
            (
                r#"{"error":1,"message":"due","data":["ERROR: (1226): Error reading XML file"]}"#,
                Reload::Failed {
                    messages: vec!["ERROR: (1226): Error reading XML file".into()],
                },
            ),
            (
                r#"{"error":4,"message":"Unrecognized command","data":{}}"#,
                Reload::Unsupported,
            ),
            // 4.3 and older: the text protocol.
            ("err Unrecognized command", Reload::Unsupported),
        ] {
            let (home, server) = stand_in(answer);
            assert_eq!(
                reload_ruleset(home.path(), Duration::from_secs(5)).unwrap(),
                expected
            );
            assert_eq!(server.join().unwrap(), br#"{"command":"reload-ruleset"}"#);
        }
    }

    #[test]
    fn no_socket_and_garbage_are_errors() {
        let home = tempfile::tempdir().unwrap();
        assert!(matches!(
            reload_ruleset(home.path(), Duration::from_secs(1)),
            Err(ReloadError::Connect { .. })
        ));
        let (home, _server) = stand_in("<html>");
        assert!(matches!(
            reload_ruleset(home.path(), Duration::from_secs(5)),
            Err(ReloadError::Protocol(_))
        ));
    }
}
