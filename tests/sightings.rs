//! Sightings end to end: hits spooled by the per-alert runs (in every lookup mode), delivered by
//! the scheduled run to the MISP double's `/sightings/add`, one per attribute per interval,
//! nothing lost while MISP is down, a read-only key refused and never retried.

mod common;

use common::*;
use misp_double::{seed, Fault, MispDouble, Options};
use serde_json::{json, Value};
use std::process::{Command, Output};

fn home_for(double: &MispDouble, mut extra: Value) -> WazuhHome {
    extra["sightings"] = json!({"enabled": true, "source": "wazuh:test-node"});
    WazuhHome::installed(double, extra)
}

fn wazuh_misp(home: &WazuhHome, args: &[&str]) -> Output {
    home.wazuh_misp(args)
}

/// `wazuh-misp sightings stats --json`.
fn spool_stats(home: &WazuhHome) -> Value {
    serde_json::from_slice(&wazuh_misp(home, &["sightings", "stats", "--json"]).stdout).unwrap()
}

/// What the wodle runs.
fn scheduled(home: &WazuhHome) -> Output {
    output_retrying(
        Command::new(home.path().join("integrations/custom-misp"))
            .arg("--scheduled-sync")
            .env_clear(),
    )
}

fn sightings(double: &MispDouble) -> Vec<Value> {
    double
        .requests()
        .iter()
        .filter(|r| r.path == "/sightings/add")
        .map(|r| r.json().unwrap())
        .collect()
}

fn storm(home: &WazuhHome, n: usize) {
    let ips = [seed::BRUTE_FORCE_IP, seed::C2_IP, seed::C2_IP_PORT_IP];
    for i in 0..n {
        let mut alert = sshd_alert(ips[i % 3]);
        alert["timestamp"] = json!(format!(
            "2026-11-27T06:{:02}:{:02}.000+0000",
            i / 60 % 60,
            i % 60
        ));
        let out = home.run_json(&alert);
        assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
        home.datagrams();
    }
}

#[test]
fn a_storm_gives_one_sighting_per_attribute_and_interval_in_every_mode() {
    for (mode, extra) in [
        ("online", json!({})),
        ("mirror", json!({"lookup": {"mode": "mirror"}})),
        ("hybrid", json!({"lookup": {"mode": "hybrid"}})),
    ] {
        let double = MispDouble::http();
        let home = home_for(&double, extra);
        if mode != "online" {
            assert_eq!(
                scheduled(&home).status.code(),
                Some(0),
                "{mode}: first sync"
            );
        }
        let n = if mode == "online" { 1000 } else { 150 };
        storm(&home, n);
        assert!(
            sightings(&double).is_empty(),
            "{mode}: no alert waits on a sighting"
        );
        let out = scheduled(&home);
        assert_eq!(out.status.code(), Some(0), "{mode}: {}", stdout(&out));
        let sent = sightings(&double);
        assert_eq!(sent.len(), 3, "{mode}: {sent:?}");
        let attribute_uuids: Vec<String> = double.with_dataset(|d| {
            [1u64, 2, 3]
                .iter()
                .map(|id| d.attribute(*id).unwrap().uuid.clone())
                .collect()
        });
        for s in &sent {
            assert!(
                attribute_uuids.contains(&s["id"].as_str().unwrap().to_string()),
                "{s}"
            );
            assert_eq!(
                (s["type"].as_str(), s["source"].as_str()),
                (Some("0"), Some("wazuh:test-node"))
            );
            // The earliest hit's alert time: 2026-11-27T06:00:0i.
            assert!(
                (1_795_759_200..1_795_759_203).contains(&s["timestamp"].as_u64().unwrap()),
                "{s}"
            );
        }
        // Within the interval: more hits, no more sightings.
        storm(&home, 30);
        scheduled(&home);
        assert_eq!(sightings(&double).len(), 3, "{mode}");
        let stats = spool_stats(&home);
        assert_eq!(stats["status"]["sent_total"], 3, "{mode}: {stats}");
        assert_eq!(
            (stats["waiting"].as_u64(), stats["being_delivered"].as_u64()),
            (Some(0), Some(0))
        );
    }
}

#[test]
fn misp_down_keeps_every_record_until_it_answers_again() {
    let double = MispDouble::http();
    let home = home_for(&double, json!({"lookup": {"mode": "mirror"}}));
    assert_eq!(scheduled(&home).status.code(), Some(0));
    storm(&home, 6);
    double.set_fault(Fault::Reset);
    let out = wazuh_misp(&home, &["sightings", "flush"]);
    assert_eq!(out.status.code(), Some(6), "{}", stdout(&out));
    assert!(stdout(&out).contains("kept for later"), "{}", stdout(&out));
    let failure_events = |home: &WazuhHome| -> Vec<Value> {
        home.datagrams()
            .iter()
            .map(|d| split_datagram(d).1)
            .filter(|e| e["misp"]["service"]["component"] == "sightings")
            .collect()
    };
    let events = failure_events(&home);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["misp"]["service"]["status"], "flush_failed");
    // Hits keep arriving during the outage; more failed flushes raise no more events.
    storm(&home, 6);
    let stats = spool_stats(&home);
    assert_eq!(stats["being_delivered"], 6, "{stats}");
    assert_eq!(stats["waiting"], 6, "{stats}");
    assert_eq!(
        wazuh_misp(&home, &["sightings", "flush"]).status.code(),
        Some(6)
    );
    assert!(failure_events(&home).is_empty());

    double.set_fault(Fault::None);
    double.clear_requests();
    assert_eq!(
        wazuh_misp(&home, &["sightings", "flush"]).status.code(),
        Some(0)
    );
    assert_eq!(sightings(&double).len(), 3);
    // The spool that filled during the outage is the next batch (folded: same attributes).
    assert_eq!(
        wazuh_misp(&home, &["sightings", "flush"]).status.code(),
        Some(0)
    );
    assert_eq!(sightings(&double).len(), 3);
    let stats = spool_stats(&home);
    assert_eq!(
        (stats["waiting"].as_u64(), stats["being_delivered"].as_u64()),
        (Some(0), Some(0)),
        "{stats}"
    );
    assert_eq!(stats["status"]["failing_since"], 0);
}

#[test]
fn a_read_only_key_is_refused_by_setup_and_never_retried() {
    let double = MispDouble::start(Options {
        read_only: true,
        ..Options::default()
    });
    let home = home_for(&double, json!({}));
    storm(&home, 3);
    let out = wazuh_misp(&home, &["sightings", "flush"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "refused records are not kept: {}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("3 refused by MISP"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        sightings(&double).len(),
        1,
        "one request shows the key may not"
    );
    wazuh_misp(&home, &["sightings", "flush"]);
    assert_eq!(sightings(&double).len(), 1, "never retried");
    assert!(home.log().contains("refused 3 record"), "{}", home.log());

    // setup --sightings with this key: refused, with the way out.
    let keys = tempfile::tempdir().unwrap();
    let kf = keys.path().join("key");
    std::fs::write(&kf, KEY).unwrap();
    let m = common::manager::Manager::new();
    let out = m.wazuh_misp(&[
        "setup",
        "--non-interactive",
        "--misp-url",
        &double.url(),
        "--api-key-file",
        kf.to_str().unwrap(),
        "--preset",
        "authentication",
        "--sightings",
        "--no-restart",
    ]);
    assert!(!out.status.success());
    let said = common::manager::text(&out);
    assert!(
        said.contains("may not add sightings") && said.contains("--no-sightings"),
        "{said}"
    );
    assert!(
        m.read("etc/custom-misp.json").is_none(),
        "nothing was changed"
    );
}

/// A refused key (it may be fixed any minute) and a 200 that is not MISP's answer keep every
/// record; only a role without the permission drops them.
#[test]
fn a_refused_key_or_a_foreign_200_keeps_the_records() {
    let double = MispDouble::http();
    let home = home_for(&double, json!({}));
    storm(&home, 3);
    for (status, body) in [
        (
            403,
            r#"{"name":"Authentication failed. Please make sure you pass the API key","message":"Authentication failed.","url":"/sightings/add"}"#,
        ),
        (200, "<html>maintenance</html>"),
    ] {
        double.set_fault(Fault::Status {
            status,
            content_type: "application/json".into(),
            body: body.into(),
        });
        let out = wazuh_misp(&home, &["sightings", "flush"]);
        assert_eq!(out.status.code(), Some(6), "{status}: {}", stdout(&out));
        let stats = spool_stats(&home);
        assert_eq!(stats["being_delivered"], 3, "{status}: {stats}");
        assert_eq!(stats["status"]["rejected_total"], 0, "{status}: {stats}");
    }
    double.set_fault(Fault::None);
    double.clear_requests();
    assert_eq!(
        wazuh_misp(&home, &["sightings", "flush"]).status.code(),
        Some(0)
    );
    assert_eq!(sightings(&double).len(), 3);
}
