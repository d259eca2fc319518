//! `POST /events/index` with `{"minimal": 1}`: every event the key can see as `{id, timestamp,
//! published, …}`, the cheap listing the mirror's sync compares with what it holds to find new,
//! changed, unpublished and deleted events. MISP leaves out events without attributes and
//! protected events (`EventsController::index`); the sync copes with both.

use super::client::MispClient;
use super::error::{ErrorKind, MispError};
use serde::Deserialize;

pub const EVENTS_INDEX: &str = "/events/index";

/// One event of the minimal index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexedEvent {
    pub id: u64,
    /// Unix time of the event's last change (any attribute's edit bumps it).
    pub timestamp: u64,
    pub published: bool,
}

/// MISP writes ids and timestamps as strings and flags as booleans, but older versions and
/// proxies differ: accept either.
#[derive(Deserialize)]
#[serde(untagged)]
enum Loose {
    Text(String),
    Number(u64),
    Flag(bool),
}

impl Loose {
    fn number(&self) -> Option<u64> {
        match self {
            Loose::Text(s) => s.trim().parse().ok(),
            Loose::Number(n) => Some(*n),
            Loose::Flag(_) => None,
        }
    }
    fn flag(&self) -> bool {
        match self {
            Loose::Flag(b) => *b,
            Loose::Number(n) => *n == 1,
            Loose::Text(s) => s == "1" || s.eq_ignore_ascii_case("true"),
        }
    }
}

#[derive(Deserialize)]
struct Row {
    id: Loose,
    timestamp: Option<Loose>,
    published: Option<Loose>,
}

/// Every event the key can see (an event listed twice counts once).
pub fn minimal_index(client: &MispClient) -> Result<Vec<IndexedEvent>, MispError> {
    let answer = client.post_json(EVENTS_INDEX, &serde_json::json!({"minimal": 1}))?;
    parse_index(&answer.body)
}

pub fn parse_index(body: &[u8]) -> Result<Vec<IndexedEvent>, MispError> {
    let protocol = |msg: String| MispError::new(ErrorKind::Protocol, msg);
    let start = body.iter().position(|b| !b.is_ascii_whitespace());
    if start.is_some_and(|i| body[i] == b'<') {
        return Err(protocol(
            "MISP answered events/index with an HTML page instead of JSON: check misp.url".into(),
        ));
    }
    let rows: Vec<Row> = serde_json::from_slice(body).map_err(|e| {
        protocol(format!(
            "MISP's events/index answer is not a list of events: {e}"
        ))
    })?;
    let mut events = Vec::with_capacity(rows.len());
    for row in rows {
        let Some(id) = row.id.number() else {
            return Err(protocol(
                "an event of events/index has no numeric id".into(),
            ));
        };
        events.push(IndexedEvent {
            id,
            timestamp: row.timestamp.as_ref().and_then(Loose::number).unwrap_or(0),
            published: row.published.as_ref().is_some_and(Loose::flag),
        });
    }
    events.sort_by_key(|e| e.id);
    events.dedup_by_key(|e| e.id);
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_numbers_and_flags_are_read_alike() {
        let body = br#"[{"id":"7","timestamp":"1735725600","sighting_timestamp":"0","published":true,"uuid":"u","orgc_uuid":"o"},
                        {"id":3,"timestamp":1700000000,"published":"0"},
                        {"id":"7","timestamp":"1","published":false}]"#;
        let events = parse_index(body).unwrap();
        assert_eq!(
            events,
            vec![
                IndexedEvent {
                    id: 3,
                    timestamp: 1_700_000_000,
                    published: false
                },
                IndexedEvent {
                    id: 7,
                    timestamp: 1_735_725_600,
                    published: true
                },
            ]
        );
        assert_eq!(parse_index(b"[]").unwrap(), vec![]);
    }

    #[test]
    fn html_and_other_shapes_are_protocol_errors() {
        for body in [
            &b"<html>login</html>"[..],
            b"{\"response\":[]}",
            b"[{\"timestamp\":\"1\"}]",
            b"[{\"id\":\"x\"}]",
        ] {
            assert_eq!(
                parse_index(body).unwrap_err().kind,
                ErrorKind::Protocol,
                "{body:?}"
            );
        }
    }
}
