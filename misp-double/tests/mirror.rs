//! Tests of what `wazuh-misp sync` (mirror mode) relies on: `/events/index`, the MISP-like
//! mutations and the clock, paged and `eventid`-batched restSearch, and the generated
//! instance. `big_instance_timings` (ignored) prints the numbers for a 1,000,000-attribute
//! instance: `cargo test -p misp-double --release --test mirror -- --ignored --nocapture`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use misp_double::{
    org_uuid, seed, Attribute, Dataset, Event, MispDouble, Options, DEFAULT_API_KEY,
    GENERATED_EPOCH,
};
use serde_json::{json, Value};

// ---------------------------------------------------------------- a small keep-alive client

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

struct Client {
    sock: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    fn new(misp: &MispDouble) -> Client {
        let sock = TcpStream::connect(misp.addr()).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        Client {
            sock,
            buf: Vec::new(),
        }
    }

    fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Resp {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        self.sock.write_all(req.as_bytes()).unwrap();
        let mut chunk = vec![0u8; 256 * 1024];
        let head_end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = self.sock.read(&mut chunk).unwrap();
            assert!(n > 0, "connection closed");
            self.buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let status: u16 = lines.next().unwrap()[9..12].parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (k, v) = l.split_once(':').unwrap();
                (k.to_string(), v.trim().to_string())
            })
            .collect();
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse().unwrap())
            .unwrap();
        while self.buf.len() < head_end + len {
            let n = self.sock.read(&mut chunk).unwrap();
            assert!(n > 0, "connection closed");
            self.buf.extend_from_slice(&chunk[..n]);
        }
        let body = self.buf[head_end..head_end + len].to_vec();
        self.buf.drain(..head_end + len);
        Resp {
            status,
            headers,
            body,
        }
    }

    fn api(&mut self, path: &str, body: &Value) -> Resp {
        self.send("POST", path, &API, &body.to_string())
    }

    fn index(&mut self, body: Value) -> (Vec<Value>, usize) {
        let r = self.api("/events/index", &body);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.header("Content-Type"), Some("application/json"));
        let count = r.header("X-Result-Count").unwrap().parse().unwrap();
        (r.json().as_array().unwrap().clone(), count)
    }

    fn index_ids(&mut self, body: Value) -> Vec<u64> {
        self.index(body).0.iter().map(|e| id_of(&e["id"])).collect()
    }

    fn search(&mut self, body: Value) -> Vec<Value> {
        let r = self.api("/attributes/restSearch", &body);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        r.json()["response"]["Attribute"]
            .as_array()
            .unwrap()
            .clone()
    }

    fn search_ids(&mut self, body: Value) -> Vec<u64> {
        self.search(body).iter().map(|a| id_of(&a["id"])).collect()
    }
}

const API: [(&str, &str); 3] = [
    ("Authorization", DEFAULT_API_KEY),
    ("Accept", "application/json"),
    ("Content-Type", "application/json"),
];

fn id_of(v: &Value) -> u64 {
    v.as_str()
        .unwrap_or_else(|| panic!("id not a string: {v}"))
        .parse()
        .unwrap()
}

fn double_with(ds: Dataset) -> MispDouble {
    MispDouble::start(Options {
        dataset: ds,
        ..Options::default()
    })
}

/// The lookup policy the mirror sends, without paging.
fn policy() -> Value {
    json!({"returnFormat": "json", "type": ["ip-src", "ip-dst", "ip-dst|port", "domain",
        "hostname", "domain|ip", "url", "md5", "sha1", "sha256", "filename|sha256"],
        "to_ids": 1, "published": 1, "enforceWarninglist": 1, "deleted": 0,
        "includeEventUuid": 1, "includeEventTags": 1, "order": "Attribute.id asc"})
}

fn with(mut base: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        base[k] = v.clone();
    }
    base
}

/// What the policy admits, computed from the dataset.
fn expected_policy_ids(ds: &Dataset, events: Option<&BTreeSet<u64>>) -> Vec<u64> {
    let kinds: Vec<String> = policy()["type"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    let published: HashMap<u64, bool> = ds.events.iter().map(|e| (e.id, e.published)).collect();
    let mut ids: Vec<u64> = ds
        .attributes
        .iter()
        .filter(|a| {
            a.to_ids
                && !a.deleted
                && kinds.contains(&a.kind)
                && published.get(&a.event_id) == Some(&true)
                && events.is_none_or(|s| s.contains(&a.event_id))
        })
        .map(|a| a.id)
        .collect();
    ids.sort_unstable();
    ids
}

// ---------------------------------------------------------------- /events/index

#[test]
fn events_index_minimal_shape() {
    let misp = MispDouble::http();
    let mut c = Client::new(&misp);
    let (events, count) = c.index(json!({"minimal": 1}));
    assert_eq!(count, seed::EVENT_COUNT);
    assert_eq!(events.len(), seed::EVENT_COUNT);
    let first = events[0].as_object().unwrap();
    let keys: Vec<&str> = first.keys().map(String::as_str).collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        [
            "id",
            "orgc_uuid",
            "published",
            "sighting_timestamp",
            "timestamp",
            "uuid"
        ]
    );
    // Key order as MISP sends it (serde_json's map here is sorted, so check the raw text).
    let raw = String::from_utf8(c.api("/events/index", &json!({"minimal": 1})).body).unwrap();
    assert!(
        raw.starts_with(
            r#"[{"id":"1","timestamp":"1735725190","sighting_timestamp":"0","published":true,"uuid":"5f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c01","orgc_uuid":"5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9"}"#
        ),
        "{raw}"
    );
    assert_eq!(events[1]["orgc_uuid"], org_uuid(2));
    assert_eq!(events[2]["published"], false);
    assert_eq!(events[2]["timestamp"], "1738000000");
    // Wrapped and `search`-prefixed forms are the same request.
    assert_eq!(c.index(json!({"request": {"minimal": true}})).0, events);
    assert_eq!(c.index(json!({"searchminimal": "1"})).0, events);
}

#[test]
fn events_index_full_shape() {
    let misp = MispDouble::http();
    let mut c = Client::new(&misp);
    let r = c.send("GET", "/events/index", &API, "");
    assert_eq!(r.status, 200);
    let events = r.json();
    let e = &events[0];
    for key in [
        "id",
        "org_id",
        "date",
        "info",
        "uuid",
        "published",
        "analysis",
        "attribute_count",
        "orgc_id",
        "timestamp",
        "distribution",
        "sharing_group_id",
        "proposal_email_lock",
        "locked",
        "threat_level_id",
        "publish_timestamp",
        "sighting_timestamp",
        "disable_correlation",
        "extends_uuid",
        "protected",
        "Org",
        "Orgc",
        "EventTag",
    ] {
        assert!(e.get(key).is_some(), "missing {key}: {e}");
    }
    assert_eq!(e["date"], "2025-01-01");
    assert_eq!(e["attribute_count"], "10");
    assert_eq!(e["published"], true);
    assert_eq!(e["Orgc"], json!({"id": "1", "name": "ORGNAME"}));
    assert_eq!(e["EventTag"][0]["Tag"]["name"], "tlp:white");
    assert_eq!(e["EventTag"][1]["Tag"]["is_galaxy"], true);
    // Event 4 has one live and one soft-deleted attribute.
    assert_eq!(events[3]["attribute_count"], "1");
    assert_eq!(events[3]["EventTag"][0]["tag_id"], "4");
}

#[test]
fn events_index_needs_api_request_and_key() {
    let misp = MispDouble::http();
    let mut c = Client::new(&misp);
    let no_accept = [
        ("Authorization", DEFAULT_API_KEY),
        ("Content-Type", "application/json"),
    ];
    let r = c.send("POST", "/events/index", &no_accept, r#"{"minimal":1}"#);
    assert_eq!(r.status, 302);
    assert_eq!(r.header("Location"), Some("/users/login"));
    let bad_key = [
        ("Authorization", "x"),
        ("Accept", "application/json"),
        ("Content-Type", "application/json"),
    ];
    assert_eq!(c.send("POST", "/events/index", &bad_key, "{}").status, 403);
    assert_eq!(c.send("POST", "/events/index", &API, "{nope").status, 405);
    // `.json` counts as an API request; named parameters work.
    let r = c.send(
        "GET",
        "/events/index/searchminimal:1/searcheventid:2.json",
        &[("Authorization", DEFAULT_API_KEY)],
        "",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()[0]["id"], "2");
    assert!(r.json()[0].get("info").is_none());
    // An empty JSON body is no filter at all (unlike restSearch).
    assert_eq!(c.send("POST", "/events/index", &API, "").status, 200);
}

#[test]
fn events_index_skips_events_without_live_attributes_and_protected_ones() {
    let mut ds = Dataset::seed();
    ds.events.push(Event::new(10, "Empty event"));
    ds.events.push(Event::new(11, "Everything soft-deleted"));
    let mut gone = Attribute::new(100, 11, "domain", "gone.example");
    gone.deleted = true;
    ds.attributes.push(gone);
    let mut protected = Event::new(12, "Protected event");
    protected.protected = true;
    ds.events.push(protected);
    ds.attributes
        .push(Attribute::new(101, 12, "domain", "signed.example"));
    let misp = double_with(ds);
    let mut c = Client::new(&misp);

    let (events, count) = c.index(json!({"minimal": 1}));
    let ids: Vec<u64> = events.iter().map(|e| id_of(&e["id"])).collect();
    assert_eq!(ids, [1, 2, 3, 4]);
    assert_eq!(count, 5, "X-Result-Count counts the protected event too");
    // Without `minimal`: every event but the protected one.
    assert_eq!(c.index_ids(json!({"published": 1})), [1, 2, 4, 10, 11]);
    // `minimal: 0` still restricts to events with attributes, in the full shape.
    let (full, _) = c.index(json!({"minimal": 0}));
    assert_eq!(
        full.iter().map(|e| id_of(&e["id"])).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert!(full[0].get("info").is_some());
    // The protected event's attributes are still searchable.
    assert_eq!(c.search_ids(json!({"value": "signed.example"})), [101]);
    // Protected events are dropped after paging: a page can be short although more follow.
    let (page, count) = c.index(json!({"limit": 2, "page": 3, "published": 1}));
    assert_eq!(
        page.iter().map(|e| id_of(&e["id"])).collect::<Vec<_>>(),
        [11]
    );
    assert_eq!(count, 6);
}

#[test]
fn events_index_filters_and_paging() {
    let misp = MispDouble::http();
    let mut c = Client::new(&misp);
    let m = |extra: Value| with(json!({"minimal": 1}), extra);
    assert_eq!(
        c.index_ids(m(json!({"timestamp": 1_736_330_200}))),
        [2, 3, 4]
    );
    assert_eq!(c.index_ids(m(json!({"timestamp": "1736330201"}))), [3, 4]);
    assert_eq!(
        c.index_ids(m(json!({"timestamp": [1_736_000_000, 1_737_600_000]}))),
        [2, 4]
    );
    assert_eq!(c.index_ids(m(json!({"eventid": [4, "1"]}))), [1, 4]);
    assert_eq!(c.index_ids(m(json!({"eventid": "2|3"}))), [2, 3]);
    assert_eq!(c.index_ids(m(json!({"eventid": ["!2", "!3"]}))), [1, 4]);
    assert_eq!(
        c.index_ids(m(
            json!({"eventid": "8c4e5f60-7182-4d9e-bf0a-2b3c4d5e6f04"})
        )),
        [4]
    );
    assert_eq!(c.index_ids(m(json!({"published": 1}))), [1, 2, 4]);
    assert_eq!(c.index_ids(m(json!({"published": false}))), [3]);
    assert_eq!(c.index_ids(m(json!({"published": [0, 1]}))), [1, 2, 3, 4]);
    assert_eq!(c.index_ids(m(json!({"published": 2}))), [1, 2, 3, 4]);
    assert_eq!(
        c.index_ids(m(json!({"publish_timestamp": 1_736_330_400}))),
        [2, 4]
    );
    let (page, count) = c.index(m(json!({"limit": 3, "page": 1})));
    assert_eq!((page.len(), count), (3, 4));
    let (page, count) = c.index(m(json!({"limit": "3", "page": "2"})));
    assert_eq!(
        (
            page.iter().map(|e| id_of(&e["id"])).collect::<Vec<_>>(),
            count
        ),
        (vec![4], 4)
    );
    assert!(c.index(m(json!({"limit": 3, "page": 3}))).0.is_empty());
    // `page` without `limit` is ignored, like MISP.
    assert_eq!(c.index_ids(m(json!({"page": 2}))).len(), 4);
    assert_eq!(
        c.index_ids(m(json!({"sort": "timestamp", "direction": "desc"}))),
        [3, 4, 2, 1]
    );
}

// ---------------------------------------------------------------- mutations and the clock

const T: u64 = 1_800_000_000;

fn event(misp: &MispDouble, id: u64) -> Event {
    misp.dataset().event(id).unwrap().clone()
}

fn attr(misp: &MispDouble, id: u64) -> Attribute {
    misp.dataset().attribute(id).unwrap().clone()
}

#[test]
fn clock() {
    let misp = MispDouble::http();
    let real = misp.now();
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(real.abs_diff(wall) <= 2);
    misp.set_clock(Some(T));
    assert_eq!(misp.now(), T);
    misp.advance_clock(90);
    assert_eq!(misp.now(), T + 90);
    misp.set_clock(None);
    assert!(misp.now() >= wall);
    misp.advance_clock(3600);
    let frozen = misp.now();
    assert!(frozen >= wall + 3600 && frozen <= wall + 3605);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(misp.now(), frozen, "advance_clock freezes the clock");

    // Two edits in the same (frozen) second, and relative filters and sightings use it.
    misp.set_clock(Some(T));
    assert!(misp.edit_attribute(2, |a| a.comment = "first".into()));
    assert!(misp.edit_attribute(5, |a| a.comment = "second".into()));
    assert_eq!(attr(&misp, 2).timestamp, T);
    assert_eq!(attr(&misp, 5).timestamp, T);
    let mut c = Client::new(&misp);
    assert_eq!(c.search_ids(json!({"timestamp": "10s"})), [2, 5]);
    misp.advance_clock(11);
    assert!(c.search_ids(json!({"timestamp": "10s"})).is_empty());
    let r = c.api(
        "/sightings/add",
        &json!({"values": [seed::C2_IP], "source": "test"}),
    );
    assert_eq!(r.json()["Sighting"]["date_sighting"], (T + 11).to_string());
}

#[test]
fn editing_an_attribute_unpublishes_until_published_again() {
    let misp = MispDouble::http();
    misp.set_clock(Some(T));
    let mut c = Client::new(&misp);
    let published = |c: &mut Client| c.search_ids(json!({"eventid": 1, "published": 1}));
    let before = published(&mut c);
    assert_eq!(before, [2, 3, 4, 5, 7, 8, 9, 10, 12, 14]);
    let publish_ts = event(&misp, 1).publish_timestamp;

    assert!(misp.edit_attribute(3, |a| a.value = "91.219.236.166|8443".into()));
    let (a, e) = (attr(&misp, 3), event(&misp, 1));
    assert_eq!(a.value, "91.219.236.166|8443");
    assert_eq!(a.timestamp, T);
    assert_eq!(
        (e.published, e.timestamp, e.publish_timestamp),
        (false, T, publish_ts)
    );
    assert!(published(&mut c).is_empty(), "the whole event drops out");
    assert_eq!(c.search_ids(json!({"eventid": 1, "published": 0})), before);
    // Other events are untouched.
    assert_eq!(event(&misp, 2).timestamp, 1_736_330_200);
    // The minimal index shows the change.
    let (idx, _) = c.index(json!({"minimal": 1, "timestamp": T}));
    assert_eq!(idx.len(), 1);
    assert_eq!(idx[0]["id"], "1");
    assert_eq!(idx[0]["timestamp"], T.to_string());
    assert_eq!(idx[0]["published"], false);

    misp.advance_clock(60);
    assert!(misp.publish_event(1));
    let e = event(&misp, 1);
    assert_eq!(
        (e.published, e.timestamp, e.publish_timestamp),
        (true, T, T + 60),
        "publishing does not touch Event.timestamp"
    );
    assert_eq!(published(&mut c), before);
    assert_eq!(
        c.search(json!({"value": "91.219.236.166"}))[0]["Event"]["publish_timestamp"],
        (T + 60).to_string()
    );
}

#[test]
fn adding_and_soft_deleting_attributes() {
    let misp = MispDouble::http();
    misp.set_clock(Some(T));
    let mut c = Client::new(&misp);

    let id = misp
        .add_attribute_as_user(Attribute::new(0, 2, "domain", "new-phish.example"))
        .unwrap();
    assert_eq!(id, seed::ATTRIBUTE_COUNT as u64 + 1);
    let (a, e) = (attr(&misp, id), event(&misp, 2));
    assert_eq!(a.timestamp, T);
    assert_eq!((e.published, e.timestamp), (false, T));
    assert!(c
        .search_ids(json!({"eventid": 2, "published": 1}))
        .is_empty());
    assert_eq!(
        misp.add_attribute_as_user(Attribute::new(0, 99, "domain", "x.example")),
        None
    );
    // An explicit id is kept.
    misp.advance_clock(1);
    assert_eq!(
        misp.add_attribute_as_user(Attribute::new(500, 4, "ip-src", "198.51.100.9")),
        Some(500)
    );
    assert_eq!(event(&misp, 4).timestamp, T + 1);

    misp.advance_clock(1);
    assert!(misp.soft_delete_attribute(2));
    let (a, e) = (attr(&misp, 2), event(&misp, 1));
    assert!(a.deleted);
    assert_eq!(a.timestamp, T + 2);
    assert_eq!((e.published, e.timestamp), (false, T + 2));
    assert!(c.search_ids(json!({"value": seed::C2_IP})).is_empty());
    let deleted = c.search(json!({"timestamp": T + 2, "deleted": [0, 1]}));
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0]["deleted"], true);
    assert!(!misp.soft_delete_attribute(12345));
    assert!(!misp.edit_attribute(12345, |_| {}));
}

#[test]
fn event_level_mutations() {
    let misp = MispDouble::http();
    misp.set_clock(Some(T));
    let mut c = Client::new(&misp);

    // Unpublishing keeps the timestamps (EventsController::unpublish saves `published` only).
    let before = event(&misp, 4);
    assert!(misp.unpublish_event(4));
    let e = event(&misp, 4);
    assert!(!e.published);
    assert_eq!(
        (e.timestamp, e.publish_timestamp),
        (before.timestamp, before.publish_timestamp)
    );
    assert!(c
        .search_ids(json!({"value": seed::BRUTE_FORCE_IP, "published": 1}))
        .is_empty());

    assert!(misp.edit_event(2, |e| e.info = "Renamed".into()));
    let e = event(&misp, 2);
    assert_eq!(
        (e.info.as_str(), e.published, e.timestamp),
        ("Renamed", false, T)
    );

    misp.advance_clock(5);
    assert!(misp.set_event_protected(1, true));
    let e = event(&misp, 1);
    assert_eq!(
        (e.protected, e.published, e.timestamp),
        (true, false, T + 5)
    );
    assert_eq!(c.index_ids(json!({"minimal": 1})), [2, 3, 4]);
    assert!(misp.set_event_protected(1, false));
    assert_eq!(c.index_ids(json!({"minimal": 1})), [1, 2, 3, 4]);

    assert!(misp.delete_event(1));
    assert!(!misp.delete_event(1));
    assert_eq!(c.index_ids(json!({"minimal": 1})), [2, 3, 4]);
    assert!(c.search_ids(json!({"eventid": 1})).is_empty());
    assert!(misp.dataset().attributes.iter().all(|a| a.event_id != 1));
    assert_eq!(c.search_ids(json!({"deleted": [0, 1]})), [1, 6, 11, 13, 15]);
    for f in [
        misp.publish_event(77),
        misp.unpublish_event(77),
        misp.set_event_protected(77, true),
        misp.edit_event(77, |_| {}),
    ] {
        assert!(!f);
    }
}

// ---------------------------------------------------------------- paging and eventid batches

#[test]
fn paging_with_a_short_last_page() {
    let ds = Dataset::generated(3_000, 7);
    let want = expected_policy_ids(&ds, None);
    assert!(want.len() > 2_000, "{}", want.len());
    let misp = double_with(ds);
    let mut c = Client::new(&misp);
    let limit = 400;
    let mut got = Vec::new();
    let mut page = 1;
    loop {
        let body = with(policy(), json!({"limit": limit, "page": page}));
        let r = c.api("/attributes/restSearch", &body);
        let items = r.json()["response"]["Attribute"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(
            r.header("X-Result-Count"),
            Some(items.len().to_string().as_str())
        );
        // The same page again (a retry) is identical.
        if page == 2 {
            let again = c.search(body.clone());
            assert_eq!(again, items);
        }
        got.extend(items.iter().map(|a| id_of(&a["id"])));
        if items.len() < limit {
            assert!(!items.is_empty() || want.len() % limit == 0);
            break;
        }
        page += 1;
    }
    assert_eq!(got, want);
    assert_eq!(page, want.len() / limit + 1);
    let past = with(policy(), json!({"limit": limit, "page": page + 1}));
    assert!(c.search(past).is_empty());
    // Descending pages are the reverse.
    let desc = with(
        policy(),
        json!({"limit": 1000, "page": 1, "order": "Attribute.id desc"}),
    );
    let mut rev = want.clone();
    rev.reverse();
    assert_eq!(c.search_ids(desc), rev[..1000]);
}

#[test]
fn paging_sees_changes_between_pages() {
    let ds = Dataset::generated(1_500, 11);
    let misp = double_with(ds);
    misp.set_clock(Some(T));
    let mut c = Client::new(&misp);
    let page =
        |c: &mut Client, n: u64| c.search_ids(with(policy(), json!({"limit": 200, "page": n})));
    let p1 = page(&mut c, 1);
    let p2 = page(&mut c, 2);
    // Unpublish the event holding page 2's first attribute: page 2 changes accordingly.
    let victim = misp.dataset().attribute(p2[0]).unwrap().event_id;
    assert!(misp.unpublish_event(victim));
    let ds = misp.dataset();
    let want = expected_policy_ids(&ds, None);
    assert_eq!(page(&mut c, 1), want[..200]);
    assert_eq!(page(&mut c, 2), want[200..400]);
    assert_ne!(page(&mut c, 2), p2);
    let _ = p1;
}

#[test]
fn eventid_batches() {
    let ds = Dataset::generated(4_000, 3);
    let batch: BTreeSet<u64> = ds
        .events
        .iter()
        .map(|e| e.id)
        .filter(|id| id % 3 == 0)
        .collect();
    let want = expected_policy_ids(&ds, Some(&batch));
    assert!(!want.is_empty());
    let misp = double_with(ds.clone());
    let mut c = Client::new(&misp);
    let ids: Vec<Value> = batch.iter().map(|id| json!(id)).collect();
    let all = c.search_ids(with(policy(), json!({"eventid": ids})));
    assert_eq!(all, want);
    // Paged, with ids as strings.
    let ids: Vec<Value> = batch.iter().map(|id| json!(id.to_string())).collect();
    let mut got: Vec<u64> = Vec::new();
    for page in 1.. {
        let items = c.search_ids(with(
            policy(),
            json!({"eventid": ids, "limit": 250, "page": page}),
        ));
        got.extend(&items);
        if items.len() < 250 {
            break;
        }
    }
    assert_eq!(got, want);
    // Negated ids (scanned, not indexed) agree with the dataset too.
    let not: BTreeSet<u64> = ds
        .events
        .iter()
        .map(|e| e.id)
        .filter(|id| !batch.contains(id))
        .collect();
    let negated: Vec<Value> = batch.iter().map(|id| json!(format!("!{id}"))).collect();
    assert_eq!(
        c.search_ids(with(policy(), json!({"eventid": negated}))),
        expected_policy_ids(&ds, Some(&not))
    );
    // Every attribute of one event, deleted ones included.
    let big = ds
        .events
        .iter()
        .max_by_key(|e| ds.attributes.iter().filter(|a| a.event_id == e.id).count())
        .unwrap()
        .id;
    let of_big: Vec<u64> = ds
        .attributes
        .iter()
        .filter(|a| a.event_id == big)
        .map(|a| a.id)
        .collect();
    assert_eq!(
        c.search_ids(json!({"eventid": big, "deleted": [0, 1]})),
        of_big
    );
}

// ---------------------------------------------------------------- the generated instance

#[test]
fn generated_dataset_invariants() {
    let n = 20_000;
    let ds = Dataset::generated(n, 42);
    assert_eq!(ds.attributes.len(), n);
    assert_eq!(ds, Dataset::generated(n, 42), "deterministic");
    assert_ne!(ds, Dataset::generated(n, 43));
    assert_eq!(Dataset::generated(0, 1).attributes.len(), 0);
    assert_eq!(Dataset::generated(1, 1).attributes.len(), 1);

    let ids: Vec<u64> = ds.attributes.iter().map(|a| a.id).collect();
    assert_eq!(ids, (1..=n as u64).collect::<Vec<_>>());
    let event_ids: Vec<u64> = ds.events.iter().map(|e| e.id).collect();
    assert_eq!(event_ids, (1..=ds.events.len() as u64).collect::<Vec<_>>());
    let uuids: BTreeSet<&str> = ds
        .attributes
        .iter()
        .map(|a| a.uuid.as_str())
        .chain(ds.events.iter().map(|e| e.uuid.as_str()))
        .collect();
    assert_eq!(uuids.len(), n + ds.events.len());

    let mut sizes: BTreeMap<u64, usize> = ds.events.iter().map(|e| (e.id, 0)).collect();
    for a in &ds.attributes {
        *sizes
            .get_mut(&a.event_id)
            .expect("attribute of a known event") += 1;
    }
    let max = *sizes.values().max().unwrap();
    assert!((101..=400).contains(&max), "{max}");
    assert!(sizes.values().filter(|s| **s == 1).count() > 5);
    let pct = |count: usize, of: usize| count as f64 * 100.0 / of as f64;
    let not_ids = pct(ds.attributes.iter().filter(|a| !a.to_ids).count(), n);
    assert!((3.0..8.0).contains(&not_ids), "to_ids false {not_ids}%");
    let deleted = pct(ds.attributes.iter().filter(|a| a.deleted).count(), n);
    assert!((1.5..5.0).contains(&deleted), "deleted {deleted}%");
    let unpublished = pct(
        ds.events.iter().filter(|e| !e.published).count(),
        ds.events.len(),
    );
    assert!(
        (2.0..10.0).contains(&unpublished),
        "unpublished {unpublished}%"
    );
    assert!(ds.events.iter().any(|e| e.protected));
    assert!(ds.events.iter().any(|e| !e.tags.is_empty()));
    assert!(ds.attributes.iter().any(|a| !a.tags.is_empty()));
    assert!(ds.attributes.iter().any(|a| !a.comment.is_empty()));

    let kinds: BTreeSet<&str> = ds.attributes.iter().map(|a| a.kind.as_str()).collect();
    for k in [
        "ip-src",
        "ip-dst",
        "ip-dst|port",
        "domain",
        "hostname",
        "domain|ip",
        "url",
        "md5",
        "sha1",
        "sha256",
        "filename|sha256",
        "text",
        "email-src",
    ] {
        assert!(kinds.contains(k), "no {k}");
    }
    assert!(ds
        .attributes
        .iter()
        .any(|a| a.kind.starts_with("ip-") && a.value.contains(':')));
    for a in &ds.attributes {
        match a.kind.as_str() {
            "md5" | "sha1" | "sha256" | "domain" | "hostname" => {
                assert_eq!(a.value, a.value.to_lowercase(), "{a:?}");
                if a.kind.starts_with("sha") || a.kind == "md5" {
                    let len = match a.kind.as_str() {
                        "md5" => 32,
                        "sha1" => 40,
                        _ => 64,
                    };
                    assert_eq!(a.value.len(), len);
                    assert!(a.value.bytes().all(|b| b.is_ascii_hexdigit()));
                }
            }
            "ip-src" | "ip-dst" => {
                let ip: std::net::IpAddr = a.value.parse().unwrap();
                assert_eq!(ip.to_string(), a.value, "canonical form");
            }
            "ip-dst|port" | "domain|ip" | "filename|sha256" => assert!(a.value.contains('|')),
            _ => {}
        }
    }
    // A few values are shared by several events.
    let mut events_by_value: HashMap<&str, BTreeSet<u64>> = HashMap::new();
    for a in &ds.attributes {
        events_by_value
            .entry(&a.value)
            .or_default()
            .insert(a.event_id);
    }
    assert!(events_by_value.values().filter(|s| s.len() > 1).count() >= 10);
    // Timestamps: the event's is its last change.
    for e in &ds.events {
        assert!(e.timestamp >= GENERATED_EPOCH && e.timestamp < GENERATED_EPOCH + 400 * 86_400);
        assert_eq!(e.orgc_uuid, org_uuid(e.orgc_id));
    }
    let event_ts: HashMap<u64, u64> = ds.events.iter().map(|e| (e.id, e.timestamp)).collect();
    for a in &ds.attributes {
        assert!(a.timestamp <= event_ts[&a.event_id]);
    }
    for e in ds.events.iter().filter(|e| e.published) {
        assert!(e.publish_timestamp >= e.timestamp);
    }
}

#[test]
fn generated_instance_through_the_index() {
    let ds = Dataset::generated(5_000, 5);
    let live: BTreeSet<u64> = ds
        .attributes
        .iter()
        .filter(|a| !a.deleted)
        .map(|a| a.event_id)
        .collect();
    let want: Vec<u64> = ds
        .events
        .iter()
        .filter(|e| !e.protected && live.contains(&e.id))
        .map(|e| e.id)
        .collect();
    let misp = double_with(ds.clone());
    let mut c = Client::new(&misp);
    let (events, count) = c.index(json!({"minimal": 1}));
    let ids: Vec<u64> = events.iter().map(|e| id_of(&e["id"])).collect();
    assert_eq!(ids, want);
    assert!(count >= ids.len());
    for e in &events {
        let src = ds.event(id_of(&e["id"])).unwrap();
        assert_eq!(e["timestamp"], src.timestamp.to_string());
        assert_eq!(e["published"], src.published);
        assert_eq!(e["uuid"], src.uuid);
    }
}

// ---------------------------------------------------------------- numbers for the benchmark

#[test]
#[ignore = "prints timings for a 1,000,000-attribute instance; run with --release"]
fn big_instance_timings() {
    let n = 1_000_000;
    let t = Instant::now();
    let ds = Dataset::generated(n, 1);
    let generate = t.elapsed();
    let events = ds.events.len();
    let t = Instant::now();
    let misp = double_with(ds);
    let start = t.elapsed();
    let mut c = Client::new(&misp);

    let limit = 10_000;
    let t = Instant::now();
    let mut pages = 0;
    let mut total = 0;
    let mut slowest = Duration::ZERO;
    loop {
        pages += 1;
        let tp = Instant::now();
        let r = c.api(
            "/attributes/restSearch",
            &with(policy(), json!({"limit": limit, "page": pages})),
        );
        let got: usize = r.header("X-Result-Count").unwrap().parse().unwrap();
        slowest = slowest.max(tp.elapsed());
        total += got;
        if got < limit {
            break;
        }
    }
    let paging = t.elapsed();

    // The same page 50 cold (no cursor: a different query each time).
    let t = Instant::now();
    let r = c.api(
        "/attributes/restSearch",
        &with(
            policy(),
            json!({"limit": limit, "page": 50, "includeEventTags": 0}),
        ),
    );
    assert_eq!(r.status, 200);
    let cold = t.elapsed();

    let batch: Vec<u64> = (1..=events as u64)
        .step_by(events / 100)
        .take(100)
        .collect();
    let t = Instant::now();
    let r = c.api(
        "/attributes/restSearch",
        &with(
            policy(),
            json!({"eventid": batch, "limit": limit, "page": 1}),
        ),
    );
    let batch_hits: usize = r.header("X-Result-Count").unwrap().parse().unwrap();
    let eventid = t.elapsed();

    // Server time plus transfer, without parsing the answer.
    let mut timed = |body: Value| {
        let t = Instant::now();
        let r = c.api("/events/index", &body);
        let elapsed = t.elapsed();
        assert_eq!(r.status, 200);
        (r.json().as_array().unwrap().len(), r.body.len(), elapsed)
    };
    let (listed, listed_bytes, index) = timed(json!({"minimal": 1}));
    let (full, full_bytes, index_full) = timed(json!({}));
    let since = misp.with_dataset(|d| d.events[d.events.len() * 99 / 100].timestamp);
    let (changed, _, index_since) = timed(json!({"minimal": 1, "timestamp": since}));

    println!(
        "generate {n} attributes / {events} events: {generate:?}; start the double: {start:?}"
    );
    println!(
        "paged restSearch (policy, limit {limit}): {pages} pages, {total} attributes in {paging:?} \
         ({:?}/page, slowest {slowest:?}); page 50 without cursor: {cold:?}",
        paging / pages as u32
    );
    println!("eventid batch of 100 events: {batch_hits} attributes in {eventid:?}");
    println!(
        "events/index minimal: {listed} events ({listed_bytes} bytes) in {index:?}; \
         full: {full} ({full_bytes} bytes) in {index_full:?}; \
         minimal since a timestamp: {changed} in {index_since:?}"
    );
}
