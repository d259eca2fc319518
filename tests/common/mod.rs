//! Shared fixtures for the end-to-end tests: a throw-away Wazuh home (built by [`home`]) with the
//! built binary installed as `integrations/custom-misp` (root:wazuh 0750 when running as root), a
//! real Unix datagram socket bound as analysisd's queue, and a runner that execs the binary
//! exactly as integratord does (argv[0] `integrations`, cwd the Wazuh home, alert in a temp file).
#![allow(dead_code)]

pub mod home;
pub mod manager;

// Not every test crate asks for it.
#[allow(unused_imports)]
pub use home::wazuh_gid;

use home::{HomeBuilder, Perm};

use misp_double::MispDouble;
use serde_json::{json, Value};
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_wazuh-misp");
pub const KEY: &str = misp_double::DEFAULT_API_KEY;

/// integratord's argv layouts (what follows argv[0] `integrations`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Layout {
    /// 4.2-4.6: alert api_key hook_url " > /dev/null 2>&1"
    V4_2,
    /// 4.7: alert api_key hook_url debug options "> /dev/null 2>&1"
    V4_7,
    /// 4.8-4.14: alert api_key hook_url debug options timeout retries "> /dev/null 2>&1"
    V4_14,
}

pub struct Invocation<'a> {
    pub layout: Layout,
    pub api_key: &'a str,
    pub hook_url: &'a str,
    pub debug: bool,
    pub options: Option<&'a str>,
    pub timeout: u32,
}

impl Default for Invocation<'_> {
    fn default() -> Self {
        Invocation {
            layout: Layout::V4_14,
            api_key: "",
            hook_url: "",
            debug: false,
            options: None,
            timeout: 10,
        }
    }
}

pub struct WazuhHome {
    pub dir: tempfile::TempDir,
    pub queue: Option<UnixDatagram>,
}

impl WazuhHome {
    pub fn new() -> WazuhHome {
        WazuhHome::build(WazuhHome::builder())
    }

    /// The runtime's directories, the integration, `logs` root:wazuh, and the queue socket.
    pub fn builder() -> HomeBuilder {
        HomeBuilder::new()
            .runtime_layout()
            .integration()
            .dir("logs", Perm::RootWazuhAsCreated)
            .queue(Perm::AsCreated)
    }

    /// A home from [`WazuhHome::builder`] with more pieces.
    pub fn build(builder: HomeBuilder) -> WazuhHome {
        let home = builder.build();
        let queue = home.queue.expect("the builder binds the queue");
        queue.set_nonblocking(true).unwrap();
        WazuhHome {
            dir: home.dir,
            queue: Some(queue),
        }
    }

    /// An installed home (with the state directory, as `install` makes it) whose settings point
    /// at `double`, with `extra` deep-merged over them.
    pub fn installed(double: &MispDouble, extra: Value) -> WazuhHome {
        let home = WazuhHome::build(WazuhHome::builder().state_dir());
        let mut settings = WazuhHome::settings_for(double);
        merge(&mut settings, extra);
        home.write_settings(&settings);
        home
    }

    /// `wazuh-misp --wazuh-home <home> ARGS` with a clean environment.
    pub fn wazuh_misp(&self, args: &[&str]) -> Output {
        output_retrying(
            Command::new(BIN)
                .arg("--wazuh-home")
                .arg(self.path())
                .args(args)
                .env_clear(),
        )
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Stops "analysisd": the socket file disappears.
    pub fn without_queue(mut self) -> WazuhHome {
        self.queue = None;
        std::fs::remove_file(self.path().join("queue/sockets/queue")).unwrap();
        self
    }

    pub fn settings_for(double: &MispDouble) -> Value {
        json!({"version": 1, "misp": {"url": double.url(), "api_key": KEY}})
    }

    /// Writes the settings file as setup does: mode 0640, root:wazuh when we can.
    pub fn write_settings(&self, settings: &Value) -> PathBuf {
        self.write_settings_mode(settings, 0o640)
    }

    pub fn write_settings_mode(&self, settings: &Value, mode: u32) -> PathBuf {
        home::write_settings(self.path(), settings, mode)
    }

    /// Runs the installed integration on `alert` exactly as integratord does.
    pub fn run_alert(&self, alert: &[u8], inv: &Invocation) -> Output {
        let tmp = tempfile::Builder::new()
            .prefix("custom-misp-1700000000--")
            .suffix(".alert")
            .tempfile()
            .unwrap();
        std::fs::write(tmp.path(), alert).unwrap();
        let options = inv.options.map(|text| {
            let f = tempfile::Builder::new()
                .suffix(".options")
                .tempfile()
                .unwrap();
            std::fs::write(f.path(), format!("{text}\n")).unwrap();
            f
        });
        let alert_path = tmp.path().to_str().unwrap().to_string();
        let opt_path = options
            .as_ref()
            .map(|f| f.path().to_str().unwrap().to_string())
            .unwrap_or_default();
        let debug = if inv.debug { "debug" } else { "" };
        let mut args: Vec<String> = vec![alert_path, inv.api_key.into(), inv.hook_url.into()];
        match inv.layout {
            Layout::V4_2 => args.push(if inv.debug {
                "debug".into()
            } else {
                " > /dev/null 2>&1".into()
            }),
            Layout::V4_7 => {
                args.extend([debug.to_string(), opt_path]);
                if !inv.debug {
                    args.push("> /dev/null 2>&1".into());
                }
            }
            Layout::V4_14 => {
                args.extend([
                    debug.to_string(),
                    opt_path,
                    inv.timeout.to_string(),
                    "3".into(),
                ]);
                if !inv.debug {
                    args.push("> /dev/null 2>&1".into());
                }
            }
        }
        let mut cmd = Command::new(self.path().join("integrations/custom-misp"));
        cmd.arg0("integrations")
            .args(&args)
            .current_dir(self.path())
            .env_clear();
        output_retrying(&mut cmd)
    }

    pub fn run_json(&self, alert: &Value) -> Output {
        self.run_alert(format!("{alert}\n").as_bytes(), &Invocation::default())
    }

    /// Every datagram analysisd would have received so far.
    pub fn datagrams(&self) -> Vec<String> {
        let Some(q) = &self.queue else { return vec![] };
        let mut out = Vec::new();
        let mut buf = vec![0u8; 70_000];
        loop {
            match q.recv(&mut buf) {
                Ok(n) => out.push(String::from_utf8(buf[..n].to_vec()).expect("datagram is UTF-8")),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("recv: {e}"),
            }
        }
        out
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path().join("logs/integrations.log")).unwrap_or_default()
    }
}

/// Runs `cmd`, retrying while the binary is "busy": another test thread that copies its own
/// binary may fork while holding a write descriptor, which makes exec fail with ETXTBSY for a
/// moment (a test-harness artefact; integratord never writes the file it runs).
pub fn output_retrying(cmd: &mut Command) -> Output {
    for _ in 0..200 {
        match cmd.output() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                std::thread::sleep(Duration::from_millis(10))
            }
            other => return other.unwrap(),
        }
    }
    panic!("executable stayed busy");
}

/// Splits `1:<location>:<json>` at the first `:` that is not escaped, returning the location
/// and the parsed payload.
pub fn split_datagram(d: &str) -> (String, Value) {
    let rest = d.strip_prefix("1:").expect("queue id 1");
    let bytes = rest.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'|' => i += 2,
            b':' => break,
            _ => i += 1,
        }
    }
    let payload: Value = serde_json::from_str(&rest[i + 1..]).expect("payload is JSON");
    (rest[..i].to_string(), payload)
}

pub fn payloads(home: &WazuhHome) -> Vec<Value> {
    home.datagrams()
        .iter()
        .map(|d| split_datagram(d).1)
        .collect()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A typical sshd alert from agent 001.
pub fn sshd_alert(srcip: &str) -> Value {
    json!({
        "timestamp": "2026-11-27T06:05:24.123+0000",
        "rule": {"level": 5, "description": "sshd: Attempt to login using a non-existent user", "id": "5710",
                 "groups": ["syslog", "sshd", "authentication_failed", "invalid_login"]},
        "agent": {"id": "001", "name": "web-01", "ip": "10.0.0.11"},
        "manager": {"name": "wazuh-manager"},
        "id": "1764223524.1234",
        "full_log": format!("Nov 27 06:05:23 web-01 sshd[811]: Invalid user admin from {srcip} port 53422"),
        "predecoder": {"program_name": "sshd", "timestamp": "Nov 27 06:05:23", "hostname": "web-01"},
        "decoder": {"parent": "sshd", "name": "sshd"},
        "data": {"srcip": srcip, "srcport": "53422", "srcuser": "admin"},
        "location": "/var/log/auth.log"
    })
}

pub const SHORT: Duration = Duration::from_millis(50);

/// Deep merge, as the settings loader merges `<options>`: objects key by key, the rest replaced.
pub fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (slot, v) => *slot = v,
    }
}
