//! Native matching end to end: `wazuh-misp sync` in mirror mode with `native.enabled` writes the
//! CDB lists and puts them in force through a real stream socket bound as analysisd's
//! `queue/sockets/analysis` (4-byte little-endian framing), with a stand-in `wazuh-analysisd -t`
//! that compiles stale lists to `.cdb` as the real one does. Every refusal (our `-t`, a failed
//! reload, new warnings, an unreadable answer) must leave the previous text AND `.cdb` exactly.

mod common;

use common::home::{is_root, wazuh_uid, Perm};
use common::*;
use misp_double::{seed, MispDouble};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};
use wazuh_misp::wazuh::native_rules;
use wazuh_misp::wazuh::ossec_conf::lists::upsert_lists;
use wazuh_misp::wazuh::ossec_conf::{upsert, Filters, IntegrationBlock};

/// `-t` compiles every stale list (text newer than its `.cdb`, in whole seconds, or no `.cdb`)
/// as `Lists_OP_MakeCDB` does (to `<list>.tmp`, renamed over the `.cdb`), and prints a warning
/// for any list holding the key in `stand-in/warn-key`.
const ANALYSISD: &str = r#"#!/bin/sh
home=$(cd "$(dirname "$0")/.." && pwd)
dir="$home/stand-in"
echo "$(basename "$0") $*" >> "$dir/calls.log"
case "$(basename "$0") $1" in
  "wazuh-control info") cat "$dir/version" 2>/dev/null || echo 'WAZUH_VERSION="v4.14.7"'; exit 0 ;;
  "wazuh-control status") if [ -e "$dir/running" ]; then echo "wazuh-analysisd is running..."; else echo "wazuh-analysisd not running..."; fi; exit 0 ;;
  "wazuh-control restart") if [ -e "$dir/restart-fails" ]; then echo "CRITICAL: (1202): Configuration error."; exit 1; fi; exit 0 ;;
esac
if [ "$1" = "-t" ] && [ "$(basename "$0")" = "wazuh-analysisd" ]; then
  for f in "$home"/etc/lists/wazuh-misp/*; do
    case "$f" in *.cdb|*.tmp) continue ;; esac
    [ -f "$f" ] || continue
    if [ ! -e "$f.cdb" ] || [ "$(stat -c %Y "$f")" -gt "$(stat -c %Y "$f.cdb")" ]; then
      cp "$f" "$f.tmp" && chmod 0660 "$f.tmp" && mv "$f.tmp" "$f.cdb"
    fi
    if [ -e "$dir/warn-key" ] && grep -qF "$(cat "$dir/warn-key")" "$f"; then
      echo "2026/12/05 07:00:00 wazuh-analysisd: WARNING: (9999): stand-in refuses a key in $f."
    fi
  done
fi
exit 0
"#;

const KINDS: [&str; 5] = ["ip", "domain", "md5", "sha1", "sha256"];

/// A stand-in analysisd socket: answers each reload with the next scripted answer (the last one
/// repeats), compiling stale lists first as `w_hotreload_reload` does, and counts the requests.
struct Analysisd {
    answers: Arc<Mutex<Vec<String>>>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Analysisd {
    fn bind(home: &Path, first: &str) -> Analysisd {
        let listener = UnixListener::bind(home.join("queue/sockets/analysis")).unwrap();
        let answers = Arc::new(Mutex::new(vec![first.to_string()]));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (a, r, home) = (answers.clone(), requests.clone(), home.to_path_buf());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { return };
                let mut len = [0u8; 4];
                if s.read_exact(&mut len).is_err() {
                    continue;
                }
                let mut req = vec![0u8; u32::from_le_bytes(len) as usize];
                s.read_exact(&mut req).unwrap();
                r.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&req).into_owned());
                compile(&home.join("etc/lists/wazuh-misp"));
                let answer = {
                    let mut a = a.lock().unwrap();
                    if a.len() > 1 {
                        a.remove(0)
                    } else {
                        a[0].clone()
                    }
                };
                let mut out = (answer.len() as u32).to_le_bytes().to_vec();
                out.extend_from_slice(answer.as_bytes());
                let _ = s.write_all(&out);
            }
        });
        Analysisd { answers, requests }
    }

    fn answer(&self, answers: &[&str]) {
        *self.answers.lock().unwrap() = answers.iter().map(|s| s.to_string()).collect();
    }

    fn requests(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

fn secs(p: &Path) -> i64 {
    std::fs::metadata(p).map(|m| m.mtime()).unwrap_or(i64::MIN)
}

fn compile(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        let name = p.to_string_lossy().into_owned();
        if name.ends_with(".cdb") || name.ends_with(".tmp") {
            continue;
        }
        let cdb = PathBuf::from(format!("{name}.cdb"));
        if !cdb.exists() || secs(&p) > secs(&cdb) {
            let tmp = PathBuf::from(format!("{name}.tmp"));
            std::fs::copy(&p, &tmp).unwrap();
            std::fs::rename(&tmp, &cdb).unwrap();
        }
    }
}

/// A file's bytes, mtime in seconds, and owner, group and mode.
type FileState = (Vec<u8>, i64, (u32, u32, u32));

const OK: &str = r#"{"error":0,"message":"ok","data":[]}"#;

struct NativeHome {
    home: WazuhHome,
    double: MispDouble,
    added: std::cell::Cell<u8>,
}

impl NativeHome {
    /// A manager with our lists declared and our rules installed, in mirror mode with native
    /// matching on, its settings pointing at a MISP double with the seed data.
    fn new(extra: Value) -> NativeHome {
        let double = MispDouble::http();
        let lists: Vec<String> = native_rules::lists_used()
            .into_iter()
            .map(native_rules::list_path)
            .collect();
        let conf = upsert_lists(manager::STOCK_OSSEC_CONF.as_bytes(), &lists)
            .unwrap()
            .text;
        let block = IntegrationBlock {
            filters: Filters {
                level: None,
                groups: vec!["authentication_failed".into()],
                rule_ids: Vec::new(),
            },
            native_hits: Some(Filters {
                level: None,
                groups: vec![native_rules::NATIVE_GROUP.into()],
                rule_ids: Vec::new(),
            }),
            timeout: Some(10),
            retries: None,
            schedule: None,
        };
        let conf = upsert(&conf, &block).unwrap().text;
        let builder = WazuhHome::builder()
            .state_dir()
            .manager_layout()
            .dirs(&["etc/lists", "queue/sockets"])
            .dir("etc/lists/wazuh-misp", Perm::RootWazuh(0o770))
            .ossec_conf(conf)
            .file(
                native_rules::NATIVE_RULES_FILE,
                "<group name=\"misp_native,\"></group>\n",
                Perm::RootWazuh(0o660),
            )
            .dir("stand-in", Perm::AsCreated)
            .file("bin/wazuh-analysisd", ANALYSISD, Perm::Mode(0o750))
            .file("bin/wazuh-control", ANALYSISD, Perm::Mode(0o750));
        let home = WazuhHome::build(builder);
        let mut settings = WazuhHome::settings_for(&double);
        merge(
            &mut settings,
            json!({"lookup": {"mode": "mirror"}, "native": {"enabled": true}}),
        );
        merge(&mut settings, extra);
        home.write_settings(&settings);
        NativeHome {
            home,
            double,
            added: std::cell::Cell::new(0),
        }
    }

    fn path(&self) -> &Path {
        self.home.path()
    }

    fn sync(&self) -> (i32, String) {
        self.sync_with(&[])
    }

    fn sync_with(&self, args: &[&str]) -> (i32, String) {
        let mut argv = vec!["sync"];
        argv.extend_from_slice(args);
        let out: Output = self.home.wazuh_misp(&argv);
        (
            out.status.code().unwrap_or(-1),
            format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr)),
        )
    }

    fn list(&self, kind: &str) -> PathBuf {
        self.path()
            .join(format!("etc/lists/wazuh-misp/misp-{kind}"))
    }

    /// Every list's text and `.cdb`, bytes and mtimes (absent: None).
    fn snapshot(&self) -> Vec<(String, Option<FileState>)> {
        let mut out = Vec::new();
        for kind in KINDS {
            for p in [
                self.list(kind),
                PathBuf::from(format!("{}.cdb", self.list(kind).display())),
            ] {
                let state = std::fs::read(&p).ok().map(|b| {
                    let m = std::fs::metadata(&p).unwrap();
                    (b, secs(&p), (m.uid(), m.gid(), m.mode() & 0o7777))
                });
                out.push((p.display().to_string(), state));
            }
        }
        out
    }

    fn status(&self) -> Value {
        let text =
            std::fs::read(self.path().join("var/custom-misp/native.status")).unwrap_or_default();
        serde_json::from_slice(&text).unwrap_or(Value::Null)
    }

    /// An analyst adds an address to a published event: the next sync changes the ip list.
    /// Reloading is allowed at once.
    fn change_a_list(&self) {
        self.added.set(self.added.get() + 1);
        let ip = format!("45.133.1.{}", self.added.get());
        self.double
            .add_attribute_as_user(misp_double::Attribute::new(
                0,
                seed::EVENT_SSH_BRUTE_FORCE,
                "ip-src",
                &ip,
            ));
        self.double.publish_event(seed::EVENT_SSH_BRUTE_FORCE);
        self.allow_reload();
    }

    /// What a run killed between writing the lists and reloading leaves: the status of the
    /// lists before it.
    fn forget_lists_in_force(&self) {
        let mut s = self.status();
        s["lists_digest"] = json!("0");
        s["built_from"] = json!("");
        std::fs::write(
            self.path().join("var/custom-misp/native.status"),
            s.to_string(),
        )
        .unwrap();
    }

    /// A live process standing in for analysisd, named by its pid file as Wazuh writes it.
    fn start_analysisd(&self) -> (std::process::Child, PathBuf) {
        let child = std::process::Command::new("sleep")
            .arg("600")
            .spawn()
            .unwrap();
        std::fs::create_dir_all(self.path().join("var/run")).unwrap();
        let pid_file = self
            .path()
            .join(format!("var/run/wazuh-analysisd-{}.pid", child.id()));
        std::fs::write(&pid_file, format!("{}\n", child.id())).unwrap();
        (child, pid_file)
    }

    fn allow_reload(&self) {
        let mut s = self.status();
        s["last_reload_at"] = 0.into();
        std::fs::write(
            self.path().join("var/custom-misp/native.status"),
            s.to_string(),
        )
        .unwrap();
    }
}

#[test]
fn a_sync_writes_the_lists_compiles_them_and_reloads_once() {
    let h = NativeHome::new(json!({}));
    let analysisd = Analysisd::bind(h.path(), OK);
    let (code, out) = h.sync();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("native matching: analysisd reloaded"), "{out}");
    assert_eq!(analysisd.requests(), 1);
    let ip = std::fs::read_to_string(h.list("ip")).unwrap();
    assert!(
        ip.contains(&format!("{}:misp\n", seed::BRUTE_FORCE_IP)),
        "{ip}"
    );
    assert!(
        !ip.contains(seed::NON_IDS_IP),
        "not admitted by the lookup policy"
    );
    assert_eq!(
        std::fs::read(format!("{}.cdb", h.list("ip").display())).unwrap(),
        ip.as_bytes(),
        "compiled"
    );
    let domain = std::fs::read_to_string(h.list("domain")).unwrap();
    assert!(domain.contains("bad-update.net:misp\n"), "{domain}");
    if is_root() {
        let m = std::fs::metadata(h.list("ip")).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o660);
        assert_eq!(Some(m.gid()), wazuh_gid());
    }
    let s = h.status();
    assert_eq!(s["last_result"], "ok", "{s}");
    assert!(s["keys"]["misp-ip"].as_u64().unwrap() > 0, "{s}");
    // Nothing of ours is left beside the lists (the cluster would copy it to every worker).
    let mut names: Vec<String> = std::fs::read_dir(h.path().join("etc/lists/wazuh-misp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| {
            !KINDS
                .iter()
                .any(|k| *n == format!("misp-{k}") || *n == format!("misp-{k}.cdb"))
        })
        .collect();
    names.sort();
    assert!(names.is_empty(), "{names:?}");

    // Nothing changed in MISP: no list is touched and analysisd is left alone.
    let before = h.snapshot();
    h.allow_reload();
    let (code, out) = h.sync();
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("native matching"), "{out}");
    assert_eq!(analysisd.requests(), 1);
    assert_eq!(h.snapshot(), before);
}

#[test]
fn a_change_within_the_reload_interval_waits_touching_nothing() {
    let h = NativeHome::new(json!({"native": {"min_reload_interval_s": 3600}}));
    let analysisd = Analysisd::bind(h.path(), OK);
    assert_eq!(h.sync().0, 0);
    h.change_a_list();
    // A reload happened just now.
    let mut s = h.status();
    s["last_reload_at"] = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs())
    .into();
    std::fs::write(
        h.path().join("var/custom-misp/native.status"),
        s.to_string(),
    )
    .unwrap();
    let before = h.snapshot();
    let (code, out) = h.sync();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("they apply at the first sync after"), "{out}");
    assert_eq!(h.snapshot(), before, "nothing touched");
    assert_eq!(analysisd.requests(), 1);
    assert_ne!(h.status()["pending_since"], 0);
    // Once the interval has passed, the next sync applies it.
    h.allow_reload();
    let (code, out) = h.sync();
    assert_eq!(code, 0, "{out}");
    assert_eq!(analysisd.requests(), 2);
    assert_eq!(h.status()["pending_since"], 0);
    assert!(std::fs::read_to_string(h.list("ip"))
        .unwrap()
        .contains(seed::BRUTE_FORCE_IP));
}

/// Every way the new lists can be refused, each from a previous state that must come back
/// exactly: text and `.cdb`, bytes and mtimes.
#[test]
fn refused_lists_restore_the_previous_text_and_cdb_exactly() {
    let failed = r#"{"error":1,"message":"due","data":["ERROR: (1226): Error reading XML file"]}"#;
    let warned = r#"{"error":0,"message":"ok","data":["WARNING: (7616): List 'etc/lists/wazuh-misp/misp-ip' could not be loaded. Rule '117120' will be ignored."]}"#;
    for (answers, reloads, result, said) in [
        (
            vec![failed],
            1,
            "failed",
            "analysisd refused the new ruleset",
        ),
        (vec![warned, OK], 2, "new_warnings", "(7616)"),
        (vec!["<html>"], 2, "protocol", "could not be read"),
    ] {
        let h = NativeHome::new(json!({}));
        let analysisd = Analysisd::bind(h.path(), OK);
        assert_eq!(h.sync().0, 0);
        // analysisd compiles as user wazuh: the .cdb that comes back must still be its own.
        if let (true, Some(gid)) = (is_root(), wazuh_gid()) {
            let cdb = format!("{}.cdb", h.list("ip").display());
            std::os::unix::fs::chown(&cdb, Some(wazuh_uid().unwrap()), Some(gid)).unwrap();
        }
        h.change_a_list();
        let before = h.snapshot();
        analysisd.answer(&answers);
        let (code, out) = h.sync();
        assert_eq!(code, 9, "{out}");
        assert!(out.contains(said), "{out}");
        assert_eq!(
            h.snapshot(),
            before,
            "{result}: the previous lists, exactly"
        );
        assert_eq!(analysisd.requests(), 1 + reloads, "{result}");
        assert_eq!(h.status()["last_result"], result);
        assert!(h.home.log().contains("native matching"), "{}", h.home.log());
        // The same lists against the same rules are not tried again at the next sync…
        h.allow_reload();
        let (code, out) = h.sync();
        let again = if result == "protocol" { 1 } else { 0 };
        assert_eq!(
            analysisd.requests(),
            1 + reloads + again * 2,
            "{result}: {out}"
        );
        if again == 0 {
            assert_eq!(code, 9, "{out}");
            assert!(out.contains("refused already"), "{out}");
            assert_eq!(h.snapshot(), before);
            // …but new ones are.
            analysisd.answer(&[OK]);
            h.change_a_list();
            assert_eq!(h.sync().0, 0);
            assert_eq!(analysisd.requests(), 2 + reloads, "{result}");
        }
    }
}

/// Refused lists are tried again once the rules analysisd reads with them change, or by hand with
/// `sync --full`, and not before.
#[test]
fn refused_lists_are_tried_again_after_a_rules_change_or_a_full_sync() {
    let failed = r#"{"error":1,"message":"due","data":["ERROR: (1226): Error reading XML file"]}"#;
    let h = NativeHome::new(json!({}));
    let analysisd = Analysisd::bind(h.path(), OK);
    assert_eq!(h.sync().0, 0);
    for retry in ["a rules change", "sync --full"] {
        h.change_a_list();
        analysisd.answer(&[failed]);
        let before = analysisd.requests();
        assert_eq!(h.sync().0, 9, "{retry}");
        assert_eq!(analysisd.requests(), before + 1, "{retry}");
        h.allow_reload();
        assert_eq!(h.sync().0, 9, "{retry}: not tried again");
        assert_eq!(analysisd.requests(), before + 1, "{retry}");
        analysisd.answer(&[OK]);
        h.allow_reload();
        let (code, out) = if retry == "sync --full" {
            h.sync_with(&["--full"])
        } else {
            std::fs::write(
                h.path().join("etc/rules/local_rules.xml"),
                format!("<group name=\"local,\"><!-- {retry} --></group>\n"),
            )
            .unwrap();
            h.sync()
        };
        assert_eq!(code, 0, "{retry}: {out}");
        assert_eq!(analysisd.requests(), before + 2, "{retry}");
        assert_eq!(h.status()["last_result"], "ok", "{retry}");
    }
}

/// A run killed after writing the lists and before the reload leaves them on disk, never put in
/// force: the next sync judges and reloads them, though nothing on disk has to change.
#[test]
fn lists_written_but_never_put_in_force_are_reloaded_by_the_next_sync() {
    let h = NativeHome::new(json!({}));
    let analysisd = Analysisd::bind(h.path(), OK);
    assert_eq!(h.sync().0, 0);
    assert_eq!(analysisd.requests(), 1);
    // What the killed run left: the status of the lists before it.
    h.forget_lists_in_force();
    h.allow_reload();
    let before = h.snapshot();
    let (code, out) = h.sync();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("native matching: analysisd reloaded"), "{out}");
    assert_eq!(analysisd.requests(), 2);
    assert_eq!(h.snapshot(), before, "nothing rewritten");
    // Now in force: the next sync leaves analysisd alone.
    h.allow_reload();
    assert_eq!(h.sync().0, 0);
    assert_eq!(analysisd.requests(), 2);
}

/// A warning that names our lists means they match nothing: refused even when the manager
/// printed it before our change.
#[test]
fn a_reload_warning_about_our_lists_is_refused_even_if_known() {
    let h = NativeHome::new(json!({}));
    let analysisd = Analysisd::bind(h.path(), OK);
    assert_eq!(h.sync().0, 0);
    std::fs::write(h.path().join("stand-in/warn-key"), "misp").unwrap();
    h.change_a_list();
    let before = h.snapshot();
    let (code, out) = h.sync();
    assert_eq!(code, 9, "{out}");
    assert!(out.contains("(9999)"), "{out}");
    assert_eq!(h.snapshot(), before);
    assert_eq!(analysisd.requests(), 1);
}

#[test]
fn a_new_finding_of_our_own_check_restores_and_never_reloads() {
    let h = NativeHome::new(json!({}));
    let analysisd = Analysisd::bind(h.path(), OK);
    std::fs::write(h.path().join("stand-in/warn-key"), seed::BRUTE_FORCE_IP).unwrap();
    let (code, out) = h.sync();
    assert_eq!(code, 9, "{out}");
    assert!(out.contains("(9999)"), "{out}");
    assert_eq!(analysisd.requests(), 0);
    // There were no lists before: none is left, and no .cdb compiled by -t either.
    assert!(
        h.snapshot().iter().all(|(_, s)| s.is_none()),
        "{:?}",
        h.snapshot()
    );
    assert_eq!(h.status()["last_result"], "rejected");
}

#[test]
fn without_hot_reload_or_a_running_analysisd_the_lists_wait_on_disk() {
    // Wazuh 4.4-4.12 answers an unrecognised command.
    let h = NativeHome::new(json!({}));
    let analysisd = Analysisd::bind(
        h.path(),
        r#"{"error":4,"message":"Unrecognized command","data":{}}"#,
    );
    let (code, out) = h.sync();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("apply at the next manager restart"), "{out}");
    assert_eq!(analysisd.requests(), 1);
    assert!(std::fs::read_to_string(h.list("ip"))
        .unwrap()
        .contains(seed::BRUTE_FORCE_IP));
    assert_eq!(h.status()["last_result"], "at_restart");

    // No analysisd at all.
    let h = NativeHome::new(json!({}));
    let (code, out) = h.sync();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("loads them when it starts"), "{out}");
    assert_eq!(h.status()["last_result"], "at_start");
    assert_eq!(h.status()["last_reload_at"], 0, "no reload happened");
}

/// Before 4.13, `native.restart_without_reload` restarts the manager the safe way instead of
/// waiting for the next restart; a failed restart restores the previous lists.
#[test]
fn without_hot_reload_a_safe_restart_applies_the_lists_when_asked() {
    let unrecognised = r#"{"error":4,"message":"Unrecognized command","data":{}}"#;
    let h = NativeHome::new(json!({"native": {"restart_without_reload": true}}));
    std::fs::write(
        h.path().join("stand-in/version"),
        "WAZUH_VERSION=\"v4.12.0\"\n",
    )
    .unwrap();
    std::fs::write(h.path().join("stand-in/running"), "").unwrap();
    let _analysisd = Analysisd::bind(h.path(), unrecognised);
    let (code, out) = h.sync();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("restarted the manager"), "{out}");
    let calls = std::fs::read_to_string(h.path().join("stand-in/calls.log")).unwrap();
    assert!(calls.contains("wazuh-control restart"), "{calls}");
    assert_eq!(h.status()["last_result"], "restarted");

    h.change_a_list();
    let before = h.snapshot();
    std::fs::write(h.path().join("stand-in/restart-fails"), "").unwrap();
    let (code, out) = h.sync();
    assert_eq!(code, 9, "{out}");
    assert!(out.contains("the restart failed"), "{out}");
    assert_eq!(h.snapshot(), before, "the previous lists, exactly");
}

/// analysisd never releases a list it opened when it hot-reloads: past the budget, new lists
/// wait for its next start (or a safe restart when asked), and a new analysisd starts the count
/// again.
#[test]
fn past_the_held_budget_new_lists_wait_for_analysisd_to_start_again() {
    let h = NativeHome::new(json!({"native": {"max_reloads_per_start": 1}}));
    let analysisd = Analysisd::bind(h.path(), OK);
    let (mut running, first_pid) = h.start_analysisd();
    assert_eq!(h.sync().0, 0);
    assert_eq!(analysisd.requests(), 1);
    assert_eq!(h.status()["held_reloads"], 1);
    h.change_a_list();
    let before = h.snapshot();
    let (code, out) = h.sync();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("apply at its next start"), "{out}");
    assert_eq!(analysisd.requests(), 1, "no second reload");
    assert_eq!(
        h.snapshot(),
        before,
        "held before anything is written or checked"
    );
    assert_eq!(h.status()["last_result"], "held");
    assert!(doctor_native(&h).contains(&("native.last_reload".into(), "warn".into())));
    h.allow_reload();
    assert_eq!(h.sync().0, 0);
    assert_eq!(analysisd.requests(), 1, "still held");
    // The manager restarts: a new analysisd, a new count, and the change is reloaded.
    let restart = |h: &NativeHome, old: &mut std::process::Child, old_pid: &Path| {
        std::thread::sleep(std::time::Duration::from_millis(1100));
        old.kill().unwrap();
        old.wait().unwrap();
        std::fs::remove_file(old_pid).unwrap();
        h.start_analysisd()
    };
    let (mut running, second_pid) = restart(&h, &mut running, &first_pid);
    h.allow_reload();
    let (code, out) = h.sync();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("analysisd reloaded"), "{out}");
    assert_eq!(analysisd.requests(), 2);
    // Lists on disk that the last analysisd never took (a run killed before its reload) are
    // loaded by the next one when it starts: recorded, not reloaded.
    h.forget_lists_in_force();
    let (mut running, _) = restart(&h, &mut running, &second_pid);
    h.allow_reload();
    assert_eq!(h.sync().0, 0);
    assert_eq!(analysisd.requests(), 2);
    assert_eq!(h.status()["last_result"], "at_start");
    running.kill().unwrap();
    let _ = running.wait();
}

/// The byte budget holds for lists already on disk too (a run killed before its reload).
#[test]
fn the_held_bytes_budget_counts_lists_already_on_disk() {
    let h = NativeHome::new(json!({"native": {"max_held_mb": 0}}));
    let analysisd = Analysisd::bind(h.path(), OK);
    let (mut running, _) = h.start_analysisd();
    // Empty lists have no .cdb yet: nothing replaced, nothing held.
    assert_eq!(h.sync().0, 0);
    assert_eq!(analysisd.requests(), 1);
    h.forget_lists_in_force();
    h.allow_reload();
    let (code, out) = h.sync();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("apply at its next start"), "{out}");
    assert_eq!(analysisd.requests(), 1);
    running.kill().unwrap();
    let _ = running.wait();
}

#[test]
fn not_installed_writes_no_list() {
    let h = NativeHome::new(json!({}));
    std::fs::remove_file(h.path().join(native_rules::NATIVE_RULES_FILE)).unwrap();
    let (code, out) = h.sync();
    assert_eq!(code, 9, "{out}");
    assert!(out.contains("wazuh-misp install"), "{out}");
    assert!(!h.list("ip").exists());
}

#[test]
fn a_worker_writes_no_list_and_reloads_when_the_master_delivers_new_ones() {
    let h = NativeHome::new(json!({}));
    let analysisd = Analysisd::bind(h.path(), OK);
    let conf = std::fs::read_to_string(h.path().join("etc/ossec.conf"))
        .unwrap()
        .replace(
            "<node_type>master</node_type>",
            "<node_type>worker</node_type>",
        )
        .replace("<disabled>yes</disabled>", "<disabled>no</disabled>");
    std::fs::write(h.path().join("etc/ossec.conf"), conf).unwrap();
    let (code, out) = h.sync();
    assert_eq!(code, 9, "{out}");
    assert!(out.contains("has not arrived"), "{out}");
    assert!(!h.list("ip").exists(), "the master's lists reach workers");
    assert!(
        h.path().join("var/custom-misp/mirror.db").exists(),
        "its own mirror, for enrichment"
    );
    // The cluster delivers the master's lists (text and .cdb).
    let deliver = |ip: &str| {
        for kind in KINDS {
            let text = if kind == "ip" {
                format!("{ip}:misp\n")
            } else {
                String::new()
            };
            std::fs::write(h.list(kind), &text).unwrap();
            std::fs::write(format!("{}.cdb", h.list(kind).display()), &text).unwrap();
        }
    };
    deliver(seed::BRUTE_FORCE_IP);
    let (code, out) = h.sync();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("analysisd reloaded"), "{out}");
    assert_eq!(analysisd.requests(), 1);
    assert_eq!(
        std::fs::read_to_string(h.list("ip")).unwrap(),
        format!("{}:misp\n", seed::BRUTE_FORCE_IP),
        "a worker never rewrites the master's lists"
    );
    // The same delivery: no reload. A new one: one reload.
    h.allow_reload();
    assert_eq!(h.sync().0, 0);
    assert_eq!(analysisd.requests(), 1);
    deliver("198.51.100.7");
    h.allow_reload();
    assert_eq!(h.sync().0, 0);
    assert_eq!(analysisd.requests(), 2);
    // A refused reload is reported once, and the same lists are not reloaded again (each
    // reload empties every counter) until they or the rules change.
    deliver("198.51.100.8");
    h.allow_reload();
    analysisd.answer(&[
        r#"{"error":1,"message":"due","data":["ERROR: (1226): Error reading XML file"]}"#,
        OK,
    ]);
    let (code, out) = h.sync();
    assert_eq!(code, 9, "{out}");
    assert!(out.contains("keeps its previous one"), "{out}");
    assert_eq!(analysisd.requests(), 3);
    h.allow_reload();
    let (code, out) = h.sync();
    assert_eq!(code, 9, "{out}");
    assert!(out.contains("refused already"), "{out}");
    assert_eq!(analysisd.requests(), 3);
    // The admin fixes the rule file analysisd choked on: tried again.
    std::fs::write(
        h.path().join("etc/rules/local_rules.xml"),
        "<group name=\"local,\"></group>\n",
    )
    .unwrap();
    h.allow_reload();
    assert_eq!(h.sync().0, 0);
    assert_eq!(analysisd.requests(), 4);
    // A reload that drops our lists is no success, though analysisd took the new ruleset.
    deliver("198.51.100.9");
    h.allow_reload();
    analysisd.answer(&[
        r#"{"error":0,"message":"ok","data":["(7616): List 'etc/lists/wazuh-misp/misp-ip' could not be loaded. Rule '117126' will be ignored."]}"#,
        OK,
    ]);
    let (code, out) = h.sync();
    assert_eq!(code, 9, "{out}");
    assert!(out.contains("match nothing here"), "{out}");
    assert_eq!(h.status()["last_result"], "new_warnings");
}

#[test]
fn a_native_hit_is_enriched_from_the_mirror_once_though_both_blocks_run() {
    let h = NativeHome::new(json!({}));
    let _analysisd = Analysisd::bind(h.path(), OK);
    assert_eq!(h.sync().0, 0);
    // What our CDB child of sshd rule 5716 writes to alerts.json: the stock alert's fields and
    // groups, plus ours.
    let mut alert = sshd_alert(seed::BRUTE_FORCE_IP);
    alert["id"] = "1733380000.4242".into();
    alert["rule"]["id"] = "117120".into();
    alert["rule"]["groups"] = json!([
        "syslog",
        "sshd",
        "authentication_failed",
        "misp_native",
        "misp_native_ip"
    ]);
    let out = h.home.run_json(&alert);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let first = payloads(&h.home);
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0]["misp"]["value"], seed::BRUTE_FORCE_IP);
    assert_eq!(first[0]["misp"]["source"], "mirror");
    // integratord runs the second matching block on the same alert: nothing more is sent.
    let out = h.home.run_json(&alert);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(payloads(&h.home).is_empty());
    // An ordinary alert of the runtime's block is never held back.
    let plain = sshd_alert(seed::BRUTE_FORCE_IP);
    for _ in 0..2 {
        h.home.run_json(&plain);
        assert_eq!(payloads(&h.home).len(), 1);
    }
}

fn doctor_native(h: &NativeHome) -> Vec<(String, String)> {
    let out = h.home.wazuh_misp(&["doctor", "--json"]);
    let v: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)));
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"].as_str().unwrap_or("").starts_with("native."))
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn doctor_reports_declared_compiled_aged_and_reloaded_lists() {
    let h = NativeHome::new(json!({}));
    let _analysisd = Analysisd::bind(h.path(), OK);
    assert_eq!(h.sync().0, 0);
    let checks = doctor_native(&h);
    for name in [
        "native.lists_declared",
        "native.rules",
        "native.lists_compiled",
        "native.lists_age",
        "native.last_reload",
        "native.shadowed",
    ] {
        assert!(
            checks.contains(&(name.to_string(), "pass".to_string())),
            "{name}: {checks:?}"
        );
    }
    // A rule of the admin's at a higher level under sshd's 5716 takes those events first.
    let local = h.path().join("etc/rules/local_rules.xml");
    let before = std::fs::read(&local).ok();
    std::fs::write(
        &local,
        "<group name=\"local,\">\n  <rule id=\"100300\" level=\"10\">\n    <if_sid>5716</if_sid>\n    <srcip>!10.0.0.0/8</srcip>\n    <description>outside failure</description>\n  </rule>\n</group>\n",
    )
    .unwrap();
    assert!(doctor_native(&h).contains(&("native.shadowed".into(), "warn".into())));
    match before {
        Some(b) => std::fs::write(&local, b).unwrap(),
        None => std::fs::remove_file(&local).unwrap(),
    }
    // A list changed after its compile: analysisd still matches the old .cdb.
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(h.list("domain"))
        .unwrap()
        .set_modified(later)
        .unwrap();
    assert!(doctor_native(&h).contains(&("native.lists_compiled".into(), "warn".into())));
    // The lists no longer declared in this node's ossec.conf.
    let conf = std::fs::read_to_string(h.path().join("etc/ossec.conf")).unwrap();
    let conf = conf.replace("<list>etc/lists/wazuh-misp/misp-ip</list>", "");
    std::fs::write(h.path().join("etc/ossec.conf"), conf).unwrap();
    assert!(doctor_native(&h).contains(&("native.lists_declared".into(), "fail".into())));
    // Switched off by hand in the settings: the rules and lists left behind are reported.
    let mut settings: Value =
        serde_json::from_slice(&std::fs::read(h.path().join("etc/custom-misp.json")).unwrap())
            .unwrap();
    settings["native"]["enabled"] = false.into();
    h.home.write_settings(&settings);
    assert_eq!(
        doctor_native(&h),
        [("native.leftover".to_string(), "warn".to_string())]
    );
}
