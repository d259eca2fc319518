//! `wazuh-misp doctor --live` (`setup::selftest`) end to end, against a manager home installed by
//! `wazuh-misp install --sample-rule` and a stand-in that plays analysisd's and integratord's
//! part: it owns `queue/sockets/queue`, turns the injected sshd line into the self-test rule's
//! alert in `alerts.json`, runs the installed `integrations/custom-misp` exactly as integratord
//! does, and turns the event that sends back into our enriched alert. Each scenario switches one
//! part off and checks that the report names the stage that did not happen, and why.
//!
//! The MISP double has no write endpoints, so `--create-test-ioc` runs against [`Front`], a small
//! HTTP server in this file that serves `/events/add`, `/attributes/add/<id>`,
//! `/events/publish/<id>` (published a moment later, as MISP's background job does) and
//! `/events/delete/<id>` on the double's dataset, and passes every other request to the double.

mod common;

use common::home;
use common::manager::{text, Manager};
use common::{output_retrying, split_datagram, KEY};
use misp_double::{seed, Attribute, Event, Fault, MispDouble, Tag};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use wazuh_misp::setup::selftest::{
    self, Report, SelfTestOptions, StageId, Status, DEFAULT_TEST_IP, TEST_EVENT_INFO,
    TEST_EVENT_TAG,
};
use wazuh_misp::wazuh::rules::{self, DEFAULT_RULE_ID_BASE};

const BASE: u32 = DEFAULT_RULE_ID_BASE;
/// Failing scenarios wait this long for what does not come.
const SHORT: Duration = Duration::from_secs(3);
/// Passing scenarios end as soon as stage B is seen.
const LONG: Duration = Duration::from_secs(20);
/// A global address the double does not know.
const UNKNOWN_IP: &str = "192.31.196.201";

fn fixture(name: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/selftest")
        .join(name);
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

// ---------------------------------------------------------------------------------------------
// The manager home

/// A manager home with the integration installed (block, rules with the self-test rule) for
/// `misp_url`, running daemons (pid files of this process), and an empty alerts.json.
fn installed_home(misp_url: &str) -> Manager {
    let m = Manager::new();
    m.write_settings(&json!({
        "version": 1,
        "misp": {"url": misp_url, "api_key": KEY, "timeout_ms": 2000},
        "install": {"groups": ["authentication_failed"]}
    }));
    let out = m.wazuh_misp(&["install", "--sample-rule"]);
    assert!(out.status.success(), "{}", text(&out));
    std::fs::write(m.file("logs/alerts/alerts.json"), "").unwrap();
    daemons_started(&m, &["wazuh-analysisd", "wazuh-integratord"]);
    m
}

fn daemons_started(m: &Manager, names: &[&str]) {
    let me = std::process::id();
    for d in names {
        home::pid_file(m.path(), d, me);
    }
}

/// A double that knows the default test IP.
fn double_knowing_the_test_ip() -> MispDouble {
    let d = MispDouble::http();
    let mut e = Event::new(50, "Self-test indicators");
    e.tags.push(Tag::new(60, "tlp:white", "#ffffff"));
    d.add_event(e);
    d.add_attribute(Attribute::new(500, 50, "ip-src", DEFAULT_TEST_IP));
    d
}

fn opts(timeout: Duration) -> SelfTestOptions {
    SelfTestOptions {
        timeout,
        ..SelfTestOptions::default()
    }
}

/// Runs the self test; its report, and the report as the admin reads it.
fn self_test(home: &Path, opts: &SelfTestOptions) -> (Report, String) {
    let report = selftest::execute(home, opts, &mut |_| {});
    let mut out = Vec::new();
    selftest::write_report(&report, false, &mut out).unwrap();
    // SELFTEST_SHOW=1 cargo test --test selftest -- --nocapture: every report as admins see it.
    if std::env::var_os("SELFTEST_SHOW").is_some() {
        eprintln!("{}", String::from_utf8_lossy(&out));
    }
    (report, String::from_utf8(out).unwrap())
}

fn status(r: &Report, id: StageId) -> Status {
    r.stage(id)
        .unwrap_or_else(|| panic!("no stage {id:?}"))
        .status
}

fn causes(r: &Report, id: StageId) -> String {
    r.stage(id).unwrap().causes.join("\n")
}

// ---------------------------------------------------------------------------------------------
// The stand-in for analysisd and integratord

#[derive(Clone, Copy, PartialEq)]
enum Fire {
    /// The self-test rule fires (it is loaded).
    SampleRule,
    /// The stock parent 5710 fires: the self-test rule is not loaded.
    Stock5710,
}

#[derive(Clone, Copy)]
struct Mode {
    /// analysisd decodes the line and alerts.
    analysisd: bool,
    fire: Fire,
    /// integratord runs the integration on the alert.
    integratord: bool,
    /// analysisd has our rules: our events become alerts.
    our_rules: bool,
    /// alerts.json is rotated just before the trigger alert is written.
    rotate: bool,
}

impl Default for Mode {
    fn default() -> Mode {
        Mode {
            analysisd: true,
            fire: Fire::SampleRule,
            integratord: true,
            our_rules: true,
            rotate: false,
        }
    }
}

#[derive(Default)]
struct Seen {
    /// Injected lines (location wazuh-misp-selftest).
    lines: Vec<String>,
    /// Payloads of our events.
    events: Vec<Value>,
    /// Exit codes of the integration runs.
    runs: Vec<Option<i32>>,
    /// Whatever does not look like Wazuh.
    problems: Vec<String>,
}

struct StandIn {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
    thread: Option<JoinHandle<()>>,
}

impl StandIn {
    fn start(home: &Path, mode: Mode) -> StandIn {
        let socket = UnixDatagram::bind(home.join("queue/sockets/queue")).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (home, stop2, seen2) = (home.to_path_buf(), stop.clone(), seen.clone());
        let thread = std::thread::spawn(move || serve(&home, &socket, mode, &stop2, &seen2));
        StandIn {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap()
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

static ALERT_SEQ: AtomicU64 = AtomicU64::new(1);

fn append_alert(home: &Path, alert: &Value) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(home.join("logs/alerts/alerts.json"))
        .unwrap();
    f.write_all(format!("{alert}\n").as_bytes()).unwrap();
}

/// Now, as analysisd writes an alert's `timestamp` (UTC here).
fn wazuh_timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let (secs, millis) = (now.as_secs() as i64, now.subsec_millis());
    let (y, m, d, h, mi, s) = wazuh_misp::civil::utc_fields(secs);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{millis:03}+0000")
}

fn alert_id() -> String {
    format!("1764226800.{}", ALERT_SEQ.fetch_add(1, Ordering::SeqCst))
}

/// What the stock sshd decoders take from the line: (srcuser, srcip, srcport), or `None` when
/// `ssh-invalid-user` would not match.
fn decode_sshd(line: &str) -> Option<(String, String, String)> {
    let (header, msg) = line.split_once("]: ")?;
    // Syslog header: "Mmm dd hh:mm:ss host sshd[pid"
    let words: Vec<&str> = header.split_whitespace().collect();
    if words.len() != 5 || !words[4].starts_with("sshd[") || words[2].len() != 8 {
        return None;
    }
    let rest = msg.strip_prefix("Invalid user ")?;
    let w: Vec<&str> = rest.split(' ').collect();
    match w[..] {
        [user, "from", ip, "port", port] => Some((user.into(), ip.into(), port.into())),
        _ => None,
    }
}

fn serve(home: &Path, socket: &UnixDatagram, mode: Mode, stop: &AtomicBool, seen: &Mutex<Seen>) {
    let sample = rules::sample_rule_id(BASE);
    let (level, groups) = rules::all_rule_ids(home)
        .unwrap()
        .into_iter()
        .find(|(_, id, ..)| *id == sample)
        .map(|(_, _, level, groups)| (level, groups))
        .expect("the self-test rule is installed");
    let mut buf = vec![0u8; 70_000];
    while !stop.load(Ordering::SeqCst) {
        let n = match socket.recv(&mut buf) {
            Ok(n) => n,
            Err(_) => continue,
        };
        let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
        if let Some(line) = msg.strip_prefix("1:wazuh-misp-selftest:") {
            seen.lock().unwrap().lines.push(line.to_string());
            if !mode.analysisd {
                continue;
            }
            let Some((user, ip, port)) = decode_sshd(line) else {
                seen.lock()
                    .unwrap()
                    .problems
                    .push(format!("the sshd decoder would not match {line:?}"));
                continue;
            };
            let mut alert = fixture("trigger-alert.json");
            alert["id"] = json!(alert_id());
            alert["timestamp"] = json!(wazuh_timestamp());
            alert["full_log"] = json!(line);
            alert["predecoder"]["timestamp"] = json!(&line[..15]);
            alert["predecoder"]["hostname"] = json!(line[16..].split(' ').next().unwrap());
            alert["data"] = json!({"srcip": ip, "srcport": port, "srcuser": user});
            match mode.fire {
                Fire::SampleRule => {
                    alert["rule"]["id"] = json!(sample.to_string());
                    alert["rule"]["level"] = json!(level);
                    alert["rule"]["groups"] = json!(groups);
                    alert["rule"]["description"] = json!(format!("wazuh-misp self test: sshd authentication failure from {ip} sent to the MISP integration."));
                }
                Fire::Stock5710 => {
                    alert["rule"]["id"] = json!("5710");
                    alert["rule"]["level"] = json!(5);
                    alert["rule"]["groups"] =
                        json!(["syslog", "sshd", "invalid_login", "authentication_failed"]);
                    alert["rule"]["description"] =
                        json!("sshd: Attempt to login using a non-existent user");
                }
            }
            if mode.rotate {
                let alerts = home.join("logs/alerts/alerts.json");
                std::fs::rename(&alerts, home.join("logs/alerts/ossec-alerts-27.json")).unwrap();
                std::fs::write(&alerts, "").unwrap();
            }
            append_alert(home, &alert);
            if mode.integratord {
                let code = run_integration(home, &alert);
                seen.lock().unwrap().runs.push(code);
            } else {
                // What integratord logs when it cannot run the integration.
                let mut log = std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(home.join("logs/ossec.log"))
                    .unwrap();
                writeln!(log, "2026/11/27 07:00:01 wazuh-integratord: ERROR: Couldn't execute command (integrations/custom-misp /tmp/custom-misp-1764226800-1.alert    10 3 > /dev/null 2>&1). Check file and permissions.").unwrap();
            }
        } else if msg.starts_with("1:misp:") {
            let (_, payload) = split_datagram(&msg);
            seen.lock().unwrap().events.push(payload.clone());
            if mode.our_rules {
                append_alert(home, &enriched_alert(&payload));
            }
        } else {
            seen.lock()
                .unwrap()
                .problems
                .push(format!("unexpected datagram {msg:?}"));
        }
    }
}

/// The alert analysisd makes of our event with our rules.
fn enriched_alert(payload: &Value) -> Value {
    let m = &payload["misp"];
    let (offset, level, description) = match m["error"]["kind"].as_str() {
        Some(kind) => {
            let kinds = [
                "connect",
                "tls",
                "timeout",
                "auth",
                "not_found",
                "rate_limited",
                "server",
                "protocol",
                "config",
            ];
            let i = kinds.iter().position(|k| *k == kind).unwrap_or(9) as u32;
            (
                6 + i,
                3,
                format!("MISP error ({kind}): {}", m["error"]["message"]),
            )
        }
        None => {
            let offset = match m["ioc_kind"].as_str() {
                Some("ip") => 1,
                Some("domain") => 2,
                Some("url") => 3,
                Some("md5" | "sha1" | "sha256") => 4,
                _ => 5,
            };
            (
                offset,
                12,
                format!(
                    "MISP: IP {} ({}) in event {}: {}",
                    m["value"].as_str().unwrap_or(""),
                    m["type"].as_str().unwrap_or(""),
                    m["event_id"].as_str().unwrap_or(""),
                    m["event_info"].as_str().unwrap_or("")
                ),
            )
        }
    };
    let mut alert = fixture("enriched-alert.json");
    alert["id"] = json!(alert_id());
    alert["timestamp"] = json!(wazuh_timestamp());
    alert["rule"]["id"] = json!((BASE + offset).to_string());
    alert["rule"]["level"] = json!(level);
    alert["rule"]["description"] = json!(description);
    alert["data"] = payload.clone();
    alert
}

/// Runs `integrations/custom-misp` as integratord 4.8+ does: argv[0] `integrations`, the alert
/// in a temp file, empty api_key/hook_url/debug/options, timeout, retries, the literal redirect.
fn run_integration(home: &Path, alert: &Value) -> Option<i32> {
    let tmp = tempfile::Builder::new()
        .prefix("custom-misp-1764226800-")
        .suffix(".alert")
        .tempfile()
        .unwrap();
    std::fs::write(tmp.path(), format!("{alert}\n")).unwrap();
    let mut cmd = Command::new(home.join("integrations/custom-misp"));
    cmd.arg0("integrations")
        .arg(tmp.path())
        .args(["", "", "", "", "10", "3", "> /dev/null 2>&1"])
        .current_dir(home)
        .env_clear();
    output_retrying(&mut cmd).status.code()
}

// ---------------------------------------------------------------------------------------------
// Front: MISP's write endpoints over the double

#[derive(Default)]
struct FrontState {
    /// (method, path, JSON body) of every request Front answered itself.
    requests: Vec<(String, String, Value)>,
    events: Vec<Event>,
    deleted: HashSet<u64>,
}

struct Front {
    addr: std::net::SocketAddr,
    state: Arc<Mutex<FrontState>>,
    double: Arc<MispDouble>,
    stop: Arc<AtomicBool>,
}

#[derive(Clone, Copy, PartialEq)]
enum FrontMode {
    Normal,
    /// `/events/publish` refused as for a role without the publish permission.
    PublishRefused,
}

impl Front {
    fn start(double: MispDouble, mode: FrontMode) -> Front {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(FrontState::default()));
        let double = Arc::new(double);
        let stop = Arc::new(AtomicBool::new(false));
        let (s, d, st) = (state.clone(), double.clone(), stop.clone());
        std::thread::spawn(move || {
            let next_id = Arc::new(AtomicU64::new(1000));
            while !st.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (s, d, n) = (s.clone(), d.clone(), next_id.clone());
                        std::thread::spawn(move || handle(conn, &s, &d, &n, mode));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Front {
            addr,
            state,
            double,
            stop,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn requests(&self) -> Vec<(String, String, Value)> {
        self.state.lock().unwrap().requests.clone()
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn respond(conn: &mut TcpStream, status: u16, body: &Value) {
    let body = body.to_string();
    let reason = if status == 200 { "OK" } else { "Forbidden" };
    let _ = write!(
        conn,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn handle(
    mut conn: TcpStream,
    state: &Mutex<FrontState>,
    double: &Arc<MispDouble>,
    next_id: &AtomicU64,
    mode: FrontMode,
) {
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or("").split(' ');
    let method = request_line.next().unwrap_or("").to_string();
    let path = request_line.next().unwrap_or("").to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let len: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while raw.len() < head_end + len {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    }
    let body_bytes = raw[head_end..head_end + len].to_vec();
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let ours = matches!(
        segs[..],
        ["events", "add"]
            | ["attributes", "add", _]
            | ["events", "publish", _]
            | ["events", "delete", _]
    );
    if !ours {
        // Everything else goes to the double, one request per connection.
        let mut forwarded: Vec<u8> = Vec::new();
        for line in head.split("\r\n").filter(|l| !l.is_empty()) {
            if !line.to_ascii_lowercase().starts_with("connection:") {
                forwarded.extend_from_slice(line.as_bytes());
                forwarded.extend_from_slice(b"\r\n");
            }
        }
        forwarded.extend_from_slice(b"Connection: close\r\n\r\n");
        forwarded.extend_from_slice(&body_bytes);
        let mut up = TcpStream::connect(double.addr()).unwrap();
        up.write_all(&forwarded).unwrap();
        let mut answer = Vec::new();
        let _ = up.read_to_end(&mut answer);
        let _ = conn.write_all(&answer);
        return;
    }
    let body: Value = serde_json::from_slice(&body_bytes).unwrap_or(Value::Null);
    state
        .lock()
        .unwrap()
        .requests
        .push((method.clone(), path.clone(), body.clone()));
    if header("authorization") != Some(KEY) || header("accept") != Some("application/json") {
        return respond(
            &mut conn,
            403,
            &json!({"name": "Authentication failed.", "message": "Authentication failed.", "url": path}),
        );
    }
    let id_at = |i: usize| segs.get(i).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    match segs[..] {
        ["events", "add"] => {
            let e = &body["Event"];
            let id = next_id.fetch_add(1, Ordering::SeqCst);
            let mut event = Event::new(id, e["info"].as_str().unwrap_or(""));
            event.published = false;
            event.publish_timestamp = 0;
            event.distribution = e["distribution"].as_u64().unwrap_or(1) as u8;
            for (i, t) in e["Tag"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                event.tags.push(Tag::new(
                    900 + i as u64,
                    t["name"].as_str().unwrap(),
                    "#ff00ff",
                ));
            }
            state.lock().unwrap().events.push(event.clone());
            double.add_event(event.clone());
            let tags: Vec<Value> = event
                .tags
                .iter()
                .map(|t| json!({"id": t.id.to_string(), "name": t.name}))
                .collect();
            respond(
                &mut conn,
                200,
                &json!({"Event": {"id": id.to_string(), "uuid": event.uuid, "info": event.info, "published": false, "distribution": event.distribution.to_string(), "Tag": tags}}),
            );
        }
        ["attributes", "add", _] => {
            let event_id = id_at(2);
            if !state
                .lock()
                .unwrap()
                .events
                .iter()
                .any(|e| e.id == event_id)
            {
                return respond(
                    &mut conn,
                    404,
                    &json!({"name": "Invalid event", "message": "Invalid event", "url": path}),
                );
            }
            let id = next_id.fetch_add(1, Ordering::SeqCst);
            let mut a = Attribute::new(
                id,
                event_id,
                body["type"].as_str().unwrap(),
                body["value"].as_str().unwrap(),
            );
            a.to_ids = body["to_ids"] == true;
            a.comment = body["comment"].as_str().unwrap_or("").to_string();
            double.add_attribute(a.clone());
            respond(
                &mut conn,
                200,
                &json!({"Attribute": {"id": id.to_string(), "event_id": event_id.to_string(), "type": a.kind, "value": a.value, "to_ids": a.to_ids}}),
            );
        }
        ["events", "publish", _] => {
            let id = id_at(2);
            if mode == FrontMode::PublishRefused {
                return respond(
                    &mut conn,
                    403,
                    &json!({"saved": false, "name": "Could not publish Event", "message": "Could not publish Event", "url": path, "errors": "You do not have permission to do that.", "id": id.to_string()}),
                );
            }
            respond(
                &mut conn,
                200,
                &json!({"saved": true, "success": true, "name": "Job queued", "message": "Job queued", "url": path, "id": id.to_string()}),
            );
            // The background job publishes a moment later.
            std::thread::sleep(Duration::from_millis(300));
            let st = state.lock().unwrap();
            if let Some(e) = st
                .events
                .iter()
                .find(|e| e.id == id)
                .filter(|_| !st.deleted.contains(&id))
            {
                let mut e = e.clone();
                e.published = true;
                e.publish_timestamp = 1_764_226_800;
                double.add_event(e);
            }
        }
        ["events", "delete", _] => {
            let id = id_at(2);
            let mut st = state.lock().unwrap();
            if !st.events.iter().any(|e| e.id == id) || !st.deleted.insert(id) {
                return respond(
                    &mut conn,
                    403,
                    &json!({"saved": false, "name": "Could not delete Event", "message": "Event was not deleted.", "url": path, "errors": "Event was not deleted."}),
                );
            }
            let mut ds = double.dataset();
            ds.events.retain(|e| e.id != id);
            ds.attributes.retain(|a| a.event_id != id);
            double.set_dataset(ds);
            respond(
                &mut conn,
                200,
                &json!({"saved": true, "success": true, "name": "Event deleted.", "message": "Event deleted.", "url": path, "id": id.to_string()}),
            );
        }
        _ => unreachable!(),
    }
}

// ---------------------------------------------------------------------------------------------
// Scenarios

#[test]
fn every_stage_passes_when_misp_knows_the_test_ip() {
    let double = double_knowing_the_test_ip();
    let m = installed_home(&double.url());
    let stand_in = StandIn::start(m.path(), Mode::default());
    let (r, out) = self_test(m.path(), &opts(LONG));
    assert!(r.passed, "{out}");
    assert_eq!(r.exit_code, 0);
    for id in [
        StageId::Preconditions,
        StageId::TestIndicator,
        StageId::Inject,
        StageId::TriggerAlert,
        StageId::EnrichedAlert,
    ] {
        assert_eq!(status(&r, id), Status::Pass, "{id:?}: {out}");
    }
    assert!(r.stage(StageId::Cleanup).is_none(), "nothing was created");
    assert_eq!(r.test_ip.as_deref(), Some(DEFAULT_TEST_IP));
    assert_eq!(r.sample_rule_id, Some(rules::sample_rule_id(BASE)));
    // The line went in as logcollector frames it, and the stock decoder reads it.
    let seen = stand_in.seen();
    assert_eq!(seen.lines.len(), 1);
    assert_eq!(Some(&seen.lines[0]), r.log_line.as_ref());
    assert!(seen.problems.is_empty(), "{:?}", seen.problems);
    assert_eq!(
        seen.runs,
        [Some(0)],
        "the integration ran once, successfully"
    );
    assert_eq!(seen.events.len(), 1);
    assert_eq!(seen.events[0]["misp"]["value"], DEFAULT_TEST_IP);
    // Stage B is the enriched alert of stage A's alert.
    let a = r
        .stage(StageId::TriggerAlert)
        .unwrap()
        .alert
        .clone()
        .unwrap();
    let b = r
        .stage(StageId::EnrichedAlert)
        .unwrap()
        .alert
        .clone()
        .unwrap();
    assert_eq!(b["data"]["misp"]["alert"]["id"], a["id"]);
    assert_eq!(b["rule"]["id"], (BASE + 1).to_string());
    // The readable report: a tick and a time per stage, and the verdict.
    for line in [
        "✔ preconditions: all in place",
        &format!("✔ test indicator known to MISP: MISP knows {DEFAULT_TEST_IP}: event 50"),
        "✔ sshd log line injected into analysisd",
        &format!(
            "✔ stage A: the self-test rule's alert in alerts.json: rule {}",
            rules::sample_rule_id(BASE)
        ),
        &format!(
            "✔ stage B: wazuh-misp's enriched alert in alerts.json: rule {}",
            BASE + 1
        ),
        "result: PASSED",
    ] {
        assert!(out.contains(line), "{line:?} in\n{out}");
    }
    assert!(out.contains(" ms)") || out.contains(" s)"), "{out}");
    assert!(!out.contains(KEY), "the key never shows");
}

#[test]
fn json_report_for_a_given_test_ip() {
    let double = MispDouble::http();
    let m = installed_home(&double.url());
    let _stand_in = StandIn::start(m.path(), Mode::default());
    let o = SelfTestOptions {
        test_ip: Some(seed::BRUTE_FORCE_IP.into()),
        json: true,
        ..opts(LONG)
    };
    let mut out = Vec::new();
    let code = selftest::run(m.path(), &o, &mut out).unwrap();
    let v: Value = serde_json::from_slice(&out).expect("one JSON document");
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["passed"], true);
    assert_eq!(v["exit_code"], 0);
    assert_eq!(v["test_ip"], seed::BRUTE_FORCE_IP);
    assert!(v["log_line"].as_str().unwrap().contains(&format!(
        "Invalid user wazuh-misp-selftest from {} port ",
        seed::BRUTE_FORCE_IP
    )));
    let stages: Vec<(&str, &str)> = v["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["stage"].as_str().unwrap(), s["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        stages,
        [
            ("preconditions", "pass"),
            ("test_indicator", "pass"),
            ("inject", "pass"),
            ("trigger_alert", "pass"),
            ("enriched_alert", "pass")
        ]
    );
    let b = &v["stages"][4];
    assert_eq!(
        b["alert"]["data"]["misp"]["event_info"],
        "SSH brute force sources"
    );
    assert!(b["elapsed_ms"].is_u64());
    assert!(v["stages"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["id"] == "rules"));
}

#[test]
fn analysisd_silent_means_no_stage_a() {
    let double = double_knowing_the_test_ip();
    let m = installed_home(&double.url());
    let stand_in = StandIn::start(
        m.path(),
        Mode {
            analysisd: false,
            ..Mode::default()
        },
    );
    let (r, out) = self_test(m.path(), &opts(SHORT));
    assert_eq!(r.exit_code, 1, "{out}");
    assert_eq!(status(&r, StageId::Inject), Status::Pass);
    assert_eq!(status(&r, StageId::TriggerAlert), Status::Fail, "{out}");
    assert_eq!(status(&r, StageId::EnrichedAlert), Status::Skip);
    assert_eq!(stand_in.seen().lines.len(), 1, "the line was sent");
    let a = r.stage(StageId::TriggerAlert).unwrap();
    assert!(
        a.summary
            .starts_with("no alert for the injected line within"),
        "{}",
        a.summary
    );
    let c = causes(&r, StageId::TriggerAlert);
    assert!(c.contains("does not have the self-test rule"), "{c}");
    assert!(c.contains("log_alert_level"), "{c}");
    assert!(c.contains("decoder"), "{c}");
    assert!(c.contains("wazuh-logtest"), "{c}");
    assert!(out.contains("✘ stage A"), "{out}");
    assert!(
        out.contains("· stage B: wazuh-misp's enriched alert in alerts.json: not reached"),
        "{out}"
    );
    assert!(out.contains("result: FAILED (stage A)"), "{out}");
}

#[test]
fn another_rule_than_the_self_test_rule_is_named() {
    let double = double_knowing_the_test_ip();
    let m = installed_home(&double.url());
    let _stand_in = StandIn::start(
        m.path(),
        Mode {
            fire: Fire::Stock5710,
            ..Mode::default()
        },
    );
    let (r, out) = self_test(m.path(), &opts(SHORT));
    assert_eq!(status(&r, StageId::TriggerAlert), Status::Fail, "{out}");
    let a = r.stage(StageId::TriggerAlert).unwrap();
    assert!(
        a.summary.contains(&format!("with rule 5710 (level 5: sshd: Attempt to login using a non-existent user) instead of the self-test rule {}", rules::sample_rule_id(BASE))),
        "{}",
        a.summary
    );
    assert!(
        causes(&r, StageId::TriggerAlert).contains("restart the manager"),
        "{out}"
    );
    // integratord still ran us on rule 5710's alert, and that worked.
    assert_eq!(status(&r, StageId::EnrichedAlert), Status::Pass, "{out}");
    assert_eq!(r.exit_code, 1);
}

#[test]
fn integratord_silent_means_stage_a_without_b() {
    let double = double_knowing_the_test_ip();
    let m = installed_home(&double.url());
    std::fs::remove_file(m.file(&format!(
        "var/run/wazuh-integratord-{}.pid",
        std::process::id()
    )))
    .unwrap();
    let stand_in = StandIn::start(
        m.path(),
        Mode {
            integratord: false,
            ..Mode::default()
        },
    );
    let (r, out) = self_test(m.path(), &opts(SHORT));
    assert_eq!(
        status(&r, StageId::Preconditions),
        Status::Pass,
        "a warning only: {out}"
    );
    assert_eq!(status(&r, StageId::TriggerAlert), Status::Pass, "{out}");
    assert_eq!(status(&r, StageId::EnrichedAlert), Status::Fail, "{out}");
    assert!(stand_in.seen().runs.is_empty());
    let b = r.stage(StageId::EnrichedAlert).unwrap();
    assert!(
        b.summary
            .starts_with("no enriched alert from wazuh-misp within"),
        "{}",
        b.summary
    );
    let c = causes(&r, StageId::EnrichedAlert);
    let first = &b.causes[0];
    assert!(
        first.contains("wazuh-integratord does not run"),
        "the observed cause first: {c}"
    );
    assert!(
        c.contains(&format!(
            "wazuh-misp did not ask MISP about {DEFAULT_TEST_IP}: integratord did not run it"
        )),
        "{c}"
    );
    assert!(out.contains("⚠ integratord"), "{out}");
    assert_eq!(
        b.log_lines,
        ["logs/ossec.log: 2026/11/27 07:00:01 wazuh-integratord: ERROR: Couldn't execute command (integrations/custom-misp /tmp/custom-misp-1764226800-1.alert    10 3 > /dev/null 2>&1). Check file and permissions."],
        "{out}"
    );
    assert_eq!(r.exit_code, 1);
}

#[test]
fn misp_not_knowing_the_test_ip_is_the_reason_for_no_stage_b() {
    let double = MispDouble::http();
    let m = installed_home(&double.url());
    let stand_in = StandIn::start(m.path(), Mode::default());
    let o = SelfTestOptions {
        test_ip: Some(UNKNOWN_IP.into()),
        ..opts(SHORT)
    };
    let (r, out) = self_test(m.path(), &o);
    let i = r.stage(StageId::TestIndicator).unwrap();
    assert_eq!(i.status, Status::Fail, "{out}");
    assert!(
        i.summary
            .contains(&format!("MISP does not know {UNKNOWN_IP}")),
        "{}",
        i.summary
    );
    assert!(
        i.causes[0].contains("needs an IP that MISP knows")
            && i.causes[0].contains("--create-test-ioc"),
        "{out}"
    );
    assert_eq!(status(&r, StageId::TriggerAlert), Status::Pass, "{out}");
    assert_eq!(status(&r, StageId::EnrichedAlert), Status::Fail, "{out}");
    assert!(
        causes(&r, StageId::EnrichedAlert)
            .contains(&format!("asked MISP, which does not know {UNKNOWN_IP}")),
        "{out}"
    );
    assert_eq!(
        stand_in.seen().runs,
        [Some(0)],
        "the integration ran and found nothing"
    );
    assert!(stand_in.seen().events.is_empty());
}

#[test]
fn misp_down_shows_the_error_event() {
    let double = double_knowing_the_test_ip();
    double.set_fault(Fault::ServerErrorHtml);
    let m = installed_home(&double.url());
    let _stand_in = StandIn::start(m.path(), Mode::default());
    let (r, out) = self_test(m.path(), &opts(LONG));
    let i = r.stage(StageId::TestIndicator).unwrap();
    assert_eq!(i.status, Status::Fail);
    assert!(
        i.summary.starts_with(&format!(
            "cannot ask MISP about {DEFAULT_TEST_IP}: MISP server"
        )),
        "{}",
        i.summary
    );
    assert_eq!(status(&r, StageId::TriggerAlert), Status::Pass, "{out}");
    let b = r.stage(StageId::EnrichedAlert).unwrap();
    assert_eq!(b.status, Status::Fail, "{out}");
    assert!(
        b.summary.contains("error event kind server (HTTP 500)"),
        "{}",
        b.summary
    );
    assert!(
        b.causes[0].starts_with("server: MISP failed with a server error"),
        "{:?}",
        b.causes
    );
    assert_eq!(
        b.alert.as_ref().unwrap()["rule"]["id"],
        (BASE + 12).to_string()
    );
    assert!(out.contains("✘ stage B"), "{out}");
}

#[test]
fn a_hit_without_our_alert_points_at_our_rules() {
    let double = double_knowing_the_test_ip();
    let m = installed_home(&double.url());
    let stand_in = StandIn::start(
        m.path(),
        Mode {
            our_rules: false,
            ..Mode::default()
        },
    );
    let (r, out) = self_test(m.path(), &opts(SHORT));
    assert_eq!(stand_in.seen().events.len(), 1, "our event was sent");
    assert_eq!(status(&r, StageId::EnrichedAlert), Status::Fail, "{out}");
    assert!(
        causes(&r, StageId::EnrichedAlert).contains("MISP knew 192.31.196.200, so its event went to analysisd, but no alert came of it: analysisd does not have our rules"),
        "{out}"
    );
}

#[test]
fn alerts_json_rotated_during_the_test_is_followed() {
    let double = double_knowing_the_test_ip();
    let m = installed_home(&double.url());
    std::fs::write(m.file("logs/alerts/alerts.json"), "{\"id\":\"old\"}\n").unwrap();
    let _stand_in = StandIn::start(
        m.path(),
        Mode {
            rotate: true,
            ..Mode::default()
        },
    );
    let (r, out) = self_test(m.path(), &opts(LONG));
    assert!(r.passed, "{out}");
}

#[test]
fn create_test_ioc_creates_publishes_and_deletes_the_event() {
    let front = Front::start(MispDouble::http(), FrontMode::Normal);
    let m = installed_home(&front.url());
    let stand_in = StandIn::start(m.path(), Mode::default());
    let o = SelfTestOptions {
        create_test_ioc: true,
        ..opts(LONG)
    };
    let (r, out) = self_test(m.path(), &o);
    assert!(r.passed, "{out}");
    assert_eq!(status(&r, StageId::Cleanup), Status::Pass, "{out}");
    let reqs = front.requests();
    let calls: Vec<(&str, &str)> = reqs
        .iter()
        .map(|(m, p, _)| (m.as_str(), p.as_str()))
        .collect();
    assert_eq!(
        calls,
        [
            ("POST", "/events/add"),
            ("POST", "/attributes/add/1000"),
            ("POST", "/events/publish/1000"),
            ("POST", "/events/delete/1000")
        ]
    );
    let event = &reqs[0].2["Event"];
    assert_eq!(event["info"], TEST_EVENT_INFO);
    assert_eq!(event["distribution"], 0);
    assert_eq!(event["Tag"][0]["name"], TEST_EVENT_TAG);
    let attr = &reqs[1].2;
    assert_eq!(
        (
            attr["type"].as_str(),
            attr["value"].as_str(),
            &attr["to_ids"]
        ),
        (Some("ip-src"), Some(DEFAULT_TEST_IP), &json!(true))
    );
    // The integration found the created attribute.
    assert_eq!(stand_in.seen().events[0]["misp"]["event_id"], "1000");
    assert_eq!(
        stand_in.seen().events[0]["misp"]["event_info"],
        TEST_EVENT_INFO
    );
    // Gone from MISP, and from the lookup cache.
    assert!(front.double.dataset().event(1000).is_none());
    assert!(front
        .double
        .dataset()
        .attributes
        .iter()
        .all(|a| a.event_id != 1000));
    let hits = std::fs::read_dir(m.file("var/custom-misp/hits")).map_or(0, |d| d.count());
    assert_eq!(hits, 0, "the cached hit for the deleted event is forgotten");
    assert!(
        out.contains(
            "✔ cleanup: test event deleted from MISP: MISP event 1000 deleted (Event deleted.)"
        ),
        "{out}"
    );
    assert!(out.contains("MISP on publishing: Job queued"), "{out}");
}

#[test]
fn the_test_event_is_deleted_even_when_a_later_stage_fails() {
    let front = Front::start(MispDouble::http(), FrontMode::Normal);
    let m = installed_home(&front.url());
    let _stand_in = StandIn::start(
        m.path(),
        Mode {
            analysisd: false,
            ..Mode::default()
        },
    );
    let o = SelfTestOptions {
        create_test_ioc: true,
        ..opts(SHORT)
    };
    let (r, out) = self_test(m.path(), &o);
    assert_eq!(status(&r, StageId::TestIndicator), Status::Pass, "{out}");
    assert_eq!(status(&r, StageId::TriggerAlert), Status::Fail, "{out}");
    assert_eq!(status(&r, StageId::Cleanup), Status::Pass, "{out}");
    assert_eq!(front.requests().last().unwrap().1, "/events/delete/1000");
    assert!(front.double.dataset().event(1000).is_none());
    assert_eq!(r.exit_code, 1);
}

#[test]
fn a_refused_publish_reports_the_permission_and_still_deletes_the_event() {
    let front = Front::start(MispDouble::http(), FrontMode::PublishRefused);
    let m = installed_home(&front.url());
    let _stand_in = StandIn::start(m.path(), Mode::default());
    let o = SelfTestOptions {
        create_test_ioc: true,
        ..opts(SHORT)
    };
    let (r, out) = self_test(m.path(), &o);
    let i = r.stage(StageId::TestIndicator).unwrap();
    assert_eq!(i.status, Status::Fail, "{out}");
    assert!(
        i.summary
            .starts_with("publishing the test event failed: MISP auth"),
        "{}",
        i.summary
    );
    assert!(i.causes[0].contains("perm_publish"), "{:?}", i.causes);
    assert_eq!(status(&r, StageId::Cleanup), Status::Pass, "{out}");
    assert!(front.double.dataset().event(1000).is_none());
    // The rest still ran: stage A happened, and the unpublished event matched nothing.
    assert_eq!(status(&r, StageId::TriggerAlert), Status::Pass, "{out}");
    assert_eq!(status(&r, StageId::EnrichedAlert), Status::Fail, "{out}");
}

/// Asserts that the preconditions failed on `id` with a fix mentioning `fix`, and that nothing
/// was injected.
fn assert_precondition(home: &Path, o: &SelfTestOptions, id: &str, detail: &str, fix: &str) {
    let (r, out) = self_test(home, o);
    assert_eq!(r.exit_code, 1, "{out}");
    let pre = r.stage(StageId::Preconditions).unwrap();
    assert_eq!(pre.status, Status::Fail, "{out}");
    let c = pre
        .checks
        .iter()
        .find(|c| c.id == id && c.status == Status::Fail);
    let c = c.unwrap_or_else(|| panic!("{id} fails: {out}"));
    assert!(c.detail.contains(detail), "{id} detail {detail:?}: {out}");
    assert!(
        c.fix.as_deref().unwrap_or("").contains(fix),
        "{id} fix {fix:?}: {out}"
    );
    assert!(out.contains(&format!("✘ {id}")), "{out}");
    for s in [
        StageId::TestIndicator,
        StageId::Inject,
        StageId::TriggerAlert,
        StageId::EnrichedAlert,
    ] {
        assert_eq!(status(&r, s), Status::Skip, "{s:?}: {out}");
    }
}

#[test]
fn each_missing_precondition_stops_the_test_with_its_fix() {
    let double = double_knowing_the_test_ip();
    let o = opts(SHORT);

    // No settings at all.
    let m = Manager::new();
    assert_precondition(m.path(), &o, "settings", "not found", "wazuh-misp setup");

    // Settings, but not installed: no rules, no block.
    let m = Manager::new();
    m.write_settings(&json!({"version": 1, "misp": {"url": double.url(), "api_key": KEY}}));
    assert_precondition(
        m.path(),
        &o,
        "rules",
        "custom-misp_rules.xml is missing",
        "wazuh-misp install --sample-rule",
    );
    assert_precondition(
        m.path(),
        &o,
        "integration_block",
        "no <integration> block for custom-misp",
        "wazuh-misp setup",
    );

    // Installed without the self-test rule.
    let m = Manager::new();
    m.write_settings(&json!({"version": 1, "misp": {"url": double.url(), "api_key": KEY}, "install": {"groups": ["authentication_failed"]}}));
    let out = m.wazuh_misp(&["install"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_precondition(
        m.path(),
        &o,
        "rules",
        "has no self-test rule",
        "--sample-rule",
    );

    // Installed, but analysisd is down (no queue socket) and alerts.json was never written.
    let m = installed_home(&double.url());
    std::fs::remove_file(m.file("logs/alerts/alerts.json")).unwrap();
    assert_precondition(
        m.path(),
        &o,
        "queue_socket",
        "queue/sockets/queue is unavailable",
        "start the manager",
    );
    assert_precondition(
        m.path(),
        &o,
        "alerts_json",
        "does not exist",
        "jsonout_output",
    );

    // A test IP the integration never looks up.
    let m = installed_home(&double.url());
    let stand_in = StandIn::start(m.path(), Mode::default());
    let private = SelfTestOptions {
        test_ip: Some("10.1.2.3".into()),
        ..o.clone()
    };
    assert_precondition(
        m.path(),
        &private,
        "test_ip",
        "10.1.2.3 is not a global address",
        "public address",
    );
    let nonsense = SelfTestOptions {
        test_ip: Some("not-an-ip".into()),
        ..o.clone()
    };
    assert_precondition(
        m.path(),
        &nonsense,
        "test_ip",
        "is not an IP address",
        "--test-ip",
    );
    let allowlisted_home = installed_home(&double.url());
    let _other = StandIn::start(allowlisted_home.path(), Mode::default());
    let mut settings: Value =
        serde_json::from_slice(&allowlisted_home.read("etc/custom-misp.json").unwrap()).unwrap();
    settings["allowlist"] = json!({"cidrs": ["192.31.196.0/24"]});
    allowlisted_home.write_settings(&settings);
    assert_precondition(
        allowlisted_home.path(),
        &o,
        "test_ip",
        "is in allowlist.cidrs",
        "allowlist.cidrs",
    );
    assert!(stand_in.seen().lines.is_empty(), "nothing was injected");
}

#[test]
fn filters_that_miss_the_self_test_rule_are_a_warning_and_the_first_cause() {
    let double = double_knowing_the_test_ip();
    let m = installed_home(&double.url());
    // The admin narrowed the block by hand to a group the self-test rule lacks: ours is still
    // intact only if we edit through the installer, so rewrite the settings and reinstall
    // without the sample rule's groups, then put the old rules back.
    let rules_file = m.read("etc/rules/custom-misp_rules.xml").unwrap();
    let mut settings: Value =
        serde_json::from_slice(&m.read("etc/custom-misp.json").unwrap()).unwrap();
    settings["install"]["groups"] = json!(["sysmon_event1"]);
    settings["install"]["sample_rule"] = json!(false);
    m.write_settings(&settings);
    let out = m.wazuh_misp(&["install"]);
    assert!(out.status.success(), "{}", text(&out));
    std::fs::write(m.file("etc/rules/custom-misp_rules.xml"), rules_file).unwrap();
    daemons_started(&m, &["wazuh-analysisd", "wazuh-integratord"]);
    let _stand_in = StandIn::start(
        m.path(),
        Mode {
            integratord: false,
            ..Mode::default()
        },
    );
    let (r, out) = self_test(m.path(), &opts(SHORT));
    let pre = r.stage(StageId::Preconditions).unwrap();
    let block = pre
        .checks
        .iter()
        .find(|c| c.id == "integration_block")
        .unwrap();
    assert_eq!(block.status, Status::Warn, "{out}");
    assert!(
        block.detail.contains("<group>sysmon_event1</group>"),
        "{out}"
    );
    let b = r.stage(StageId::EnrichedAlert).unwrap();
    assert_eq!(b.status, Status::Fail);
    assert!(
        b.causes[0].contains("the block's filters do not pass the self-test rule"),
        "{out}"
    );
}

/// Ctrl-C while the test waits: the test event is still deleted, and the exit code is 130. The
/// scenario runs in a child process of this test binary, so that the signal reaches no other
/// test.
#[test]
fn ctrl_c_while_waiting_still_deletes_the_test_event() {
    use std::io::BufRead;
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "interrupted_scenario",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env("SELFTEST_INTERRUPTED_SCENARIO", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("waiting up to") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("the child reaches the wait");
    // SAFETY: signals our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let stderr = reader.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("test interrupted_scenario ... ok"),
        "{stdout}\n{stderr}"
    );
}

#[test]
#[ignore = "run in its own process by ctrl_c_while_waiting_still_deletes_the_test_event"]
fn interrupted_scenario() {
    assert!(
        std::env::var_os("SELFTEST_INTERRUPTED_SCENARIO").is_some(),
        "only as a child of ctrl_c_while_waiting_still_deletes_the_test_event: it expects a SIGINT"
    );
    let front = Front::start(MispDouble::http(), FrontMode::Normal);
    let m = installed_home(&front.url());
    let _stand_in = StandIn::start(
        m.path(),
        Mode {
            analysisd: false,
            ..Mode::default()
        },
    );
    let o = SelfTestOptions {
        create_test_ioc: true,
        ..opts(Duration::from_secs(60))
    };
    let started = std::time::Instant::now();
    let report = selftest::execute(m.path(), &o, &mut |line| eprintln!("{line}"));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the wait ended early"
    );
    assert!(report.interrupted);
    assert_eq!(report.exit_code, 130);
    assert_eq!(status(&report, StageId::Cleanup), Status::Pass);
    assert!(front.double.dataset().event(1000).is_none());
    let mut out = Vec::new();
    selftest::write_report(&report, false, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("(interrupted)") && text.contains("result: INTERRUPTED"),
        "{text}"
    );
}
