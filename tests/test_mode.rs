//! `wazuh-misp test`: the same pipeline over a JSON-lines alerts file, batched, sending nothing
//! unless `--send` is given.

mod common;

use common::*;
use misp_double::{seed, MispDouble};
use serde_json::{json, Value};
use std::process::Command;

fn alerts_file(home: &WazuhHome, lines: &[String]) -> std::path::PathBuf {
    let p = home.path().join("logs/alerts/alerts.json");
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    p
}

fn sample_lines() -> Vec<String> {
    let mut lines = Vec::new();
    for i in 0..50 {
        let ip = if i % 2 == 0 {
            seed::BRUTE_FORCE_IP.to_string()
        } else {
            format!("8.8.4.{}", i % 5)
        };
        lines.push(sshd_alert(&ip).to_string());
    }
    lines.push("this is not json".into());
    lines.push(json!({"rule": {"id": "1"}, "data": {"integration": "misp", "srcip": seed::BRUTE_FORCE_IP}}).to_string());
    lines.push(json!({"rule": {"id": "2"}, "data": {"srcip": "10.0.0.1"}}).to_string());
    lines
}

fn run_test(home: &WazuhHome, extra: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("--wazuh-home")
        .arg(home.path())
        .arg("test")
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn batches_lookups_and_reports_each_alert_without_sending() {
    let double = MispDouble::http();
    let home = WazuhHome::new();
    home.write_settings(&WazuhHome::settings_for(&double));
    alerts_file(&home, &sample_lines());
    let out = run_test(&home, &[]);
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        text.matches("  MATCH ip ip-src = 185.220.101.47 in event 4")
            .count(),
        25,
        "{text}"
    );
    assert_eq!(
        text.matches("  WOULD SEND 1:[001] (web-01) 10.0.0.11->misp:{")
            .count(),
        25
    );
    assert!(text.contains("line 51: not an alert"), "{text}");
    assert!(text.contains("summary: 53 alerts (1 invalid, 1 from this integration), 50 with indicators (50 indicators, 6 distinct), 1 MISP request(s), 25 alerts matched, 25 events not sent (use --send)"), "{text}");
    assert_eq!(double.request_count("/attributes/restSearch"), 1);
    assert_eq!(double.connection_count(), 1);
    assert!(home.datagrams().is_empty());
}

#[test]
fn json_output_and_send() {
    let double = MispDouble::http();
    let home = WazuhHome::new();
    home.write_settings(&WazuhHome::settings_for(&double));
    let file = alerts_file(&home, &sample_lines()[..4]);
    let out = run_test(
        &home,
        &["--alerts", file.to_str().unwrap(), "--json", "--send"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(
        lines[0]["indicators"],
        json!([{"kind": "ip", "value": seed::BRUTE_FORCE_IP, "field": "data.srcip"}])
    );
    assert_eq!(lines[0]["events"][0]["misp"]["event_id"], "4");
    assert_eq!(lines[1]["events"], json!([]));
    assert_eq!(lines[4]["summary"]["sent"], 2);
    assert_eq!(home.datagrams().len(), 2);
}

#[test]
fn reads_standard_input_and_stops_on_a_misp_error() {
    use std::io::Write;
    let double = MispDouble::http();
    let home = WazuhHome::new();
    let mut s = WazuhHome::settings_for(&double);
    s["misp"]["api_key"] = json!("WRONGwrongWRONGwrongWRONGwrongWRONGwrong");
    home.write_settings(&s);
    let mut child = Command::new(BIN)
        .arg("--wazuh-home")
        .arg(home.path())
        .args(["test", "--alerts", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{}\n", sshd_alert(seed::BRUTE_FORCE_IP)).as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("auth") && err.contains("403"), "{err}");
    assert!(!err.contains("WRONGwrong"));
}
