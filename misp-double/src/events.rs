//! `/events/index` for API requests, as MISP 2.5.1's `EventsController::index`,
//! `__setIndexFilterConditions` and `__indexRestResponse` build it: parameter harvesting,
//! the filters the double emulates, paging, the protected-event rule and both answer shapes
//! (`minimal` and the full index).

use serde_json::{Map, Value};

use crate::dataset::{org_name, Event, Tag};
use crate::http::Response;
use crate::json::Obj;
use crate::search::{in_range, parse_time_range, parse_usize, php_empty, scalar, TimeRange};
use crate::store::Store;

/// The filters MISP's index accepts by name (with or without a `search` prefix).
const OVERRIDABLE: [&str; 21] = [
    "all",
    "attribute",
    "published",
    "eventid",
    "datefrom",
    "dateuntil",
    "org",
    "eventinfo",
    "tag",
    "tags",
    "distribution",
    "sharinggroup",
    "analysis",
    "threatlevel",
    "email",
    "hasproposal",
    "timestamp",
    "publishtimestamp",
    "publish_timestamp",
    "minimal",
    "value",
];
const PAGINATION: [&str; 5] = ["limit", "page", "sort", "direction", "order"];

/// MISP's `$passedArgs`: `search<filter>` entries and pagination entries.
fn passed_args(data: &Map<String, Value>, named: &[(String, String)]) -> Map<String, Value> {
    let mut passed = Map::new();
    for (k, v) in named {
        // MISP lower-cases the filter name after `search`.
        let k = match k.strip_prefix("search") {
            Some(rest) => format!("search{}", rest.to_ascii_lowercase()),
            None => k.clone(),
        };
        passed.insert(k, Value::String(v.clone()));
    }
    // Body keys: `searchX` and `X` (any case) name filter X.
    let mut normalised = Map::new();
    for (k, v) in data {
        let lower = k.to_ascii_lowercase();
        let name = match k.strip_prefix("search") {
            Some(rest) if OVERRIDABLE.contains(&rest.to_ascii_lowercase().as_str()) => {
                rest.to_ascii_lowercase()
            }
            _ if OVERRIDABLE.contains(&lower.as_str()) => lower,
            _ => k.clone(),
        };
        normalised.insert(name, v.clone());
    }
    for oap in OVERRIDABLE {
        // PHP `isset`: present and not null.
        if let Some(v) = normalised.get(oap).filter(|v| !v.is_null()) {
            passed.insert(format!("search{oap}"), v.clone());
        }
    }
    for p in PAGINATION {
        if let Some(v) = normalised.get(p).filter(|v| !v.is_null()) {
            passed.insert(p.to_string(), v.clone());
        }
    }
    passed
}

/// The `eventid` filter: ids and UUIDs to keep, ids and UUIDs to drop (all ANDed, like the SQL
/// conditions MISP builds).
#[derive(Debug, Default)]
struct EventIdFilter {
    ids: Vec<Option<u64>>,
    uuids: Vec<String>,
    not_ids: Vec<Option<u64>>,
    not_uuids: Vec<String>,
}

impl EventIdFilter {
    fn parse(v: &Value) -> Option<EventIdFilter> {
        let pieces: Vec<String> = match v {
            Value::String(s) if s.is_empty() => return None,
            Value::String(s) => s.split('|').map(str::to_string).collect(),
            Value::Array(items) => items.iter().filter_map(scalar).collect(),
            Value::Object(m) => m.values().filter_map(scalar).collect(),
            other => scalar(other).into_iter().collect(),
        };
        let mut f = EventIdFilter::default();
        for piece in pieces {
            let piece = piece.trim();
            if piece.is_empty() {
                continue;
            }
            // MySQL compares the id column numerically; a non-number matches no event.
            let id = |s: &str| s.parse::<u64>().ok();
            match piece.strip_prefix('!') {
                Some(rest) if piece.len() == 37 => f.not_uuids.push(rest.to_string()),
                Some(rest) => f.not_ids.push(id(rest)),
                None if piece.len() == 36 => f.uuids.push(piece.to_string()),
                None => f.ids.push(id(piece)),
            }
        }
        Some(f)
    }

    fn accepts(&self, e: &Event) -> bool {
        (self.ids.is_empty() || self.ids.contains(&Some(e.id)))
            && (self.uuids.is_empty() || self.uuids.contains(&e.uuid))
            && !self.not_ids.contains(&Some(e.id))
            && !self.not_uuids.contains(&e.uuid)
    }
}

/// `published`: `2` or a list holding both 0 and 1 means no filter; otherwise each value is
/// bound as a boolean column value (PHP `!empty`).
fn published_filter(v: &Value) -> Option<Vec<bool>> {
    match v {
        Value::Number(n) if n.as_f64() == Some(2.0) => None,
        Value::String(s) if s == "2" => None,
        Value::Array(items) => {
            let flags: Vec<bool> = items.iter().map(|v| !php_empty(v)).collect();
            let loose = |want: f64| {
                items.iter().any(|v| match v {
                    Value::Bool(b) => f64::from(u8::from(*b)) == want,
                    Value::Number(n) => n.as_f64() == Some(want),
                    Value::String(s) => s.trim().parse::<f64>().ok() == Some(want),
                    _ => false,
                })
            };
            if loose(0.0) && loose(1.0) {
                None
            } else {
                Some(flags)
            }
        }
        other => Some(vec![!php_empty(other)]),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SortField {
    Id,
    Timestamp,
    PublishTimestamp,
    SightingTimestamp,
    Published,
    OrgId,
    OrgcId,
    Distribution,
    Info,
    Uuid,
    AttributeCount,
}

fn sort_field(name: &str) -> Option<SortField> {
    let name = name.trim();
    let name = name.strip_prefix("Event.").unwrap_or(name);
    Some(match name {
        "id" => SortField::Id,
        "timestamp" | "date" => SortField::Timestamp,
        "publish_timestamp" => SortField::PublishTimestamp,
        "sighting_timestamp" => SortField::SightingTimestamp,
        "published" => SortField::Published,
        "org_id" => SortField::OrgId,
        "orgc_id" => SortField::OrgcId,
        "distribution" => SortField::Distribution,
        "info" => SortField::Info,
        "uuid" => SortField::Uuid,
        "attribute_count" => SortField::AttributeCount,
        _ => return None,
    })
}

/// The parsed request.
struct IndexQuery {
    minimal: bool,
    with_attributes_only: bool,
    published: Option<Vec<bool>>,
    eventid: Option<EventIdFilter>,
    timestamp: Option<TimeRange>,
    publish_timestamp: Option<TimeRange>,
    order: (SortField, bool),
    limit: Option<usize>,
    page: usize,
}

impl IndexQuery {
    fn from_passed(p: &Map<String, Value>, now: u64) -> IndexQuery {
        let get = |k: &str| p.get(k).filter(|v| !v.is_null());
        let time = |k: &str| {
            get(k)
                .filter(|v| v.as_str() != Some(""))
                .and_then(|v| parse_time_range(v, now))
        };
        let mut order = (SortField::Id, true);
        if let Some(f) = get("sort").and_then(Value::as_str).and_then(sort_field) {
            let asc = !get("direction")
                .and_then(Value::as_str)
                .is_some_and(|d| d.eq_ignore_ascii_case("desc"));
            order = (f, asc);
        }
        if let Some(s) = get("order").and_then(Value::as_str) {
            let mut words = s.split_whitespace();
            if let Some(f) = words.next().and_then(sort_field) {
                let asc = !words.next().is_some_and(|d| d.eq_ignore_ascii_case("desc"));
                order = (f, asc);
            }
        }
        IndexQuery {
            minimal: get("searchminimal").is_some_and(|v| !php_empty(v))
                || get("minimal").is_some_and(|v| !php_empty(v)),
            with_attributes_only: get("searchminimal").is_some(),
            published: get("searchpublished").and_then(published_filter),
            eventid: get("searcheventid").and_then(EventIdFilter::parse),
            timestamp: time("searchtimestamp"),
            publish_timestamp: time("searchpublish_timestamp")
                .or_else(|| time("searchpublishtimestamp")),
            order,
            limit: get("limit")
                .filter(|v| !php_empty(v))
                .and_then(parse_usize)
                .filter(|n| *n > 0),
            page: get("page").and_then(parse_usize).unwrap_or(1).max(1),
        }
    }
}

/// Answers `/events/index` for an API request. `data` is the decoded body (already
/// unwrapped from `request`), `named` the `key:value` URL segments.
pub(crate) fn index(
    st: &Store,
    data: &Map<String, Value>,
    named: &[(String, String)],
    now: u64,
) -> Response {
    let q = IndexQuery::from_passed(&passed_args(data, named), now);
    let mut events: Vec<(&Event, usize)> = st
        .events_in_order()
        .filter(|e| {
            q.published
                .as_ref()
                .is_none_or(|f| f.contains(&e.published))
                && q.eventid.as_ref().is_none_or(|f| f.accepts(e))
                && in_range(&q.timestamp, e.timestamp)
                && in_range(&q.publish_timestamp, e.publish_timestamp)
        })
        .map(|e| (e, st.live_attribute_count(e.id)))
        .filter(|(_, count)| !q.with_attributes_only || *count > 0)
        .collect();
    let (field, asc) = q.order;
    if (field, asc) != (SortField::Id, true) {
        events.sort_by(|(a, ac), (b, bc)| {
            let ord = match field {
                SortField::Id => a.id.cmp(&b.id),
                SortField::Timestamp => a.timestamp.cmp(&b.timestamp),
                SortField::PublishTimestamp => a.publish_timestamp.cmp(&b.publish_timestamp),
                SortField::SightingTimestamp => a.sighting_timestamp.cmp(&b.sighting_timestamp),
                SortField::Published => a.published.cmp(&b.published),
                SortField::OrgId => a.org_id.cmp(&b.org_id),
                SortField::OrgcId => a.orgc_id.cmp(&b.orgc_id),
                SortField::Distribution => a.distribution.cmp(&b.distribution),
                SortField::Info => a.info.to_lowercase().cmp(&b.info.to_lowercase()),
                SortField::Uuid => a.uuid.cmp(&b.uuid),
                SortField::AttributeCount => ac.cmp(bc),
            };
            let ord = if asc { ord } else { ord.reverse() };
            ord.then(a.id.cmp(&b.id))
        });
    }
    // X-Result-Count counts protected events too: MISP drops them after counting and paging.
    let total = events.len();
    if let Some(limit) = q.limit {
        let skip = (q.page - 1).saturating_mul(limit).min(events.len());
        events.drain(..skip);
        events.truncate(limit);
    }
    events.retain(|(e, _)| !e.protected);

    let mut out = String::with_capacity(32 + events.len() * if q.minimal { 200 } else { 800 });
    out.push('[');
    for (i, (e, count)) in events.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        if q.minimal {
            write_minimal(&mut out, e);
        } else {
            write_full(&mut out, e, *count);
        }
    }
    out.push(']');
    Response::json(200, out).with_header("X-Result-Count", &total.to_string())
}

fn write_minimal(out: &mut String, e: &Event) {
    Obj::new(out)
        .num_str("id", e.id)
        .num_str("timestamp", e.timestamp)
        .num_str("sighting_timestamp", e.sighting_timestamp)
        .bool("published", e.published)
        .str("uuid", &e.uuid)
        .str("orgc_uuid", &e.orgc_uuid)
        .end();
}

fn write_org(out: &mut String, id: u64) {
    Obj::new(out)
        .num_str("id", id)
        .str("name", &org_name(id))
        .end();
}

fn write_event_tag(out: &mut String, e: &Event, i: usize, t: &Tag) {
    Obj::new(out)
        .num_str("id", e.id.saturating_mul(1000).saturating_add(i as u64 + 1))
        .num_str("event_id", e.id)
        .num_str("tag_id", t.id)
        .bool("local", false)
        .str("relationship_type", "")
        .with("Tag", |out| {
            Obj::new(out)
                .num_str("id", t.id)
                .str("name", &t.name)
                .str("colour", &t.colour)
                .bool("is_galaxy", t.is_galaxy())
                .end();
        })
        .end();
}

/// One event of the full (non-minimal) index, in MISP's column order.
fn write_full(out: &mut String, e: &Event, attribute_count: usize) {
    Obj::new(out)
        .num_str("id", e.id)
        .num_str("org_id", e.org_id)
        .str("date", &utc_date(e.timestamp))
        .str("info", &e.info)
        .str("uuid", &e.uuid)
        .bool("published", e.published)
        .str("analysis", "2")
        .num_str("attribute_count", attribute_count as u64)
        .num_str("orgc_id", e.orgc_id)
        .num_str("timestamp", e.timestamp)
        .num_str("distribution", u64::from(e.distribution))
        .str("sharing_group_id", "0")
        .bool("proposal_email_lock", false)
        .bool("locked", false)
        .str("threat_level_id", "4")
        .num_str("publish_timestamp", e.publish_timestamp)
        .num_str("sighting_timestamp", e.sighting_timestamp)
        .bool("disable_correlation", false)
        .str("extends_uuid", "")
        .bool("protected", e.protected)
        .with("Org", |out| write_org(out, e.org_id))
        .with("Orgc", |out| write_org(out, e.orgc_id))
        .with("EventTag", |out| {
            out.push('[');
            for (i, t) in e.tags.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_event_tag(out, e, i, t);
            }
            out.push(']');
        })
        .end();
}

/// `YYYY-MM-DD` (UTC) of a Unix time.
pub(crate) fn utc_date(t: u64) -> String {
    // Howard Hinnant's civil_from_days.
    let z = (t / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ids(body: Value) -> (Vec<String>, String) {
        let st = Store::new(crate::Dataset::seed());
        let data = body.as_object().cloned().unwrap_or_default();
        let r = index(&st, &data, &[], 1_800_000_000);
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        let ids = v
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect();
        let count = r
            .headers
            .iter()
            .find(|(k, _)| k == "X-Result-Count")
            .map(|(_, v)| v.clone())
            .unwrap();
        (ids, count)
    }

    #[test]
    fn dates() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(1_735_725_600), "2025-01-01");
        assert_eq!(utc_date(951_782_400), "2000-02-29");
        assert_eq!(utc_date(1_709_251_199), "2024-02-29");
    }

    #[test]
    fn filters_and_keys() {
        assert_eq!(ids(json!({"minimal": 1})).0, ["1", "2", "3", "4"]);
        assert_eq!(ids(json!({"searchpublished": 0})).0, ["3"]);
        assert_eq!(ids(json!({"Published": [0, 1]})).0.len(), 4);
        assert_eq!(ids(json!({"published": "2"})).0.len(), 4);
        assert_eq!(ids(json!({"eventid": "1|4"})).0, ["1", "4"]);
        assert_eq!(ids(json!({"eventid": ["!1", 2]})).0, ["2"]);
        assert_eq!(
            ids(json!({"eventid": "6a2c3d4e-5f60-4b7c-9d8e-0f1a2b3c4d02"})).0,
            ["2"]
        );
        assert_eq!(ids(json!({"timestamp": 1_737_000_000})).0, ["3", "4"]);
        assert_eq!(
            ids(json!({"timestamp": [1_736_000_000, 1_737_000_000]})).0,
            ["2"]
        );
        assert_eq!(
            ids(json!({"limit": 3, "page": 2, "sort": "timestamp", "direction": "desc"})),
            (vec!["1".to_string()], "4".to_string())
        );
        assert_eq!(
            ids(json!({"order": "Event.timestamp desc", "limit": "2"})).0,
            ["3", "4"]
        );
    }
}
