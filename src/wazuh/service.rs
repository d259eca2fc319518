//! Running Wazuh's own programs: the `-t` configuration checks of wazuh-integratord and
//! wazuh-analysisd (the judges of whether a change is kept), and the safe restart. Every child
//! gets a clean environment (no inherited `MISP_API_KEY` or anything else of ours) and a time
//! limit.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct Finished {
    pub success: bool,
    pub code: Option<i32>,
    /// stdout then stderr, lossily decoded.
    pub text: String,
}

/// Runs `cmd` with a minimal environment and kills it after `limit`.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> std::io::Result<Finished> {
    use std::os::unix::process::CommandExt;
    cmd.env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("LANG", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a timeout also ends whatever it started.
        .process_group(0);
    let mut child = cmd.spawn()?;
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        if let Some(e) = stderr.as_mut() {
            let _ = e.read_to_end(&mut s);
        }
        s
    });
    let out_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        if let Some(o) = stdout.as_mut() {
            let _ = o.read_to_end(&mut s);
        }
        s
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if started.elapsed() >= limit {
            // SAFETY: signalling the process group we created for this child.
            unsafe { libc::killpg(child.id() as libc::pid_t, libc::SIGKILL) };
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // A grandchild that escaped the group could keep the pipes open: don't wait for it.
    let join = |reader: std::thread::JoinHandle<Vec<u8>>| {
        let until = Instant::now() + Duration::from_secs(2);
        while !reader.is_finished() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        if reader.is_finished() {
            reader.join().unwrap_or_default()
        } else {
            b"(output cut: a process it started kept it open)".to_vec()
        }
    };
    let mut bytes = join(out_reader);
    bytes.extend(join(err_reader));
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    if status.is_none() {
        text.push_str(&format!(
            "\n(killed after {} s without finishing)",
            limit.as_secs()
        ));
    }
    Ok(Finished {
        success: status.is_some_and(|s| s.success()),
        code: status.and_then(|s| s.code()),
        text,
    })
}

/// What Wazuh's own checks said about the configuration on disk.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckReport {
    /// Programs that ran (the ones present in `bin/`).
    pub ran: Vec<&'static str>,
    pub failures: Vec<String>,
    /// Programs that did not end on their own (killed at the time limit or by a signal, e.g. the
    /// OOM killer): their verdict is unknown, not negative. Also counted in `failures`.
    pub unfinished: Vec<&'static str>,
    /// WARNING/ERROR/CRITICAL lines, with timestamps and pids removed so runs compare.
    pub findings: BTreeSet<String>,
}

impl CheckReport {
    /// Problems this report has that `before` did not: a failure, or a finding not seen before.
    pub fn new_problems(&self, before: &CheckReport) -> Vec<String> {
        let mut out: Vec<String> = self.failures.clone();
        out.extend(self.findings.difference(&before.findings).cloned());
        out
    }
}

/// wazuh-modulesd judges the command wodle of the scheduled sync.
const CHECKS: [&str; 3] = ["wazuh-integratord", "wazuh-analysisd", "wazuh-modulesd"];

/// Runs `bin/wazuh-integratord -t`, `bin/wazuh-analysisd -t` and `bin/wazuh-modulesd -t`
/// where they exist.
pub fn check_config(home: &Path) -> std::io::Result<CheckReport> {
    check_programs(home, &CHECKS)
}

/// `bin/wazuh-analysisd -t` alone: all a change of rules or lists can affect. It also compiles
/// every stale `.cdb`, as user wazuh (`src/analysisd/analysisd.c`).
pub fn check_analysisd(home: &Path) -> std::io::Result<CheckReport> {
    check_programs(home, &["wazuh-analysisd"])
}

fn check_programs(home: &Path, programs: &[&'static str]) -> std::io::Result<CheckReport> {
    let mut report = CheckReport::default();
    for &name in programs {
        let bin = home.join("bin").join(name);
        if !bin.is_file() {
            continue;
        }
        report.ran.push(name);
        let done = run_bounded(
            Command::new(&bin).arg("-t").current_dir(home),
            Duration::from_secs(120),
        )?;
        let findings: Vec<String> = done.text.lines().filter_map(normalise_finding).collect();
        if done.code.is_none() {
            report.unfinished.push(name);
        }
        if !done.success {
            let detail = if findings.is_empty() {
                done.text.trim().lines().last().unwrap_or("").to_string()
            } else {
                findings.join("; ")
            };
            report
                .failures
                .push(format!("{name} -t failed (exit {:?}): {detail}", done.code));
        }
        report
            .findings
            .extend(findings.into_iter().map(|f| format!("{name}: {f}")));
    }
    Ok(report)
}

/// Keeps `WARNING: …`/`ERROR: …`/`CRITICAL: …` and drops the timestamp and pid before it.
fn normalise_finding(line: &str) -> Option<String> {
    ["CRITICAL:", "ERROR:", "WARNING:"]
        .iter()
        .find_map(|tag| line.find(tag).map(|at| line[at..].trim().to_string()))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restart {
    /// `systemctl reload wazuh-manager`: the packaged unit's reload runs `wazuh-control reload`,
    /// which restarts every daemon but execd.
    SystemdReload,
    /// `bin/wazuh-control restart`.
    ///
    /// Both this and `wazuh-control reload` run `restart_service`, which first runs every daemon's
    /// `-t` and exits without stopping anything when one fails (`testconfig` in
    /// `src/init/wazuh-server.sh`, 4.14.7). It looks at exit codes only, so a config that merely
    /// warns (a dropped rule, an unloaded list) passes: that is why the installer runs the `-t`
    /// checks itself and compares their warnings before it ever restarts.
    WazuhControl,
    /// The manager is not running; nothing to restart.
    NotRunning,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ServiceManager {
    /// systemd when it runs and knows wazuh-manager, else wazuh-control
    Auto,
    Systemd,
    WazuhControl,
}

/// Restarts the manager the safe way if it runs. Returns what was done, or Wazuh's message.
pub fn restart(home: &Path, manager: ServiceManager) -> Result<Restart, String> {
    restart_inner(home, manager, false)
}

/// Restarts the manager even if it looks stopped (after a failed restart left it down).
pub fn restart_forced(home: &Path, manager: ServiceManager) -> Result<Restart, String> {
    restart_inner(home, manager, true)
}

fn restart_inner(home: &Path, manager: ServiceManager, force: bool) -> Result<Restart, String> {
    let systemd = match manager {
        ServiceManager::Systemd => true,
        ServiceManager::WazuhControl => false,
        ServiceManager::Auto => Path::new("/run/systemd/system").is_dir() && which("systemctl"),
    };
    let limit = Duration::from_secs(300);
    if systemd {
        let active = run_bounded(
            Command::new("systemctl").args(["is-active", "--quiet", "wazuh-manager"]),
            Duration::from_secs(30),
        )
        .map(|f| f.success)
        .unwrap_or(false);
        // A manager started by a bare `wazuh-control start` is not the unit's: fall through.
        if active || (force && manager == ServiceManager::Systemd) {
            let verb = if active { "reload" } else { "restart" };
            let done = run_bounded(
                Command::new("systemctl").args([verb, "wazuh-manager"]),
                limit,
            )
            .map_err(|e| format!("systemctl {verb} wazuh-manager: {e}"))?;
            return if done.success {
                Ok(Restart::SystemdReload)
            } else {
                Err(format!(
                    "systemctl {verb} wazuh-manager failed: {}",
                    done.text.trim()
                ))
            };
        }
    }
    let control = home.join("bin/wazuh-control");
    if !control.is_file() {
        return Err(format!(
            "{} not found: restart the manager yourself",
            control.display()
        ));
    }
    if !force {
        let status = run_bounded(
            Command::new(&control).arg("status").current_dir(home),
            Duration::from_secs(30),
        )
        .map_err(|e| format!("{} status: {e}", control.display()))?;
        if !status.text.contains("is running") {
            return Ok(Restart::NotRunning);
        }
    }
    let done = run_bounded(
        Command::new(&control).arg("restart").current_dir(home),
        limit,
    )
    .map_err(|e| format!("{} restart: {e}", control.display()))?;
    if done.success {
        Ok(Restart::WazuhControl)
    } else {
        Err(format!(
            "wazuh-control restart failed: {}",
            done.text.trim()
        ))
    }
}

fn which(program: &str) -> bool {
    ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
        .iter()
        .any(|d| Path::new(d).join(program).is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_drop_timestamps_and_pids() {
        assert_eq!(
            normalise_finding("2026/11/27 06:40:01 wazuh-analysisd[1234] rules_op.c:123 at x(): WARNING: (7617): Signature ID '100001' was found"),
            Some("WARNING: (7617): Signature ID '100001' was found".into())
        );
        assert_eq!(normalise_finding("2026/11/27 INFO: fine"), None);
    }

    #[test]
    fn children_get_a_clean_environment_and_a_time_limit() {
        std::env::set_var("MISP_API_KEY", "leak");
        let out = run_bounded(
            Command::new("/bin/sh").args(["-c", "env"]),
            Duration::from_secs(5),
        )
        .unwrap();
        assert!(out.success);
        assert!(!out.text.contains("MISP_API_KEY"), "{}", out.text);
        let slow = run_bounded(
            Command::new("/bin/sleep").arg("5"),
            Duration::from_millis(200),
        )
        .unwrap();
        assert!(!slow.success && slow.text.contains("killed"));
    }
}
