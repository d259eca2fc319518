//! `cargo bench --bench mirror`: what mirror mode costs. (1) A full `wazuh-misp sync --full` of a
//! 1,000,000-attribute MISP (the double's generated instance): wall time, peak RSS of the sync
//! process, the mirror's size, attributes stored, requests, and the double's own share (measured by
//! replaying the sync's recorded requests against the double from a raw HTTP/1.1 client). (2) An
//! incremental `wazuh-misp sync` after 100 of 100,000 events changed the way MISP users change them
//! (an attribute edited or added, then the event published), with the double's share measured the
//! same way. (3) One alert in mirror mode as integratord runs it (fork/exec the installed release
//! binary, wait, count the datagrams analysisd got) against a 1,000- and a 1,000,000-attribute
//! mirror, hit and miss, a hit with sightings on (the spool append), next to the `/bin/true` floor
//! and online mode (cache miss over HTTP).
//! Numbers are printed, never asserted.
//!
//! `BENCH_SYNC_ATTRS` (1,000,000), `BENCH_INCR_EVENTS` (100,000), `BENCH_INCR_CHANGED` (100),
//! `BENCH_RUNS` (300) change the sizes.

use misp_double::{Attribute, Dataset, MispDouble, Options, DEFAULT_API_KEY};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_wazuh-misp");
const SEED: u64 = 7;
/// Attributes per event of `Dataset::generated`, on average (16,920 events per 1,000,000).
const ATTRS_PER_EVENT: usize = 60;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn main() {
    if let Some(report) = std::env::var_os(REAP_ENV) {
        reap_main(report);
    }
    let sync_attrs = env_usize("BENCH_SYNC_ATTRS", 1_000_000);
    let incr_events = env_usize("BENCH_INCR_EVENTS", 100_000);
    let incr_changed = env_usize("BENCH_INCR_CHANGED", 100);
    let runs = env_usize("BENCH_RUNS", 300);
    let bench_started = Instant::now();
    println!("wazuh-misp mirror benchmark ({} cores)", cores());

    // ------------------------------------------------------------------ 1. full sync
    println!("\n== 1. full sync of {sync_attrs} generated attributes ==");
    let big_home = Home::new("mirror");
    let t = Instant::now();
    let ds = Dataset::generated(sync_attrs, SEED);
    let (events, generated_in) = (ds.events.len(), t.elapsed());
    let big = MispDouble::start(Options {
        dataset: ds,
        ..Options::default()
    });
    println!(
        "double: {sync_attrs} attributes in {events} events, generated in {:.2} s",
        generated_in.as_secs_f64()
    );
    let big_hit = big.with_dataset(pick_hit_ip);
    big_home.write_settings(&mirror_settings(&big.url(), "mirror"));
    big.clear_requests();
    let full = big_home.sync(true);
    let (replayed, replay_n) = replay(&big);
    print_sync(&full);
    let stats = big_home.mirror_stats();
    println!(
        "mirror: {:.1} MiB on disk, {} attributes stored ({} index keys), {} events",
        stats["size"].as_u64().unwrap_or(0) as f64 / (1 << 20) as f64,
        stats["meta"]["attributes"],
        stats["meta"]["keys"]
            .as_object()
            .map_or(0, |k| k.values().filter_map(Value::as_u64).sum::<u64>()),
        stats["meta"]["events"]
    );
    print_double_share(&full, replayed, replay_n);
    drop(big);
    native_lists(&big_home);

    // ------------------------------------------------------------------ 2. incremental sync
    let attrs = incr_events * ATTRS_PER_EVENT + incr_events * ATTRS_PER_EVENT / 20;
    println!("\n== 2. incremental sync: {incr_changed} of {incr_events} events changed ==",);
    let t = Instant::now();
    let mut ds = Dataset::generated(attrs, SEED + 1);
    ds.events.truncate(incr_events);
    ds.attributes.retain(|a| a.event_id <= incr_events as u64);
    println!(
        "double: {} attributes in {} events, generated in {:.2} s",
        ds.attributes.len(),
        ds.events.len(),
        t.elapsed().as_secs_f64()
    );
    let newest = ds.events.iter().map(|e| e.timestamp).max().unwrap_or(0);
    let incr = MispDouble::start(Options {
        dataset: ds,
        ..Options::default()
    });
    let incr_home = Home::new("incremental");
    incr_home.write_settings(&mirror_settings(&incr.url(), "mirror"));
    let base = incr_home.sync(true);
    println!(
        "baseline full sync (untimed setup): {:.2} s wall, {} attributes stored, peak RSS {:.0} MiB",
        base.usage.wall.as_secs_f64(),
        base.json["attributes"],
        base.usage.max_rss_kib as f64 / 1024.0
    );
    let noop = incr_home.sync(false);
    println!(
        "incremental sync with nothing changed: {:.0} ms wall, {} requests, changed {}",
        noop.usage.wall.as_secs_f64() * 1e3,
        noop.json["requests"],
        noop.json["changed"]
    );
    // An hour after the newest event, as MISP users would: half the events get an attribute
    // edited, half a new one, then each is published again.
    incr.set_clock(Some(newest + 3600));
    let targets: Vec<(u64, u64)> = incr.with_dataset(|d| {
        let mut first_live: std::collections::HashMap<u64, u64> = Default::default();
        for a in d.attributes.iter().filter(|a| !a.deleted && a.to_ids) {
            first_live.entry(a.event_id).or_insert(a.id);
        }
        let live: Vec<(u64, u64)> = d
            .events
            .iter()
            .filter(|e| e.published && !e.protected)
            .filter_map(|e| first_live.get(&e.id).map(|a| (e.id, *a)))
            .collect();
        let step = (live.len() / incr_changed.max(1)).max(1);
        live.into_iter().step_by(step).take(incr_changed).collect()
    });
    for (i, (event, attr)) in targets.iter().enumerate() {
        if i % 2 == 0 {
            assert!(incr.edit_attribute(*attr, |a| a.comment = format!("edited by bench {i}")));
        } else {
            let mut a = Attribute::new(
                0,
                *event,
                "ip-dst",
                &format!("2.254.{}.{}", i / 250, i % 250 + 1),
            );
            a.uuid = format!("6d697272-6f72-4265-8e63-{i:012x}");
            assert!(incr.add_attribute_as_user(a).is_some());
        }
        incr.advance_clock(1);
        assert!(incr.publish_event(*event));
    }
    incr.clear_requests();
    let inc = incr_home.sync(false);
    let (replayed, replay_n) = replay(&incr);
    print_sync(&inc);
    print_double_share(&inc, replayed, replay_n);
    println!(
        "  mirror rewritten: {:.1} MiB on disk",
        incr_home.mirror_stats()["size"].as_u64().unwrap_or(0) as f64 / (1 << 20) as f64
    );
    drop(incr);

    // ------------------------------------------------------------------ 3. per alert
    println!("\n== 3. per alert, fork/exec + wait as integratord does, {runs} runs per case ==");
    let small = MispDouble::start(Options {
        dataset: Dataset::generated(1_000, SEED + 2),
        ..Options::default()
    });
    let small_hit = small.with_dataset(pick_hit_ip);
    let small_home = Home::new("small");
    let small_home_url = small.url();
    small_home.write_settings(&mirror_settings(&small_home_url, "mirror"));
    let s = small_home.sync(true);
    println!(
        "1k mirror: {} attributes stored, {} KiB; 1M mirror: {} attributes stored, {:.1} MiB",
        s.json["attributes"],
        small_home.mirror_stats()["size"].as_u64().unwrap_or(0) / 1024,
        full.json["attributes"],
        stats["size"].as_u64().unwrap_or(0) as f64 / (1 << 20) as f64
    );
    drop(small);
    let online = MispDouble::http();
    let online_home = Home::new("online");
    online_home.write_settings(&mirror_settings(&online.url(), "online"));

    println!("{:<52} {:>10} {:>10}", "case", "median", "p95");
    let floor = measure(runs, || {
        Command::new("/bin/true").status().map(|_| ()).unwrap()
    });
    report("/bin/true (fork/exec floor)", &floor);
    let miss_ip = "8.8.4.4"; // 8/8 is never generated
    for (label, home, hit) in [("1k", &small_home, &small_hit), ("1M", &big_home, &big_hit)] {
        let hit_alert = alert(hit);
        let got = home.run(&hit_alert);
        assert!(got > 0, "{label} mirror: {hit} should match");
        report(
            &format!("mirror {label}: hit ({got} event(s))"),
            &measure(runs, || assert_eq!(home.run(&hit_alert), got)),
        );
        let miss_alert = alert(miss_ip);
        report(
            &format!("mirror {label}: miss"),
            &measure(runs, || assert_eq!(home.run(&miss_alert), 0)),
        );
    }
    // Native matching: the alert of one of our CDB rules (group misp_native), enriched from the
    // 1M mirror; every run is a new alert id, so each records itself in native-seen.
    let mut native_n = 0u64;
    let mut native_alert = alert(&big_hit);
    native_alert["rule"]["groups"] = json!([
        "sshd",
        "authentication_failed",
        "misp_native",
        "misp_native_ip"
    ]);
    report(
        "native hit, enriched from the 1M mirror",
        &measure(runs, || {
            native_n += 1;
            native_alert["id"] = json!(format!("1764300000.{native_n}"));
            assert!(big_home.run(&native_alert) > 0);
        }),
    );
    // Sightings on: a hit also appends to the spool (never a MISP request on the alert's path).
    let mut with_sightings = mirror_settings(&small_home_url, "mirror");
    with_sightings["sightings"] = json!({"enabled": true});
    small_home.write_settings(&with_sightings);
    let hit_alert = alert(&small_hit);
    let got = small_home.run(&hit_alert);
    report(
        &format!("mirror 1k: hit ({got} event(s)), sightings on"),
        &measure(runs, || assert_eq!(small_home.run(&hit_alert), got)),
    );
    small_home.write_settings(&mirror_settings(&small_home_url, "mirror"));
    let mut n = 0u32;
    let online_miss = measure(runs, || {
        n += 1;
        let ip = format!("8.{}.{}.{}", n / 65536 % 256, n / 256 % 256, n % 256);
        assert_eq!(online_home.run(&alert(&ip)), 0);
    });
    report("online: cache miss over http (1 round trip)", &online_miss);
    // Peak RSS of one alert, through the small helper (see `measured`).
    let mut rss = Vec::new();
    for (label, home, ip) in [
        ("1k hit", &small_home, small_hit.as_str()),
        ("1M hit", &big_home, big_hit.as_str()),
        ("1M miss", &big_home, miss_ip),
    ] {
        std::fs::write(&home.alert, format!("{}\n", alert(ip))).unwrap();
        let args: Vec<&std::ffi::OsStr> = [
            home.alert.as_os_str(),
            "".as_ref(),
            "".as_ref(),
            "".as_ref(),
            "".as_ref(),
            "10".as_ref(),
            "3".as_ref(),
            "> /dev/null 2>&1".as_ref(),
        ]
        .into();
        let (_, u) = measured(home.integration.to_str().unwrap(), &args);
        drain(&home.queue);
        rss.push(format!("{label} {:.1} MiB", u.max_rss_kib as f64 / 1024.0));
    }
    let (_, floor_rss) = measured("/bin/true", &[]);
    println!(
        "peak RSS of one alert in mirror mode: {} (/bin/true {:.1} MiB through the same helper; \
         reaped straight from this benchmark, which now peaks at {:.0} MiB, /bin/true would report {:.0} MiB)",
        rss.join(", "),
        floor_rss.max_rss_kib as f64 / 1024.0,
        self_hwm_kib() as f64 / 1024.0,
        direct_true_rss_kib() as f64 / 1024.0
    );
    println!(
        "whole benchmark {:.0} s",
        bench_started.elapsed().as_secs_f64()
    );
}

/// Native matching's lists from the 1M mirror, as `native::apply` builds them: every admitted key
/// per kind (IPv6 in its three spellings), rendered as CDB text lines, written atomically.
fn native_lists(home: &Home) {
    use wazuh_misp::lists::{self, cdb};
    println!("\n== 1b. native matching: CDB lists from that mirror ==");
    let loaded =
        wazuh_misp::settings::Settings::load(&home.path, &Default::default()).expect("settings");
    let t = Instant::now();
    let mirror = wazuh_misp::mirror::Mirror::open(&home.path.join("var/custom-misp/mirror.db"))
        .expect("mirror")
        .expect("a mirror");
    let by_kind = lists::keys_by_kind(&mirror, &loaded);
    let collected = t.elapsed();
    let dir = home.path.join("etc/lists/wazuh-misp");
    std::fs::create_dir_all(&dir).unwrap();
    let meta = wazuh_misp::wazuh::atomic::FileMeta {
        uid: nix_uid(),
        gid: nix_gid(),
        mode: 0o660,
    };
    let (mut keys, mut bytes) = (0usize, 0usize);
    let mut sizes = Vec::new();
    for (kind, k) in &by_kind {
        let (text, refused) = cdb::render(k, lists::LIST_VALUE);
        assert!(refused.is_empty());
        cdb::write_list(&dir.join(lists::list_name(*kind)), &text, meta).unwrap();
        keys += k.len();
        bytes += text.len();
        sizes.push(format!(
            "{kind} {} keys {:.1} MiB",
            k.len(),
            text.len() as f64 / (1 << 20) as f64
        ));
    }
    println!(
        "{keys} keys in {} lists, {:.1} MiB of text: collected from the mirror in {:.2} s, rendered and written in {:.2} s more ({})",
        by_kind.len(),
        bytes as f64 / (1 << 20) as f64,
        collected.as_secs_f64(),
        (t.elapsed() - collected).as_secs_f64(),
        sizes.join(", ")
    );
    // The next sync with nothing changed: collect, render and compare with the files on disk.
    let t = Instant::now();
    let again = lists::keys_by_kind(&mirror, &loaded);
    let same = again.iter().all(|(kind, k)| {
        std::fs::read(dir.join(lists::list_name(*kind))).ok()
            == Some(cdb::render(k, lists::LIST_VALUE).0)
    });
    assert!(same);
    println!(
        "the next sync's \"nothing changed\" check (collect, render, compare): {:.2} s",
        t.elapsed().as_secs_f64()
    );
}

fn nix_uid() -> u32 {
    // SAFETY: getuid cannot fail.
    unsafe { libc::getuid() }
}

fn nix_gid() -> u32 {
    // SAFETY: getgid cannot fail.
    unsafe { libc::getgid() }
}

/// This process's own peak RSS (KiB).
fn self_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// A Wazuh home with the installed integration, the analysisd queue and the state directory.
struct Home {
    _dir: tempfile::TempDir,
    path: PathBuf,
    integration: PathBuf,
    queue: UnixDatagram,
    alert: PathBuf,
}

impl Home {
    fn new(name: &str) -> Home {
        let dir = tempfile::Builder::new()
            .prefix(&format!("bench-mirror-{name}-"))
            .tempdir()
            .unwrap();
        let path = dir.path().to_path_buf();
        for d in [
            "etc",
            "logs",
            "queue/sockets",
            "integrations",
            "var/custom-misp",
        ] {
            std::fs::create_dir_all(path.join(d)).unwrap();
        }
        std::fs::set_permissions(
            path.join("var/custom-misp"),
            std::fs::Permissions::from_mode(0o770),
        )
        .unwrap();
        let integration = path.join("integrations/custom-misp");
        std::fs::copy(BIN, &integration).unwrap();
        std::fs::set_permissions(&integration, std::fs::Permissions::from_mode(0o750)).unwrap();
        let queue = UnixDatagram::bind(path.join("queue/sockets/queue")).unwrap();
        queue.set_nonblocking(true).unwrap();
        Home {
            alert: path.join("bench.alert"),
            _dir: dir,
            path,
            integration,
            queue,
        }
    }

    fn write_settings(&self, settings: &Value) {
        let p = self.path.join("etc/custom-misp.json");
        std::fs::write(&p, settings.to_string()).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
    }

    /// One alert as integratord runs it; the datagrams analysisd got.
    fn run(&self, alert_json: &Value) -> usize {
        std::fs::write(&self.alert, format!("{alert_json}\n")).unwrap();
        let status = Command::new(&self.integration)
            .arg0("integrations")
            .arg(&self.alert)
            .args(["", "", "", "", "10", "3", "> /dev/null 2>&1"])
            .current_dir(&self.path)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        drain(&self.queue)
    }

    /// `wazuh-misp sync [--full] --json`, timed, with the process's own rusage.
    fn sync(&self, full: bool) -> Run {
        let mut args = vec![
            "--wazuh-home".as_ref(),
            self.path.as_os_str(),
            "sync".as_ref(),
        ];
        if full {
            args.push("--full".as_ref());
        }
        args.push("--json".as_ref());
        let (out, usage) = measured(BIN, &args);
        let json: Value = serde_json::from_slice(&out)
            .unwrap_or_else(|e| panic!("sync: {e}: {}", String::from_utf8_lossy(&out)));
        assert_eq!(json["ok"], true, "sync failed: {json}");
        Run { json, usage }
    }

    fn mirror_stats(&self) -> Value {
        let out = Command::new(BIN)
            .arg("--wazuh-home")
            .arg(&self.path)
            .args(["mirror", "stats", "--json"])
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

struct Run {
    json: Value,
    usage: Usage,
}

fn mirror_settings(url: &str, mode: &str) -> Value {
    json!({"version": 1, "misp": {"url": url, "api_key": DEFAULT_API_KEY},
        "lookup": {"mode": mode},
        // Never stale while the benchmark runs (the runtime would log a notice, not stop).
        "mirror": {"max_age_s": 86_400 * 365}})
}

fn alert(srcip: &str) -> Value {
    json!({"id": "1", "rule": {"id": "5710", "level": 5, "description": "sshd"},
        "agent": {"id": "001", "name": "web-01", "ip": "10.0.0.11"}, "data": {"srcip": srcip}})
}

/// A public IPv4 the mirror holds: an `ip-src`/`ip-dst` attribute for detection, live, in a
/// published, unprotected event.
fn pick_hit_ip(d: &Dataset) -> String {
    let ok: std::collections::HashSet<u64> = d
        .events
        .iter()
        .filter(|e| e.published && !e.protected)
        .map(|e| e.id)
        .collect();
    let candidates: Vec<&Attribute> = d
        .attributes
        .iter()
        .filter(|a| {
            (a.kind == "ip-src" || a.kind == "ip-dst")
                && a.to_ids
                && !a.deleted
                && ok.contains(&a.event_id)
                && !a.value.contains(':')
                && !a.value.starts_with("10.")
        })
        .collect();
    // From the middle of the instance, not its first page.
    candidates[candidates.len() / 2].value.clone()
}

fn print_sync(r: &Run) {
    let j = &r.json;
    println!(
        "{} sync: {:.2} s wall (sync's own duration_ms {}), CPU {:.2} s ({:.2} user), peak RSS {:.1} MiB",
        j["kind"].as_str().unwrap_or("?"),
        r.usage.wall.as_secs_f64(),
        j["duration_ms"],
        (r.usage.user + r.usage.sys).as_secs_f64(),
        r.usage.user.as_secs_f64(),
        r.usage.max_rss_kib as f64 / 1024.0
    );
    println!(
        "  {} requests; {} events listed, {} read, {} dropped; {} attributes read ({} never matchable), {} stored",
        j["requests"],
        j["events_listed"],
        j["events_read"],
        j["events_dropped"],
        j["attributes_read"],
        j["attributes_skipped"],
        j["attributes"]
    );
}

fn print_double_share(r: &Run, replayed: Duration, n: usize) {
    let wall = r.usage.wall.as_secs_f64();
    let d = replayed.as_secs_f64();
    println!(
        "  the double: {n} recorded requests replayed from a raw HTTP/1.1 client (one keep-alive \
         connection, bodies read, not parsed) in {:.2} s = {:.0}% of the wall time; \
         wall minus the double: {:.2} s",
        d,
        100.0 * d / wall,
        (wall - d).max(0.0)
    );
}

/// Replays every request the double recorded (the sync's, in order) over one keep-alive
/// connection and reads each answer whole: the double's handling plus loopback transfer, which
/// the sync waits for on its critical path (it sends one request at a time). Returns the time
/// and the number of requests.
fn replay(misp: &MispDouble) -> (Duration, usize) {
    let requests = misp.requests();
    let mut stream = TcpStream::connect(misp.addr()).unwrap();
    stream.set_nodelay(true).unwrap();
    let mut reader = BufReader::with_capacity(1 << 20, stream.try_clone().unwrap());
    let mut total = Duration::ZERO;
    let mut body = Vec::new();
    for r in &requests {
        let mut head = format!(
            "{} {}{}{} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {}\r\nAccept: application/json\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            r.method,
            r.path,
            if r.query.is_empty() { "" } else { "?" },
            r.query,
            misp.api_key(),
            r.body.len()
        )
        .into_bytes();
        head.extend_from_slice(&r.body);
        let t = Instant::now();
        stream.write_all(&head).unwrap();
        let mut status = String::new();
        reader.read_line(&mut status).unwrap();
        assert!(status.starts_with("HTTP/1.1 200"), "replay: {status}");
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap();
                }
            }
        }
        body.resize(length, 0);
        reader.read_exact(&mut body).unwrap();
        total += t.elapsed();
    }
    (total, requests.len())
}

/// What one child process cost, from `wait4`.
struct Usage {
    wall: Duration,
    max_rss_kib: u64,
    user: Duration,
    sys: Duration,
}

/// Set in the helper process that [`measured`] starts.
const REAP_ENV: &str = "MIRROR_BENCH_REAP";

/// Runs `program args` through a helper (this benchmark's own binary, re-executed small) that
/// starts it, reaps it with `wait4` and reports its rusage, and returns its stdout. Why a helper:
/// a child spawned straight from this process, which holds a multi-GB double, starts out sharing
/// (vfork) or copying (fork) this process's memory, and Linux folds that memory's high-water mark
/// into the child's `ru_maxrss` at exec (`exec_mmap` in fs/exec.c); from the small helper the
/// child inherits only the helper's few MiB.
fn measured(program: &str, args: &[&std::ffi::OsStr]) -> (Vec<u8>, Usage) {
    let report = tempfile::NamedTempFile::new().unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .env(REAP_ENV, report.path())
        .arg(program)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "helper for {program} {args:?}: {}",
        out.status
    );
    let text = std::fs::read_to_string(report.path()).unwrap();
    let f: Vec<u64> = text
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(
        f[4],
        0,
        "{program} {args:?} exited with status {}: {}",
        f[4],
        String::from_utf8_lossy(&out.stdout)
    );
    let us = Duration::from_micros;
    let usage = Usage {
        wall: us(f[0]),
        max_rss_kib: f[1],
        user: us(f[2]),
        sys: us(f[3]),
    };
    (out.stdout, usage)
}

/// The helper: runs argv[1..] (stdout inherited), reaps it with `wait4` and writes
/// `wall_us maxrss_kib utime_us stime_us status` to the file named by `REAP_ENV`.
fn reap_main(report: std::ffi::OsString) -> ! {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let started = Instant::now();
    let child = Command::new(&args[0])
        .args(&args[1..])
        .env_remove(REAP_ENV)
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: wait4 on our own child, filling a zeroed struct we own. The child is reaped here,
    // so `child` is never waited on (dropping a `Child` does not wait).
    let u = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::wait4(pid, &mut status, 0, &mut u), pid);
        u
    };
    let wall = started.elapsed();
    drop(child);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    std::fs::write(
        report,
        format!(
            "{} {} {} {} {code}\n",
            wall.as_micros(),
            u.ru_maxrss,
            tv(u.ru_utime).as_micros(),
            tv(u.ru_stime).as_micros()
        ),
    )
    .unwrap();
    std::process::exit(0)
}

/// `ru_maxrss` (KiB) of `/bin/true` reaped straight from this process: how much of this
/// process's own high-water mark a direct child would report.
fn direct_true_rss_kib() -> u64 {
    let child = Command::new("/bin/true").spawn().unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: as in `reap_main`.
    let rss = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::wait4(pid, &mut status, 0, &mut u), pid);
        u.ru_maxrss as u64
    };
    drop(child);
    rss
}

fn tv(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn drain(q: &UnixDatagram) -> usize {
    let mut buf = vec![0u8; 70_000];
    let mut n = 0;
    while q.recv(&mut buf).is_ok() {
        n += 1;
    }
    n
}

fn measure(runs: usize, mut f: impl FnMut()) -> Vec<Duration> {
    for _ in 0..runs / 10 {
        f();
    }
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times
}

fn report(name: &str, sorted: &[Duration]) {
    let at = |q: f64| sorted[((sorted.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "{name:<52} {:>8.2}ms {:>8.2}ms",
        at(0.5).as_secs_f64() * 1e3,
        at(0.95).as_secs_f64() * 1e3
    );
}
