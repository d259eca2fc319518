//! The shared cache and the circuit breaker, end to end: the installed binary run as integratord
//! runs it in a home that has the state directory, against the MISP double.

mod common;

use common::*;
use misp_double::{seed, Fault, MispDouble};
use serde_json::json;
use std::os::unix::fs::MetadataExt;

const SEARCH: &str = "/attributes/restSearch";

fn stateful(settings_extra: serde_json::Value) -> (MispDouble, WazuhHome) {
    let double = MispDouble::http();
    let home = WazuhHome::build(WazuhHome::builder().state_dir());
    let mut s = WazuhHome::settings_for(&double);
    if let (Some(s), Some(extra)) = (s.as_object_mut(), settings_extra.as_object()) {
        for (k, v) in extra {
            s.insert(k.clone(), v.clone());
        }
    }
    home.write_settings(&s);
    (double, home)
}

#[test]
fn repeated_indicators_are_answered_from_the_cache() {
    let (double, home) = stateful(json!({}));
    for _ in 0..5 {
        assert_eq!(
            home.run_json(&sshd_alert(seed::BRUTE_FORCE_IP))
                .status
                .code(),
            Some(0)
        );
        assert_eq!(
            payloads(&home).len(),
            1,
            "a cached hit still produces the event"
        );
    }
    for _ in 0..5 {
        home.run_json(&sshd_alert("8.8.8.8"));
        assert!(home.datagrams().is_empty());
    }
    assert_eq!(
        double.request_count(SEARCH),
        2,
        "one request per distinct indicator"
    );
    // Only the missing indicator of a mixed alert is asked for.
    let mixed =
        json!({"rule": {"id": "1"}, "data": {"srcip": seed::BRUTE_FORCE_IP, "dstip": seed::C2_IP}});
    home.run_json(&mixed);
    assert_eq!(payloads(&home).len(), 2);
    let last = double.requests().pop().unwrap().json().unwrap();
    assert_eq!(last["value"], json!([seed::C2_IP]));
    // Files made by this (root) run stay writable for the wazuh group.
    let meta = std::fs::metadata(home.path().join("var/custom-misp/cache.db")).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o660);
    if let Some(gid) = wazuh_gid() {
        assert_eq!(meta.gid(), gid);
    }
}

#[test]
fn a_change_of_misp_or_policy_never_serves_old_answers() {
    let (double, home) = stateful(json!({}));
    home.run_json(&sshd_alert("8.8.8.8"));
    let mut s = WazuhHome::settings_for(&double);
    s["lookup"] = json!({"to_ids": false});
    home.write_settings(&s);
    home.run_json(&sshd_alert("8.8.8.8"));
    assert_eq!(double.request_count(SEARCH), 2);
}

#[test]
fn concurrent_runs_share_one_cache() {
    let (double, home) = stateful(json!({}));
    let ips: Vec<String> = (1..=12).map(|i| format!("8.8.{i}.{i}")).collect();
    std::thread::scope(|scope| {
        for ip in &ips {
            let home = &home;
            scope.spawn(move || assert_eq!(home.run_json(&sshd_alert(ip)).status.code(), Some(0)));
        }
    });
    assert_eq!(double.request_count(SEARCH), 12);
    for ip in &ips {
        home.run_json(&sshd_alert(ip));
    }
    assert_eq!(
        double.request_count(SEARCH),
        12,
        "every concurrent writer's answer was kept"
    );
}

#[test]
fn a_corrupt_cache_is_rebuilt() {
    let (double, home) = stateful(json!({}));
    std::fs::write(
        home.path().join("var/custom-misp/cache.db"),
        vec![0x5a; 5000],
    )
    .unwrap();
    std::fs::write(
        home.path().join("var/custom-misp/breaker"),
        b"\x00\x01 not json",
    )
    .unwrap();
    let out = home.run_json(&sshd_alert(seed::BRUTE_FORCE_IP));
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(payloads(&home).len(), 1);
    home.run_json(&sshd_alert(seed::BRUTE_FORCE_IP));
    assert_eq!(double.request_count(SEARCH), 1);
}

#[test]
fn the_breaker_opens_reports_once_and_closes_after_a_good_probe() {
    let (double, home) =
        stateful(json!({"breaker": {"failures": 3, "backoff_s": 1, "max_backoff_s": 4}}));
    double.set_fault(Fault::ServerErrorHtml);
    let mut events = Vec::new();
    for i in 0..8 {
        // Distinct indicators, so the cache cannot be what keeps MISP quiet.
        home.run_json(&sshd_alert(&format!("8.8.4.{i}")));
        events.push(payloads(&home).len());
    }
    assert_eq!(
        events,
        vec![1, 0, 1, 0, 0, 0, 0, 0],
        "first failure and the opening only"
    );
    assert_eq!(double.request_count(SEARCH), 3, "no request while open");
    let stats = std::process::Command::new(BIN)
        .arg("--wazuh-home")
        .arg(home.path())
        .args(["cache", "stats"])
        .output()
        .unwrap();
    assert!(stdout(&stats).contains("OPEN"), "{}", stdout(&stats));
    assert!(
        stdout(&stats).contains("last MISP error: server"),
        "{}",
        stdout(&stats)
    );

    // After the back-off one probe goes out; MISP is fine again, so the breaker closes.
    double.set_fault(Fault::None);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    home.run_json(&sshd_alert(seed::BRUTE_FORCE_IP));
    assert_eq!(payloads(&home)[0]["misp"]["value"], seed::BRUTE_FORCE_IP);
    assert_eq!(double.request_count(SEARCH), 4);
    home.run_json(&sshd_alert(seed::C2_IP));
    assert_eq!(
        double.request_count(SEARCH),
        5,
        "closed again: every miss is asked"
    );
    assert!(
        home.log().contains("MISP answers again after"),
        "{}",
        home.log()
    );
}

#[test]
fn a_rate_limit_opens_the_breaker_for_the_reset_time() {
    let (double, home) = stateful(json!({}));
    double.set_fault(Fault::RateLimited { reset_secs: 600 });
    home.run_json(&sshd_alert("8.8.8.1"));
    assert_eq!(payloads(&home)[0]["misp"]["error"]["kind"], "rate_limited");
    double.set_fault(Fault::None);
    home.run_json(&sshd_alert("8.8.8.2"));
    assert!(home.datagrams().is_empty());
    assert_eq!(double.request_count(SEARCH), 1);
    let stats = std::process::Command::new(BIN)
        .arg("--wazuh-home")
        .arg(home.path())
        .args(["cache", "stats", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(v["breaker"]["phase"], "open");
    let wait =
        v["breaker"]["retry_at"].as_u64().unwrap() - v["breaker"]["opened_at"].as_u64().unwrap();
    assert_eq!(wait, 600);

    // `cache clear` also closes the breaker.
    let out = std::process::Command::new(BIN)
        .arg("--wazuh-home")
        .arg(home.path())
        .args(["cache", "clear"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stdout(&out));
    home.run_json(&sshd_alert("8.8.8.2"));
    assert_eq!(double.request_count(SEARCH), 2);
}

#[test]
fn a_hung_misp_is_left_alone_once_the_breaker_opens() {
    let (double, home) = stateful(json!({"breaker": {"failures": 2, "backoff_s": 60}}));
    double.set_fault(Fault::Hang);
    let mut kinds = Vec::new();
    for i in 0..4 {
        let alert = format!("{}\n", sshd_alert(&format!("8.8.5.{i}")));
        let out = home.run_alert(
            alert.as_bytes(),
            &Invocation {
                timeout: 2,
                ..Default::default()
            },
        );
        assert_eq!(out.status.code(), Some(0));
        kinds.push(
            payloads(&home)
                .iter()
                .map(|p| {
                    p["misp"]["error"]["kind"]
                        .as_str()
                        .unwrap_or("")
                        .to_string()
                })
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(
        kinds,
        vec![vec!["timeout"], vec!["timeout"], vec![], vec![]]
    );
    assert_eq!(
        double.request_count(SEARCH),
        2,
        "runs 3 and 4 never wait for MISP"
    );
}

#[test]
fn a_popular_indicator_cannot_hide_the_others() {
    let (double, home) = stateful(json!({"lookup": {"limit": 2}}));
    // Three attributes of the popular indicator come before the other one in id order.
    let mut data = misp_double::Dataset::empty();
    data.events
        .push(misp_double::Event::new(1, "Daily Tor exit feed"));
    for id in 1..=3 {
        data.attributes
            .push(misp_double::Attribute::new(id, 1, "ip-dst", seed::C2_IP));
    }
    data.attributes.push(misp_double::Attribute::new(
        10,
        1,
        "ip-src",
        seed::BRUTE_FORCE_IP,
    ));
    double.set_dataset(data);
    let alert =
        json!({"rule": {"id": "1"}, "data": {"dstip": seed::C2_IP, "srcip": seed::BRUTE_FORCE_IP}});
    assert_eq!(home.run_json(&alert).status.code(), Some(0));
    let values: Vec<String> = payloads(&home)
        .iter()
        .map(|p| p["misp"]["value"].as_str().unwrap().to_string())
        .collect();
    assert!(
        values.contains(&seed::BRUTE_FORCE_IP.to_string()),
        "{values:?}"
    );
    assert_eq!(
        double.request_count(SEARCH),
        2,
        "one more request for the unanswered indicator"
    );
}

#[test]
fn a_settings_problem_is_reported_once_not_per_alert() {
    let (double, home) = stateful(json!({}));
    let mut s = WazuhHome::settings_for(&double);
    s["misp"]["ca_file"] = json!("/nonexistent/ca.pem");
    home.write_settings(&s);
    let mut events = Vec::new();
    for i in 0..3 {
        let out = home.run_json(&sshd_alert(&format!("8.8.6.{i}")));
        assert_eq!(
            out.status.code(),
            Some(4),
            "the exit code says it every time"
        );
        events.push(payloads(&home).len());
    }
    assert_eq!(events, vec![1, 0, 0]);
    assert_eq!(
        home.log().matches("/nonexistent/ca.pem").count(),
        3,
        "{}",
        home.log()
    );
}
