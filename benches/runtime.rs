//! `cargo bench --bench runtime`: the cost of one alert as integratord pays it. A driver
//! fork/execs the installed `integrations/custom-misp` (release build) with integratord's argv
//! against the MISP double on loopback and waits for it, exactly as integratord does, and reports
//! median and p95 wall time per alert, the children's peak RSS, and `test` mode's throughput on a
//! 100k-line alerts file. Numbers are printed, never asserted.

use misp_double::{seed, MispDouble};
use serde_json::json;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_wazuh-misp");

fn main() {
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let http = MispDouble::http();
    let https = MispDouble::https();
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    for d in ["etc", "logs", "queue/sockets", "integrations"] {
        std::fs::create_dir_all(home.join(d)).unwrap();
    }
    let integration = home.join("integrations/custom-misp");
    std::fs::copy(BIN, &integration).unwrap();
    std::fs::set_permissions(&integration, std::fs::Permissions::from_mode(0o750)).unwrap();
    let queue = UnixDatagram::bind(home.join("queue/sockets/queue")).unwrap();
    queue.set_nonblocking(true).unwrap();
    let ca = home.join("etc/ca.pem");
    https.write_ca_file(&ca).unwrap();

    let alert = home.join("bench.alert");
    let hit = json!({"id": "1", "rule": {"id": "5710", "level": 5, "description": "sshd"},
        "agent": {"id": "001", "name": "web-01", "ip": "10.0.0.11"}, "data": {"srcip": seed::BRUTE_FORCE_IP}});
    let private =
        json!({"id": "1", "rule": {"id": "5710", "level": 5}, "data": {"srcip": "10.1.2.3"}});

    println!(
        "wazuh-misp runtime benchmark: {runs} runs per case, fork/exec + wait as integratord does"
    );
    println!("{:<44} {:>10} {:>10}", "case", "median", "p95");
    let baseline = measure(runs, || {
        Command::new("/bin/true").status().map(|_| ()).unwrap()
    });
    report("/bin/true (fork/exec floor)", &baseline);

    let case =
        |name: &str, settings: serde_json::Value, alert_json: &serde_json::Value, expect: usize| {
            write_settings(home, &settings);
            std::fs::write(&alert, format!("{alert_json}\n")).unwrap();
            let times = measure(runs, || {
                let status = Command::new(&integration)
                    .arg0("integrations")
                    .arg(&alert)
                    .args(["", "", "", "", "10", "3", "> /dev/null 2>&1"])
                    .current_dir(home)
                    .stdout(Stdio::null())
                    .status()
                    .unwrap();
                assert!(status.success());
                let got = drain(&queue);
                assert_eq!(got, expect, "{name}: datagrams per alert");
            });
            report(name, &times);
        };
    let settings_http =
        json!({"version": 1, "misp": {"url": http.url(), "api_key": misp_double::DEFAULT_API_KEY}});
    let settings_https = json!({"version": 1, "misp": {"url": https.url(), "api_key": misp_double::DEFAULT_API_KEY, "ca_file": ca}});
    case(
        "no indicator (private srcip), no request",
        settings_http.clone(),
        &private,
        0,
    );
    case(
        "match over http (1 round trip, 1 event)",
        settings_http.clone(),
        &hit,
        1,
    );
    case("match over https incl. handshake", settings_https, &hit, 1);

    let usage = children_rusage();
    println!(
        "peak RSS of any run: {:.1} MiB",
        usage.ru_maxrss as f64 / 1024.0
    );

    // The shared cache and the circuit breaker (issue: alert storms and MISP outages).
    std::fs::create_dir_all(home.join("var/custom-misp")).unwrap();
    let stateful = json!({"version": 1, "misp": {"url": http.url(), "api_key": misp_double::DEFAULT_API_KEY},
        "breaker": {"failures": 3, "backoff_s": 3600}});
    write_settings(home, &stateful);
    let run = |alert_json: &serde_json::Value, timeout: &str| {
        std::fs::write(&alert, format!("{alert_json}\n")).unwrap();
        let status = Command::new(&integration)
            .arg0("integrations")
            .arg(&alert)
            .args(["", "", "", "", timeout, "3", "> /dev/null 2>&1"])
            .current_dir(home)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        drain(&queue)
    };
    let mut n = 0u32;
    let miss = measure(runs, || {
        n += 1;
        let mut a = private.clone();
        a["data"]["srcip"] = json!(format!(
            "8.{}.{}.{}",
            n / 65536 % 256,
            n / 256 % 256,
            n % 256
        ));
        run(&a, "10");
    });
    report("cache miss (1 round trip, negative cached)", &miss);
    let hit_times = measure(runs, || assert_eq!(run(&hit, "10"), 1));
    report("cache hit (known-bad IP, 1 event, no request)", &hit_times);

    // MISP hangs: the first alerts each cost the deadline, then the breaker opens.
    http.set_fault(misp_double::Fault::Hang);
    let mut hung = Vec::new();
    for i in 0..5 {
        let mut a = private.clone();
        a["data"]["srcip"] = json!(format!("9.9.9.{i}"));
        let t = Instant::now();
        run(&a, "2");
        hung.push(t.elapsed());
    }
    println!(
        "MISP hung, integratord <timeout> 2 s: alerts 1-5 took {}",
        hung.iter()
            .map(|d| format!("{:.0}ms", d.as_secs_f64() * 1e3))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut m = 0u32;
    let open = measure(runs, || {
        m += 1;
        let mut a = private.clone();
        a["data"]["srcip"] = json!(format!("9.8.{}.{}", m / 256 % 256, m % 256));
        run(&a, "2");
    });
    report("breaker open (MISP hung, cache miss)", &open);
    http.set_fault(misp_double::Fault::None);

    // Brute-force storm: 10,000 alerts from 20 source IPs, one process each, as integratord runs.
    let storm_ips: Vec<String> = (0..20)
        .map(|i| {
            if i == 0 {
                seed::BRUTE_FORCE_IP.to_string()
            } else {
                format!("7.7.7.{i}")
            }
        })
        .collect();
    let _ = Command::new(BIN)
        .arg("--wazuh-home")
        .arg(home)
        .args(["cache", "clear"])
        .stdout(Stdio::null())
        .status();
    http.clear_requests();
    let storm_alerts: usize = std::env::var("BENCH_STORM")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let started = Instant::now();
    let mut events = 0;
    for i in 0..storm_alerts {
        let mut a = hit.clone();
        a["data"]["srcip"] = json!(storm_ips[i % storm_ips.len()]);
        events += run(&a, "10");
    }
    let took = started.elapsed();
    println!(
        "storm: {storm_alerts} alerts from 20 IPs in {:.1} s ({:.2} ms/alert), {} MISP requests, {events} events",
        took.as_secs_f64(),
        took.as_secs_f64() * 1e3 / storm_alerts as f64,
        http.request_count("/attributes/restSearch")
    );

    // test mode: 100k alerts, most repeating a small set of indicators.
    write_settings(home, &settings_http);
    let alerts = home.join("alerts.json");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&alerts).unwrap());
    let lines = 100_000;
    for i in 0..lines {
        let ip = match i % 10 {
            0 => seed::BRUTE_FORCE_IP.to_string(),
            _ => format!("8.8.{}.{}", (i / 250) % 4, i % 50),
        };
        let mut a = hit.clone();
        a["id"] = json!(format!("1764223524.{i}"));
        a["data"]["srcip"] = json!(ip);
        a["full_log"] = json!(format!(
            "Nov 27 06:05:23 web-01 sshd[811]: Invalid user admin from {ip} port 53422"
        ));
        writeln!(f, "{a}").unwrap();
    }
    f.flush().unwrap();
    drop(f);
    http.clear_requests();
    let started = Instant::now();
    let status = Command::new(BIN)
        .arg("--wazuh-home")
        .arg(home)
        .args(["test", "--alerts"])
        .arg(&alerts)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    let took = started.elapsed();
    assert!(status.success());
    println!(
        "test mode: {lines} alerts in {:.2} s = {:.0} alerts/s ({} MISP requests)",
        took.as_secs_f64(),
        lines as f64 / took.as_secs_f64(),
        http.request_count("/attributes/restSearch")
    );
}

fn write_settings(home: &Path, settings: &serde_json::Value) {
    let p = home.join("etc/custom-misp.json");
    std::fs::write(&p, settings.to_string()).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
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
        "{name:<44} {:>8.2}ms {:>8.2}ms",
        at(0.5).as_secs_f64() * 1e3,
        at(0.95).as_secs_f64() * 1e3
    );
}

fn children_rusage() -> libc::rusage {
    // SAFETY: getrusage fills the zeroed struct we own.
    unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut u);
        u
    }
}
