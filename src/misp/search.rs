//! `POST /attributes/restSearch`: one request carries every indicator of an alert (or of a batch
//! in test mode), typed so that composite attributes cannot answer for the wrong kind. Each
//! returned attribute is re-checked against the indicator it answers, because MISP compares a
//! value with both halves of composites and ignores filters it does not know.

use super::client::MispClient;
use super::error::{ErrorKind, MispError};
use crate::ioc::{self, Indicator, IocKind};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

pub const RESTSEARCH: &str = "/attributes/restSearch";

/// The filters every search sends (MISP has no default for `to_ids`/`published` in JSON).
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub to_ids: bool,
    pub published: bool,
    pub enforce_warninglist: bool,
    pub limit: u32,
}

impl From<&crate::settings::LookupSettings> for Policy {
    fn from(l: &crate::settings::LookupSettings) -> Self {
        Policy {
            to_ids: l.to_ids,
            published: l.published,
            enforce_warninglist: l.enforce_warninglist,
            limit: l.limit,
        }
    }
}

/// A MISP attribute as far as we report it (and cache it).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Attribute {
    pub id: String,
    pub event_id: String,
    pub kind: String,
    pub category: String,
    pub value: String,
    pub to_ids: bool,
    pub deleted: bool,
    pub uuid: String,
    pub event_uuid: String,
    pub event_info: String,
    pub comment: String,
    pub tags: Vec<String>,
}

/// An attribute together with the indicator it answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    pub attribute: Attribute,
    pub indicator: Indicator,
}

/// The JSON body for these indicators; `None` when there is nothing to ask (MISP would run an
/// unfiltered search on an empty filter).
pub fn request_body<'a>(
    indicators: impl IntoIterator<Item = &'a Indicator>,
    policy: &Policy,
) -> Option<Value> {
    let mut values = Vec::new();
    let mut kinds: Vec<IocKind> = Vec::new();
    for i in indicators {
        values.push(Value::from(i.value.as_str()));
        if !kinds.contains(&i.kind) {
            kinds.push(i.kind);
        }
    }
    if values.is_empty() {
        return None;
    }
    let types = types_for(&kinds);
    let mut body = Map::new();
    body.insert("returnFormat".into(), json!("json"));
    body.insert("value".into(), Value::Array(values));
    body.insert("type".into(), json!(types));
    policy_filters(&mut body, policy, policy.limit, 1);
    Some(Value::Object(body))
}

/// The filters and paging every search carries: the policy (MISP has no default for `to_ids` or
/// `published` in JSON), never soft-deleted attributes, event uuids and tags, `Attribute.id` order.
fn policy_filters(body: &mut Map<String, Value>, policy: &Policy, limit: u32, page: u32) {
    if policy.to_ids {
        body.insert("to_ids".into(), json!(1));
    }
    if policy.published {
        body.insert("published".into(), json!(1));
    }
    body.insert(
        "enforceWarninglist".into(),
        json!(u8::from(policy.enforce_warninglist)),
    );
    body.insert("deleted".into(), json!(0));
    body.insert("includeEventUuid".into(), json!(1));
    body.insert("includeEventTags".into(), json!(1));
    body.insert("limit".into(), json!(limit));
    body.insert("page".into(), json!(page));
    body.insert("order".into(), json!("Attribute.id asc"));
}

/// The attributes that really answer the indicators of one search.
#[derive(Debug, Default)]
pub struct Found {
    pub matches: Vec<Match>,
    /// MISP returned `limit` attributes: there may be more, so "no match" is not certain.
    pub truncated: bool,
}

/// Runs one search and returns the attributes that really answer one of `indicators`.
pub fn search(
    client: &MispClient,
    indicators: &[Indicator],
    policy: &Policy,
) -> Result<Found, MispError> {
    let Some(body) = request_body(indicators, policy) else {
        return Ok(Found::default());
    };
    let answer = client.post_json(RESTSEARCH, &body)?;
    let attributes = parse_response(&answer.body)?;
    let truncated = attributes.len() >= policy.limit as usize;
    Ok(Found {
        matches: match_attributes(attributes, indicators, policy),
        truncated,
    })
}

pub fn parse_response(body: &[u8]) -> Result<Vec<Attribute>, MispError> {
    parse_page(body).map(|(attributes, _)| attributes)
}

/// The attributes of one answer, and how many items MISP sent (some may not parse). A bulk read
/// must page on, not on this number reaching `limit`: MISP fetches a page and then drops rows
/// from it (warninglist hits, blocked proposals), so a short page is not the last one.
pub fn parse_page(body: &[u8]) -> Result<(Vec<Attribute>, usize), MispError> {
    let protocol = |msg: String| MispError::new(ErrorKind::Protocol, msg);
    let start = body.iter().position(|b| !b.is_ascii_whitespace());
    if start.is_some_and(|i| body[i] == b'<') {
        return Err(protocol(
            "MISP answered with an HTML page instead of JSON (a reverse proxy or login page?): check misp.url".into(),
        ));
    }
    let mut v: Value = serde_json::from_slice(body)
        .map_err(|e| protocol(format!("MISP answered with malformed JSON: {e}")))?;
    // Taken, not cloned: a sync page holds thousands of attributes.
    let list = match v.get_mut("response") {
        Some(Value::Object(r)) => r.remove("Attribute").unwrap_or(Value::Array(vec![])),
        // Some MISP versions answer an empty search with `"response": []`.
        Some(Value::Array(a)) if a.is_empty() => Value::Array(vec![]),
        _ => {
            return Err(protocol(
                "MISP's answer has no response.Attribute list".into(),
            ))
        }
    };
    let Value::Array(items) = list else {
        return Err(protocol("response.Attribute is not a list".into()));
    };
    let sent = items.len();
    Ok((items.into_iter().filter_map(attribute_from).collect(), sent))
}

/// Moves the string out (numbers as their text); anything else is empty.
fn take_text(v: Option<Value>) -> String {
    match v {
        Some(Value::String(s)) => s,
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn flag(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_u64() == Some(1),
        Value::String(s) => s == "1" || s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

fn attribute_from(v: Value) -> Option<Attribute> {
    let Value::Object(mut a) = v else {
        return None;
    };
    let value = match a.remove("value") {
        Some(Value::String(s)) => s,
        _ => return None,
    };
    let kind = match a.remove("type") {
        Some(Value::String(s)) => s,
        _ => return None,
    };
    let mut event = match a.remove("Event") {
        Some(Value::Object(e)) => e,
        _ => Default::default(),
    };
    let mut tags: Vec<String> = Vec::new();
    if let Some(Value::Array(list)) = a.remove("Tag") {
        for t in list {
            if let Value::Object(mut t) = t {
                if let Some(Value::String(name)) = t.remove("name") {
                    if !tags.contains(&name) {
                        tags.push(name);
                    }
                }
            }
        }
    }
    let event_uuid = match a.remove("event_uuid") {
        Some(u) => take_text(Some(u)),
        None => take_text(event.remove("uuid")),
    };
    Some(Attribute {
        id: take_text(a.remove("id")),
        event_id: take_text(a.remove("event_id")),
        kind,
        category: take_text(a.remove("category")),
        value,
        to_ids: a.get("to_ids").is_some_and(flag),
        deleted: a.get("deleted").is_some_and(flag),
        uuid: take_text(a.remove("uuid")),
        event_uuid,
        event_info: take_text(event.remove("info")),
        comment: take_text(a.remove("comment")),
        tags,
    })
}

/// Which half of an attribute value holds which kind of indicator.
#[derive(Clone, Copy)]
enum Part {
    Whole,
    First,
    Last,
}

fn parts_of(misp_type: &str) -> &'static [(Part, IocKind)] {
    match misp_type {
        "ip-src" | "ip-dst" => &[(Part::Whole, IocKind::Ip)],
        "ip-src|port" | "ip-dst|port" => &[(Part::First, IocKind::Ip)],
        "domain|ip" => &[(Part::First, IocKind::Domain), (Part::Last, IocKind::Ip)],
        "domain" | "hostname" => &[(Part::Whole, IocKind::Domain)],
        "hostname|port" => &[(Part::First, IocKind::Domain)],
        "url" | "uri" => &[(Part::Whole, IocKind::Url)],
        "md5" => &[(Part::Whole, IocKind::Md5)],
        "sha1" => &[(Part::Whole, IocKind::Sha1)],
        "sha256" => &[(Part::Whole, IocKind::Sha256)],
        "filename|md5" | "malware-sample" => &[(Part::Last, IocKind::Md5)],
        "filename|sha1" => &[(Part::Last, IocKind::Sha1)],
        "filename|sha256" => &[(Part::Last, IocKind::Sha256)],
        _ => &[],
    }
}

/// MISP matches case-insensitively; so do we, on the normalised form. The mirror keys its index
/// on this form too.
pub fn key(kind: IocKind, value: &str) -> (IocKind, String) {
    (kind, value.to_ascii_lowercase())
}

/// The indicators an attribute can answer, in the order its halves are tried: for each half that
/// holds a kind, that kind and the half's matching key (see [`key`]). A half that does not
/// normalise (an invalid IP in an `ip-dst`) answers nothing.
pub fn attribute_keys(attribute: &Attribute) -> Vec<(IocKind, String)> {
    parts_of(&attribute.kind)
        .iter()
        .filter_map(|(part, kind)| {
            let raw = match part {
                Part::Whole => Some(attribute.value.as_str()),
                Part::First => attribute.value.split_once('|').map(|(a, _)| a),
                Part::Last => attribute.value.rsplit_once('|').map(|(_, b)| b),
            }?;
            let normalised = ioc::normalize(raw, *kind)?;
            Some(key(*kind, &normalised))
        })
        .collect()
}

/// Keeps the attributes that answer one of `indicators` under the policy, once each, in MISP's
/// order.
pub fn match_attributes(
    attributes: Vec<Attribute>,
    indicators: &[Indicator],
    policy: &Policy,
) -> Vec<Match> {
    let index: HashMap<(IocKind, String), &Indicator> = indicators
        .iter()
        .map(|i| (key(i.kind, &i.value), i))
        .collect();
    let mut out: Vec<Match> = Vec::new();
    for attribute in attributes {
        if attribute.deleted || (policy.to_ids && !attribute.to_ids) {
            continue;
        }
        if out
            .iter()
            .any(|m| m.attribute.uuid == attribute.uuid && !attribute.uuid.is_empty())
        {
            continue;
        }
        let found = attribute_keys(&attribute)
            .into_iter()
            .find_map(|k| index.get(&k).copied());
        if let Some(indicator) = found {
            out.push(Match {
                indicator: indicator.clone(),
                attribute,
            });
        }
    }
    out
}

/// The MISP types searched for these kinds, each once, in a stable order.
pub fn types_for(kinds: &[IocKind]) -> Vec<&'static str> {
    let mut kinds = kinds.to_vec();
    kinds.sort();
    let mut types: Vec<&'static str> = Vec::new();
    for t in kinds.iter().flat_map(|k| k.misp_types()) {
        if !types.contains(t) {
            types.push(t);
        }
    }
    types
}

/// One page of a bulk read for the mirror: every attribute of these types the policy admits
/// (of these events only, when given), in `Attribute.id` order, `limit` per page.
pub fn bulk_body(
    types: &[&str],
    policy: &Policy,
    event_ids: Option<&[u64]>,
    page: u32,
    limit: u32,
) -> Value {
    let mut body = Map::new();
    body.insert("returnFormat".into(), json!("json"));
    body.insert("type".into(), json!(types));
    if let Some(ids) = event_ids {
        body.insert(
            "eventid".into(),
            json!(ids.iter().map(u64::to_string).collect::<Vec<_>>()),
        );
    }
    policy_filters(&mut body, policy, limit, page);
    Value::Object(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ind(kind: IocKind, value: &str) -> Indicator {
        Indicator {
            kind,
            value: value.into(),
            field: "data.srcip".into(),
        }
    }

    const POLICY: Policy = Policy {
        to_ids: true,
        published: true,
        enforce_warninglist: true,
        limit: 100,
    };

    fn attr(kind: &str, value: &str) -> Attribute {
        Attribute {
            id: "1".into(),
            event_id: "1".into(),
            kind: kind.into(),
            category: "Network activity".into(),
            value: value.into(),
            to_ids: true,
            deleted: false,
            uuid: format!("uuid-{kind}-{value}"),
            event_uuid: String::new(),
            event_info: String::new(),
            comment: String::new(),
            tags: vec![],
        }
    }

    #[test]
    fn the_body_carries_every_value_and_the_union_of_types() {
        let b = request_body(
            &[
                ind(IocKind::Ip, "8.8.8.8"),
                ind(IocKind::Domain, "a.example.org"),
                ind(IocKind::Ip, "1.1.1.1"),
            ],
            &POLICY,
        )
        .unwrap();
        assert_eq!(b["value"], json!(["8.8.8.8", "a.example.org", "1.1.1.1"]));
        assert_eq!(
            b["type"],
            json!([
                "ip-src",
                "ip-dst",
                "ip-src|port",
                "ip-dst|port",
                "domain|ip",
                "domain",
                "hostname",
                "hostname|port"
            ])
        );
        assert_eq!(
            (
                b["to_ids"].clone(),
                b["published"].clone(),
                b["enforceWarninglist"].clone()
            ),
            (json!(1), json!(1), json!(1))
        );
        assert_eq!(b["includeEventUuid"], 1);
        assert!(request_body(&[], &POLICY).is_none());
        let loose = Policy {
            to_ids: false,
            published: false,
            enforce_warninglist: false,
            limit: 5,
        };
        let b = request_body(
            &[ind(IocKind::Md5, "44d88612fea8a8f36de82e1278abb02f")],
            &loose,
        )
        .unwrap();
        assert!(b.get("to_ids").is_none() && b.get("published").is_none());
        assert_eq!(b["limit"], 5);
    }

    #[test]
    fn composite_halves_must_answer_the_right_kind() {
        let inds = [
            ind(IocKind::Ip, "91.219.236.166"),
            ind(IocKind::Domain, "bad-update.net"),
        ];
        let attrs = vec![
            attr("ip-dst|port", "91.219.236.166|443"),
            attr("domain|ip", "bad-update.net|104.21.33.10"),
            // MISP would return this for value 91.219.236.166 only if the type list allowed it.
            attr(
                "filename|md5",
                "91.219.236.166|44d88612fea8a8f36de82e1278abb02f",
            ),
            attr("ip-dst", "91.219.236.167"),
        ];
        let m = match_attributes(attrs, &inds, &POLICY);
        let got: Vec<_> = m
            .iter()
            .map(|m| (m.attribute.kind.as_str(), m.indicator.value.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("ip-dst|port", "91.219.236.166"),
                ("domain|ip", "bad-update.net")
            ]
        );
    }

    #[test]
    fn policy_is_rechecked_and_duplicates_dropped() {
        let inds = [ind(IocKind::Ip, "8.8.8.8")];
        let mut not_ids = attr("ip-dst", "8.8.8.8");
        not_ids.to_ids = false;
        not_ids.uuid = "a".into();
        let mut deleted = attr("ip-src", "8.8.8.8");
        deleted.deleted = true;
        let twice = attr("ip-dst", "8.8.8.8");
        let m = match_attributes(
            vec![not_ids.clone(), deleted, twice.clone(), twice],
            &inds,
            &POLICY,
        );
        assert_eq!(m.len(), 1);
        let loose = Policy {
            to_ids: false,
            ..POLICY
        };
        assert_eq!(match_attributes(vec![not_ids], &inds, &loose).len(), 1);
    }

    #[test]
    fn hashes_and_urls_compare_case_insensitively() {
        let inds = [
            ind(
                IocKind::Sha256,
                "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f",
            ),
            ind(IocKind::Url, "http://Malware-Drop.ru/payload.exe"),
        ];
        let attrs = vec![
            attr(
                "filename|sha256",
                "eicar.com|275A021BBFB6489E54D471899F7DB9D1663FC695EC2FE2A2C4538AABF651FD0F",
            ),
            attr("url", "http://malware-drop.ru/payload.exe"),
        ];
        assert_eq!(match_attributes(attrs, &inds, &POLICY).len(), 2);
    }

    #[test]
    fn responses_are_parsed_tolerantly() {
        let body = br#"{"response":{"Attribute":[{"id":"7","event_id":"4","type":"ip-src","category":"Network activity",
            "value":"185.220.101.47","to_ids":true,"deleted":false,"uuid":"u-7","event_uuid":"e-4",
            "Event":{"id":"4","info":"SSH brute force sources","uuid":"e-4"},
            "Tag":[{"name":"type:OSINT","inherited":1},{"name":"tlp:white"},{"name":"type:OSINT"}]},
            {"id":"8","type":"ip-dst"}]}}"#;
        let a = parse_response(body).unwrap();
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].event_info, "SSH brute force sources");
        assert_eq!(a[0].tags, vec!["type:OSINT", "tlp:white"]);
        assert!(parse_response(br#"{"response":[]}"#).unwrap().is_empty());
        for bad in [
            &b"<html>login</html>"[..],
            b"{\"response\":",
            b"{\"x\":1}",
            b"[]",
        ] {
            assert_eq!(parse_response(bad).unwrap_err().kind, ErrorKind::Protocol);
        }
    }
}
