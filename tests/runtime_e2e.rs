//! End to end: the built binary, installed as `integrations/custom-misp` in a temporary Wazuh
//! home, run exactly as integratord runs it against the MISP double, with a real datagram socket
//! as analysisd's queue. Asserts the exact datagrams.

mod common;

use common::*;
use misp_double::{seed, Fault, MispDouble};
use serde_json::{json, Value};

fn setup() -> (MispDouble, WazuhHome) {
    let double = MispDouble::http();
    let home = WazuhHome::new();
    home.write_settings(&WazuhHome::settings_for(&double));
    (double, home)
}

#[test]
fn brute_force_ip_gives_one_enriched_event_for_the_agent() {
    let (double, home) = setup();
    let out = home.run_json(&sshd_alert(seed::BRUTE_FORCE_IP));
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let d = home.datagrams();
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(
        d[0].starts_with("1:[001] (web-01) 10.0.0.11->misp:{"),
        "{}",
        d[0]
    );
    let (_, p) = split_datagram(&d[0]);
    assert_eq!(p["integration"], "misp");
    let m = &p["misp"];
    assert_eq!(m["value"], seed::BRUTE_FORCE_IP);
    assert_eq!(m["type"], "ip-src");
    assert_eq!(m["ioc_kind"], "ip");
    assert_eq!(m["ioc_field"], "data.srcip");
    assert_eq!(m["to_ids"], true);
    assert_eq!(m["event_id"], seed::EVENT_SSH_BRUTE_FORCE.to_string());
    assert_eq!(m["event_info"], "SSH brute force sources");
    assert!(m["tags"].as_str().unwrap().contains("type:OSINT"), "{m}");
    assert!(!m["event_uuid"].as_str().unwrap().is_empty());
    assert!(!m["attribute_uuid"].as_str().unwrap().is_empty());
    assert_eq!(
        m["alert"],
        json!({"id": "1764223524.1234", "rule_id": "5710", "rule_level": 5,
               "rule_description": "sshd: Attempt to login using a non-existent user"})
    );

    // One request, with the headers and filters MISP needs.
    let reqs = double.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/attributes/restSearch")
    );
    assert_eq!(r.header("authorization"), Some(KEY));
    assert_eq!(r.header("accept"), Some("application/json"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body = r.json().unwrap();
    assert_eq!(body["value"], json!([seed::BRUTE_FORCE_IP]));
    assert_eq!(
        body["type"],
        json!([
            "ip-src",
            "ip-dst",
            "ip-src|port",
            "ip-dst|port",
            "domain|ip"
        ])
    );
    assert_eq!(
        (
            body["to_ids"].clone(),
            body["published"].clone(),
            body["enforceWarninglist"].clone()
        ),
        (json!(1), json!(1), json!(1))
    );
    assert_eq!(
        (
            body["includeEventUuid"].clone(),
            body["includeEventTags"].clone()
        ),
        (json!(1), json!(1))
    );
}

/// (MISP type, MISP value, alert field) of an expected match.
type Expected = (&'static str, &'static str, &'static str);

/// Every row of the source table in alerts.md, with the attribute it must find.
#[test]
fn every_indicator_source_is_looked_up() {
    let (_double, home) = setup();
    let cases: Vec<(&str, Value, Vec<Expected>)> = vec![
        (
            "generic dstip",
            json!({"data": {"dstip": seed::C2_IP}}),
            vec![("ip-dst", seed::C2_IP, "data.dstip")],
        ),
        (
            "generic url + host",
            json!({"data": {"url": seed::MALWARE_URL}}),
            vec![
                ("url", seed::MALWARE_URL, "data.url"),
                ("domain", seed::MALWARE_DOMAIN, "data.url"),
            ],
        ),
        (
            "generic hostname",
            json!({"data": {"hostname": "LOGIN.micr0soft-secure.com."}}),
            vec![("hostname", seed::PHISHING_HOSTNAME, "data.hostname")],
        ),
        (
            "suricata dest_ip composite",
            json!({"decoder": {"name": "json"}, "data": {"event_type": "alert", "src_ip": "10.1.1.1", "dest_ip": seed::C2_IP_PORT_IP}}),
            vec![("ip-dst|port", seed::C2_IP_PORT, "data.dest_ip")],
        ),
        (
            "suricata dns queries",
            json!({"data": {"event_type": "dns", "dns": {"queries": [{"rrname": seed::DOMAIN_IP_DOMAIN}]}}}),
            vec![("domain|ip", seed::DOMAIN_IP, "data.dns.queries[].rrname")],
        ),
        (
            "suricata dns rrname",
            json!({"data": {"event_type": "dns", "dns": {"type": "query", "rrname": "Bad-Update.NET."}}}),
            vec![("domain|ip", seed::DOMAIN_IP, "data.dns.rrname")],
        ),
        (
            "suricata http hostname",
            json!({"data": {"event_type": "http", "http": {"hostname": seed::MALWARE_DOMAIN, "url": "/payload.exe"}}}),
            vec![("domain", seed::MALWARE_DOMAIN, "data.http.hostname")],
        ),
        (
            "suricata tls sni",
            json!({"data": {"tls": {"sni": seed::PHISHING_HOSTNAME}}}),
            vec![("hostname", seed::PHISHING_HOSTNAME, "data.tls.sni")],
        ),
        (
            "suricata fileinfo",
            json!({"data": {"fileinfo": {"sha256": seed::INVOICE_SHA256}}}),
            vec![(
                "filename|sha256",
                seed::INVOICE_FILENAME_SHA256,
                "data.fileinfo.sha256",
            )],
        ),
        (
            "windows sysmon 1 hashes",
            json!({"data": {"win": {"system": {"eventID": "1"}, "eventdata": {"hashes":
            format!("SHA1={},MD5={},SHA256={},IMPHASH=F34D5F2D4577ED6D9CEEC516C1F5A744",
                seed::EICAR_SHA1.to_uppercase(), seed::EICAR_MD5.to_uppercase(), seed::EICAR_SHA256.to_uppercase())}}}}),
            vec![
                ("sha1", seed::EICAR_SHA1, "data.win.eventdata.hashes"),
                ("md5", seed::EICAR_MD5, "data.win.eventdata.hashes"),
                ("sha256", seed::EICAR_SHA256, "data.win.eventdata.hashes"),
            ],
        ),
        (
            "windows sysmon 15 hash",
            json!({"data": {"win": {"system": {"eventID": "15"}, "eventdata": {"hash":
            format!("MD5={},SHA256={},IMPHASH=F34D5F2D4577ED6D9CEEC516C1F5A744",
                seed::EICAR_MD5.to_uppercase(), seed::EICAR_SHA256.to_uppercase())}}}}),
            vec![
                ("md5", seed::EICAR_MD5, "data.win.eventdata.hash"),
                ("sha256", seed::EICAR_SHA256, "data.win.eventdata.hash"),
            ],
        ),
        (
            "sysmon through the legacy winevtlog decoder",
            json!({"data": {"sysmon": {"hashes":
            format!("{},SHA256={}", seed::EICAR_SHA1.to_uppercase(), seed::EICAR_SHA256.to_uppercase())}}}),
            vec![
                ("sha1", seed::EICAR_SHA1, "data.sysmon.hashes"),
                ("sha256", seed::EICAR_SHA256, "data.sysmon.hashes"),
            ],
        ),
        (
            "windows sysmon 3 ipv6",
            json!({"data": {"win": {"eventdata": {"destinationIp": "2a0d:5600:0024:0000:0000:0000:0000:ABCD",
            "sourceIp": "fe80::1", "destinationIsIpv6": "true"}}}}),
            vec![("ip-dst", seed::C2_IPV6, "data.win.eventdata.destinationIp")],
        ),
        (
            "windows sysmon 22 dns",
            json!({"data": {"win": {"eventdata": {"queryName": "wpad",
            "queryResults": format!("type:  5 cdn.example;::ffff:{};::ffff:10.0.0.1;", seed::C2_IP)}}}}),
            vec![("ip-dst", seed::C2_IP, "data.win.eventdata.queryResults")],
        ),
        (
            "linux sysmon",
            json!({"data": {"eventdata": {"DestinationIp": seed::C2_IP, "Hashes": "-"}}}),
            vec![("ip-dst", seed::C2_IP, "data.eventdata.DestinationIp")],
        ),
        (
            "syscheck added",
            json!({"syscheck": {"event": "added", "path": "/tmp/eicar", "md5_after": seed::EICAR_MD5}}),
            vec![("md5", seed::EICAR_MD5, "syscheck.md5_after")],
        ),
        (
            "syscheck modified",
            json!({"syscheck": {"event": "modified", "path": "/tmp/eicar", "sha1_after": seed::EICAR_SHA1}}),
            vec![("sha1", seed::EICAR_SHA1, "syscheck.sha1_after")],
        ),
        (
            "osquery",
            json!({"data": {"osquery": {"columns": {"sha256": seed::EICAR_SHA256}}}}),
            vec![("sha256", seed::EICAR_SHA256, "data.osquery.columns.sha256")],
        ),
    ];
    for (name, mut alert, want) in cases {
        alert["rule"] = json!({"id": "100200", "level": 10, "description": name});
        alert["agent"] = json!({"id": "000", "name": "wazuh-manager"});
        let out = home.run_json(&alert);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", stdout(&out));
        // MISP answers in attribute id order; what matters is the set.
        let mut got: Vec<(String, String, String)> = payloads(&home)
            .iter()
            .map(|p| {
                let m = &p["misp"];
                (
                    m["type"].as_str().unwrap().into(),
                    m["value"].as_str().unwrap().into(),
                    m["ioc_field"].as_str().unwrap().into(),
                )
            })
            .collect();
        let mut want: Vec<(String, String, String)> = want
            .iter()
            .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
            .collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn nothing_to_look_up_is_a_silent_success_without_any_request() {
    let (double, home) = setup();
    for alert in [
        sshd_alert("192.168.1.20"),
        sshd_alert("::1"),
        json!({"rule": {"id": "1"}, "syscheck": {"event": "deleted", "md5_after": seed::EICAR_MD5}}),
        json!({"rule": {"id": "1"}}),
        json!({"rule": {"id": "100622", "groups": ["misp"]}, "data": {"integration": "misp", "misp": {"value": seed::BRUTE_FORCE_IP}, "srcip": seed::BRUTE_FORCE_IP}}),
    ] {
        let out = home.run_json(&alert);
        assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
        assert!(stdout(&out).is_empty());
    }
    assert!(home.datagrams().is_empty());
    assert_eq!(double.requests().len(), 0);
}

#[test]
fn agent_locations_are_escaped_and_the_manager_uses_the_short_form() {
    let (_double, home) = setup();
    let mut alert = sshd_alert(seed::BRUTE_FORCE_IP);
    alert["agent"] = json!({"id": "017", "name": "db|01:prod", "ip": "2001:db8::17"});
    home.run_json(&alert);
    let d = home.datagrams();
    assert!(
        d[0].starts_with("1:[017] (db||01|:prod) 2001|:db8|:|:17->misp:{\"integration\""),
        "{}",
        d[0]
    );
    let mut alert = sshd_alert(seed::BRUTE_FORCE_IP);
    alert["agent"] = json!({"id": "000", "name": "wazuh-manager"});
    home.run_json(&alert);
    assert!(home.datagrams()[0].starts_with("1:misp:{"));
    alert.as_object_mut().unwrap().remove("agent");
    home.run_json(&alert);
    assert!(home.datagrams()[0].starts_with("1:misp:{"));
}

#[test]
fn all_integratord_argv_layouts_work() {
    let double = MispDouble::http();
    let home = WazuhHome::new();
    let alert = format!("{}\n", sshd_alert(seed::BRUTE_FORCE_IP));
    // 4.2: key and hook URL from ossec.conf, no settings file at all.
    for layout in [Layout::V4_2, Layout::V4_7, Layout::V4_14] {
        for debug in [false, true] {
            let url = double.url();
            let inv = Invocation {
                layout,
                api_key: KEY,
                hook_url: &url,
                debug,
                ..Default::default()
            };
            let out = home.run_alert(alert.as_bytes(), &inv);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{layout:?} debug={debug}: {}",
                stdout(&out)
            );
            assert_eq!(home.datagrams().len(), 1, "{layout:?} debug={debug}");
        }
    }
    // 4.7+: <options> JSON overrides; here it caps events and turns debug logging detail on.
    let url = double.url();
    let inv = Invocation {
        layout: Layout::V4_7,
        api_key: KEY,
        hook_url: &url,
        debug: true,
        options: Some(r#"{"lookup": {"max_events": 1}}"#),
        ..Default::default()
    };
    let sysmon = json!({"rule": {"id": "61603", "level": 3}, "data": {"win": {"eventdata": {"hashes":
        format!("MD5={},SHA256={}", seed::EICAR_MD5, seed::EICAR_SHA256)}}}});
    home.run_alert(format!("{sysmon}\n").as_bytes(), &inv);
    assert_eq!(home.datagrams().len(), 1);
    assert!(home.log().contains("DEBUG"), "{}", home.log());
    assert!(!home.log().contains(KEY));
}

#[test]
fn legacy_text_alerts_are_looked_up_by_srcip() {
    let (_double, home) = setup();
    let legacy = format!(
        "alertdate='2023-11-14T22:13:20.123+0000'\nalertlocation='/var/log/auth.log'\nruleid='5710'\nalertlevel='5'\nruledescription='sshd: Attempt to login using a non-existent user'\nalertlog='Nov 14 22:13:19 web01 sshd[1234]: Invalid user admin from {ip} port 53422'\nsrcip='{ip}'",
        ip = seed::BRUTE_FORCE_IP
    );
    let out = home.run_alert(
        legacy.as_bytes(),
        &Invocation {
            layout: Layout::V4_2,
            ..Default::default()
        },
    );
    assert_eq!(out.status.code(), Some(0));
    let p = payloads(&home);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0]["misp"]["alert"]["rule_id"], "5710");
    assert!(home.log().contains("legacy text format"), "{}", home.log());
}

#[test]
fn large_and_non_utf8_alerts_are_handled() {
    let (_double, home) = setup();
    let mut alert = sshd_alert(seed::BRUTE_FORCE_IP);
    alert["full_log"] = json!("A".repeat(60 * 1024));
    let out = home.run_json(&alert);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(home.datagrams().len(), 1);

    let mut bytes = format!("{}\n", sshd_alert(seed::BRUTE_FORCE_IP)).into_bytes();
    let pos = bytes.windows(7).position(|w| w == b"Invalid").unwrap();
    bytes[pos] = 0xff;
    bytes[pos + 1] = 0xfe;
    let out = home.run_alert(&bytes, &Invocation::default());
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(home.datagrams().len(), 1);
}

/// The sshd alert with one decoded field nested `depth` levels deep, as analysisd writes a JSON
/// log line decoded by the stock `json` decoder.
fn deep_alert(depth: usize) -> Vec<u8> {
    let mut alert = sshd_alert(seed::BRUTE_FORCE_IP);
    alert["data"]["nested"] = json!("PLACEHOLDER");
    let text = alert.to_string();
    // root and data are two levels; the chain adds the rest.
    let chain = format!("{}1{}", "{\"n\":".repeat(depth - 2), "}".repeat(depth - 2));
    format!("{}\n", text.replace("\"PLACEHOLDER\"", &chain)).into_bytes()
}

#[test]
fn an_indicator_beside_a_field_nested_1000_deep_is_still_looked_up() {
    let (_double, home) = setup();
    for depth in [129, 300, 1000] {
        let out = home.run_alert(&deep_alert(depth), &Invocation::default());
        assert_eq!(
            out.status.code(),
            Some(0),
            "depth {depth}: {}",
            stdout(&out)
        );
        let d = home.datagrams();
        assert_eq!(d.len(), 1, "depth {depth}: {d:?}");
        let (_, p) = split_datagram(&d[0]);
        assert_eq!(p["misp"]["value"], seed::BRUTE_FORCE_IP);
        assert_eq!(p["misp"]["ioc_field"], "data.srcip");
    }

    // Deeper than integratord's own reader (cJSON, 1000) accepts: refused, and no hint about
    // <alert_format>, which is right.
    let out = home.run_alert(&deep_alert(1001), &Invocation::default());
    assert_eq!(out.status.code(), Some(3));
    let said = stdout(&out);
    assert!(said.contains("1001 levels"), "{said}");
    assert!(!said.contains("alert_format"), "{said}");
    // Only content that is not JSON at all gets the hint.
    let out = home.run_alert(
        b"Nov 14 22:13:19 web01 sshd[1234]: hello",
        &Invocation::default(),
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stdout(&out).contains("<alert_format>json</alert_format>"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn empty_truncated_and_missing_alert_files_exit_3_with_a_reason() {
    let (double, home) = setup();
    let out = home.run_alert(b"", &Invocation::default());
    assert_eq!(out.status.code(), Some(3));
    assert!(stdout(&out).contains("is empty"), "{}", stdout(&out));
    let out = home.run_alert(
        br#"{"rule":{"id":"5710"},"data":{"srcip":"185.2"#,
        &Invocation::default(),
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(stdout(&out).contains("truncated"), "{}", stdout(&out));
    let out = output_retrying(
        std::process::Command::new(home.path().join("integrations/custom-misp"))
            .args(["run", "/nonexistent/x.alert"]),
    );
    assert_eq!(out.status.code(), Some(3));
    let out = std::process::Command::new(BIN)
        .args(["--wazuh-home"])
        .arg(home.path())
        .args(["run"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(home.datagrams().is_empty());
    assert_eq!(double.requests().len(), 0);
    assert!(home.log().contains("ERROR"), "{}", home.log());
}

#[test]
fn settings_problems_exit_4_and_raise_a_config_event() {
    let double = MispDouble::http();
    let home = WazuhHome::new();
    let out = home.run_json(&sshd_alert(seed::BRUTE_FORCE_IP));
    assert_eq!(out.status.code(), Some(4));
    assert!(
        stdout(&out).contains("wazuh-misp setup"),
        "{}",
        stdout(&out)
    );
    let p = payloads(&home);
    assert_eq!(p[0]["misp"]["error"]["kind"], "config");

    home.write_settings_mode(&WazuhHome::settings_for(&double), 0o644);
    let out = home.run_json(&sshd_alert(seed::BRUTE_FORCE_IP));
    assert_eq!(out.status.code(), Some(4));
    assert!(
        stdout(&out).contains("0644") && stdout(&out).contains("chmod 0640"),
        "{}",
        stdout(&out)
    );
    assert_eq!(double.requests().len(), 0);
    home.datagrams();

    // A newer setup's unknown keys never stop the runtime.
    let mut s = WazuhHome::settings_for(&double);
    s["misp"]["sightings"] = json!(true);
    s["threat_feeds"] = json!({"refresh": 60});
    home.write_settings(&s);
    let out = home.run_json(&sshd_alert(seed::BRUTE_FORCE_IP));
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        home.log()
            .contains("ignored: misp.sightings, threat_feeds ("),
        "{}",
        home.log()
    );
}

#[test]
fn missing_queue_socket_exits_5_and_says_why() {
    let (double, home) = setup();
    let home = home.without_queue();
    let out = home.run_json(&sshd_alert(seed::BRUTE_FORCE_IP));
    assert_eq!(out.status.code(), Some(5));
    let line = stdout(&out);
    assert!(
        line.contains("queue/sockets/queue") && line.contains("analysisd"),
        "{line}"
    );
    assert_eq!(
        double.requests().len(),
        0,
        "no MISP request when results cannot be delivered"
    );
}

#[test]
fn events_per_alert_are_capped_by_max_events() {
    let (double, home) = setup();
    let mut s = WazuhHome::settings_for(&double);
    s["lookup"] = json!({"max_events": 2});
    home.write_settings(&s);
    let alert = json!({"rule": {"id": "1"}, "data": {"srcip": seed::BRUTE_FORCE_IP, "dstip": seed::C2_IP,
        "url": seed::MALWARE_URL}});
    home.run_json(&alert);
    assert_eq!(home.datagrams().len(), 2);
}

fn error_event(home: &WazuhHome) -> Value {
    let p = payloads(home);
    assert_eq!(p.len(), 1, "{p:?}");
    p[0]["misp"]["error"].clone()
}

#[test]
fn misp_failures_become_one_error_event_and_exit_0() {
    let (double, home) = setup();
    let cases: Vec<(Fault, &str, Option<u16>)> = vec![
        (Fault::ServerErrorHtml, "server", Some(500)),
        (Fault::Html, "protocol", None),
        (Fault::Huge(12 << 20), "protocol", None),
        (Fault::Reset, "connect", None),
        (Fault::RedirectLoop, "protocol", Some(302)),
        (
            Fault::RateLimited { reset_secs: 120 },
            "rate_limited",
            Some(429),
        ),
        (
            Fault::Status {
                status: 404,
                content_type: "text/html".into(),
                body: "<html><title>Not Found</title></html>".into(),
            },
            "not_found",
            Some(404),
        ),
        (
            Fault::Status {
                status: 200,
                content_type: "application/json".into(),
                body: "{\"response\": {\"Attribute\": [".into(),
            },
            "protocol",
            None,
        ),
    ];
    for (fault, kind, status) in cases {
        double.set_fault(fault);
        let out = home.run_json(&sshd_alert(seed::BRUTE_FORCE_IP));
        assert_eq!(out.status.code(), Some(0), "{kind}: {}", stdout(&out));
        let e = error_event(&home);
        assert_eq!(e["kind"], kind, "{e}");
        assert_eq!(e["status"].as_u64().map(|s| s as u16), status, "{e}");
        assert!(!e["message"].as_str().unwrap().is_empty());
    }
    assert!(home.log().contains("ERROR"));
    assert!(!home.log().contains(KEY));
}

#[test]
fn a_wrong_key_is_an_auth_error_that_never_shows_the_key() {
    let (double, home) = setup();
    let wrong = "WRONGwrongWRONGwrongWRONGwrongWRONGwrong";
    let mut s = WazuhHome::settings_for(&double);
    s["misp"]["api_key"] = json!(wrong);
    home.write_settings(&s);
    let out = home.run_json(&sshd_alert(seed::BRUTE_FORCE_IP));
    assert_eq!(out.status.code(), Some(0));
    let e = error_event(&home);
    assert_eq!(
        (e["kind"].as_str(), e["status"].as_u64()),
        (Some("auth"), Some(403))
    );
    assert!(!e.to_string().contains(wrong));
    assert!(!home.log().contains(wrong));
}

#[test]
fn unreachable_misp_is_a_connect_error() {
    let home = WazuhHome::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    home.write_settings(
        &json!({"version": 1, "misp": {"url": format!("http://127.0.0.1:{port}"), "api_key": KEY}}),
    );
    let out = home.run_json(&sshd_alert(seed::BRUTE_FORCE_IP));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(error_event(&home)["kind"], "connect");
}

#[test]
fn a_hung_misp_ends_inside_the_deadline_with_a_timeout_event() {
    let (double, home) = setup();
    for fault in [
        Fault::Hang,
        Fault::HangAfterHeaders,
        Fault::SlowBody(std::time::Duration::from_millis(300)),
    ] {
        double.set_fault(fault);
        let started = std::time::Instant::now();
        // integratord's <timeout> of 2 s; the configured request timeout (5 s) is longer.
        let out = home.run_alert(
            format!("{}\n", sshd_alert(seed::BRUTE_FORCE_IP)).as_bytes(),
            &Invocation {
                timeout: 2,
                ..Default::default()
            },
        );
        let took = started.elapsed();
        assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
        assert!(took < std::time::Duration::from_secs(2), "took {took:?}");
        assert_eq!(error_event(&home)["kind"], "timeout");
    }
}

#[test]
fn log_file_created_by_root_belongs_to_the_logs_directory_owner() {
    use std::os::unix::fs::MetadataExt;
    let (_double, home) = setup();
    home.run_alert(b"", &Invocation::default());
    let meta = std::fs::metadata(home.path().join("logs/integrations.log")).unwrap();
    let logs = std::fs::metadata(home.path().join("logs")).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o640);
    assert_eq!((meta.uid(), meta.gid()), (logs.uid(), logs.gid()));
}

#[test]
fn notices_are_logged_once_when_the_state_directory_exists() {
    let (double, home) = setup();
    std::fs::create_dir_all(home.path().join("var/custom-misp")).unwrap();
    let mut s = WazuhHome::settings_for(&double);
    s["future_option"] = json!(1);
    home.write_settings(&s);
    for _ in 0..3 {
        assert_eq!(
            home.run_json(&sshd_alert(seed::BRUTE_FORCE_IP))
                .status
                .code(),
            Some(0)
        );
    }
    assert_eq!(
        home.log().matches("future_option").count(),
        1,
        "{}",
        home.log()
    );
}

/// integratord runs the integration as user wazuh: the 0640 root:wazuh settings file must be
/// readable through the group, and the log appendable.
#[test]
fn runs_as_the_wazuh_user_with_group_readable_settings() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let (Some(gid), true) = (wazuh_gid(), nix::unistd::geteuid().is_root()) else {
        eprintln!("skipped: needs root and a wazuh group (as .ci/run sets up)");
        return;
    };
    let uid = nix::unistd::User::from_name("wazuh")
        .unwrap()
        .expect("wazuh user")
        .uid
        .as_raw();
    let (_double, home) = setup();
    for dir in [
        home.path(),
        &home.path().join("etc"),
        &home.path().join("integrations"),
    ] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o750)).unwrap();
        std::os::unix::fs::chown(dir, Some(0), Some(gid)).unwrap();
    }
    std::fs::set_permissions(
        home.path().join("logs"),
        std::fs::Permissions::from_mode(0o770),
    )
    .unwrap();
    std::os::unix::fs::chown(home.path().join("logs"), Some(uid), Some(gid)).unwrap();
    std::os::unix::fs::chown(
        home.path().join("queue/sockets/queue"),
        Some(uid),
        Some(gid),
    )
    .unwrap();
    let alert = tempfile::Builder::new()
        .suffix(".alert")
        .tempfile()
        .unwrap();
    std::fs::write(
        alert.path(),
        format!("{}\n", sshd_alert(seed::BRUTE_FORCE_IP)),
    )
    .unwrap();
    std::os::unix::fs::chown(alert.path(), Some(uid), Some(gid)).unwrap();
    let out = output_retrying(
        std::process::Command::new(home.path().join("integrations/custom-misp"))
            .arg0("integrations")
            .arg(alert.path())
            .args(["", "", "", "", "10", "3", "> /dev/null 2>&1"])
            .current_dir(home.path())
            .uid(uid)
            .gid(gid),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(home.datagrams().len(), 1);

    // A settings file the group cannot read is a clear settings error, not a crash.
    std::fs::set_permissions(
        home.path().join("etc/custom-misp.json"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let out = output_retrying(
        std::process::Command::new(home.path().join("integrations/custom-misp"))
            .arg0("integrations")
            .arg(alert.path())
            .current_dir(home.path())
            .uid(uid)
            .gid(gid),
    );
    assert_eq!(out.status.code(), Some(4), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("Permission denied"),
        "{}",
        stdout(&out)
    );
}
