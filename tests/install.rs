//! `wazuh-misp install` / `uninstall` against temporary manager homes with stand-in Wazuh
//! programs: owners and modes for real (as root), the ossec.conf block and rules, idempotence,
//! byte-exact uninstall, validation rollback, restart rollback, dry runs, refusals, and crash
//! safety under SIGKILL.

mod common;

use common::manager::{text, Manager};
use common::{wazuh_gid, KEY};
use serde_json::json;
use std::os::unix::fs::MetadataExt;

fn settings(install: serde_json::Value) -> serde_json::Value {
    json!({"version": 1, "misp": {"url": "https://misp.example.org", "api_key": KEY}, "install": install})
}

fn meta(m: &Manager, rel: &str) -> (u32, u32, u32) {
    let md = std::fs::metadata(m.file(rel)).unwrap();
    (md.uid(), md.gid(), md.mode() & 0o7777)
}

fn gid() -> u32 {
    wazuh_gid().expect("the wazuh group (created by .ci/run)")
}

#[test]
fn without_settings_only_the_binary_and_state_directory_are_installed() {
    let m = Manager::new();
    let conf = m.read("etc/ossec.conf").unwrap();
    let out = m.wazuh_misp(&["install"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("wazuh-misp setup"), "{}", text(&out));
    assert_eq!(meta(&m, "integrations/custom-misp"), (0, gid(), 0o750));
    assert_eq!(
        m.read("integrations/custom-misp").unwrap(),
        std::fs::read(common::BIN).unwrap()
    );
    assert_eq!(meta(&m, "var/custom-misp"), (0, gid(), 0o770));
    assert_eq!(m.read("etc/ossec.conf").unwrap(), conf);
    assert!(m.read("etc/rules/custom-misp_rules.xml").is_none());
    let again = m.wazuh_misp(&["install"]);
    assert!(again.status.success());
    assert!(
        text(&again).contains("already up to date"),
        "{}",
        text(&again)
    );
}

#[test]
fn install_registers_the_block_and_rules_and_uninstall_restores_every_byte() {
    let m = Manager::new();
    let original = m.read("etc/ossec.conf").unwrap();
    let conf_meta = meta(&m, "etc/ossec.conf");
    m.write_settings(&settings(
        json!({"level": 5, "groups": ["authentication_failed", "sysmon_event1"]}),
    ));
    let out = m.wazuh_misp(&["install"]);
    assert!(out.status.success(), "{}", text(&out));
    let conf = String::from_utf8(m.read("etc/ossec.conf").unwrap()).unwrap();
    assert!(conf.contains("<name>custom-misp</name>"), "{conf}");
    assert!(
        conf.contains("<group>authentication_failed,sysmon_event1</group>"),
        "{conf}"
    );
    assert!(
        conf.contains("<level>5</level>") && conf.contains("<alert_format>json</alert_format>")
    );
    assert!(
        conf.contains("<timeout>10</timeout>"),
        "4.9 accepts <timeout>: {conf}"
    );
    assert!(
        !conf.contains(KEY) && !conf.contains("api_key>https"),
        "no key in ossec.conf"
    );
    assert_eq!(
        meta(&m, "etc/ossec.conf"),
        conf_meta,
        "owner, group and mode kept"
    );
    assert_eq!(
        meta(&m, "etc/rules/custom-misp_rules.xml"),
        meta(&m, "etc/rules/local_rules.xml")
    );
    assert!(m.calls().contains("wazuh-analysisd -t") && m.calls().contains("wazuh-integratord -t"));
    assert!(std::fs::read_dir(m.file("etc")).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with("ossec.conf.wazuh-misp-")));

    // Idempotent: the same bytes, nothing rewritten.
    let installed = m.read("etc/ossec.conf").unwrap();
    let again = m.wazuh_misp(&["install"]);
    assert!(text(&again).contains("nothing changed"), "{}", text(&again));
    assert_eq!(m.read("etc/ossec.conf").unwrap(), installed);

    let out = m.wazuh_misp(&["uninstall"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(m.read("etc/ossec.conf").unwrap(), original, "byte for byte");
    assert!(m.read("etc/rules/custom-misp_rules.xml").is_none());
    assert!(m.read("integrations/custom-misp").is_none());
    assert!(
        m.read("etc/custom-misp.json").is_some(),
        "settings kept without --purge"
    );
    let out = m.wazuh_misp(&["uninstall", "--purge"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(m.read("etc/custom-misp.json").is_none() && !m.file("var/custom-misp").exists());
    let out = m.wazuh_misp(&["uninstall", "--purge"]);
    assert!(
        out.status.success() && text(&out).contains("nothing to remove"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_rejected_change_is_rolled_back_with_wazuhs_message() {
    for steer in ["reject-wazuh-analysisd", "warn-wazuh-analysisd"] {
        let m = Manager::new();
        m.write_settings(&settings(json!({"level": 7})));
        let conf = m.read("etc/ossec.conf").unwrap();
        m.steer(steer);
        let out = m.wazuh_misp(&["install"]);
        assert!(!out.status.success(), "{steer}: {}", text(&out));
        let t = text(&out);
        assert!(t.contains("every file was restored"), "{t}");
        assert!(
            t.contains(if steer.starts_with("reject") {
                "Invalid element"
            } else {
                "WARNING: (7617)"
            }),
            "{t}"
        );
        assert_eq!(m.read("etc/ossec.conf").unwrap(), conf);
        assert!(m.read("etc/rules/custom-misp_rules.xml").is_none());
        assert!(m.read("integrations/custom-misp").is_none());
    }
}

#[test]
fn mirror_mode_schedules_the_sync_with_a_command_wodle_that_uninstall_removes() {
    let m = Manager::new();
    let original = m.read("etc/ossec.conf").unwrap();
    let mut s = settings(json!({"level": 5}));
    s["lookup"] = json!({"mode": "mirror"});
    s["mirror"] = json!({"interval_s": 120});
    m.write_settings(&s);
    let out = m.wazuh_misp(&["install"]);
    assert!(out.status.success(), "{}", text(&out));
    let conf = String::from_utf8(m.read("etc/ossec.conf").unwrap()).unwrap();
    let wodle = format!(
        "  <wodle name=\"command\">\n    <disabled>no</disabled>\n    <tag>wazuh-misp-sync</tag>\n    \
         <command>{}/integrations/custom-misp --scheduled-sync</command>\n    <interval>120s</interval>\n    \
         <run_on_start>yes</run_on_start>\n    <timeout>4020</timeout>\n    <ignore_output>yes</ignore_output>\n  </wodle>\n",
        m.path().display()
    );
    assert!(conf.contains(&wodle), "{conf}");
    assert!(m.calls().contains("wazuh-modulesd -t"), "{}", m.calls());
    // Idempotent, then back to online: the wodle goes, the integration stays.
    let again = text(&m.wazuh_misp(&["install"]));
    assert!(again.contains("nothing changed"), "{again}");
    s["lookup"] = json!({"mode": "online"});
    m.write_settings(&s);
    assert!(m.wazuh_misp(&["install"]).status.success());
    let conf = String::from_utf8(m.read("etc/ossec.conf").unwrap()).unwrap();
    assert!(
        !conf.contains("<wodle") && conf.contains("<name>custom-misp</name>"),
        "{conf}"
    );
    s["lookup"] = json!({"mode": "hybrid"});
    m.write_settings(&s);
    assert!(m.wazuh_misp(&["install"]).status.success());
    assert!(m.wazuh_misp(&["uninstall"]).status.success());
    assert_eq!(m.read("etc/ossec.conf").unwrap(), original);

    // modulesd refusing the wodle rolls the whole install back.
    m.steer("reject-wazuh-modulesd");
    let out = m.wazuh_misp(&["install"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("wazuh-modulesd -t failed"),
        "{}",
        text(&out)
    );
    assert_eq!(m.read("etc/ossec.conf").unwrap(), original);
}

#[test]
fn restart_happens_only_when_running_and_a_failed_restart_rolls_back() {
    let m = Manager::new();
    m.write_settings(&settings(json!({"level": 7})));
    let out = m.wazuh_misp(&["install", "--restart"]);
    assert!(text(&out).contains("not running"), "{}", text(&out));
    assert!(!m.calls().contains("wazuh-control restart"));

    let m = Manager::new();
    m.write_settings(&settings(json!({"level": 7})));
    m.steer("running");
    let out = m.wazuh_misp(&["install", "--restart"]);
    assert!(
        out.status.success() && text(&out).contains("manager restarted"),
        "{}",
        text(&out)
    );
    assert_eq!(m.calls().matches("wazuh-control restart").count(), 1);
    let again = m.wazuh_misp(&["install", "--restart"]);
    assert_eq!(
        m.calls().matches("wazuh-control restart").count(),
        1,
        "no restart when nothing changed: {}",
        text(&again)
    );

    let m = Manager::new();
    m.write_settings(&settings(json!({"level": 7})));
    let conf = m.read("etc/ossec.conf").unwrap();
    m.steer("running");
    m.steer("restart-fails");
    let out = m.wazuh_misp(&["install", "--restart"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("restart failed") && text(&out).contains("Configuration error"),
        "{}",
        text(&out)
    );
    assert_eq!(m.read("etc/ossec.conf").unwrap(), conf);
    assert_eq!(
        m.calls().matches("wazuh-control restart").count(),
        2,
        "restarted again with the old files"
    );
}

#[test]
fn children_never_inherit_the_api_key() {
    let m = Manager::new();
    m.write_settings(&settings(json!({})));
    m.steer("running");
    let out = std::process::Command::new(common::BIN)
        .arg("--wazuh-home")
        .arg(m.path())
        .args(["install", "--restart", "--service-manager", "wazuh-control"])
        .env("MISP_API_KEY", KEY)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let calls = m.calls();
    assert!(calls.contains("wazuh-control restart"));
    assert!(
        !calls.contains("MISP_API_KEY") && !calls.contains(KEY),
        "{calls}"
    );
}

#[test]
fn dry_run_shows_diffs_and_changes_nothing() {
    let m = Manager::new();
    m.write_settings(&settings(json!({"groups": ["ids"]})));
    let conf = m.read("etc/ossec.conf").unwrap();
    let out = m.wazuh_misp(&["install", "--dry-run", "--rule-id-base", "118000"]);
    assert!(out.status.success(), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("+    <name>custom-misp</name>"), "{t}");
    assert!(
        t.contains("would create") && t.contains("integrations/custom-misp"),
        "{t}"
    );
    assert!(t.contains("118000"), "{t}");
    assert!(!t.contains(KEY), "the key never shows in a diff");
    assert_eq!(m.read("etc/ossec.conf").unwrap(), conf);
    assert!(m.read("integrations/custom-misp").is_none() && !m.file("var/custom-misp").exists());
    assert!(!m.calls().contains("-t"), "no check runs in a dry run");
}

#[test]
fn refuses_wazuh_5_agents_and_symlinked_targets_changing_nothing() {
    let m = Manager::new();
    std::fs::write(m.file("etc/wazuh-manager.conf"), "<wazuh_config/>").unwrap();
    let out = m.wazuh_misp(&["install"]);
    assert!(
        !out.status.success() && text(&out).contains("Wazuh 5"),
        "{}",
        text(&out)
    );
    assert!(m.read("integrations/custom-misp").is_none());

    let m = Manager::new();
    std::fs::write(m.file("stand-in/version"), "WAZUH_VERSION=\"v5.0.0\"\n").unwrap();
    let out = m.wazuh_misp(&["install"]);
    assert!(
        !out.status.success() && text(&out).contains("Wazuh 5"),
        "{}",
        text(&out)
    );

    let m = Manager::new();
    std::fs::remove_dir(m.file("integrations")).unwrap();
    let out = m.wazuh_misp(&["install"]);
    assert!(
        !out.status.success() && text(&out).contains("not a Wazuh manager"),
        "{}",
        text(&out)
    );

    let m = Manager::new();
    std::os::unix::fs::symlink("/usr/bin/true", m.file("integrations/custom-misp")).unwrap();
    let out = m.wazuh_misp(&["install"]);
    assert!(
        !out.status.success() && text(&out).contains("symbolic link"),
        "{}",
        text(&out)
    );
}

#[test]
fn older_wazuh_gets_no_timeout_element() {
    let m = Manager::new();
    std::fs::write(m.file("stand-in/version"), "WAZUH_VERSION=\"v4.7.5\"\n").unwrap();
    m.write_settings(&settings(json!({"level": 5})));
    assert!(m.wazuh_misp(&["install"]).status.success());
    let conf = String::from_utf8(m.read("etc/ossec.conf").unwrap()).unwrap();
    assert!(
        conf.contains("<name>custom-misp</name>") && !conf.contains("<timeout>"),
        "{conf}"
    );
}

#[test]
fn a_hand_written_block_is_taken_over_with_its_filters() {
    let legacy = common::manager::STOCK_OSSEC_CONF.replace(
        "  <ruleset>",
        "  <integration>\n    <name>custom-misp</name>\n    <group>sysmon_event1,sysmon_event3</group>\n    <rule_id>100100</rule_id>\n    <rule_id>110000</rule_id>\n    <level>3</level>\n    <level>7</level>\n    <alert_format>json</alert_format>\n  </integration>\n\n  <ruleset>",
    );
    let m = Manager::with_conf(&legacy);
    m.write_settings(&settings(json!({})));
    let out = m.wazuh_misp(&["install"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("hand-written"), "{}", text(&out));
    let conf = String::from_utf8(m.read("etc/ossec.conf").unwrap()).unwrap();
    assert_eq!(
        conf.matches("<name>custom-misp</name>").count(),
        1,
        "{conf}"
    );
    assert!(
        conf.contains("<rule_id>100100,110000</rule_id>") && conf.contains("<level>7</level>"),
        "{conf}"
    );
    let s: serde_json::Value =
        serde_json::from_slice(&m.read("etc/custom-misp.json").unwrap()).unwrap();
    assert_eq!(s["install"]["rule_ids"], json!(["100100", "110000"]));
    assert_eq!(
        s["misp"]["api_key"], KEY,
        "the rest of the settings is kept"
    );
    assert_eq!(meta(&m, "etc/custom-misp.json").2, 0o640);
}

#[test]
fn rule_id_collisions_are_refused_and_the_base_can_move() {
    let m = Manager::new();
    m.write_settings(&settings(json!({"level": 5})));
    std::fs::write(m.file("etc/rules/other_misp.xml"), "<group name=\"misp,\">\n  <rule id='117103' level=\"3\">\n    <description>someone else</description>\n  </rule>\n</group>\n").unwrap();
    let out = m.wazuh_misp(&["install"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("117103")
            && text(&out).contains("other_misp.xml")
            && text(&out).contains("--rule-id-base"),
        "{}",
        text(&out)
    );
    assert!(!String::from_utf8(m.read("etc/ossec.conf").unwrap())
        .unwrap()
        .contains("custom-misp"));
    let out = m.wazuh_misp(&["install", "--rule-id-base", "118200"]);
    assert!(out.status.success(), "{}", text(&out));
    let rules = String::from_utf8(m.read("etc/rules/custom-misp_rules.xml").unwrap()).unwrap();
    assert!(
        rules.contains("\"118200\"") && !rules.contains("117103"),
        "{rules}"
    );
    let s: serde_json::Value =
        serde_json::from_slice(&m.read("etc/custom-misp.json").unwrap()).unwrap();
    assert_eq!(
        s["install"]["rule_id_base"], 118200,
        "the choice is stored for reinstalls"
    );
}

#[test]
fn the_sample_rule_passes_the_blocks_filters() {
    let m = Manager::new();
    m.write_settings(&settings(json!({"level": 8, "groups": ["sysmon_event1"], "rule_ids": ["61603"], "sample_rule": true})));
    let out = m.wazuh_misp(&["install"]);
    assert!(out.status.success(), "{}", text(&out));
    let conf = String::from_utf8(m.read("etc/ossec.conf").unwrap()).unwrap();
    let sample =
        wazuh_misp::wazuh::rules::sample_rule_id(wazuh_misp::wazuh::rules::DEFAULT_RULE_ID_BASE);
    assert!(
        conf.contains(&format!("<rule_id>61603,{sample}</rule_id>")),
        "{conf}"
    );
    let rules = String::from_utf8(m.read("etc/rules/custom-misp_rules.xml").unwrap()).unwrap();
    assert!(
        rules.contains(&format!("\"{sample}\"")) && rules.contains("sysmon_event1"),
        "{rules}"
    );
}

#[test]
fn cluster_workers_get_no_rules() {
    let worker = common::manager::STOCK_OSSEC_CONF
        .replace(
            "<node_type>master</node_type>",
            "<node_type>worker</node_type>",
        )
        .replace("<disabled>yes</disabled>", "<disabled>no</disabled>");
    let m = Manager::with_conf(&worker);
    m.write_settings(&settings(json!({"level": 5})));
    let out = m.wazuh_misp(&["install"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("master"), "{}", text(&out));
    assert!(m.read("etc/rules/custom-misp_rules.xml").is_none());
    assert!(String::from_utf8(m.read("etc/ossec.conf").unwrap())
        .unwrap()
        .contains("custom-misp"));
}

#[test]
fn non_root_is_refused() {
    let Some(user) = nix::unistd::User::from_name("wazuh").ok().flatten() else {
        eprintln!("skipped: no wazuh user");
        return;
    };
    use std::os::unix::process::CommandExt;
    let m = Manager::new();
    let out = std::process::Command::new(common::BIN)
        .arg("--wazuh-home")
        .arg(m.path())
        .arg("install")
        .uid(user.uid.as_raw())
        .output()
        .unwrap();
    assert!(
        !out.status.success() && text(&out).contains("needs root"),
        "{}",
        text(&out)
    );
}

/// SIGKILL at many moments of an install: ossec.conf is always the old or the new file.
#[test]
fn a_kill_at_any_moment_leaves_the_old_or_the_new_file() {
    let m = Manager::new();
    // A large file makes the write window wide enough to be hit.
    let big = common::manager::STOCK_OSSEC_CONF.replace(
        "<ossec_config>\n  <localfile>",
        &format!(
            "<ossec_config>\n  <!-- {} -->\n  <localfile>",
            "padding ".repeat(100_000)
        ),
    );
    std::fs::write(m.file("etc/ossec.conf"), &big).unwrap();
    m.write_settings(&settings(json!({"level": 5})));
    let reference = Manager::with_conf(&big);
    reference.write_settings(&settings(json!({"level": 5})));
    let started = std::time::Instant::now();
    assert!(reference.wazuh_misp(&["install"]).status.success());
    // Spread the kills over the whole length of a real install.
    let span = started.elapsed().as_micros() as u64;
    let new = reference.read("etc/ossec.conf").unwrap();
    let old = big.into_bytes();
    assert_ne!(old, new);
    let mut saw = (0, 0);
    for i in 0..30u64 {
        let mut child = std::process::Command::new(common::BIN)
            .arg("--wazuh-home")
            .arg(m.path())
            .args(["install", "--service-manager", "wazuh-control"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_micros(span * i / 20));
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        let _ = child.wait();
        let now = m.read("etc/ossec.conf").unwrap();
        assert!(
            now == old || now == new,
            "partial ossec.conf after a kill at {} µs",
            i * 400
        );
        if now == old {
            saw.0 += 1
        } else {
            saw.1 += 1
        }
        if now == new {
            // Start over from the old file for the next kill.
            let out = m.wazuh_misp(&["uninstall"]);
            assert!(out.status.success(), "{}", text(&out));
            assert_eq!(m.read("etc/ossec.conf").unwrap(), old);
        }
    }
    eprintln!(
        "kills that left the old file: {}, the new file: {}",
        saw.0, saw.1
    );
}

#[test]
fn a_file_wazuh_would_reject_is_refused_and_left_untouched() {
    let broken =
        common::manager::STOCK_OSSEC_CONF.replace("<logall>no</logall>", "<logall>no</logal>");
    let m = Manager::with_conf(&broken);
    m.write_settings(&settings(json!({"level": 5})));
    let out = m.wazuh_misp(&["install"]);
    assert!(!out.status.success());
    let t = text(&out);
    assert!(t.contains("line 10"), "the error names the place: {t}");
    assert_eq!(m.read("etc/ossec.conf").unwrap(), broken.as_bytes());
    assert!(
        m.read("integrations/custom-misp").is_none(),
        "nothing is installed half-way"
    );
}

#[test]
fn uninstall_is_safe_when_half_installed() {
    let m = Manager::new();
    let original = m.read("etc/ossec.conf").unwrap();
    m.write_settings(&settings(json!({"level": 5})));
    assert!(m.wazuh_misp(&["install"]).status.success());
    std::fs::remove_file(m.file("integrations/custom-misp")).unwrap();
    std::fs::remove_file(m.file("etc/rules/custom-misp_rules.xml")).unwrap();
    let out = m.wazuh_misp(&["uninstall"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(m.read("etc/ossec.conf").unwrap(), original);
}

#[test]
fn an_old_blocks_api_key_never_shows_in_a_diff() {
    let secret = "OLDKEYoldkeyOLDKEYoldkeyOLDKEYoldkeyOLDK";
    let legacy = common::manager::STOCK_OSSEC_CONF.replace(
        "  <ruleset>",
        &format!("  <integration>\n    <name>custom-misp</name>\n    <hook_url>https://misp.example.org</hook_url>\n    <api_key>{secret}</api_key>\n    <level>5</level>\n    <alert_format>json</alert_format>\n  </integration>\n\n  <ruleset>"),
    );
    let m = Manager::with_conf(&legacy);
    m.write_settings(&settings(json!({})));
    let out = m.wazuh_misp(&["install", "--dry-run"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("-    <api_key>****</api_key>"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains(secret) && !text(&out).contains(KEY));
}

#[test]
fn symlinked_configuration_files_are_refused() {
    let m = Manager::new();
    m.write_settings(&settings(json!({"level": 5})));
    let real = m.file("etc/ossec.conf.real");
    std::fs::rename(m.file("etc/ossec.conf"), &real).unwrap();
    std::os::unix::fs::symlink(&real, m.file("etc/ossec.conf")).unwrap();
    let before = std::fs::read(&real).unwrap();
    let out = m.wazuh_misp(&["install"]);
    assert!(
        !out.status.success() && text(&out).contains("symbolic link"),
        "{}",
        text(&out)
    );
    assert!(std::fs::symlink_metadata(m.file("etc/ossec.conf"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read(&real).unwrap(), before);
}

fn native_settings(install: serde_json::Value) -> serde_json::Value {
    let mut s = settings(install);
    s["lookup"] = json!({"mode": "mirror"});
    s["native"] = json!({"enabled": true});
    s
}

const LISTS: [&str; 5] = ["ip", "domain", "md5", "sha1", "sha256"];

#[test]
fn native_matching_installs_rules_lists_and_two_blocks_and_goes_byte_for_byte() {
    let m = Manager::new();
    let original = m.read("etc/ossec.conf").unwrap();
    m.write_settings(&native_settings(
        json!({"level": 3, "groups": ["authentication_failed", "syscheck"]}),
    ));
    let out = m.wazuh_misp(&["install"]);
    assert!(out.status.success(), "{}", text(&out));
    let conf = String::from_utf8(m.read("etc/ossec.conf").unwrap()).unwrap();
    // The runtime's block keeps what CDB cannot match; the second takes our CDB rules' alerts.
    assert!(
        conf.contains("<group>authentication_failed</group>"),
        "{conf}"
    );
    assert!(conf.contains("<group>misp_native</group>"), "{conf}");
    assert_eq!(
        conf.matches("<name>custom-misp</name>").count(),
        2,
        "{conf}"
    );
    // Our <list> lines sit in the stock <ruleset>, after its own list.
    let ruleset = &conf[conf.find("<ruleset>").unwrap()..conf.find("</ruleset>").unwrap()];
    for kind in LISTS {
        let rel = format!("etc/lists/wazuh-misp/misp-{kind}");
        assert!(
            ruleset.contains(&format!("<list>{rel}</list>")),
            "{ruleset}"
        );
        assert_eq!(m.read(&rel).unwrap(), b"", "created empty: sync fills it");
        assert_eq!(meta(&m, &rel).1, gid());
        assert_eq!(meta(&m, &rel).2, 0o660);
    }
    assert_eq!(meta(&m, "etc/lists/wazuh-misp"), (0, gid(), 0o770));
    assert!(m.read("etc/rules/custom-misp_native_rules.xml").is_some());
    // doctor reads our native rules as Wazuh would and finds nothing wrong with them.
    let doctor = m.wazuh_misp(&["doctor", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&doctor.stdout).unwrap();
    for c in report["checks"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        if name.starts_with("rules")
            || name.starts_with("native.lists_declared")
            || name == "native.rules"
        {
            assert_eq!(c["status"], "pass", "{c}");
        }
    }
    let again = m.wazuh_misp(&["install"]);
    assert!(text(&again).contains("nothing changed"), "{}", text(&again));

    // Native matching off: everything of it goes, the one-block install stays.
    m.write_settings(&settings(
        json!({"level": 3, "groups": ["authentication_failed", "syscheck"]}),
    ));
    let out = m.wazuh_misp(&["install"]);
    assert!(out.status.success(), "{}", text(&out));
    let conf = String::from_utf8(m.read("etc/ossec.conf").unwrap()).unwrap();
    assert!(
        !conf.contains("misp_native") && !conf.contains("wazuh-misp/misp-"),
        "{conf}"
    );
    assert!(
        conf.contains("<group>authentication_failed,syscheck</group>"),
        "{conf}"
    );
    assert!(m.read("etc/rules/custom-misp_native_rules.xml").is_none());
    for kind in LISTS {
        let rel = format!("etc/lists/wazuh-misp/misp-{kind}");
        assert!(
            m.read(&rel).is_none() && m.read(&format!("{rel}.cdb")).is_none(),
            "{rel}"
        );
    }

    // On again, then uninstall: the original bytes, no list, no folder.
    m.write_settings(&native_settings(json!({"groups": ["syscheck"]})));
    let out = m.wazuh_misp(&["install"]);
    assert!(out.status.success(), "{}", text(&out));
    let conf = String::from_utf8(m.read("etc/ossec.conf").unwrap()).unwrap();
    assert_eq!(
        conf.matches("<name>custom-misp</name>").count(),
        1,
        "every chosen group is matched natively: one block, for our rules: {conf}"
    );
    assert!(conf.contains("<group>misp_native</group>"), "{conf}");
    let out = m.wazuh_misp(&["uninstall"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(m.read("etc/ossec.conf").unwrap(), original, "byte for byte");
    assert!(!m.file("etc/lists/wazuh-misp").exists());
    assert!(m.read("etc/rules/custom-misp_native_rules.xml").is_none());
}

#[test]
fn a_native_install_wazuh_rejects_leaves_no_list_no_cdb_and_no_rule() {
    let m = Manager::new();
    let original = m.read("etc/ossec.conf").unwrap();
    m.steer("warn-native");
    m.write_settings(&native_settings(
        json!({"groups": ["authentication_failed"]}),
    ));
    let out = m.wazuh_misp(&["install"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("(7616)"), "{}", text(&out));
    assert_eq!(m.read("etc/ossec.conf").unwrap(), original);
    assert!(m.read("etc/rules/custom-misp_native_rules.xml").is_none());
    for kind in LISTS {
        let rel = format!("etc/lists/wazuh-misp/misp-{kind}");
        assert!(
            m.read(&rel).is_none() && m.read(&format!("{rel}.cdb")).is_none(),
            "{rel}: the .cdb our -t compiled goes too"
        );
    }
}

#[test]
fn a_collision_in_the_native_range_keeps_native_matching_off_not_the_install() {
    let m = Manager::new();
    std::fs::write(
        m.file("etc/rules/local_rules.xml"),
        "<group name=\"local,\">\n  <rule id=\"117150\" level=\"3\">\n    <match>x</match>\n    <description>someone else's</description>\n  </rule>\n</group>\n",
    )
    .unwrap();
    m.write_settings(&native_settings(
        json!({"groups": ["authentication_failed"]}),
    ));
    let out = m.wazuh_misp(&["install"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("native matching stays off"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("117150"), "{}", text(&out));
    let conf = String::from_utf8(m.read("etc/ossec.conf").unwrap()).unwrap();
    assert!(!conf.contains("misp_native"), "{conf}");
    assert!(m.read("etc/rules/custom-misp_rules.xml").is_some());
}

#[test]
fn a_worker_declares_the_masters_lists_once_they_arrive_and_writes_no_rule_or_list() {
    let conf = common::manager::STOCK_OSSEC_CONF
        .replace(
            "<node_type>master</node_type>",
            "<node_type>worker</node_type>",
        )
        .replace("<disabled>yes</disabled>", "<disabled>no</disabled>");
    let m = Manager::with_conf(&conf);
    let original = m.read("etc/ossec.conf").unwrap();
    m.write_settings(&native_settings(
        json!({"groups": ["authentication_failed"]}),
    ));
    let out = m.wazuh_misp(&["install"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("until the master's lists and rules arrive"),
        "{}",
        text(&out)
    );
    assert!(!String::from_utf8(m.read("etc/ossec.conf").unwrap())
        .unwrap()
        .contains("misp_native"));
    assert!(!m.file("etc/lists/wazuh-misp").exists());

    // The cluster's sync delivers the master's rules and lists.
    std::fs::create_dir_all(m.file("etc/lists/wazuh-misp")).unwrap();
    for kind in LISTS {
        std::fs::write(m.file(&format!("etc/lists/wazuh-misp/misp-{kind}")), "").unwrap();
    }
    std::fs::write(
        m.file("etc/rules/custom-misp_native_rules.xml"),
        "<!-- the master's -->\n",
    )
    .unwrap();
    let out = m.wazuh_misp(&["install"]);
    assert!(out.status.success(), "{}", text(&out));
    let c = String::from_utf8(m.read("etc/ossec.conf").unwrap()).unwrap();
    assert!(
        c.contains("<list>etc/lists/wazuh-misp/misp-ip</list>"),
        "{c}"
    );
    assert!(c.contains("<group>misp_native</group>"), "{c}");
    assert_eq!(
        m.read("etc/rules/custom-misp_native_rules.xml").unwrap(),
        b"<!-- the master's -->\n",
        "the master's rules are left alone"
    );
    // Uninstall takes this node's lines out and leaves the master's files to the cluster.
    let out = m.wazuh_misp(&["uninstall"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(m.read("etc/ossec.conf").unwrap(), original);
    assert!(m.read("etc/lists/wazuh-misp/misp-ip").is_some());
}
