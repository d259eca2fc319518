//! The end-to-end demo: a temporary Wazuh home, the MISP double on loopback over HTTPS with its
//! own CA, and a few realistic alerts run through `integrations/custom-misp` exactly as
//! wazuh-integratord runs them, first online (each alert asks MISP), then in mirror mode (a
//! `wazuh-misp sync` copies MISP locally, and the same alerts are answered with no request at
//! all; an analyst's new indicator arrives with the next, incremental, sync), then with native
//! matching (the sync writes the mirror as CDB lists and hot-reloads analysisd, here a stand-in
//! on a real stream socket; a CDB rule's alert is enriched from the mirror). Prints what
//! analysisd receives.
//!
//! `cargo run --release --example demo`

use misp_double::{seed, MispDouble};
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let binary = build_binary()?;
    let double = MispDouble::https();
    let home = tempfile::Builder::new().prefix("wazuh-demo-").tempdir()?;
    let home = home.path();
    for d in ["etc", "logs", "queue/sockets", "integrations"] {
        std::fs::create_dir_all(home.join(d))?;
    }
    let integration = home.join("integrations/custom-misp");
    std::fs::copy(&binary, &integration)?;
    std::fs::set_permissions(&integration, std::fs::Permissions::from_mode(0o750))?;
    let ca = home.join("etc/misp-ca.pem");
    double.write_ca_file(&ca)?;
    let settings = json!({"version": 1, "misp": {"url": double.url(), "api_key": misp_double::DEFAULT_API_KEY, "ca_file": ca}});
    let settings_path = home.join("etc/custom-misp.json");
    std::fs::write(&settings_path, serde_json::to_vec_pretty(&settings)?)?;
    std::fs::set_permissions(&settings_path, std::fs::Permissions::from_mode(0o640))?;
    let queue = UnixDatagram::bind(home.join("queue/sockets/queue"))?;
    queue.set_nonblocking(true)?;

    println!("MISP double (HTTPS, private CA): {}", double.url());
    println!("Wazuh home:                      {}\n", home.display());
    println!("## Online mode: each alert asks MISP\n");
    run_alerts(home, &integration, &queue, &alerts())?;
    let log = std::fs::read_to_string(home.join("logs/integrations.log")).unwrap_or_default();
    println!(
        "logs/integrations.log: {}",
        if log.is_empty() { "(empty)" } else { &log }
    );
    println!(
        "MISP saw {} restSearch request(s).\n",
        double.request_count("/attributes/restSearch")
    );

    println!("## Mirror mode: `wazuh-misp sync` keeps a local copy; alerts need no network\n");
    std::fs::create_dir_all(home.join("var/custom-misp"))?;
    let mut settings = settings;
    settings["lookup"] = json!({"mode": "mirror"});
    std::fs::write(&settings_path, serde_json::to_vec_pretty(&settings)?)?;
    sync(&binary, home)?;
    double.clear_requests();
    run_alerts(home, &integration, &queue, &alerts())?;
    println!(
        "MISP saw {} request(s) while the alerts were answered from the mirror.\n",
        double.requests().len()
    );
    println!(
        "An analyst adds a new scanner to event {} and publishes it; the next sync is incremental:",
        seed::EVENT_SSH_BRUTE_FORCE
    );
    let new_ip = "45.133.1.77";
    double.add_attribute_as_user(misp_double::Attribute::new(
        0,
        seed::EVENT_SSH_BRUTE_FORCE,
        "ip-src",
        new_ip,
    ));
    double.publish_event(seed::EVENT_SSH_BRUTE_FORCE);
    sync(&binary, home)?;
    let mut scan = alerts().remove(0);
    scan.1["data"]["srcip"] = json!(new_ip);
    run_alerts(
        home,
        &integration,
        &queue,
        &[("sshd brute force from the new scanner", scan.1)],
    )?;
    native(
        &binary,
        home,
        &integration,
        &queue,
        settings,
        &settings_path,
    )?;
    Ok(())
}

/// Native matching: lists declared in ossec.conf's `<ruleset>`, our CDB rules installed (as
/// `wazuh-misp install` does), then a sync writes the lists and reloads analysisd.
fn native(
    binary: &Path,
    home: &Path,
    integration: &Path,
    queue: &UnixDatagram,
    mut settings: Value,
    settings_path: &Path,
) -> Result<(), Box<dyn std::error::Error>> {
    use std::io::{Read, Write};
    use wazuh_misp::wazuh::native_rules;
    println!("## Native matching: analysisd matches the mirror itself through CDB lists\n");
    let lists: Vec<String> = native_rules::lists_used()
        .into_iter()
        .map(native_rules::list_path)
        .collect();
    let conf = "<ossec_config>\n  <ruleset>\n    <decoder_dir>ruleset/decoders</decoder_dir>\n    <rule_dir>ruleset/rules</rule_dir>\n    <list>etc/lists/audit-keys</list>\n  </ruleset>\n</ossec_config>\n";
    let conf = wazuh_misp::wazuh::ossec_conf::lists::upsert_lists(conf.as_bytes(), &lists)?.text;
    std::fs::write(home.join("etc/ossec.conf"), &conf)?;
    println!(
        "etc/ossec.conf's <ruleset>, with our <list> lines:\n{}",
        String::from_utf8_lossy(&conf)
    );
    std::fs::create_dir_all(home.join("etc/rules"))?;
    std::fs::create_dir_all(home.join(wazuh_misp::wazuh::home::LISTS_DIR))?;
    std::fs::write(
        home.join(native_rules::NATIVE_RULES_FILE),
        native_rules::render(117100, 3)?,
    )?;
    // analysisd's hot-reload socket (4.13+): a stand-in that answers as a 4.14 analysisd does.
    let listener = std::os::unix::net::UnixListener::bind(home.join("queue/sockets/analysis"))?;
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let mut len = [0u8; 4];
            if s.read_exact(&mut len).is_err() {
                continue;
            }
            let mut req = vec![0u8; u32::from_le_bytes(len) as usize];
            let _ = s.read_exact(&mut req);
            println!("   analysisd got {}", String::from_utf8_lossy(&req));
            let answer = br#"{"error":0,"message":"ok","data":[]}"#;
            let mut out = (answer.len() as u32).to_le_bytes().to_vec();
            out.extend_from_slice(answer);
            let _ = s.write_all(&out);
        }
    });
    settings["native"] = json!({"enabled": true});
    std::fs::write(settings_path, serde_json::to_vec_pretty(&settings)?)?;
    sync(binary, home)?;
    let ip_list = home.join(native_rules::list_path(wazuh_misp::ioc::IocKind::Ip));
    let text = std::fs::read_to_string(&ip_list)?;
    println!(
        "{} ({} keys):",
        ip_list.strip_prefix(home)?.display(),
        text.lines().count()
    );
    for line in text.lines().take(6) {
        println!("   {line}");
    }
    println!(
        "\nanalysisd now fires our CDB child of sshd rule 5710 for a listed source; only that alert \
         reaches the integration (the second <integration> block takes group {}), and it is \
         enriched from the mirror. An alert that matches no list starts no process at all.\n",
        native_rules::NATIVE_GROUP
    );
    let mut hit = alerts().remove(0).1;
    hit["id"] = json!("1764223600.9001");
    hit["rule"]["id"] = json!("117120");
    hit["rule"]["groups"] = json!([
        "syslog",
        "sshd",
        "authentication_failed",
        native_rules::NATIVE_GROUP,
        "misp_native_ip"
    ]);
    // Windows logon failures (4625) end at stock 60122; our child there reads the address the
    // eventchannel decoder gives (win.eventdata.ipAddress).
    let windows = json!({
        "timestamp": "2026-11-27T06:07:00.000+0000", "id": "1764223620.9002",
        "rule": {"level": 5, "description": "Windows: logon failure from MISP-listed 185.220.101.47.", "id": "117126",
                 "groups": ["windows", "windows_security", "authentication_failed", native_rules::NATIVE_GROUP, "misp_native_ip"]},
        "agent": {"id": "002", "name": "WIN-DC01", "ip": "10.0.0.20"},
        "decoder": {"name": "windows_eventchannel"},
        "data": {"win": {"system": {"eventID": "4625"},
                 "eventdata": {"ipAddress": seed::BRUTE_FORCE_IP, "targetUserName": "administrator", "logonType": "10"}}}});
    run_alerts(
        home,
        integration,
        queue,
        &[
            (
                "native hit: sshd from a MISP-listed address (rule 117120)",
                hit,
            ),
            (
                "native hit: Windows logon failure from a MISP-listed address (rule 117126)",
                windows,
            ),
        ],
    )?;
    Ok(())
}

fn sync(binary: &Path, home: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let out = Command::new(binary)
        .arg("--wazuh-home")
        .arg(home)
        .args(["sync", "--quiet"])
        .output()?;
    print!(
        "$ wazuh-misp sync\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = Command::new(binary)
        .arg("--wazuh-home")
        .arg(home)
        .args(["mirror", "stats"])
        .output()?;
    println!(
        "$ wazuh-misp mirror stats\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    Ok(())
}

fn run_alerts(
    home: &Path,
    integration: &Path,
    queue: &UnixDatagram,
    alerts: &[(&str, Value)],
) -> Result<(), Box<dyn std::error::Error>> {
    for (title, alert) in alerts {
        let file = tempfile::Builder::new()
            .prefix("custom-misp-")
            .suffix(".alert")
            .tempfile()?;
        std::fs::write(file.path(), format!("{alert}\n"))?;
        let started = Instant::now();
        // Wazuh 4.14's argv: alert api_key hook_url debug options timeout retries redirection.
        let status = Command::new(integration)
            .arg0("integrations")
            .args([
                file.path().as_os_str(),
                "".as_ref(),
                "".as_ref(),
                "".as_ref(),
                "".as_ref(),
            ])
            .args(["10", "3", "> /dev/null 2>&1"])
            .current_dir(home)
            .status()?;
        let took = started.elapsed();
        println!(
            "== {title} (exit {}, {:.1} ms)",
            status.code().unwrap_or(-1),
            took.as_secs_f64() * 1e3
        );
        let mut buf = vec![0u8; 70_000];
        let mut any = false;
        while let Ok(n) = queue.recv(&mut buf) {
            any = true;
            print_datagram(&String::from_utf8_lossy(&buf[..n]));
        }
        if !any {
            println!("   (nothing sent: no indicator worth a lookup, or no match)");
        }
        println!();
    }
    Ok(())
}

fn print_datagram(d: &str) {
    let (head, json) = match d.find(":{") {
        Some(i) => (&d[..i], &d[i + 1..]),
        None => (d, ""),
    };
    println!("   to analysisd: {head}:");
    if let Ok(v) = serde_json::from_str::<Value>(json) {
        let m = &v["misp"];
        if m.get("error").is_some() {
            println!("     error {}", m["error"]);
        } else {
            println!(
                "     {} {} ({}) from {} -> MISP {} in event {} \"{}\" tags [{}]{}",
                m["ioc_kind"].as_str().unwrap_or(""),
                m["ioc_value"].as_str().unwrap_or(""),
                m["ioc_field"].as_str().unwrap_or(""),
                m["alert"]["rule_id"].as_str().unwrap_or(""),
                m["type"].as_str().unwrap_or(""),
                m["event_id"].as_str().unwrap_or(""),
                m["event_info"].as_str().unwrap_or(""),
                m["tags"].as_str().unwrap_or(""),
                if m["source"] == "mirror" {
                    " (from the mirror)"
                } else {
                    ""
                }
            );
        }
    }
}

fn alerts() -> Vec<(&'static str, Value)> {
    vec![
        (
            "sshd brute force from a known scanner (agent web-01)",
            json!({
            "timestamp": "2026-11-27T06:05:24.123+0000", "id": "1764223524.1234",
            "rule": {"level": 5, "description": "sshd: Attempt to login using a non-existent user", "id": "5710", "groups": ["syslog", "sshd", "authentication_failed"]},
            "agent": {"id": "001", "name": "web-01", "ip": "10.0.0.11"},
            "decoder": {"parent": "sshd", "name": "sshd"},
            "data": {"srcip": seed::BRUTE_FORCE_IP, "srcport": "53422", "srcuser": "admin"},
            "location": "/var/log/auth.log"}),
        ),
        (
            "Sysmon process creation with EICAR hashes (agent WIN-DC01)",
            json!({
            "id": "1764223525.2001",
            "rule": {"level": 12, "description": "Sysmon - Suspicious Process", "id": "100100", "groups": ["windows", "sysmon", "sysmon_event1"]},
            "agent": {"id": "002", "name": "WIN-DC01", "ip": "10.0.0.20"},
            "data": {"win": {"system": {"eventID": "1"}, "eventdata": {"image": "C:\\Users\\bob\\Downloads\\eicar.com",
                "hashes": format!("SHA1={},MD5={},SHA256={},IMPHASH=F34D5F2D4577ED6D9CEEC516C1F5A744",
                    seed::EICAR_SHA1.to_uppercase(), seed::EICAR_MD5.to_uppercase(), seed::EICAR_SHA256.to_uppercase())}}}}),
        ),
        (
            "Suricata DNS query for a C2 domain (manager)",
            json!({
            "id": "1764223526.3001",
            "rule": {"level": 3, "description": "Suricata: DNS query", "id": "86601", "groups": ["ids", "suricata"]},
            "agent": {"id": "000", "name": "wazuh-manager"},
            "decoder": {"name": "json"},
            "data": {"event_type": "dns", "src_ip": "10.0.0.31", "dest_ip": "10.0.0.53",
                     "dns": {"type": "query", "rrname": "Bad-Update.NET."}}}),
        ),
        (
            "internal traffic only (nothing to look up)",
            json!({
            "id": "1764223527.4001",
            "rule": {"level": 5, "description": "sshd: authentication failed", "id": "5760"},
            "agent": {"id": "001", "name": "web-01", "ip": "10.0.0.11"},
            "data": {"srcip": "192.168.10.5"}}),
        ),
    ]
}

/// The demo runs the real binary, so make sure it is built with the same profile as we are.
fn build_binary() -> Result<PathBuf, Box<dyn std::error::Error>> {
    let me = std::env::current_exe()?;
    let profile_dir = me
        .parent()
        .and_then(Path::parent)
        .ok_or("unexpected example path")?;
    let release = profile_dir.file_name().is_some_and(|n| n == "release");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build.args(["build", "--quiet", "--bin", "wazuh-misp"]);
    if release {
        build.arg("--release");
    }
    if !build.status()?.success() {
        return Err("building wazuh-misp failed".into());
    }
    Ok(profile_dir.join("wazuh-misp"))
}
