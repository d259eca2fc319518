//! End-to-end tests of the double over real loopback sockets, with a minimal HTTP/1.1 client
//! written here (std `TcpStream`, or a rustls client stream for HTTPS).

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use misp_double::{
    seed, Attribute, Dataset, Fault, MispDouble, Options, Tag, AUTH_FAILED_MESSAGE,
    DEFAULT_API_KEY, INVALID_JSON_MESSAGE, NO_FILTER_MESSAGE, SIGHTING_FAILED_MESSAGE,
};
use serde_json::{json, Value};

// ---------------------------------------------------------------- minimal client

#[derive(Debug)]
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
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    fn attributes(&self) -> Vec<Value> {
        self.json()["response"]["Attribute"]
            .as_array()
            .cloned()
            .unwrap_or_else(|| panic!("no Attribute list: {}", self.text()))
    }
    fn values(&self) -> Vec<String> {
        self.attributes()
            .iter()
            .map(|a| a["value"].as_str().unwrap().to_string())
            .collect()
    }
}

/// Reads one response; `buf` keeps bytes read past it.
fn read_response(s: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<Resp> {
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    assert!(status_line.starts_with("HTTP/1.1 "), "{status_line}");
    let status: u16 = status_line[9..12].parse().unwrap();
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
        .expect("every answer has Content-Length");
    while buf.len() < head_end + len {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[head_end..head_end + len].to_vec();
    buf.drain(..head_end + len);
    Ok(Resp {
        status,
        headers,
        body,
    })
}

fn raw_request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

fn connect(misp: &MispDouble) -> TcpStream {
    let s = TcpStream::connect(misp.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// One request on a fresh connection.
fn request(
    misp: &MispDouble,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Resp {
    let mut s = connect(misp);
    s.write_all(&raw_request(method, path, headers, body.as_bytes()))
        .unwrap();
    read_response(&mut s, &mut Vec::new()).unwrap()
}

const API_HEADERS: [(&str, &str); 3] = [
    ("Authorization", DEFAULT_API_KEY),
    ("Accept", "application/json"),
    ("Content-Type", "application/json"),
];

fn search(misp: &MispDouble, body: Value) -> Resp {
    let r = request(
        misp,
        "POST",
        "/attributes/restSearch",
        &API_HEADERS,
        &body.to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert_eq!(
        r.header("X-Result-Count"),
        Some(r.attributes().len().to_string().as_str())
    );
    r
}

// ---------------------------------------------------------------- auth and connection checks

#[test]
fn auth_failure_is_403_with_misp_body() {
    let misp = MispDouble::http();
    for headers in [
        vec![
            ("Accept", "application/json"),
            ("Content-Type", "application/json"),
        ],
        vec![
            ("Authorization", "wrongwrongwrongwrongwrongwrongwrongwrong"),
            ("Content-Type", "application/json"),
        ],
        vec![("Authorization", ""), ("Content-Type", "application/json")],
    ] {
        let r = request(
            &misp,
            "POST",
            "/attributes/restSearch",
            &headers,
            r#"{"value":"x"}"#,
        );
        assert_eq!(r.status, 403);
        let v = r.json();
        assert_eq!(v["name"], AUTH_FAILED_MESSAGE);
        assert_eq!(v["message"], AUTH_FAILED_MESSAGE);
        assert_eq!(v["url"], "/attributes/restSearch");
    }
    let r = request(
        &misp,
        "POST",
        "/attributes/restSearch",
        &[
            ("X-MISP-AUTH", DEFAULT_API_KEY),
            ("Content-Type", "application/json"),
        ],
        r#"{"value":"185.220.101.47"}"#,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.values(), vec![seed::BRUTE_FORCE_IP]);
}

#[test]
fn custom_api_key() {
    let key = "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ";
    let misp = MispDouble::start(Options {
        api_key: key.into(),
        ..Options::default()
    });
    assert_eq!(misp.api_key(), key);
    let r = request(
        &misp,
        "POST",
        "/attributes/restSearch",
        &API_HEADERS,
        "{\"value\":\"x\"}",
    );
    assert_eq!(r.status, 403);
    let r = request(
        &misp,
        "POST",
        "/attributes/restSearch",
        &[("Authorization", key), ("Content-Type", "application/json")],
        "{\"value\":\"x\"}",
    );
    assert_eq!(r.status, 200);
}

#[test]
fn get_version_and_view_me_need_accept_json() {
    let misp = MispDouble::http();
    for path in ["/servers/getVersion", "/users/view/me"] {
        for accept in [None, Some("*/*"), Some("application/json, */*")] {
            let mut headers = vec![("Authorization", DEFAULT_API_KEY)];
            if let Some(a) = accept {
                headers.push(("Accept", a));
            }
            let r = request(&misp, "GET", path, &headers, "");
            assert_eq!(r.status, 302, "{path} {accept:?}");
            assert_eq!(r.header("Location"), Some("/users/login"));
            assert!(r.header("Content-Type").unwrap().starts_with("text/html"));
            assert!(r.text().contains("<html"));
        }
        // No key at all: still the redirect, the key is never checked.
        let r = request(&misp, "GET", path, &[], "");
        assert_eq!(r.status, 302);
        // API request with a bad key.
        let r = request(
            &misp,
            "GET",
            path,
            &[("Accept", "application/json"), ("Authorization", "nope")],
            "",
        );
        assert_eq!(r.status, 403);
        assert_eq!(r.json()["url"], path);
    }
    let r = request(&misp, "GET", "/servers/getVersion", &API_HEADERS, "");
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["version"], "2.5.22");
    assert_eq!(v["perm_sighting"], true);
    assert_eq!(v["perm_sync"], false);
    assert_eq!(v["request_encoding"], json!(["gzip", "br"]));
    let r = request(&misp, "GET", "/users/view/me", &API_HEADERS, "");
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["User"]["email"], "admin@admin.test");
    assert_eq!(v["User"]["id"], "1");
    assert_eq!(v["Role"]["name"], "admin");
    assert_eq!(v["Role"]["perm_sighting"], true);
    assert_eq!(v["UserSetting"], json!([]));
    assert_eq!(v["Organisation"]["name"], "ORGNAME");
    // The login page the redirect points to.
    let r = request(&misp, "GET", "/users/login", &[], "");
    assert_eq!(r.status, 200);
    assert!(r.text().contains("UserLoginForm"));
}

#[test]
fn unknown_path_is_404_json() {
    let misp = MispDouble::http();
    let r = request(&misp, "POST", "/events/restSearchX", &API_HEADERS, "{}");
    assert_eq!(r.status, 404);
    assert_eq!(
        r.json(),
        json!({"name":"Not Found","message":"Not Found","url":"/events/restSearchX"})
    );
}

// ---------------------------------------------------------------- restSearch

#[test]
fn composite_values_match_on_each_half() {
    let misp = MispDouble::http();
    let r = search(
        &misp,
        json!({"value": seed::C2_IP_PORT_IP, "returnFormat": "json"}),
    );
    let attrs = r.attributes();
    assert_eq!(attrs.len(), 1);
    assert_eq!(attrs[0]["type"], "ip-dst|port");
    assert_eq!(attrs[0]["value"], seed::C2_IP_PORT);

    let r = search(&misp, json!({"value": [seed::INVOICE_SHA256]}));
    assert_eq!(r.values(), vec![seed::INVOICE_FILENAME_SHA256]);
    assert_eq!(r.attributes()[0]["type"], "filename|sha256");

    // An IP and a domain both find domain|ip; upper case too.
    let r = search(
        &misp,
        json!({"value": [seed::DOMAIN_IP_IP, "BAD-UPDATE.NET", "198.51.100.200"]}),
    );
    assert_eq!(r.values(), vec![seed::DOMAIN_IP]);

    // The EICAR sha256 itself only finds the sha256 attribute.
    let r = search(&misp, json!({"value": seed::EICAR_SHA256.to_uppercase()}));
    assert_eq!(r.values(), vec![seed::EICAR_SHA256]);

    // LIKE only with a % at an end.
    let r = search(&misp, json!({"value": "%drop.ru"}));
    assert_eq!(r.values(), vec![seed::MALWARE_DOMAIN]);
    let r = search(&misp, json!({"value": "malware%"}));
    assert_eq!(r.values(), vec![seed::MALWARE_DOMAIN]);
    let r = search(&misp, json!({"value": "malware-drop"}));
    assert!(r.values().is_empty());

    // No hit is an empty list, not an error.
    let r = search(&misp, json!({"value": "203.0.113.9"}));
    assert_eq!(r.json(), json!({"response": {"Attribute": []}}));
    assert_eq!(r.header("X-Result-Count"), Some("0"));
}

#[test]
fn type_filter() {
    let misp = MispDouble::http();
    let ip_types = json!([
        "ip-src",
        "ip-dst",
        "ip-src|port",
        "ip-dst|port",
        "domain|ip"
    ]);
    let r = search(
        &misp,
        json!({"value": seed::DOMAIN_IP_IP, "type": ip_types}),
    );
    assert_eq!(r.values(), vec![seed::DOMAIN_IP]);
    let r = search(
        &misp,
        json!({"value": seed::DOMAIN_IP_IP, "type": ["ip-src", "ip-dst"]}),
    );
    assert!(r.values().is_empty());
    let r = search(&misp, json!({"type": "md5"}));
    assert_eq!(r.values(), vec![seed::EICAR_MD5]);
    let r = search(&misp, json!({"type": ["sha1", "sha256"]}));
    assert_eq!(r.values(), vec![seed::EICAR_SHA1, seed::EICAR_SHA256]);
    let r = search(
        &misp,
        json!({"type": "!ip-dst&&!ip-src", "category": "Network activity"}),
    );
    assert_eq!(
        r.values(),
        vec![
            seed::C2_IP_PORT,
            seed::DOMAIN_IP,
            seed::MALWARE_DOMAIN,
            seed::PHISHING_HOSTNAME,
            seed::UNPUBLISHED_DOMAIN
        ]
    );
}

#[test]
fn to_ids_published_and_deleted_filters() {
    let misp = MispDouble::http();
    let all = search(&misp, json!({"returnFormat": "json"}));
    assert_eq!(all.values().len(), seed::LIVE_ATTRIBUTE_COUNT);

    for to_ids in [json!(1), json!(true), json!("1")] {
        let v = search(&misp, json!({"to_ids": to_ids})).values();
        assert_eq!(v.len(), seed::LIVE_ATTRIBUTE_COUNT - 1);
        assert!(!v.contains(&seed::NON_IDS_IP.to_string()));
    }
    for to_ids in [json!(0), json!(false), json!("0")] {
        assert_eq!(
            search(&misp, json!({"to_ids": to_ids})).values(),
            vec![seed::NON_IDS_IP]
        );
    }
    assert_eq!(
        search(&misp, json!({"to_ids": [0, 1]})).values().len(),
        seed::LIVE_ATTRIBUTE_COUNT
    );

    let published = search(&misp, json!({"published": 1})).values();
    assert!(!published.contains(&seed::UNPUBLISHED_DOMAIN.to_string()));
    assert_eq!(published.len(), seed::LIVE_ATTRIBUTE_COUNT - 1);
    assert_eq!(
        search(&misp, json!({"published": 0})).values(),
        vec![seed::UNPUBLISHED_DOMAIN]
    );
    // The typical wazuh-misp lookup: the unpublished and non-IDS hits disappear.
    let r = search(
        &misp,
        json!({"value": [seed::UNPUBLISHED_DOMAIN, seed::NON_IDS_IP, seed::C2_IP],
               "to_ids": 1, "published": 1, "deleted": 0}),
    );
    assert_eq!(r.values(), vec![seed::C2_IP]);

    let r = search(&misp, json!({"value": seed::DELETED_IP}));
    assert!(r.values().is_empty());
    let r = search(&misp, json!({"value": seed::DELETED_IP, "deleted": 1}));
    assert_eq!(r.values(), vec![seed::DELETED_IP]);
    assert_eq!(r.attributes()[0]["deleted"], true);
    let r = search(&misp, json!({"deleted": [0, 1]}));
    assert_eq!(r.values().len(), seed::ATTRIBUTE_COUNT);
    let r = search(&misp, json!({"deleted": 1}));
    assert_eq!(r.values(), vec![seed::DELETED_IP]);
}

#[test]
fn limit_and_page() {
    let misp = MispDouble::http();
    let ids = |r: &Resp| -> Vec<String> {
        r.attributes()
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_string())
            .collect()
    };
    let p1 = search(
        &misp,
        json!({"limit": 5, "page": 1, "order": "Attribute.id asc"}),
    );
    assert_eq!(ids(&p1), vec!["1", "2", "3", "4", "5"]);
    assert_eq!(p1.header("X-Result-Count"), Some("5"));
    let p2 = search(&misp, json!({"limit": "5", "page": "2"}));
    assert_eq!(ids(&p2), vec!["6", "7", "8", "9", "10"]);
    let p3 = search(&misp, json!({"limit": 5, "page": 3}));
    assert_eq!(ids(&p3), vec!["11", "12", "13", "14"]);
    assert_eq!(p3.header("X-Result-Count"), Some("4"));
    let p4 = search(&misp, json!({"limit": 5, "page": 4}));
    assert!(ids(&p4).is_empty());
    let desc = search(&misp, json!({"limit": 2, "order": "Attribute.id desc"}));
    assert_eq!(ids(&desc), vec!["14", "13"]);
}

#[test]
fn include_event_tags_and_uuid() {
    let misp = MispDouble::http();
    let plain = search(&misp, json!({"value": seed::BRUTE_FORCE_IP}));
    let a = &plain.attributes()[0];
    assert!(a.get("event_uuid").is_none());
    assert_eq!(
        a["Tag"],
        json!([{"id":"5","name":"kill-chain:Reconnaissance","colour":"#ff9900",
                "numerical_value":null,"is_galaxy":false,"local":false}])
    );

    let rich = search(
        &misp,
        json!({"value": seed::BRUTE_FORCE_IP, "includeEventTags": 1, "includeEventUuid": true}),
    );
    let a = &rich.attributes()[0];
    assert_eq!(a["event_uuid"], a["Event"]["uuid"]);
    let tags = a["Tag"].as_array().unwrap();
    assert_eq!(tags.len(), 2);
    assert!(tags[0].get("inherited").is_none());
    assert_eq!(tags[1]["name"], "type:OSINT");
    assert_eq!(tags[1]["inherited"], 1);

    // No attribute tag, no event tag requested: no Tag key at all.
    let r = search(&misp, json!({"value": seed::C2_IP}));
    assert!(r.attributes()[0].get("Tag").is_none());
    // Event 1's galaxy tag is flagged as such.
    let r = search(&misp, json!({"value": seed::C2_IP, "includeEventTags": 1}));
    let tags = r.attributes()[0]["Tag"].as_array().unwrap().clone();
    let names: Vec<&str> = tags.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        vec!["tlp:white", "misp-galaxy:threat-actor=\"TA542\""]
    );
    assert_eq!(tags[1]["is_galaxy"], true);
    assert!(tags.iter().all(|t| t["inherited"] == 1));
    // Unpublished draft event has no tags: no Tag key even when asked.
    let r = search(
        &misp,
        json!({"value": seed::UNPUBLISHED_DOMAIN, "includeEventTags": 1}),
    );
    assert!(r.attributes()[0].get("Tag").is_none());
}

#[test]
fn attribute_wire_shape_is_misps() {
    let misp = MispDouble::http();
    let r = search(&misp, json!({"value": seed::C2_IP, "includeEventUuid": 1}));
    let text = r.text();
    let expected_prefix = concat!(
        r#"{"response":{"Attribute":[{"id":"2","event_id":"1","object_id":"0","object_relation":null,"#,
        r#""category":"Network activity","type":"ip-dst","to_ids":true,"uuid":""#
    );
    assert!(text.starts_with(expected_prefix), "{text}");
    let a = &r.attributes()[0];
    let keys: Vec<&str> = a.as_object().unwrap().keys().map(String::as_str).collect();
    let mut expected = vec![
        "id",
        "event_id",
        "object_id",
        "object_relation",
        "category",
        "type",
        "to_ids",
        "uuid",
        "timestamp",
        "distribution",
        "sharing_group_id",
        "comment",
        "deleted",
        "disable_correlation",
        "first_seen",
        "last_seen",
        "value",
        "event_uuid",
        "Event",
    ];
    let mut sorted_keys = keys.clone();
    sorted_keys.sort_unstable();
    expected.sort_unstable();
    assert_eq!(sorted_keys, expected);
    for k in [
        "id",
        "event_id",
        "object_id",
        "timestamp",
        "distribution",
        "sharing_group_id",
    ] {
        assert!(a[k].is_string(), "{k} must be a string");
    }
    assert_eq!(a["timestamp"], "1735725100");
    assert_eq!(a["distribution"], "5");
    assert_eq!(a["disable_correlation"], false);
    assert!(a["first_seen"].is_null() && a["last_seen"].is_null());
    assert_eq!(
        a["Event"],
        json!({"org_id":"1","distribution":"1","publish_timestamp":"1735725600","id":"1",
               "info":"Emotet C2 infrastructure","orgc_id":"1",
               "uuid":"5f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c01"})
    );
    assert!(text.contains(
        r#""Event":{"org_id":"1","distribution":"1","publish_timestamp":"1735725600","id":"1","info""#
    ));
}

#[test]
fn body_ignored_without_json_content_type() {
    let misp = MispDouble::http();
    let body = json!({"value": seed::C2_IP, "to_ids": 1}).to_string();
    // curl -d default: a form; the JSON text is one unknown field, so NO filter applies.
    let r = request(
        &misp,
        "POST",
        "/attributes/restSearch",
        &[
            ("Authorization", DEFAULT_API_KEY),
            ("Accept", "application/json"),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &body,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.values().len(), seed::LIVE_ATTRIBUTE_COUNT);
    // No or another Content-Type: MISP has no data at all.
    for ct in [None, Some("text/plain; charset=utf-8")] {
        let mut headers = vec![
            ("Authorization", DEFAULT_API_KEY),
            ("Accept", "application/json"),
        ];
        if let Some(ct) = ct {
            headers.push(("Content-Type", ct));
        }
        let r = request(&misp, "POST", "/attributes/restSearch", &headers, &body);
        assert_eq!(r.status, 400, "{ct:?}");
        assert_eq!(r.json()["message"], NO_FILTER_MESSAGE);
    }
    // A JSON object without any known filter: everything.
    let r = search(
        &misp,
        json!({"returnFormat": "json", "enforceWarninglist": 1}),
    );
    assert_eq!(r.values().len(), seed::LIVE_ATTRIBUTE_COUNT);
    // Wrapped request with charset parameter on the media type.
    let r = request(
        &misp,
        "POST",
        "/attributes/restSearch",
        &[
            ("Authorization", DEFAULT_API_KEY),
            ("Content-Type", "application/json; charset=utf-8"),
        ],
        &json!({"request": {"value": seed::C2_IP}}).to_string(),
    );
    assert_eq!(r.values(), vec![seed::C2_IP]);
}

#[test]
fn invalid_json_is_405() {
    let misp = MispDouble::http();
    let r = request(
        &misp,
        "POST",
        "/attributes/restSearch",
        &API_HEADERS,
        "{\"value\": ",
    );
    assert_eq!(r.status, 405);
    assert_eq!(r.json()["name"], INVALID_JSON_MESSAGE);
}

#[test]
fn other_return_format_is_empty_json() {
    let misp = MispDouble::http();
    let r = search(&misp, json!({"returnFormat": "csv", "value": seed::C2_IP}));
    assert_eq!(r.json(), json!({"response": {"Attribute": []}}));
}

#[test]
fn dataset_can_change_while_running() {
    let misp = MispDouble::start(Options {
        dataset: Dataset::empty(),
        ..Options::default()
    });
    assert!(search(&misp, json!({"value": "203.0.113.77"}))
        .values()
        .is_empty());
    let mut event = misp_double::Event::new(42, "Test event");
    event.tags.push(Tag::new(9, "tlp:amber", "#ffc000"));
    misp.add_event(event);
    let mut attr = Attribute::new(100, 42, "ip-dst", "203.0.113.77");
    attr.comment = "added by the test".into();
    misp.add_attribute(attr);
    let r = search(
        &misp,
        json!({"value": "203.0.113.77", "includeEventTags": 1}),
    );
    let a = &r.attributes()[0];
    assert_eq!(a["id"], "100");
    assert_eq!(a["category"], "Network activity");
    assert_eq!(a["Event"]["info"], "Test event");
    assert_eq!(a["Tag"][0]["name"], "tlp:amber");
    assert_eq!(misp.dataset().attributes.len(), 1);
}

// ---------------------------------------------------------------- sightings

#[test]
fn sightings_add() {
    let misp = MispDouble::http();
    let r = request(
        &misp,
        "POST",
        "/sightings/add",
        &API_HEADERS,
        &json!({"values": [seed::BRUTE_FORCE_IP], "source": "wazuh", "type": "0",
                "timestamp": 1_750_000_000u64, "filters": {"type": ["ip-src"], "to_ids": 1}})
        .to_string(),
    );
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["Sighting"]["attribute_id"], "1");
    assert_eq!(v["Sighting"]["source"], "wazuh");
    assert_eq!(v["Sighting"]["date_sighting"], "1750000000");
    let r = request(
        &misp,
        "POST",
        "/sightings/add",
        &API_HEADERS,
        &json!({"values": [], "source": "wazuh"}).to_string(),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"message": SIGHTING_FAILED_MESSAGE}));
    // Without Accept: the login redirect.
    let r = request(
        &misp,
        "POST",
        "/sightings/add",
        &[
            ("Authorization", DEFAULT_API_KEY),
            ("Content-Type", "application/json"),
        ],
        "{\"values\":[\"185.220.101.47\"]}",
    );
    assert_eq!(r.status, 302);
}

// ---------------------------------------------------------------- connections

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let misp = MispDouble::http();
    let mut s = connect(&misp);
    let mut buf = Vec::new();
    let body = json!({"value": seed::C2_IP}).to_string();
    for _ in 0..3 {
        s.write_all(&raw_request(
            "POST",
            "/attributes/restSearch",
            &API_HEADERS,
            body.as_bytes(),
        ))
        .unwrap();
        let r = read_response(&mut s, &mut buf).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.values(), vec![seed::C2_IP]);
        assert!(r.header("Connection").is_none());
    }
    // Pipelined: two requests in one write.
    let mut two = raw_request("GET", "/servers/getVersion", &API_HEADERS, b"");
    two.extend(raw_request("GET", "/users/view/me", &API_HEADERS, b""));
    s.write_all(&two).unwrap();
    assert_eq!(
        read_response(&mut s, &mut buf).unwrap().json()["version"],
        "2.5.22"
    );
    assert_eq!(
        read_response(&mut s, &mut buf).unwrap().json()["User"]["id"],
        "1"
    );
    assert_eq!(misp.connection_count(), 1);
    // Connection: close is honoured.
    let mut headers = API_HEADERS.to_vec();
    headers.push(("Connection", "close"));
    s.write_all(&raw_request(
        "POST",
        "/attributes/restSearch",
        &headers,
        body.as_bytes(),
    ))
    .unwrap();
    let r = read_response(&mut s, &mut buf).unwrap();
    assert_eq!(r.header("Connection"), Some("close"));
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    assert_eq!(misp.connection_count(), 1);
    assert_eq!(misp.request_count("/attributes/restSearch"), 4);
}

#[test]
fn http10_closes_unless_keep_alive() {
    let misp = MispDouble::http();
    let mut s = connect(&misp);
    s.write_all(b"GET /users/login HTTP/1.0\r\n\r\n").unwrap();
    let mut all = String::new();
    s.read_to_string(&mut all).unwrap();
    assert!(all.starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(all.contains("Connection: close\r\n"));
}

#[test]
fn recording() {
    let misp = MispDouble::http();
    let body = json!({"value": [seed::C2_IP], "to_ids": 1}).to_string();
    request(
        &misp,
        "POST",
        "/attributes/restSearch?x=1",
        &API_HEADERS,
        &body,
    );
    request(&misp, "GET", "/servers/getVersion", &API_HEADERS, "");
    let reqs = misp.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].path, "/attributes/restSearch");
    assert_eq!(reqs[0].query, "x=1");
    assert_eq!(reqs[0].header("AUTHORIZATION"), Some(DEFAULT_API_KEY));
    assert!(reqs[0]
        .headers
        .iter()
        .all(|(k, _)| k == &k.to_ascii_lowercase()));
    assert_eq!(reqs[0].json().unwrap()["value"][0], seed::C2_IP);
    assert_eq!(reqs[1].body, b"");
    assert!(reqs[1].json().is_none());
    assert_eq!(misp.request_count("/attributes/restSearch"), 1);
    assert_eq!(misp.request_count("/servers/getVersion"), 1);
    misp.clear_requests();
    assert!(misp.requests().is_empty());
}

#[test]
fn malformed_and_oversized_requests() {
    let misp = MispDouble::http();
    let exchange = |raw: &[u8]| -> Resp {
        let mut s = connect(&misp);
        // The server may close while we still write: ignore write errors.
        let _ = s.write_all(raw);
        read_response(&mut s, &mut Vec::new()).unwrap()
    };
    assert_eq!(exchange(b"BLAH\r\n\r\n").status, 400);
    assert_eq!(
        exchange(b"GET / HTTP/1.1\r\nBad Header\r\n\r\n").status,
        400
    );
    assert_eq!(
        exchange(b"GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n").status,
        400
    );
    let r = exchange(
        b"POST /attributes/restSearch HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    );
    assert_eq!(r.status, 411);
    assert_eq!(r.header("Connection"), Some("close"));
    let r = exchange(b"POST /attributes/restSearch HTTP/1.1\r\nContent-Length: 16777217\r\n\r\n{");
    assert_eq!(r.status, 413);
    let mut big = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 70 * 1024));
    big.extend(b"\r\n\r\n");
    assert_eq!(exchange(&big).status, 431);
    // Binary garbage, then an abrupt close mid-head, mid-body.
    {
        let mut s = connect(&misp);
        let _ = s.write_all(&[0xff, 0x00, 0x13, 0x37, b'\n', b'\n']);
        let _ = read_response(&mut s, &mut Vec::new());
    }
    {
        let mut s = connect(&misp);
        s.write_all(b"POST /attributes/restSearch HTTP/1.1\r\nContent-Le")
            .unwrap();
    }
    {
        let mut s = connect(&misp);
        s.write_all(b"POST /attributes/restSearch HTTP/1.1\r\nContent-Length: 50\r\n\r\n{\"va")
            .unwrap();
    }
    // The 411 and 413 requests were recorded; the server still works.
    assert!(misp
        .requests()
        .iter()
        .any(|r| r.header("transfer-encoding") == Some("chunked")));
    assert_eq!(
        search(&misp, json!({"value": seed::C2_IP})).values(),
        vec![seed::C2_IP]
    );
}

#[test]
fn many_concurrent_clients() {
    let misp = Arc::new(MispDouble::http());
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let misp = misp.clone();
            thread::spawn(move || {
                let mut s = connect(&misp);
                let mut buf = Vec::new();
                let body = json!({"value": [seed::BRUTE_FORCE_IP, seed::EICAR_MD5]}).to_string();
                for _ in 0..50 {
                    s.write_all(&raw_request(
                        "POST",
                        "/attributes/restSearch",
                        &API_HEADERS,
                        body.as_bytes(),
                    ))
                    .unwrap();
                    let r = read_response(&mut s, &mut buf).unwrap();
                    assert_eq!(r.values().len(), 2);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(misp.connection_count(), 8);
    assert_eq!(misp.request_count("/attributes/restSearch"), 400);
}

// ---------------------------------------------------------------- faults

#[test]
fn fail_first_then_normal() {
    let misp = MispDouble::http();
    misp.set_fault(Fault::FailFirst(2));
    let body = json!({"value": seed::C2_IP});
    for _ in 0..2 {
        let r = request(
            &misp,
            "POST",
            "/attributes/restSearch",
            &API_HEADERS,
            &body.to_string(),
        );
        assert_eq!(r.status, 500);
        assert_eq!(r.json()["name"], "Internal error");
    }
    assert_eq!(search(&misp, body).values(), vec![seed::C2_IP]);
    assert_eq!(misp.fault(), Fault::FailFirst(0));
}

#[test]
fn canned_answers() {
    let misp = MispDouble::http();
    let call = || {
        request(
            &misp,
            "POST",
            "/attributes/restSearch?p=1",
            &API_HEADERS,
            "{\"value\":\"x\"}",
        )
    };

    misp.set_fault(Fault::RateLimited { reset_secs: 873 });
    let r = call();
    assert_eq!(r.status, 429);
    assert_eq!(r.header("X-Rate-Limit-Limit"), Some("100"));
    assert_eq!(r.header("X-Rate-Limit-Remaining"), Some("0"));
    assert_eq!(r.header("X-Rate-Limit-Reset"), Some("873"));
    assert_eq!(r.json()["message"], "Rate limit exceeded.");

    misp.set_fault(Fault::Status {
        status: 503,
        content_type: "text/plain".into(),
        body: "maintenance".into(),
    });
    let r = call();
    assert_eq!((r.status, r.text().as_str()), (503, "maintenance"));
    assert_eq!(r.header("Content-Type"), Some("text/plain"));

    misp.set_fault(Fault::Html);
    let r = call();
    assert_eq!(r.status, 200);
    assert!(r.header("Content-Type").unwrap().starts_with("text/html"));
    assert!(r.text().contains("<title>Users - MISP</title>"));

    misp.set_fault(Fault::ServerErrorHtml);
    let r = call();
    assert_eq!(r.status, 500);
    assert!(r.text().contains("Maximum execution time"));

    misp.set_fault(Fault::RedirectLoop);
    let r = call();
    assert_eq!(r.status, 302);
    assert_eq!(r.header("Location"), Some("/attributes/restSearch?p=1"));

    misp.set_fault(Fault::Slow(Duration::from_millis(200)));
    let t = Instant::now();
    assert_eq!(call().status, 200);
    assert!(t.elapsed() >= Duration::from_millis(200));

    misp.set_fault(Fault::None);
    assert_eq!(call().status, 200);
}

#[test]
fn huge_body_is_streamed_with_exact_length() {
    let misp = MispDouble::http();
    misp.set_fault(Fault::Huge(3_000_000));
    let r = request(
        &misp,
        "POST",
        "/attributes/restSearch",
        &API_HEADERS,
        "{\"value\":\"x\"}",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 3_000_000);
    assert!(r
        .body
        .starts_with(br#"{"response":{"Attribute":[{"id":"1""#));
    assert!(serde_json::from_slice::<Value>(&r.body).is_err());
    misp.set_fault(Fault::Huge(5));
    let r = request(&misp, "GET", "/servers/getVersion", &API_HEADERS, "");
    assert_eq!(r.body, b"{\"res");
}

#[test]
fn slow_body_trickles() {
    let misp = MispDouble::http();
    misp.set_fault(Fault::SlowBody(Duration::from_millis(2)));
    let t = Instant::now();
    let r = request(&misp, "GET", "/servers/getVersion", &API_HEADERS, "");
    assert_eq!(r.json()["version"], "2.5.22");
    assert!(t.elapsed() >= Duration::from_millis(2 * (r.body.len() as u64 - 1)));
}

#[test]
fn reset_closes_with_rst() {
    let misp = MispDouble::http();
    misp.set_fault(Fault::Reset);
    let mut s = connect(&misp);
    s.write_all(&raw_request(
        "GET",
        "/servers/getVersion",
        &API_HEADERS,
        b"",
    ))
    .unwrap();
    let mut buf = [0u8; 64];
    let err = s.read(&mut buf).expect_err("must be reset");
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
}

#[test]
fn hang_after_headers_sends_headers_only() {
    let misp = MispDouble::http();
    misp.set_fault(Fault::HangAfterHeaders);
    let mut s = connect(&misp);
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    s.write_all(&raw_request(
        "GET",
        "/servers/getVersion",
        &API_HEADERS,
        b"",
    ))
    .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    let err = loop {
        match s.read(&mut buf) {
            Ok(0) => panic!("closed early"),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => break e,
        }
    };
    assert!(matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    ));
    let text = String::from_utf8(got).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(text.contains("Content-Length: 1000\r\n"));
    assert!(text.ends_with("\r\n\r\n"));
    let t = Instant::now();
    drop(misp);
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(s.read(&mut buf).unwrap_or(0), 0);
}

#[test]
fn drop_returns_promptly_while_a_hang_is_in_progress() {
    let misp = MispDouble::http();
    misp.set_fault(Fault::Hang);
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut s = connect(&misp);
        s.write_all(&raw_request(
            "GET",
            "/servers/getVersion",
            &API_HEADERS,
            b"",
        ))
        .unwrap();
        clients.push(thread::spawn(move || {
            let mut buf = [0u8; 64];
            let t = Instant::now();
            let n = s.read(&mut buf).unwrap_or(0);
            (n, t.elapsed())
        }));
    }
    // An idle keep-alive connection and a slow one too.
    let idle = connect(&misp);
    thread::sleep(Duration::from_millis(150));
    assert_eq!(misp.request_count("/servers/getVersion"), 3);
    let t = Instant::now();
    drop(misp);
    let took = t.elapsed();
    assert!(took < Duration::from_millis(400), "drop took {took:?}");
    for c in clients {
        let (n, waited) = c.join().unwrap();
        assert_eq!(n, 0, "a hung request must never get an answer");
        assert!(waited < Duration::from_secs(5));
    }
    drop(idle);
}

#[test]
fn drop_during_slow_and_slow_body() {
    for fault in [
        Fault::Slow(Duration::from_secs(30)),
        Fault::SlowBody(Duration::from_secs(30)),
    ] {
        let misp = MispDouble::http();
        misp.set_fault(fault.clone());
        let mut s = connect(&misp);
        s.write_all(&raw_request(
            "GET",
            "/servers/getVersion",
            &API_HEADERS,
            b"",
        ))
        .unwrap();
        thread::sleep(Duration::from_millis(100));
        let t = Instant::now();
        drop(misp);
        assert!(
            t.elapsed() < Duration::from_millis(400),
            "{fault:?}: {:?}",
            t.elapsed()
        );
    }
}

// ---------------------------------------------------------------- https

fn tls_client(roots: rustls::RootCertStore) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

fn roots_from_pem(pem: &str) -> rustls::RootCertStore {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    roots
}

fn tls_exchange(
    misp: &MispDouble,
    config: Arc<rustls::ClientConfig>,
    server_name: &str,
    requests: &[Vec<u8>],
) -> io::Result<Vec<Resp>> {
    let name = rustls::pki_types::ServerName::try_from(server_name.to_string()).unwrap();
    let conn = rustls::ClientConnection::new(config, name).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, connect(misp));
    let mut buf = Vec::new();
    let mut out = Vec::new();
    for raw in requests {
        tls.write_all(raw)?;
        out.push(read_response(&mut tls, &mut buf)?);
    }
    Ok(out)
}

#[test]
fn https_with_the_ca() {
    let misp = MispDouble::https();
    assert!(misp.url().starts_with("https://127.0.0.1:"));
    assert!(!misp.url().ends_with('/'));
    let pem = misp.ca_pem().unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    let dir = std::env::temp_dir().join(format!("misp-double-ca-{}", std::process::id()));
    misp.write_ca_file(&dir).unwrap();
    assert_eq!(std::fs::read_to_string(&dir).unwrap(), pem);
    let _ = std::fs::remove_file(&dir);

    let config = tls_client(roots_from_pem(&pem));
    let body = json!({"value": seed::C2_IP_PORT_IP}).to_string();
    let req = raw_request(
        "POST",
        "/attributes/restSearch",
        &API_HEADERS,
        body.as_bytes(),
    );
    for name in ["127.0.0.1", "localhost"] {
        // Two requests on one TLS connection.
        let rs = tls_exchange(&misp, config.clone(), name, &[req.clone(), req.clone()]).unwrap();
        for r in rs {
            assert_eq!(r.status, 200);
            assert_eq!(r.values(), vec![seed::C2_IP_PORT]);
        }
    }
    assert_eq!(misp.connection_count(), 2);

    // A plain-HTTP client talking to the TLS port gets nothing useful, and no panic.
    {
        let mut s = connect(&misp);
        s.write_all(b"GET /servers/getVersion HTTP/1.1\r\n\r\n")
            .unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        assert!(!buf.starts_with(b"HTTP/1.1 200"));
    }
    let plain = MispDouble::http();
    assert!(plain.ca_pem().is_none());
    assert!(plain
        .write_ca_file(&std::env::temp_dir().join("nope.pem"))
        .is_err());
    assert!(plain.url().starts_with("http://127.0.0.1:"));
}

#[test]
fn https_without_the_ca_fails_the_handshake() {
    let misp = MispDouble::https();
    let other = MispDouble::https();
    let req = raw_request("GET", "/servers/getVersion", &API_HEADERS, b"");
    // Trusting nothing, or another double's CA: both refused.
    for roots in [
        rustls::RootCertStore::empty(),
        roots_from_pem(&other.ca_pem().unwrap()),
    ] {
        let err = tls_exchange(
            &misp,
            tls_client(roots),
            "127.0.0.1",
            std::slice::from_ref(&req),
        )
        .expect_err("handshake must fail");
        assert!(err.to_string().contains("certificate"), "{err}");
    }
    // A name not in the certificate is refused too.
    let config = tls_client(roots_from_pem(&misp.ca_pem().unwrap()));
    assert!(tls_exchange(
        &misp,
        config.clone(),
        "misp.example.org",
        std::slice::from_ref(&req)
    )
    .is_err());
    // The server survived all of that.
    let r = tls_exchange(&misp, config, "localhost", &[req]).unwrap();
    assert_eq!(r[0].json()["version"], "2.5.22");
}

#[test]
fn https_drop_with_hang() {
    let misp = MispDouble::https();
    misp.set_fault(Fault::Hang);
    let config = tls_client(roots_from_pem(&misp.ca_pem().unwrap()));
    let addr = misp.addr();
    let client = thread::spawn(move || {
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(config, name).unwrap();
        let sock = TcpStream::connect(addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut tls = rustls::StreamOwned::new(conn, sock);
        tls.write_all(&raw_request(
            "GET",
            "/servers/getVersion",
            &API_HEADERS,
            b"",
        ))
        .unwrap();
        let mut buf = [0u8; 16];
        tls.read(&mut buf)
    });
    thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    drop(misp);
    assert!(t.elapsed() < Duration::from_millis(400));
    // The client sees the connection end (EOF or an error), never an answer.
    match client.join().unwrap() {
        Ok(n) => assert_eq!(n, 0),
        Err(e) => assert_ne!(e.kind(), io::ErrorKind::WouldBlock),
    }
}
