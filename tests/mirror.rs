//! Mirror mode end to end: `wazuh-misp sync` against the MISP double (events/index, paged and
//! `eventid` restSearch, MISP's unpublish-on-edit), the runtime answering from the mirror with no
//! request at all, and every way a sync can fail leaving the previous mirror serving.

mod common;

use common::*;
use misp_double::{seed, Attribute, Dataset, Fault, MispDouble};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

fn stateful(double: &MispDouble, extra: Value) -> WazuhHome {
    WazuhHome::installed(double, extra)
}

fn mirror_mode() -> Value {
    json!({"lookup": {"mode": "mirror"}})
}

fn wazuh_misp(home: &WazuhHome, args: &[&str]) -> Output {
    home.wazuh_misp(args)
}

fn sync(home: &WazuhHome, args: &[&str]) -> Value {
    let mut all = vec!["sync", "--json"];
    all.extend_from_slice(args);
    let out = wazuh_misp(home, &all);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut v: Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "sync --json printed {text:?} ({e}); stderr {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    v["exit"] = out.status.code().into();
    v
}

fn mirror_file(home: &WazuhHome) -> PathBuf {
    home.path().join("var/custom-misp/mirror.db")
}

fn lookup(home: &WazuhHome, value: &str) -> (i32, Value) {
    let out = wazuh_misp(home, &["mirror", "lookup", "--json", value]);
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "mirror lookup {value}: {} {}",
            stdout(&out),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), v)
}

fn found(home: &WazuhHome, value: &str) -> Vec<String> {
    let (code, v) = lookup(home, value);
    let ids: Vec<String> = v["matches"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| m["attribute"]["id"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(code, if ids.is_empty() { 1 } else { 0 }, "{v}");
    ids
}

/// The alerts whose datagrams online and mirror mode must agree on.
fn alerts() -> Vec<Value> {
    let mut out = vec![sshd_alert(seed::BRUTE_FORCE_IP)];
    for data in [
        json!({"dstip": seed::C2_IP, "url": seed::MALWARE_URL}),
        json!({"dest_ip": seed::C2_IP_PORT_IP, "dns": {"rrname": "Bad-Update.NET."}}),
        json!({"win": {"eventdata": {"hashes": format!("SHA1={},MD5={},SHA256={}",
            seed::EICAR_SHA1.to_uppercase(), seed::EICAR_MD5.to_uppercase(), seed::EICAR_SHA256.to_uppercase()),
            "destinationIp": "2a0d:5600:0024::ABCD"}}}),
        json!({"srcip": seed::NON_IDS_IP, "hostname": seed::UNPUBLISHED_DOMAIN}),
        json!({"srcip": seed::DELETED_IP, "dstip": "8.8.8.8"}),
    ] {
        let mut a = sshd_alert("203.0.113.9");
        a["data"] = data;
        out.push(a);
    }
    out
}

/// Datagrams of one run, with `misp.source` taken out and kept aside.
fn run_all(home: &WazuhHome) -> (Vec<Value>, Vec<Value>) {
    let (mut payloads, mut sources) = (Vec::new(), Vec::new());
    for alert in alerts() {
        let out = home.run_json(&alert);
        assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
        for d in home.datagrams() {
            let (_, mut p) = split_datagram(&d);
            sources.push(
                p["misp"]
                    .as_object_mut()
                    .and_then(|m| m.remove("source"))
                    .unwrap_or(Value::Null),
            );
            payloads.push(p);
        }
    }
    (payloads, sources)
}

#[test]
fn mirror_mode_sends_what_online_mode_sends_without_a_single_request() {
    let double = MispDouble::http();
    let online = stateful(&double, json!({"cache": {"enabled": false}}));
    let (expected, sources) = run_all(&online);
    assert_eq!(expected.len(), 10, "{expected:#?}");
    assert!(sources.iter().all(Value::is_null));

    let home = stateful(&double, mirror_mode());
    let s = sync(&home, &[]);
    assert_eq!(s["exit"], 0, "{s}");
    assert_eq!(s["kind"], "full");
    assert_eq!(s["attributes"], 12, "{s}");
    let meta = std::fs::metadata(mirror_file(&home)).unwrap();
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    if let Some(gid) = wazuh_gid() {
        assert_eq!(meta.gid(), gid);
    }
    double.clear_requests();
    let (got, sources) = run_all(&home);
    assert_eq!(got, expected);
    assert!(sources.iter().all(|s| s == "mirror"), "{sources:?}");
    assert_eq!(double.requests().len(), 0, "mirror mode asked MISP");
}

#[test]
fn each_kind_of_misp_edit_reaches_the_mirror_at_the_next_sync() {
    let double = MispDouble::http();
    let home = stateful(&double, mirror_mode());
    assert_eq!(sync(&home, &[])["exit"], 0);
    assert_eq!(found(&home, seed::BRUTE_FORCE_IP), vec!["1"]);

    // Nothing changed: incremental, no rewrite, one request (the index).
    let before = std::fs::read(mirror_file(&home)).unwrap();
    double.clear_requests();
    let s = sync(&home, &[]);
    assert_eq!(
        (s["kind"].as_str(), s["changed"].as_bool()),
        (Some("incremental"), Some(false)),
        "{s}"
    );
    assert_eq!(double.requests().len(), 1);
    assert_eq!(std::fs::read(mirror_file(&home)).unwrap(), before);

    // An analyst adds an attribute: MISP unpublishes the event, so it leaves the mirror...
    let new_ip = "198.51.100.77".replace("198.51.100", "45.133.1");
    let id = double
        .add_attribute_as_user(Attribute::new(
            0,
            seed::EVENT_SSH_BRUTE_FORCE,
            "ip-src",
            &new_ip,
        ))
        .unwrap();
    double.advance_clock(1);
    assert_eq!(sync(&home, &[])["kind"], "incremental");
    assert!(found(&home, seed::BRUTE_FORCE_IP).is_empty());
    assert!(found(&home, &new_ip).is_empty());
    // ...until it is published again.
    double.advance_clock(1);
    double.publish_event(seed::EVENT_SSH_BRUTE_FORCE);
    sync(&home, &[]);
    assert_eq!(found(&home, seed::BRUTE_FORCE_IP), vec!["1"]);
    assert_eq!(found(&home, &new_ip), vec![id.to_string()]);

    // to_ids cleared, then published: the attribute no longer matches.
    double.advance_clock(1);
    double.edit_attribute(id, |a| a.to_ids = false);
    double.publish_event(seed::EVENT_SSH_BRUTE_FORCE);
    sync(&home, &[]);
    assert!(found(&home, &new_ip).is_empty());
    assert_eq!(found(&home, seed::BRUTE_FORCE_IP), vec!["1"]);

    // Soft-deleted, then published.
    double.advance_clock(1);
    double.soft_delete_attribute(1);
    double.publish_event(seed::EVENT_SSH_BRUTE_FORCE);
    sync(&home, &[]);
    assert!(found(&home, seed::BRUTE_FORCE_IP).is_empty());

    // Unpublished by hand (no timestamp moves), republished, deleted outright.
    assert_eq!(found(&home, seed::C2_IP), vec!["2"]);
    double.unpublish_event(1);
    sync(&home, &[]);
    assert!(found(&home, seed::C2_IP).is_empty());
    double.publish_event(1);
    sync(&home, &[]);
    assert_eq!(found(&home, seed::C2_IP), vec!["2"]);
    double.delete_event(1);
    let s = sync(&home, &[]);
    assert_eq!(s["events_dropped"], 1, "{s}");
    assert!(found(&home, seed::C2_IP).is_empty());
    assert!(found(&home, seed::EICAR_MD5).is_empty());
    assert_eq!(found(&home, seed::PHISHING_HOSTNAME), vec!["6"]);

    // After all that, the incremental mirror is exactly what a full sync builds.
    let full = stateful(&double, mirror_mode());
    sync(&full, &["--full"]);
    for v in [
        seed::PHISHING_HOSTNAME,
        seed::INVOICE_FILENAME_SHA256.split('|').nth(1).unwrap(),
        &new_ip,
        seed::BRUTE_FORCE_IP,
        seed::C2_IP,
    ] {
        assert_eq!(found(&home, v), found(&full, v), "{v}");
    }
}

#[test]
fn an_edit_in_the_same_second_as_the_listing_is_not_missed() {
    let double = MispDouble::http();
    let home = stateful(&double, mirror_mode());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // MISP's clock stands still: the sync lists event 1 at second `now`...
    double.set_clock(Some(now));
    double.edit_event(1, |_| {});
    double.publish_event(1);
    sync(&home, &[]);
    assert_eq!(found(&home, seed::C2_IP), vec!["2"]);
    // ...and then, in that same second, an attribute is removed and the event republished:
    // its timestamp and published flag read exactly as before.
    double.soft_delete_attribute(2);
    double.publish_event(1);
    sync(&home, &[]);
    assert!(found(&home, seed::C2_IP).is_empty());
}

#[test]
fn failed_syncs_leave_the_previous_mirror_serving_and_report_once() {
    let double = MispDouble::http();
    let home = stateful(&double, mirror_mode());
    assert_eq!(sync(&home, &["--full"])["exit"], 0);
    let good = std::fs::read(mirror_file(&home)).unwrap();
    double.unpublish_event(1);
    for fault in [
        Fault::Status {
            status: 500,
            content_type: "application/json".into(),
            body: "{}".into(),
        },
        Fault::Html,
        Fault::Reset,
        Fault::Status {
            status: 403,
            content_type: "application/json".into(),
            body: "{\"name\":\"Authentication failed.\"}".into(),
        },
        Fault::Huge(1 << 20),
    ] {
        double.set_fault(fault.clone());
        let s = sync(&home, &["--full"]);
        assert_eq!(s["exit"], 6, "{fault:?}: {s}");
        assert_eq!(
            std::fs::read(mirror_file(&home)).unwrap(),
            good,
            "{fault:?}"
        );
        assert_eq!(found(&home, seed::C2_IP), vec!["2"]);
    }
    // One event for the whole episode, with the rule's field.
    let events: Vec<Value> = home
        .datagrams()
        .iter()
        .map(|d| split_datagram(d).1)
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["misp"]["service"]["status"], "sync_failed");
    let stats = wazuh_misp(&home, &["mirror", "stats", "--json"]);
    let stats: Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(stats["status"]["consecutive_failures"], 5, "{stats}");
    // A hung MISP, and one that stops in the middle of a body: the request timeout ends both.
    let mut settings = WazuhHome::settings_for(&double);
    merge(
        &mut settings,
        json!({"lookup": {"mode": "mirror"}, "mirror": {"request_timeout_s": 1}}),
    );
    home.write_settings(&settings);
    for fault in [Fault::Hang, Fault::HangAfterHeaders] {
        double.set_fault(fault.clone());
        let s = sync(&home, &[]);
        assert_eq!(s["exit"], 6, "{fault:?}: {s}");
        assert_eq!(s["error"]["kind"], "timeout", "{fault:?}: {s}");
        assert_eq!(std::fs::read(mirror_file(&home)).unwrap(), good);
    }
    // MISP back: the sync recovers and the unpublished event leaves.
    double.set_fault(Fault::None);
    assert_eq!(sync(&home, &[])["exit"], 0);
    assert!(found(&home, seed::C2_IP).is_empty());
    let stats: Value =
        serde_json::from_slice(&wazuh_misp(&home, &["mirror", "stats", "--json"]).stdout).unwrap();
    assert_eq!(stats["status"]["failing_since"], 0);
    assert!(std::fs::read_dir(home.path().join("var/custom-misp"))
        .unwrap()
        .all(|e| !e.unwrap().file_name().to_string_lossy().contains(".tmp.")));
}

#[test]
fn a_second_sync_is_refused_while_one_runs() {
    use std::os::fd::AsRawFd;
    let double = MispDouble::http();
    let home = stateful(&double, mirror_mode());
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(home.path().join("var/custom-misp/sync.lock"))
        .unwrap();
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
    let out = wazuh_misp(&home, &["sync"]);
    assert_eq!(out.status.code(), Some(7));
    assert!(String::from_utf8_lossy(&out.stdout).contains("another sync is running"));
    assert!(!mirror_file(&home).exists());
    assert!(double.requests().is_empty());
    drop(lock);
    assert_eq!(wazuh_misp(&home, &["sync"]).status.code(), Some(0));
}

#[test]
fn a_policy_change_forces_a_full_sync_and_an_old_mirror_is_never_used() {
    let double = MispDouble::http();
    let home = stateful(&double, mirror_mode());
    sync(&home, &[]);
    assert_eq!(found(&home, seed::NON_IDS_IP), Vec::<String>::new());
    let mut settings = WazuhHome::settings_for(&double);
    merge(
        &mut settings,
        json!({"lookup": {"mode": "mirror", "to_ids": false}}),
    );
    home.write_settings(&settings);
    // Until the sync, the mirror built for to_ids=true answers nothing (and says so, once).
    let out = home.run_json(&sshd_alert(seed::BRUTE_FORCE_IP));
    assert_eq!(out.status.code(), Some(0));
    let d = home.datagrams();
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(
        split_datagram(&d[0]).1["misp"]["service"]["status"],
        "missing"
    );
    home.run_json(&sshd_alert(seed::BRUTE_FORCE_IP));
    assert!(home.datagrams().is_empty());
    let s = sync(&home, &[]);
    assert_eq!(s["kind"], "full");
    assert!(s["full_reason"].as_str().unwrap().contains("policy"), "{s}");
    assert_eq!(found(&home, seed::NON_IDS_IP), vec!["14"]);
}

#[test]
fn hybrid_asks_misp_only_for_kinds_outside_the_mirror_and_while_it_is_stale() {
    let double = MispDouble::http();
    let home = stateful(
        &double,
        json!({"lookup": {"mode": "hybrid"}, "mirror": {"kinds": ["ip"]}, "cache": {"enabled": false}}),
    );
    sync(&home, &[]);
    double.clear_requests();
    let mut alert = sshd_alert(seed::BRUTE_FORCE_IP);
    alert["data"]["url"] = json!(seed::MALWARE_URL);
    home.run_json(&alert);
    let payloads: Vec<Value> = home
        .datagrams()
        .iter()
        .map(|d| split_datagram(d).1)
        .collect();
    let sources: Vec<(&str, &str)> = payloads
        .iter()
        .map(|p| {
            (
                p["misp"]["ioc_kind"].as_str().unwrap(),
                p["misp"]["source"].as_str().unwrap_or("misp"),
            )
        })
        .collect();
    assert_eq!(
        sources,
        vec![("ip", "mirror"), ("domain", "misp"), ("url", "misp")],
        "{payloads:?}"
    );
    let reqs = double.requests();
    assert_eq!(reqs.len(), 1);
    assert!(!reqs[0].body_text().contains(seed::BRUTE_FORCE_IP));

    // Stale (max_age 1 s, two seconds later): everything goes to MISP again.
    let mut settings = WazuhHome::settings_for(&double);
    merge(
        &mut settings,
        json!({"lookup": {"mode": "hybrid"}, "mirror": {"kinds": ["ip"], "max_age_s": 1}, "cache": {"enabled": false}}),
    );
    home.write_settings(&settings);
    std::thread::sleep(Duration::from_millis(2100));
    double.clear_requests();
    home.run_json(&sshd_alert(seed::BRUTE_FORCE_IP));
    let payloads: Vec<Value> = home
        .datagrams()
        .iter()
        .map(|d| split_datagram(d).1)
        .collect();
    assert_eq!(double.requests().len(), 1);
    assert!(
        payloads
            .iter()
            .any(|p| p["misp"]["value"] == seed::BRUTE_FORCE_IP && p["misp"]["source"].is_null()),
        "{payloads:?}"
    );
    assert!(
        payloads
            .iter()
            .any(|p| p["misp"]["service"]["status"] == "stale"),
        "{payloads:?}"
    );
}

#[test]
fn a_sync_killed_at_any_point_leaves_a_whole_mirror() {
    let double = MispDouble::http();
    double.set_dataset(Dataset::generated(20_000, 7));
    let home = stateful(&double, mirror_mode());
    assert_eq!(sync(&home, &[])["exit"], 0);
    let good = std::fs::read(mirror_file(&home)).unwrap();
    let probe = double.with_dataset(|d| {
        d.attributes
            .iter()
            .find(|a| {
                a.kind == "ip-dst"
                    && a.to_ids
                    && !a.deleted
                    && d.event(a.event_id)
                        .is_some_and(|e| e.published && !e.protected)
            })
            .map(|a| a.value.clone())
            .unwrap()
    });
    assert!(!found(&home, &probe).is_empty());
    for delay_ms in [5, 20, 40, 80, 120, 200] {
        let mut child = Command::new(BIN)
            .arg("--wazuh-home")
            .arg(home.path())
            .args(["sync", "--full", "--quiet"])
            .env_clear()
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        let now = std::fs::read(mirror_file(&home)).unwrap();
        // The old file or a complete new one (same content, another hash key), never a torn one.
        assert!(
            now == good || now.len() == good.len(),
            "kill after {delay_ms} ms"
        );
        assert!(!found(&home, &probe).is_empty(), "kill after {delay_ms} ms");
    }
    // The next sync cleans up what the killed ones left.
    assert_eq!(sync(&home, &[])["exit"], 0);
    assert!(std::fs::read_dir(home.path().join("var/custom-misp"))
        .unwrap()
        .all(|e| !e.unwrap().file_name().to_string_lossy().contains(".tmp.")));
}

/// A real full disk: the state directory on a tmpfs too small for the new mirror.
#[test]
fn a_full_disk_keeps_the_previous_mirror() {
    let double = MispDouble::http();
    let home = stateful(&double, mirror_mode());
    let state = home.path().join("var/custom-misp");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k,mode=0770", "tmpfs"])
        .arg(&state)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipped: cannot mount a tmpfs here (needs root, as .ci/run has)");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(state.clone());
    if let Some(gid) = wazuh_gid() {
        std::os::unix::fs::chown(&state, Some(0), Some(gid)).unwrap();
    }
    assert_eq!(sync(&home, &[])["exit"], 0);
    let good = std::fs::read(mirror_file(&home)).unwrap();
    double.set_dataset(Dataset::generated(20_000, 3));
    let s = sync(&home, &["--full"]);
    assert_eq!(s["exit"], 8, "{s}");
    assert_eq!(std::fs::read(mirror_file(&home)).unwrap(), good);
    assert!(!found(&home, seed::BRUTE_FORCE_IP).is_empty());
    assert!(std::fs::read_dir(&state).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .contains(".tmp.")));
}

/// Native matching's groundwork: the lists built from a synced mirror hold exactly the keys a
/// lookup could match, both halves of composites, nothing excluded, IPv6 in three spellings.
#[test]
fn lists_from_the_mirror_hold_every_matchable_key() {
    use wazuh_misp::ioc::IocKind;
    let double = MispDouble::http();
    let home = stateful(
        &double,
        json!({"lookup": {"mode": "mirror"}, "allowlist": {"domains": ["micr0soft-secure.com"]}}),
    );
    sync(&home, &[]);
    let loaded = wazuh_misp::settings::Settings::load(home.path(), &Default::default()).unwrap();
    let m = wazuh_misp::mirror::Mirror::open(&mirror_file(&home))
        .unwrap()
        .unwrap();
    let lists = wazuh_misp::lists::keys_by_kind(&m, &loaded);
    assert_eq!(
        lists[&IocKind::Ip],
        vec![
            "104.21.33.10",
            "185.220.101.47",
            "2a0d:5600:0024:0000:0000:0000:0000:abcd",
            "2a0d:5600:24:0:0:0:0:abcd",
            "2a0d:5600:24::abcd",
            "45.155.205.233",
            "91.219.236.166"
        ],
        "IPv6 in each spelling a decoder prints"
    );
    assert_eq!(
        lists[&IocKind::Domain],
        vec!["bad-update.net", "malware-drop.ru"],
        "allowlisted hostname left out"
    );
    assert_eq!(lists[&IocKind::Url], vec![seed::MALWARE_URL]);
    assert_eq!(
        lists[&IocKind::Sha256].len(),
        2,
        "sha256 and the half of filename|sha256"
    );
    let (text, refused) =
        wazuh_misp::lists::cdb::render(&lists[&IocKind::Ip], wazuh_misp::lists::LIST_VALUE);
    assert!(refused.is_empty());
    assert!(String::from_utf8(text)
        .unwrap()
        .contains("\"2a0d:5600:24::abcd\":misp\n"));
}

/// A mirror damaged past its header is never copied from: the next sync reads everything again.
#[test]
fn a_mirror_damaged_in_its_records_is_rebuilt_not_copied() {
    let double = MispDouble::http();
    let home = stateful(&double, mirror_mode());
    assert_eq!(sync(&home, &[])["exit"], 0);
    let mut bytes = std::fs::read(mirror_file(&home)).unwrap();
    // The first record's length (right after the 128-byte header).
    bytes[128..132].copy_from_slice(&u32::MAX.to_le_bytes());
    std::fs::write(mirror_file(&home), &bytes).unwrap();
    assert!(found(&home, seed::BRUTE_FORCE_IP).is_empty() || found(&home, seed::C2_IP).is_empty());
    double.unpublish_event(2); // any change, so the sync would copy
    let s = sync(&home, &[]);
    assert_eq!(
        (s["exit"].as_i64(), s["kind"].as_str()),
        (Some(0), Some("full")),
        "{s}"
    );
    assert_eq!(
        s["attributes"], 10,
        "event 2 (2 attributes) unpublished: {s}"
    );
    assert_eq!(found(&home, seed::BRUTE_FORCE_IP), vec!["1"]);
    assert_eq!(found(&home, seed::C2_IP), vec!["2"]);
}
