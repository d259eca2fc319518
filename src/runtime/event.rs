//! The events we send back to analysisd: one per matched attribute, or one error event, always
//! `{"integration":"misp","misp":{…}}` (the rules are written against these key names; see the
//! README's schema), framed for the queue and trimmed to fit one datagram without ever breaking
//! the JSON.

use crate::misp::search::Match;
use crate::misp::MispError;
use crate::wazuh::queue::{Location, MAX_MESSAGE};
use serde_json::{json, Map, Value};

/// The part of the original alert every event carries, so analysts can find it.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRef {
    pub id: String,
    pub rule_id: String,
    pub rule_level: Value,
    pub rule_description: String,
}

impl AlertRef {
    pub fn of(alert: &Value) -> AlertRef {
        let text = |v: &Value| match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => String::new(),
        };
        AlertRef {
            id: text(&alert["id"]),
            rule_id: text(&alert["rule"]["id"]),
            rule_level: match &alert["rule"]["level"] {
                Value::Number(n) => Value::Number(n.clone()),
                _ => Value::Null,
            },
            rule_description: text(&alert["rule"]["description"]),
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "rule_id": self.rule_id,
            "rule_level": self.rule_level,
            "rule_description": self.rule_description,
        })
    }
}

/// Where a match came from, when not from MISP itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Misp,
    /// The local mirror: the event carries `"source": "mirror"` and is otherwise identical.
    Mirror,
}

/// The payload for one match. `misp_url` lets analysts open the event.
pub fn match_payload(m: &Match, alert: &AlertRef, misp_url: &str, source: Source) -> Value {
    let a = &m.attribute;
    let mut misp = Map::new();
    misp.insert("value".into(), json!(a.value));
    misp.insert("type".into(), json!(a.kind));
    misp.insert("category".into(), json!(a.category));
    misp.insert("to_ids".into(), json!(a.to_ids));
    misp.insert("attribute_id".into(), json!(a.id));
    misp.insert("attribute_uuid".into(), json!(a.uuid));
    misp.insert("event_id".into(), json!(a.event_id));
    misp.insert("event_uuid".into(), json!(a.event_uuid));
    misp.insert("event_info".into(), json!(a.event_info));
    misp.insert(
        "event_url".into(),
        json!(format!("{misp_url}/events/view/{}", a.event_id)),
    );
    // analysisd would turn an array into its JSON text; rules match a plain string best.
    misp.insert("tags".into(), json!(a.tags.join(",")));
    misp.insert("comment".into(), json!(a.comment));
    misp.insert("ioc_kind".into(), json!(m.indicator.kind.as_str()));
    misp.insert("ioc_value".into(), json!(m.indicator.value));
    misp.insert("ioc_field".into(), json!(m.indicator.field));
    misp.insert("alert".into(), alert.to_json());
    if source == Source::Mirror {
        misp.insert("source".into(), json!("mirror"));
    }
    json!({"integration": "misp", "misp": Value::Object(misp)})
}

/// A problem of one of our background services rather than of one alert. `component` is
/// `mirror` (status `sync_failed`: the sync cannot refresh it and it keeps answering from its
/// last good copy; `stale`; `missing`) or `sightings` (status `flush_failed`).
pub fn service_payload(component: &str, status: &str, message: &str, since: u64) -> Value {
    json!({
        "integration": "misp",
        "misp": {"service": {"component": component, "status": status, "message": message, "since": since}}
    })
}

pub fn error_payload(err: &MispError, alert: &AlertRef) -> Value {
    json!({
        "integration": "misp",
        "misp": {
            "error": {
                "kind": err.kind.as_str(),
                "status": err.status,
                "message": err.message,
            },
            "alert": alert.to_json(),
        }
    })
}

/// Fields that may be shortened, then dropped, to make an event fit; the rest is what rules
/// and analysts need.
const OPTIONAL: [&str; 7] = [
    "/misp/comment",
    "/misp/event_info",
    "/misp/tags",
    "/misp/alert/rule_description",
    "/misp/error/message",
    "/misp/service/message",
    "/misp/ioc_value",
];

/// Frames `payload` for `location`, shortening optional fields until the datagram fits in
/// [`MAX_MESSAGE`] bytes. `None` only if it cannot fit even without them.
pub fn frame_to_fit(location: &Location, mut payload: Value) -> Option<Vec<u8>> {
    let budget = MAX_MESSAGE.saturating_sub(location.overhead());
    for _ in 0..=OPTIONAL.len() * 2 {
        let text = serde_json::to_string(&payload).ok()?;
        if text.len() <= budget {
            return Some(location.frame(&text));
        }
        let excess = text.len() - budget;
        // Shorten the longest optional string; its JSON escaping can only make it longer, so
        // cutting `excess` bytes of raw text (plus a margin) is always enough for this field.
        let longest = OPTIONAL
            .iter()
            .filter_map(|p| {
                payload
                    .pointer(p)
                    .and_then(Value::as_str)
                    .map(|s| (*p, s.len()))
            })
            .filter(|(_, len)| *len > 0)
            .max_by_key(|(_, len)| *len)?;
        let slot = payload.pointer_mut(longest.0)?;
        let s = slot.as_str()?;
        let keep = floor_char_boundary(s, s.len().saturating_sub(excess + 16));
        *slot = Value::from(if keep == 0 {
            String::new()
        } else {
            format!("{}…", &s[..keep])
        });
    }
    None
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ioc::{Indicator, IocKind};
    use crate::misp::search::Attribute;
    use crate::misp::ErrorKind;

    fn sample(info: String) -> (Match, AlertRef) {
        let m = Match {
            attribute: Attribute {
                id: "12".into(),
                event_id: "4".into(),
                kind: "ip-src".into(),
                category: "Network activity".into(),
                value: "185.220.101.47".into(),
                to_ids: true,
                deleted: false,
                uuid: "a-12".into(),
                event_uuid: "e-4".into(),
                event_info: info,
                comment: String::new(),
                tags: vec!["tlp:white".into(), "type:OSINT".into()],
            },
            indicator: Indicator {
                kind: IocKind::Ip,
                value: "185.220.101.47".into(),
                field: "data.srcip".into(),
            },
        };
        let alert = AlertRef::of(
            &json!({"id": "1700000000.123", "rule": {"id": "5710", "level": 5, "description": "sshd: invalid user"}}),
        );
        (m, alert)
    }

    #[test]
    fn match_payload_has_the_documented_keys() {
        let (m, alert) = sample("SSH brute force sources".into());
        let p = match_payload(&m, &alert, "https://misp.test", Source::Misp);
        assert_eq!(p["integration"], "misp");
        let misp = &p["misp"];
        for k in [
            "value",
            "type",
            "category",
            "to_ids",
            "attribute_uuid",
            "event_id",
            "event_uuid",
            "event_info",
            "tags",
            "ioc_kind",
            "ioc_field",
            "alert",
        ] {
            assert!(misp.get(k).is_some(), "missing {k}");
        }
        assert_eq!(misp["tags"], "tlp:white,type:OSINT");
        assert_eq!(misp["event_url"], "https://misp.test/events/view/4");
        assert_eq!(
            misp["alert"],
            json!({"id": "1700000000.123", "rule_id": "5710", "rule_level": 5, "rule_description": "sshd: invalid user"})
        );
    }

    #[test]
    fn oversized_events_are_trimmed_but_stay_valid_json() {
        let (m, alert) = sample("é\"".repeat(40_000));
        let loc = Location::manager();
        let framed =
            frame_to_fit(&loc, match_payload(&m, &alert, "https://m", Source::Misp)).unwrap();
        assert!(framed.len() <= MAX_MESSAGE);
        let json: Value = serde_json::from_slice(&framed[b"1:misp:".len()..]).unwrap();
        assert!(json["misp"]["event_info"].as_str().unwrap().ends_with('…'));
        assert_eq!(json["misp"]["value"], "185.220.101.47");
    }

    #[test]
    fn error_payload_shape() {
        let (_, alert) = sample(String::new());
        let e = MispError::new(ErrorKind::Auth, "refused").with_status(403);
        let p = error_payload(&e, &alert);
        assert_eq!(
            p["misp"]["error"],
            json!({"kind": "auth", "status": 403, "message": "refused"})
        );
        assert_eq!(p["misp"]["alert"]["rule_id"], "5710");
    }
}
