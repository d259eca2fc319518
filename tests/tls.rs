//! TLS against the HTTPS double (a private CA): verification is on by default and fails, the CA
//! file makes it succeed, and the explicit insecure setting works but is logged as a warning.

mod common;

use common::*;
use misp_double::{seed, MispDouble};
use serde_json::json;

#[test]
fn verification_is_on_by_default_and_rejects_an_unknown_ca() {
    let double = MispDouble::https();
    let home = WazuhHome::new();
    home.write_settings(&WazuhHome::settings_for(&double));
    let out = home.run_json(&sshd_alert(seed::BRUTE_FORCE_IP));
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let p = payloads(&home);
    assert_eq!(p.len(), 1);
    let e = &p[0]["misp"]["error"];
    assert_eq!(e["kind"], "tls", "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("misp.ca_file"),
        "{e}"
    );
    assert_eq!(double.request_count("/attributes/restSearch"), 0);
}

#[test]
fn the_ca_file_makes_verification_succeed() {
    let double = MispDouble::https();
    let home = WazuhHome::new();
    let ca = home.path().join("etc/misp-ca.pem");
    double.write_ca_file(&ca).unwrap();
    let mut s = WazuhHome::settings_for(&double);
    s["misp"]["ca_file"] = json!(ca);
    home.write_settings(&s);
    let out = home.run_json(&sshd_alert(seed::BRUTE_FORCE_IP));
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let p = payloads(&home);
    assert_eq!(p[0]["misp"]["value"], seed::BRUTE_FORCE_IP, "{p:?}");
    assert!(!home.log().contains("WARNING"));
}

#[test]
fn a_missing_ca_file_is_a_config_error() {
    let double = MispDouble::https();
    let home = WazuhHome::new();
    let mut s = WazuhHome::settings_for(&double);
    s["misp"]["ca_file"] = json!("/nonexistent/ca.pem");
    home.write_settings(&s);
    let out = home.run_json(&sshd_alert(seed::BRUTE_FORCE_IP));
    assert_eq!(out.status.code(), Some(4), "{}", stdout(&out));
    assert!(stdout(&out).contains("/nonexistent/ca.pem"));
    assert_eq!(payloads(&home)[0]["misp"]["error"]["kind"], "config");
}

#[test]
fn insecure_mode_works_and_warns() {
    let double = MispDouble::https();
    let home = WazuhHome::new();
    let mut s = WazuhHome::settings_for(&double);
    s["misp"]["verify_tls"] = json!(false);
    home.write_settings(&s);
    let out = home.run_json(&sshd_alert(seed::BRUTE_FORCE_IP));
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(payloads(&home)[0]["misp"]["value"], seed::BRUTE_FORCE_IP);
    assert!(
        home.log()
            .contains("WARNING: TLS certificate verification is OFF"),
        "{}",
        home.log()
    );
}
