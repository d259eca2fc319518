//! `wazuh-misp doctor` against throw-away Wazuh 4.x homes: a healthy one (every check passes),
//! then one planted problem per test, each of which must be reported with its fix.
//!
//! A home: the stock ossec.conf (two roots) with our managed block, stock-like rules (sshd, and
//! level-0 Sysmon rules carrying sysmon_event1), our rules file, the built binary as
//! `integrations/custom-misp` root:wazuh 0750, the settings file root:wazuh 0640 pointing at the
//! HTTPS MISP double with its CA file, analysisd's queue socket (a bound UnixDatagram), the state
//! directory, and a stand-in `wazuh-integratord` process with its pid file. Owners and modes need
//! root and a `wazuh` group (CI has both, see .ci/run); elsewhere the tests say so and pass.

mod common;

use common::home::{self, root_wazuh, set_mode, HomeBuilder, Perm};
use common::wazuh_gid;
use misp_double::{MispDouble, DEFAULT_API_KEY};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::Duration;
use wazuh_misp::misp::tlsinfo;
use wazuh_misp::setup::doctor::{self, Check, DoctorOptions, Report, Status};
use wazuh_misp::wazuh::ossec_conf::{self, Filters, IntegrationBlock};
use wazuh_misp::wazuh::rules::{self, RulesSpec};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/doctor");
const STOCK_CONF: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/ossec/stock.conf"
);

/// Root and a `wazuh` group, or the test is not meaningful here.
fn privileged() -> bool {
    let ok = nix::unistd::geteuid().is_root() && wazuh_gid().is_some();
    if !ok {
        eprintln!("skipped: needs root and a `wazuh` group (run through .ci/run)");
    }
    ok
}

/// Spawns `cmd`, retrying while the executable is "busy" (another test thread may have forked
/// while holding a write descriptor to a file it was copying).
fn spawn_retrying(cmd: &mut Command) -> Child {
    for _ in 0..200 {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                std::thread::sleep(Duration::from_millis(5))
            }
            other => return other.unwrap(),
        }
    }
    panic!("executable stayed busy");
}

struct Home {
    dir: tempfile::TempDir,
    _queue: Option<UnixDatagram>,
    integratord: Option<Child>,
    misp: Option<MispDouble>,
}

impl Drop for Home {
    fn drop(&mut self) {
        if let Some(mut c) = self.integratord.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn default_block() -> IntegrationBlock {
    IntegrationBlock {
        filters: Filters {
            level: Some(5),
            groups: vec!["authentication_failed".into()],
            rule_ids: vec![],
        },
        timeout: Some(10),
        retries: None,
        native_hits: None,
        schedule: None,
    }
}

impl Home {
    /// A healthy home whose settings point at a fresh HTTPS MISP double (CA file configured).
    fn healthy() -> Home {
        let misp = MispDouble::https();
        let home = Home::bare();
        let ca = home.path().join("etc/misp-ca.pem");
        misp.write_ca_file(&ca).unwrap();
        home.write_settings(&json!({
            "version": 1,
            "misp": {"url": misp.url(), "api_key": DEFAULT_API_KEY, "ca_file": ca}
        }));
        let mut home = home;
        home.misp = Some(misp);
        home
    }

    /// Everything but the settings file.
    fn bare() -> Home {
        let built = HomeBuilder::new()
            .prefix("doctor-home-")
            .manager_layout()
            .state_dir()
            .tree(FIXTURES)
            // The version source of Wazuh before 4.2 (no process to run for the test).
            .file(
                "etc/ossec-init.conf",
                "DIRECTORY=\"/var/ossec\"\nVERSION=\"v4.9.2\"\n",
                Perm::AsCreated,
            )
            .file(
                rules::RULES_FILE,
                rules::render(&RulesSpec::default()).unwrap(),
                Perm::RootWazuh(0o660),
            )
            .integration()
            .queue(Perm::RootWazuh(0o660))
            // integratord: any program run under that name (the kernel shows "wazuh-integrato").
            .copy("bin/wazuh-integratord", "/bin/sleep", Perm::Mode(0o750))
            .build();
        let home = Home {
            dir: built.dir,
            _queue: built.queue,
            integratord: None,
            misp: None,
        };
        home.write_block(&default_block());
        let child =
            spawn_retrying(Command::new(home.path().join("bin/wazuh-integratord")).arg("60"));
        home::pid_file(home.path(), "wazuh-integratord", child.id());
        let mut home = home;
        home.integratord = Some(child);
        home
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn write_block(&self, block: &IntegrationBlock) {
        let stock = std::fs::read(STOCK_CONF).unwrap();
        let edit = ossec_conf::upsert(&stock, block).unwrap();
        self.write_conf(&edit.text);
    }

    fn write_conf(&self, text: &[u8]) {
        let p = self.path().join("etc/ossec.conf");
        std::fs::write(&p, text).unwrap();
        root_wazuh(&p, 0o660);
    }

    fn write_settings(&self, settings: &Value) -> PathBuf {
        home::write_settings(self.path(), settings, 0o640)
    }

    fn settings(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.path().join("etc/custom-misp.json")).unwrap())
            .unwrap()
    }

    fn doctor(&self) -> Report {
        doctor::diagnose(self.path())
    }
}

fn check<'a>(report: &'a Report, name: &str) -> &'a Check {
    report
        .checks
        .iter()
        .find(|c| c.name == name || c.id == name)
        .unwrap_or_else(|| panic!("no check {name} in\n{}", text(report)))
}

fn text(report: &Report) -> String {
    let mut out = Vec::new();
    report.render_text(&mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// The check is `status`, its detail contains `detail`, its fix contains `fix`.
#[track_caller]
fn assert_check(report: &Report, name: &str, status: Status, detail: &str, fix: &str) {
    let c = check(report, name);
    let all = text(report);
    assert_eq!(c.status, status, "{name}: {c:?}\n{all}");
    assert!(
        c.detail.contains(detail),
        "{name} detail lacks {detail:?}: {c:?}"
    );
    if !fix.is_empty() {
        let f = c.fix.as_deref().unwrap_or("");
        assert!(f.contains(fix), "{name} fix lacks {fix:?}: {c:?}");
    }
}

#[test]
fn a_healthy_home_passes_every_check() {
    if !privileged() {
        return;
    }
    let home = Home::healthy();
    let report = home.doctor();
    let all = text(&report);
    for c in &report.checks {
        assert_eq!(c.status, Status::Pass, "{}: {c:?}\n{all}", c.name);
        assert!(c.fix.is_none(), "{c:?}");
    }
    for id in [
        "wazuh.version",
        "cluster.role",
        "binary.file",
        "binary.permissions",
        "binary.version",
        "settings.permissions",
        "settings.load",
        "ossec_conf.block",
        "ossec_conf.integratord",
        "ossec_conf.jsonout",
        "filters.level",
        "filters.group",
        "rules.file",
        "rules.collisions",
        "queue.socket",
        "misp.connection",
        "misp.key",
        "misp.tls",
        "integratord.running",
        "logs.integrations",
        "logs.ossec",
        "state.dir",
        "state.breaker",
    ] {
        check(&report, id);
    }
    assert_eq!(report.exit_code(), 0);
    assert!(check(&report, "wazuh.version").detail.contains("4.9.2"));
    assert!(check(&report, "misp.connection").detail.contains("2.5.22"));
    let key = &check(&report, "misp.key").detail;
    assert!(
        key.contains("admin@admin.test")
            && key.contains("ORGNAME")
            && key.contains("sightings allowed"),
        "{key}"
    );
    let tls = check(&report, "misp.tls");
    assert!(
        tls.detail.contains("valid until") && tls.detail.contains("misp-double test CA"),
        "{tls:?}"
    );
    assert!(check(&report, "filters.group authentication_failed")
        .detail
        .contains("5710"));
    assert!(!all.contains(DEFAULT_API_KEY));
    assert!(all.lines().last().unwrap().starts_with("summary:"), "{all}");
    assert_eq!(all.lines().count(), report.checks.len() + 2);

    // The entry point: text, exit code, and --json.
    let mut out = Vec::new();
    let code = doctor::run(home.path(), &DoctorOptions { json: true }, &mut out).unwrap();
    assert_eq!(code, 0);
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["exit_code"], 0);
    assert_eq!(v["summary"]["fail"], 0);
    assert_eq!(v["summary"]["pass"], report.checks.len());
    let checks = v["checks"].as_array().unwrap();
    assert!(checks
        .iter()
        .all(|c| c["status"] == "pass" && c["id"].is_string() && c["detail"].is_string()));
    let tls = checks.iter().find(|c| c["id"] == "misp.tls").unwrap();
    assert!(tls["data"]["days_left"].as_i64().unwrap() > 30, "{tls}");
    assert!(!String::from_utf8_lossy(&out).contains(DEFAULT_API_KEY));
}

#[test]
fn a_level_zero_group_is_the_sysmon_trap() {
    if !privileged() {
        return;
    }
    let home = Home::healthy();
    home.write_block(&IntegrationBlock {
        filters: Filters {
            level: None,
            groups: vec!["sysmon_event1".into(), "authentication_failed".into()],
            rule_ids: vec![],
        },
        timeout: None,
        retries: None,
        native_hits: None,
        schedule: None,
    });
    let report = home.doctor();
    assert_check(
        &report,
        "filters.group sysmon_event1",
        Status::Fail,
        "only by rules below level 3: 61603 (level 0)",
        "<if_sid>61603</if_sid>",
    );
    let fix = check(&report, "filters.group sysmon_event1")
        .fix
        .clone()
        .unwrap();
    assert!(
        fix.contains("level=\"3\"") && fix.contains("<group>sysmon_event1,</group>"),
        "{fix}"
    );
    assert!(fix.contains("id=\"100000\""), "a free custom id: {fix}");
    assert_check(
        &report,
        "filters.group authentication_failed",
        Status::Pass,
        "",
        "",
    );
    assert_check(&report, "filters.level", Status::Pass, "no <level>", "");
    assert_eq!(report.exit_code(), 1);
}

#[test]
fn a_misspelt_group_gets_the_right_name() {
    if !privileged() {
        return;
    }
    let home = Home::healthy();
    home.write_block(&IntegrationBlock {
        filters: Filters {
            level: Some(3),
            groups: vec!["sysmon_event_1".into()],
            rule_ids: vec![],
        },
        timeout: None,
        retries: None,
        native_hits: None,
        schedule: None,
    });
    let report = home.doctor();
    assert_check(
        &report,
        "filters.group sysmon_event_1",
        Status::Fail,
        "no rule carries the group \"sysmon_event_1\" (did you mean sysmon_event1?)",
        "replace sysmon_event_1 with sysmon_event1",
    );
    assert_eq!(report.exit_code(), 1);
}

#[test]
fn a_group_writable_binary_is_refused_like_integratord_does() {
    if !privileged() {
        return;
    }
    let home = Home::healthy();
    set_mode(&home.path().join("integrations/custom-misp"), 0o770);
    let report = home.doctor();
    assert_check(
        &report,
        "binary.permissions",
        Status::Fail,
        "writable by its group",
        "chmod 0750",
    );
    assert!(check(&report, "binary.permissions")
        .detail
        .contains("Couldn't execute command"));
    assert!(check(&report, "binary.permissions")
        .fix
        .as_deref()
        .unwrap()
        .contains("chown root:wazuh"));
    assert_eq!(report.exit_code(), 1);

    // Not executable by the group: fails too; merely unusual modes only warn.
    set_mode(&home.path().join("integrations/custom-misp"), 0o700);
    assert_check(
        &home.doctor(),
        "binary.permissions",
        Status::Fail,
        "not executable",
        "chmod 0750",
    );
    set_mode(&home.path().join("integrations/custom-misp"), 0o755);
    assert_check(
        &home.doctor(),
        "binary.permissions",
        Status::Warn,
        "mode 0755 instead of 0750",
        "chmod 0750",
    );
}

#[test]
fn a_missing_or_foreign_binary_is_reported() {
    if !privileged() {
        return;
    }
    let home = Home::healthy();
    let bin = home.path().join("integrations/custom-misp");
    std::fs::write(&bin, b"#!/bin/sh\necho wazuh-misp/0.0.9 fake\n").unwrap();
    root_wazuh(&bin, 0o750);
    assert_check(
        &home.doctor(),
        "binary.version",
        Status::Warn,
        "wazuh-misp 0.0.9, this program is",
        "wazuh-misp install",
    );
    std::fs::remove_file(&bin).unwrap();
    let report = home.doctor();
    assert_check(
        &report,
        "binary.file",
        Status::Fail,
        "missing",
        "sudo wazuh-misp install",
    );
    assert_eq!(check(&report, "binary.permissions").status, Status::Skip);
}

#[test]
fn settings_readable_by_others_are_refused() {
    if !privileged() {
        return;
    }
    let home = Home::healthy();
    set_mode(&home.path().join("etc/custom-misp.json"), 0o644);
    let report = home.doctor();
    assert_check(
        &report,
        "settings.permissions",
        Status::Fail,
        "other users can access it",
        "chown root:wazuh",
    );
    assert!(check(&report, "settings.permissions")
        .fix
        .as_deref()
        .unwrap()
        .contains("chmod 0640"));
    assert_check(
        &report,
        "settings.load",
        Status::Fail,
        "refused for its mode",
        "chmod 0640",
    );
    assert_eq!(check(&report, "misp.connection").status, Status::Skip);
    assert_eq!(report.exit_code(), 1);
}

#[test]
fn unknown_settings_keys_are_a_warning() {
    if !privileged() {
        return;
    }
    let home = Home::healthy();
    let mut s = home.settings();
    s["future"] = json!({"x": 1});
    home.write_settings(&s);
    let report = home.doctor();
    assert_check(
        &report,
        "settings.load",
        Status::Warn,
        "keys unknown to wazuh-misp",
        "upgrade wazuh-misp",
    );
    assert!(check(&report, "settings.load").detail.contains("future"));
    assert_eq!(report.exit_code(), 0, "warnings only");
}

#[test]
fn a_missing_queue_socket_means_analysisd_is_down() {
    if !privileged() {
        return;
    }
    let mut home = Home::healthy();
    home._queue = None;
    // A stale socket file with nobody listening...
    assert_check(
        &home.doctor(),
        "queue.socket",
        Status::Fail,
        "nobody listens",
        "start the manager",
    );
    // ... and no socket at all.
    std::fs::remove_file(home.path().join("queue/sockets/queue")).unwrap();
    let report = home.doctor();
    assert_check(
        &report,
        "queue.socket",
        Status::Fail,
        "does not exist",
        "systemctl start wazuh-manager",
    );
    assert_eq!(report.exit_code(), 1);
}

#[test]
fn a_wrong_key_is_reported_as_a_403() {
    if !privileged() {
        return;
    }
    let home = Home::healthy();
    let mut s = home.settings();
    s["misp"]["api_key"] = json!("ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ");
    home.write_settings(&s);
    let report = home.doctor();
    assert_check(
        &report,
        "misp.connection",
        Status::Pass,
        "answers (and refuses the key)",
        "",
    );
    assert_check(
        &report,
        "misp.key",
        Status::Fail,
        "HTTP 403",
        "create an auth key in MISP",
    );
    assert_check(&report, "misp.tls", Status::Pass, "valid until", "");
    assert!(!text(&report).contains("ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ"));
    assert_eq!(report.exit_code(), 1);
}

#[test]
fn an_untrusted_certificate_asks_for_the_ca_file() {
    if !privileged() {
        return;
    }
    let home = Home::healthy();
    let mut s = home.settings();
    s["misp"].as_object_mut().unwrap().remove("ca_file");
    home.write_settings(&s);
    let report = home.doctor();
    assert_check(
        &report,
        "misp.tls",
        Status::Fail,
        "not trusted by the bundled Mozilla roots",
        "misp.ca_file",
    );
    assert_check(
        &report,
        "misp.connection",
        Status::Fail,
        "TLS",
        "see misp.tls",
    );

    s["misp"]["verify_tls"] = json!(false);
    home.write_settings(&s);
    let report = home.doctor();
    assert_check(
        &report,
        "misp.tls",
        Status::Warn,
        "verification is OFF",
        "misp.ca_file",
    );
    assert_check(&report, "misp.key", Status::Pass, "admin@admin.test", "");
}

/// A CA and a server certificate for 127.0.0.1 valid from `not_before` to `not_after`
/// (`(y, m, d)`), served by a tiny rustls server that answers every request like getVersion.
fn tls_server(not_before: (i32, u8, u8), not_after: (i32, u8, u8)) -> (u16, String) {
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
        IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::default();
    ca.distinguished_name = DistinguishedName::new();
    ca.distinguished_name
        .push(DnType::CommonName, "doctor test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::default();
    leaf.distinguished_name = DistinguishedName::new();
    leaf.distinguished_name
        .push(DnType::CommonName, "misp.doctor.test");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.subject_alt_names = vec![SanType::IpAddress("127.0.0.1".parse().unwrap())];
    leaf.not_before = rcgen::date_time_ymd(not_before.0, not_before.1, not_before.2);
    leaf.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut tcp) = stream else { continue };
            let config = config.clone();
            std::thread::spawn(move || {
                let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
                let mut conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let body = r#"{"version":"2.5.22","perm_sighting":false}"#;
                let _ = write!(
                    tls,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.flush();
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    (port, ca_cert.pem())
}

fn home_for_tls(port: u16, ca_pem: &str) -> Home {
    let home = Home::bare();
    let ca = home.path().join("etc/misp-ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    home.write_settings(&json!({
        "version": 1,
        "misp": {"url": format!("https://127.0.0.1:{port}"), "api_key": DEFAULT_API_KEY, "ca_file": ca}
    }));
    home
}

/// `(y, m, d)` of now plus `days`.
fn date_in(days: i64) -> (i32, u8, u8) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let s = tlsinfo::format_utc(now + days * 86_400);
    (
        s[0..4].parse().unwrap(),
        s[5..7].parse().unwrap(),
        s[8..10].parse().unwrap(),
    )
}

#[test]
fn an_expired_certificate_fails_with_its_date() {
    if !privileged() {
        return;
    }
    let (port, ca) = tls_server((2019, 1, 1), (2021, 6, 30));
    let home = home_for_tls(port, &ca);
    let report = home.doctor();
    assert_check(
        &report,
        "misp.tls",
        Status::Fail,
        "CN=misp.doctor.test (issued by CN=doctor test CA) expired on 2021-06-30 00:00:00 UTC",
        "renew MISP's certificate",
    );
    assert!(
        check(&report, "misp.tls").data["days_left"]
            .as_i64()
            .unwrap()
            < 0
    );
    assert_check(
        &report,
        "misp.connection",
        Status::Fail,
        "TLS",
        "see misp.tls",
    );
    assert_eq!(report.exit_code(), 1);
}

#[test]
fn a_certificate_expiring_soon_is_a_warning() {
    if !privileged() {
        return;
    }
    let (port, ca) = tls_server(date_in(-300), date_in(10));
    let home = home_for_tls(port, &ca);
    let report = home.doctor();
    let c = check(&report, "misp.tls");
    assert_eq!(c.status, Status::Warn, "{c:?}");
    assert!(
        c.detail.contains("expires in 9 day(s)") || c.detail.contains("expires in 10 day(s)"),
        "{c:?}"
    );
    assert_check(&report, "misp.connection", Status::Pass, "MISP 2.5.22", "");
    assert_check(
        &report,
        "misp.key",
        Status::Pass,
        "sightings not allowed",
        "",
    );
}

#[test]
fn a_wazuh_5_home_is_refused_and_nothing_else_is_checked() {
    let dir = HomeBuilder::new()
        .prefix("doctor-home-")
        .dirs(&["etc"])
        .file(
            "etc/wazuh-manager.conf",
            "<wazuh_config>\n</wazuh_config>\n",
            Perm::AsCreated,
        )
        .build()
        .dir;
    let report = doctor::diagnose(dir.path());
    assert_eq!(report.checks.len(), 1, "{}", text(&report));
    assert_check(
        &report,
        "wazuh.version",
        Status::Fail,
        "Wazuh 5",
        "keep Wazuh 4.x",
    );
    assert_eq!(report.exit_code(), 1);
    let mut out = Vec::new();
    assert_eq!(
        doctor::run(dir.path(), &DoctorOptions::default(), &mut out).unwrap(),
        1
    );
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.contains("✘ wazuh.version") && out.contains("→ fix: keep Wazuh 4.x"),
        "{out}"
    );

    // Not a manager at all.
    let empty = tempfile::tempdir().unwrap();
    let report = doctor::diagnose(empty.path());
    assert_check(
        &report,
        "wazuh.version",
        Status::Fail,
        "not a Wazuh manager home",
        "--wazuh-home",
    );
}

#[test]
fn ossec_conf_problems_are_explained() {
    if !privileged() {
        return;
    }
    let home = Home::healthy();
    let stock = std::fs::read_to_string(STOCK_CONF).unwrap();

    // No block at all.
    home.write_conf(stock.as_bytes());
    let report = home.doctor();
    assert_check(
        &report,
        "ossec_conf.block",
        Status::Fail,
        "no <integration> block runs custom-misp",
        "wazuh-misp setup",
    );
    assert_eq!(check(&report, "filters.level").status, Status::Skip);

    // The old manual guide's hand-written block: filters AND-ed, no json, a key in the file.
    let legacy = stock.replacen(
        "</ossec_config>",
        "  <integration>\n    <name>custom-misp</name>\n    <api_key>0123456789abcdefABCDEF0123456789abcdefAB</api_key>\n    <group>sysmon_event1, syscheck</group>\n    <rule_id>100100,5716</rule_id>\n    <level>7</level>\n  </integration>\n</ossec_config>",
        1,
    );
    home.write_conf(legacy.as_bytes());
    let report = home.doctor();
    assert_check(
        &report,
        "ossec_conf.block",
        Status::Warn,
        "hand-written custom-misp block",
        "wazuh-misp install",
    );
    let syntax = check(&report, "ossec_conf.integratord");
    assert_eq!(syntax.status, Status::Warn, "{syntax:?}");
    assert!(
        syntax.detail.contains("alert_format") && syntax.detail.contains("<api_key>"),
        "{syntax:?}"
    );
    assert!(
        syntax.detail.contains("\" syscheck\" on line"),
        "{syntax:?}"
    );
    assert_check(
        &report,
        "filters.group syscheck",
        Status::Fail,
        "spaces",
        "without spaces",
    );
    assert_check(
        &report,
        "filters.group sysmon_event1",
        Status::Fail,
        "below level 7",
        "<if_sid>61603</if_sid>",
    );
    assert_check(
        &report,
        "filters.rule_ids",
        Status::Fail,
        "no such rule: 100100; below level 7, never in alerts.json: 5716 (level 5)",
        "overwrite=\"yes\"",
    );
    assert_check(
        &report,
        "filters.combined",
        Status::Fail,
        "AND-s the filters",
        "keep either",
    );

    // What makes integratord refuse the file, and alerts.json switched off.
    let broken = stock
        .replacen("<jsonout_output>yes</jsonout_output>", "<jsonout_output>no</jsonout_output>", 1)
        .replacen(
            "</ossec_config>",
            "  <integration>\n    <name>custom-misp</name>\n    <max_log>5</max_log>\n    <colour>red</colour>\n    <alert_format>json</alert_format>\n  </integration>\n  <integration>\n    <name>misp</name>\n  </integration>\n</ossec_config>",
            1,
        );
    home.write_conf(broken.as_bytes());
    let report = home.doctor();
    let c = check(&report, "ossec_conf.integratord");
    assert_eq!(c.status, Status::Fail, "{c:?}");
    assert!(
        c.detail.contains("<max_log> must be from 165 to 1024")
            && c.detail.contains("<colour>")
            && c.detail.contains("\"misp\" is neither"),
        "{c:?}"
    );
    assert_check(
        &report,
        "ossec_conf.jsonout",
        Status::Fail,
        "jsonout_output> is no",
        "<jsonout_output>yes</jsonout_output>",
    );

    // A <level> that is not a number: the whole file is refused.
    let bad_level = stock.replacen(
        "</ossec_config>",
        "  <integration>\n    <name>custom-misp</name>\n    <level>high</level>\n  </integration>\n</ossec_config>",
        1,
    );
    home.write_conf(bad_level.as_bytes());
    let report = home.doctor();
    assert_check(
        &report,
        "ossec_conf.block",
        Status::Fail,
        "not a number",
        "correct etc/ossec.conf",
    );
    assert_check(
        &report,
        "ossec_conf.integratord",
        Status::Fail,
        "<level> \"high\" is not a number",
        "wazuh-integratord -t",
    );

    // A managed block edited by hand.
    let edit = ossec_conf::upsert(stock.as_bytes(), &default_block()).unwrap();
    let edited = String::from_utf8(edit.text)
        .unwrap()
        .replace("<level>5</level>", "<level>2</level>");
    home.write_conf(edited.as_bytes());
    let report = home.doctor();
    assert_check(
        &report,
        "ossec_conf.block",
        Status::Warn,
        "edited by hand",
        "wazuh-misp setup",
    );
    assert_check(
        &report,
        "filters.level",
        Status::Warn,
        "below log_alert_level 3",
        "<level>",
    );
}

#[test]
fn rule_problems_are_reported() {
    if !privileged() {
        return;
    }
    let home = Home::healthy();
    std::fs::write(
        home.path().join("etc/rules/other_misp.xml"),
        "<group name=\"other,\">\n  <rule id=\"117103\" level=\"3\">\n    <description>x</description>\n  </rule>\n</group>\n",
    )
    .unwrap();
    let report = home.doctor();
    assert_check(
        &report,
        "rules.collisions",
        Status::Fail,
        "rule id 117103",
        "--rule-id-base 117200",
    );
    std::fs::remove_file(home.path().join(rules::RULES_FILE)).unwrap();
    assert_check(
        &home.doctor(),
        "rules.file",
        Status::Fail,
        "missing",
        "wazuh-misp install",
    );
}

#[test]
fn a_stopped_integratord_and_recent_errors_are_reported() {
    if !privileged() {
        return;
    }
    let mut home = Home::healthy();
    if let Some(mut c) = home.integratord.take() {
        c.kill().unwrap();
        c.wait().unwrap();
    }
    let now = wazuh_misp::wazuh::log::local_timestamp();
    std::fs::write(
        home.path().join("logs/integrations.log"),
        format!(
            "2001/01/01 00:00:00 custom-misp: ERROR: long ago\n{now} custom-misp: WARNING: not an error\n{now} custom-misp: ERROR: MISP auth: /attributes/restSearch refused the API key (HTTP 403)\n"
        ),
    )
    .unwrap();
    std::fs::write(
        home.path().join("logs/ossec.log"),
        format!(
            "{now} wazuh-analysisd: ERROR: unrelated\n{now} wazuh-integratord: ERROR: Couldn't execute command (integrations /tmp/custom-misp-1-2.alert {DEFAULT_API_KEY} https://misp  > /dev/null 2>&1). Check file and permissions.\n"
        ),
    )
    .unwrap();
    std::fs::write(
        home.path().join("var/custom-misp/breaker"),
        format!(
            "{{\"phase\":\"open\",\"failures\":3,\"retry_at\":{},\"last_error\":{{\"kind\":\"timeout\",\"status\":null,\"message\":\"no complete answer\"}}}}\n",
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 120
        ),
    )
    .unwrap();
    let report = home.doctor();
    // Other tests' stand-ins may run meanwhile: then "not this home's" is the finding.
    let running = check(&report, "integratord.running");
    match running.status {
        Status::Fail => assert!(running.detail.contains("not running"), "{running:?}"),
        Status::Warn => assert!(
            running
                .detail
                .contains("no integratord of this Wazuh home runs"),
            "{running:?}"
        ),
        _ => panic!("{running:?}"),
    }
    assert!(running
        .fix
        .as_deref()
        .unwrap()
        .contains("systemctl reload wazuh-manager"));
    assert_check(
        &report,
        "logs.integrations",
        Status::Warn,
        "1 ERROR line(s)",
        "logs/integrations.log",
    );
    assert!(check(&report, "logs.integrations")
        .detail
        .contains("HTTP 403"));
    assert_check(
        &report,
        "logs.ossec",
        Status::Warn,
        "Couldn't execute command",
        "binary.permissions",
    );
    assert_check(
        &report,
        "state.breaker",
        Status::Warn,
        "OPEN after 3 failure(s)",
        "cache clear",
    );
    assert!(check(&report, "state.breaker")
        .detail
        .contains("timeout no complete answer"));
    let all = text(&report);
    assert!(!all.contains(DEFAULT_API_KEY), "{all}");
    assert!(
        all.contains("custom-misp-1-2.alert **** https://misp"),
        "{all}"
    );
}

#[test]
fn the_cluster_role_is_explained() {
    if !privileged() {
        return;
    }
    let home = Home::healthy();
    let conf = std::fs::read_to_string(home.path().join("etc/ossec.conf")).unwrap();
    let worker = conf
        .replacen(
            "<node_type>master</node_type>",
            "<node_type>worker</node_type>",
            1,
        )
        .replacen(
            "<disabled>yes</disabled>\n  </cluster>",
            "<disabled>no</disabled>\n  </cluster>",
            1,
        );
    assert_ne!(worker, conf, "the stock cluster section changed");
    home.write_conf(worker.as_bytes());
    std::fs::remove_file(home.path().join(rules::RULES_FILE)).unwrap();
    let report = home.doctor();
    assert_check(&report, "cluster.role", Status::Pass, "cluster worker", "");
    assert_check(
        &report,
        "rules.file",
        Status::Warn,
        "master's cluster sync",
        "on the master",
    );
    assert_eq!(report.exit_code(), 0);
}

#[test]
fn mirror_mode_checks_the_schedule_the_mirror_and_the_last_sync() {
    if !privileged() {
        return;
    }
    let home = Home::healthy();
    let mut s = home.settings();
    s["lookup"] = json!({"mode": "mirror"});
    home.write_settings(&s);
    let report = home.doctor();
    assert_check(
        &report,
        "mirror.schedule",
        Status::Fail,
        "no scheduled sync",
        "wazuh-misp install",
    );
    assert_check(
        &report,
        "mirror.file",
        Status::Fail,
        "is missing",
        "wazuh-misp sync",
    );
    assert_eq!(report.exit_code(), 1);

    home.write_block(&IntegrationBlock {
        native_hits: None,
        schedule: Some(ossec_conf::Schedule {
            command: format!(
                "{}/integrations/custom-misp --scheduled-sync",
                home.path().display()
            ),
            interval_s: 300,
            timeout_s: 3660,
        }),
        ..default_block()
    });
    let out = Command::new(common::BIN)
        .arg("--wazuh-home")
        .arg(home.path())
        .args(["sync", "--quiet"])
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let report = home.doctor();
    assert_check(&report, "mirror.schedule", Status::Pass, "every 300 s", "");
    assert_check(
        &report,
        "mirror.file",
        Status::Pass,
        "12 attributes from 4 events",
        "",
    );
    assert_check(&report, "mirror.age", Status::Pass, "matched MISP", "");
    assert_check(&report, "mirror.sync", Status::Pass, "succeeded", "");

    // MISP refuses the key: the sync fails, the mirror stays, doctor says both.
    home.misp
        .as_ref()
        .unwrap()
        .set_fault(misp_double::Fault::Status {
            status: 403,
            content_type: "application/json".into(),
            body: "{\"name\":\"Authentication failed.\"}".into(),
        });
    Command::new(common::BIN)
        .arg("--wazuh-home")
        .arg(home.path())
        .args(["sync", "--quiet"])
        .env_clear()
        .output()
        .unwrap();
    let report = home.doctor();
    assert_check(
        &report,
        "mirror.sync",
        Status::Warn,
        "last good copy",
        "wazuh-misp sync",
    );
    assert_check(&report, "mirror.file", Status::Pass, "12 attributes", "");
}

#[test]
fn sightings_need_the_scheduled_run() {
    if !privileged() {
        return;
    }
    let home = Home::healthy();
    let mut s = home.settings();
    s["sightings"] = json!({"enabled": true});
    home.write_settings(&s);
    let report = home.doctor();
    assert_check(
        &report,
        "sightings.schedule",
        Status::Fail,
        "never sent",
        "wazuh-misp install",
    );
    assert_check(&report, "sightings.flush", Status::Pass, "0 waiting", "");
}
