//! `--create-test-ioc`: a clearly labelled, published MISP event holding the test IP, for the
//! duration of the test, and its deletion.
//!
//! MISP's REST API (checked in MISP/MISP 2.5 `app/Controller/EventsController.php`,
//! `AttributesController.php`, `app/Model/Event.php`, and PyMISP's `add_event`,
//! `add_attribute`, `publish`, `delete_event`):
//! - `POST /events/add` with `{"Event": {...}}` answers 200 with the new event, `{"Event":
//!   {"id": "…", "uuid": …}}`. `Tag: [{"name"}]` is attached while adding; a tag that does not
//!   exist yet is created only for roles with the tag editor permission, otherwise silently left
//!   out. Refusals (no permission to add events, validation) are 403 `{"saved": false, "name",
//!   "message", "errors"}`.
//! - `POST /attributes/add/<event id>` with one attribute answers 200 `{"Attribute": {"id": …}}`.
//!   Adding an attribute unpublishes the event, so publishing comes after it.
//! - `POST /events/publish/<id>` answers 200 `{"saved": true, "success": true, "message":
//!   "Event published without alerts" | "Job queued"}`: with background jobs the event becomes
//!   published (and searchable with `published: 1`) a little later.
//! - `POST /events/delete/<id>` answers 200 `{"saved": true, "success": true, "message": "Event
//!   deleted."}`, 403 when it could not.
//!
//! Distribution 0 keeps the event inside the key's organisation: publishing pushes nothing to
//! other MISP instances; `events/publish` (not `events/alert`) sends no e-mail.

use super::{TEST_EVENT_INFO, TEST_EVENT_TAG};
use crate::misp::{ErrorKind, MispClient, MispError};
use serde_json::{json, Value};

pub struct TestEvent {
    client: MispClient,
    id: String,
    deleted: bool,
}

/// Creating the event failed; `created` holds it when it exists (it must still be deleted).
pub struct Failure {
    pub created: Option<Box<TestEvent>>,
    pub message: String,
    pub causes: Vec<String>,
}

/// The request bodies, for tests and for review.
pub fn event_body() -> Value {
    json!({"Event": {
        "info": TEST_EVENT_INFO,
        "distribution": 0,
        "threat_level_id": 4,
        "analysis": 2,
        "published": false,
        "Tag": [{"name": TEST_EVENT_TAG}],
    }})
}

pub fn attribute_body(ip: &str, host: &str) -> Value {
    json!({
        "type": "ip-src",
        "category": "Network activity",
        "value": ip,
        "to_ids": true,
        "distribution": 5,
        "comment": format!("wazuh-misp self test from the Wazuh manager {host}: deleted with its event when the test ends"),
    })
}

fn id_of(body: &[u8], key: &str) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    match &v[key]["id"] {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn message_of(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_default()
}

fn permission_cause(e: &MispError, what: &str) -> Vec<String> {
    match e.kind {
        ErrorKind::Auth => vec![format!(
            "MISP refused to {what}: --create-test-ioc needs a key whose role may add and publish events (perm_add, perm_publish), and MISP may block publishing by an event's creator (MISP.block_publishing_for_same_creator); otherwise give --test-ip an IP MISP already knows"
        )],
        _ => vec!["`wazuh-misp doctor` checks the connection, the key and the certificate".into()],
    }
}

impl TestEvent {
    /// Creates the event, adds the test IP and publishes it. Notes for the report on success.
    pub fn create(
        client: MispClient,
        ip: &str,
        host: &str,
    ) -> Result<(TestEvent, Vec<String>), Failure> {
        let answer = match client.post_json("/events/add", &event_body()) {
            Ok(a) => a,
            Err(e) => {
                return Err(Failure {
                    created: None,
                    message: format!("creating the test event failed: {e}"),
                    causes: permission_cause(&e, "add the event"),
                })
            }
        };
        let Some(id) = id_of(&answer.body, "Event") else {
            return Err(Failure {
                created: None,
                message: "MISP's answer to /events/add holds no event id".into(),
                causes: vec!["check that misp.url reaches MISP's API, not a proxy".into()],
            });
        };
        let event = TestEvent {
            client,
            id,
            deleted: false,
        };
        let mut notes = Vec::new();
        let tagged = serde_json::from_slice::<Value>(&answer.body)
            .ok()
            .is_some_and(|v| {
                let tags = v["Event"]["Tag"].as_array().cloned().unwrap_or_default();
                tags.iter().any(|t| t["name"] == TEST_EVENT_TAG)
            });
        if !tagged {
            notes.push(format!("MISP did not attach the tag {TEST_EVENT_TAG} (it creates new tags only for roles that may edit tags); the event's title still marks it"));
        }
        let path = format!("/attributes/add/{}", event.id);
        match event.client.post_json(&path, &attribute_body(ip, host)) {
            Ok(a) if id_of(&a.body, "Attribute").is_some() => {}
            Ok(_) => {
                return Err(Failure {
                    message: format!("MISP's answer to {path} holds no attribute id"),
                    causes: vec![],
                    created: Some(Box::new(event)),
                })
            }
            Err(e) => {
                return Err(Failure {
                    message: format!("adding {ip} to the test event failed: {e}"),
                    causes: permission_cause(&e, "add the attribute"),
                    created: Some(Box::new(event)),
                })
            }
        }
        let path = format!("/events/publish/{}", event.id);
        match event.client.post_json(&path, &json!({})) {
            Ok(a) => {
                let msg = message_of(&a.body);
                if !msg.is_empty() {
                    notes.push(format!("MISP on publishing: {msg}"));
                }
            }
            Err(e) => {
                return Err(Failure {
                    message: format!("publishing the test event failed: {e}"),
                    causes: permission_cause(&e, "publish the event"),
                    created: Some(Box::new(event)),
                })
            }
        }
        Ok((event, notes))
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Deletes the event; the answer's message on success.
    pub fn delete(mut self) -> Result<String, String> {
        self.deleted = true;
        delete(&self.client, &self.id)
    }
}

fn delete(client: &MispClient, id: &str) -> Result<String, String> {
    match client.post_json(&format!("/events/delete/{id}"), &json!({})) {
        Ok(a) => {
            let v: Value = serde_json::from_slice(&a.body).unwrap_or(Value::Null);
            if v["saved"] == false || v["success"] == false {
                Err(message_of(&a.body))
            } else {
                Ok(match message_of(&a.body) {
                    m if m.is_empty() => "deleted".into(),
                    m => m,
                })
            }
        }
        Err(e) => Err(e.to_string()),
    }
}

impl Drop for TestEvent {
    /// Whatever ends the test early (an error, a panic), the event does not stay in MISP.
    fn drop(&mut self) {
        if !self.deleted {
            self.deleted = true;
            let _ = delete(&self.client, &self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_is_labelled_and_stays_in_the_organisation() {
        let e = event_body();
        assert_eq!(e["Event"]["info"], TEST_EVENT_INFO);
        assert_eq!(e["Event"]["distribution"], 0);
        assert_eq!(e["Event"]["Tag"][0]["name"], "wazuh-misp:selftest");
        let a = attribute_body("192.31.196.200", "wazuh-1");
        assert_eq!(a["type"], "ip-src");
        assert_eq!(a["to_ids"], true);
        assert_eq!(a["value"], "192.31.196.200");
        assert!(a["comment"].as_str().unwrap().contains("wazuh-1"));
    }

    #[test]
    fn ids_come_as_strings_or_numbers() {
        assert_eq!(
            id_of(br#"{"Event":{"id":"12"}}"#, "Event").as_deref(),
            Some("12")
        );
        assert_eq!(
            id_of(br#"{"Attribute":{"id":7}}"#, "Attribute").as_deref(),
            Some("7")
        );
        assert_eq!(id_of(br#"{"saved":false}"#, "Event"), None);
    }
}
