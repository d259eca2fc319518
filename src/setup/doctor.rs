//! `wazuh-misp doctor`: static checks of everything between an alert and its MISP enrichment,
//! each reported as pass, warn or fail with a one-line fix. It changes nothing (one exception:
//! opening an existing lookup cache whose size no longer matches the settings rebuilds it, as
//! the next integration run would).
//!
//! Order of the report, one line per check (`id`: what it looks at):
//! - `wazuh.version`: a Wazuh 4.x manager (Wazuh 5 and agents are refused, and nothing else is
//!   checked); `cluster.role`: what a master or a worker needs besides this node.
//! - `binary.file`, `binary.permissions`, `binary.version`: `integrations/custom-misp`.
//! - `settings.permissions`, `settings.load`: `etc/custom-misp.json`.
//! - `ossec_conf.block`, `ossec_conf.integratord`, `ossec_conf.jsonout`: ossec.conf as
//!   integratord reads it.
//! - `filters.level`, `filters.group` (one per group), `filters.rule_ids`, `filters.combined`:
//!   whether any alert can pass the block's filters at all.
//! - `rules.file`, `rules.collisions`: our rules file and its id block.
//! - `queue.socket`: analysisd's queue.
//! - `misp.connection`, `misp.key`, `misp.tls`: the live MISP, with the certificate's expiry.
//! - `integratord.running`, `logs.integrations`, `logs.ossec`: is it running, and what it said.
//! - `state.dir`, `state.breaker`: the state directory and the circuit breaker.
//! - `mirror.schedule`, `mirror.file`, `mirror.age`, `mirror.sync` (`mirror` and `hybrid`
//!   modes): the scheduled sync, the mirror and its freshness, the last sync's result.
//! - `sightings.schedule`, `sightings.flush` (sightings on): the scheduled delivery, the spool.

mod conf;
mod files;
mod mirror;
mod misp;
mod native;
mod runtime;
mod sightings;

use crate::settings::{Loaded, Overrides, Settings, SettingsError};
use crate::wazuh::detect::{self, DetectError, Version, OSSEC_CONF};
use crate::wazuh::ossec_conf::{self, ClusterRole, Inspection};
use crate::wazuh::rules::{self, RuleEntry};
use serde::Serialize;
use serde_json::{json, Value};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default)]
pub struct DoctorOptions {
    /// One JSON document instead of the readable report.
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
    /// Not checked, because something it depends on failed (the reason is in the detail).
    Skip,
}

impl Status {
    pub fn symbol(self) -> &'static str {
        match self {
            Status::Pass => "✔",
            Status::Warn => "⚠",
            Status::Fail => "✘",
            Status::Skip => "·",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Stable identifier (`binary.permissions`), the same for every group of `filters.group`.
    pub id: &'static str,
    /// What the line shows: the id, plus the subject when a check repeats (`filters.group ids`).
    pub name: String,
    pub status: Status,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// Facts for machines (versions, dates, counts), when there are any.
    #[serde(skip_serializing_if = "Value::is_null")]
    pub data: Value,
}

impl Check {
    fn new(id: &'static str, status: Status, detail: impl Into<String>) -> Check {
        Check {
            id,
            name: id.to_string(),
            status,
            detail: detail.into(),
            fix: None,
            data: Value::Null,
        }
    }
    pub fn pass(id: &'static str, detail: impl Into<String>) -> Check {
        Check::new(id, Status::Pass, detail)
    }
    pub fn warn(id: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check::new(id, Status::Warn, detail).fix(fix)
    }
    pub fn fail(id: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check::new(id, Status::Fail, detail).fix(fix)
    }
    pub fn skip(id: &'static str, why: impl Into<String>) -> Check {
        Check::new(id, Status::Skip, why)
    }
    pub fn fix(mut self, fix: impl Into<String>) -> Check {
        let fix = fix.into();
        self.fix = (!fix.is_empty()).then_some(fix);
        self
    }
    pub fn named(mut self, name: impl Into<String>) -> Check {
        self.name = name.into();
        self
    }
    pub fn data(mut self, data: Value) -> Check {
        self.data = data;
        self
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub home: PathBuf,
    pub checks: Vec<Check>,
}

impl Report {
    pub fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }

    /// 0 when nothing failed (warnings included), else 1.
    pub fn exit_code(&self) -> i32 {
        i32::from(self.count(Status::Fail) > 0)
    }

    /// The first check with this id.
    pub fn get(&self, id: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == id)
    }

    pub fn summary(&self) -> String {
        let (pass, warn, fail, skip) = (
            self.count(Status::Pass),
            self.count(Status::Warn),
            self.count(Status::Fail),
            self.count(Status::Skip),
        );
        let plural =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let mut parts = vec![plural(pass, "passed", "passed")];
        if warn > 0 {
            parts.push(plural(warn, "warning", "warnings"));
        }
        if fail > 0 {
            parts.push(plural(fail, "failed", "failed"));
        }
        if skip > 0 {
            parts.push(plural(skip, "skipped", "skipped"));
        }
        let verdict = if fail > 0 {
            "the integration will not work as configured: apply the fixes above"
        } else if warn > 0 {
            "the integration should work; the warnings deserve a look"
        } else {
            "everything checked is in order"
        };
        format!(
            "summary: {} checks, {}: {verdict}",
            self.checks.len(),
            parts.join(", ")
        )
    }

    pub fn render_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(
            out,
            "wazuh-misp doctor {} for the Wazuh home {}",
            env!("CARGO_PKG_VERSION"),
            self.home.display()
        )?;
        let width = self
            .checks
            .iter()
            .map(|c| c.name.chars().count())
            .max()
            .unwrap_or(0)
            .min(28);
        for c in &self.checks {
            write!(
                out,
                "{} {:<width$}  {}",
                c.status.symbol(),
                c.name,
                c.detail
            )?;
            if let Some(fix) = &c.fix {
                write!(out, " → fix: {fix}")?;
            }
            writeln!(out)?;
        }
        writeln!(out, "{}", self.summary())
    }

    pub fn to_json(&self) -> Value {
        json!({
            "home": self.home,
            "version": env!("CARGO_PKG_VERSION"),
            "checks": self.checks,
            "summary": {
                "pass": self.count(Status::Pass),
                "warn": self.count(Status::Warn),
                "fail": self.count(Status::Fail),
                "skip": self.count(Status::Skip),
            },
            "exit_code": self.exit_code(),
        })
    }
}

/// `wazuh-misp doctor`: prints the report and returns the exit code (0: no check failed, 1:
/// at least one did).
pub fn run(home: &Path, opts: &DoctorOptions, out: &mut dyn Write) -> anyhow::Result<i32> {
    let report = diagnose(home);
    if opts.json {
        serde_json::to_writer_pretty(&mut *out, &report.to_json())?;
        writeln!(out)?;
    } else {
        report.render_text(out)?;
    }
    Ok(report.exit_code())
}

/// What the checks share: facts read once.
pub(crate) struct Ctx {
    pub home: PathBuf,
    pub version: Option<Version>,
    /// The Wazuh group's id and name (from etc/ossec.conf's group), when known.
    pub gid: Option<u32>,
    pub group: String,
    /// The user integratord runs as (`wazuh`, or `ossecm` before 4.3).
    pub daemon_uid: Option<u32>,
    pub cluster: Option<ClusterRole>,
    pub conf_text: Option<Vec<u8>>,
    pub inspection: Result<Inspection, String>,
    pub loaded: Result<Loaded, SettingsError>,
    pub rules: Result<Vec<RuleEntry>, String>,
    pub now: i64,
}

impl Ctx {
    pub fn rel(&self, path: &Path) -> String {
        path.strip_prefix(&self.home)
            .unwrap_or(path)
            .display()
            .to_string()
    }
}

/// Runs every check against `home`.
pub fn diagnose(home: &Path) -> Report {
    let mut checks = Vec::new();
    let (version_check, manager) = version_check(home);
    let stop = version_check.status == Status::Fail && manager.is_none();
    checks.push(version_check);
    if stop {
        return Report {
            home: home.to_path_buf(),
            checks,
        };
    }
    let ctx = context(home, manager);
    checks.push(cluster_check(&ctx));
    checks.extend(files::binary_checks(&ctx));
    checks.extend(files::settings_checks(&ctx));
    checks.extend(conf::conf_checks(&ctx));
    checks.extend(conf::filter_checks(&ctx));
    checks.extend(conf::rules_checks(&ctx));
    checks.push(runtime::queue_check(&ctx));
    checks.extend(misp::misp_checks(&ctx));
    checks.push(runtime::integratord_check(&ctx));
    checks.extend(runtime::log_checks(&ctx));
    checks.extend(runtime::state_checks(&ctx));
    checks.extend(mirror::mirror_checks(&ctx));
    checks.extend(native::native_checks(&ctx));
    checks.extend(sightings::sightings_checks(&ctx));
    Report {
        home: home.to_path_buf(),
        checks,
    }
}

/// `wazuh.version`; `None` as the manager when the home cannot be used at all.
fn version_check(home: &Path) -> (Check, Option<Option<detect::Manager>>) {
    const ID: &str = "wazuh.version";
    match detect::detect(home) {
        Ok(m) => {
            let check = match m.version {
                Some(v) if v.major < 4 => Check::fail(
                    ID,
                    format!("Wazuh {v}: wazuh-misp needs Wazuh 4.x"),
                    "upgrade the manager to Wazuh 4.x",
                ),
                Some(v) => Check::pass(
                    ID,
                    format!("Wazuh {v} manager, files of group {}", m.group_name),
                ),
                None => Check::warn(
                    ID,
                    format!(
                        "a Wazuh 4.x manager of unknown version (no bin/wazuh-control or etc/ossec-init.conf told), files of group {}",
                        m.group_name
                    ),
                    "check that bin/wazuh-control exists and runs (`bin/wazuh-control info`)",
                ),
            }
            .data(json!({"version": m.version.map(|v| v.to_string()), "group": m.group_name}));
            (check, Some(Some(m)))
        }
        Err(e @ DetectError::Wazuh5 { .. }) => (
            Check::fail(
                ID,
                e.to_string(),
                "keep Wazuh 4.x for wazuh-misp; with Wazuh 5, use its own integration mechanism instead",
            ),
            None,
        ),
        Err(e @ DetectError::NotManager { .. }) => (
            Check::fail(
                ID,
                e.to_string(),
                "pass the manager's home with --wazuh-home DIR (default /var/ossec)",
            ),
            None,
        ),
        Err(DetectError::Conf { path, source }) => (
            Check::warn(
                ID,
                format!("version not read: {} cannot be used ({source})", path.display()),
                "see ossec_conf.block",
            ),
            Some(None),
        ),
        Err(DetectError::Io { path, source }) => (
            Check::fail(
                ID,
                format!("cannot read {}: {source}", path.display()),
                "run `sudo wazuh-misp doctor` (the files are readable by root and the Wazuh group)",
            ),
            Some(None),
        ),
    }
}

fn context(home: &Path, manager: Option<Option<detect::Manager>>) -> Ctx {
    let manager = manager.flatten();
    let conf_path = home.join(OSSEC_CONF);
    let conf_text = std::fs::read(&conf_path).ok();
    let gid = manager
        .as_ref()
        .map(|m| m.gid)
        .or_else(|| std::fs::metadata(&conf_path).ok().map(|m| m.gid()));
    let group = manager
        .as_ref()
        .map(|m| m.group_name.clone())
        .or_else(|| {
            gid.and_then(|g| {
                nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(g))
                    .ok()
                    .flatten()
            })
            .map(|g| g.name)
        })
        .unwrap_or_else(|| "wazuh".into());
    let daemon_user = if group == "ossec" { "ossecm" } else { "wazuh" };
    let daemon_uid = nix::unistd::User::from_name(daemon_user)
        .ok()
        .flatten()
        .map(|u| u.uid.as_raw());
    let inspection = match &conf_text {
        Some(bytes) => ossec_conf::inspect(bytes).map_err(|e| e.to_string()),
        None => Err(format!("cannot read {}", conf_path.display())),
    };
    let cluster = inspection
        .as_ref()
        .ok()
        .map(|i| i.cluster)
        .or(manager.as_ref().map(|m| m.cluster));
    Ctx {
        home: home.to_path_buf(),
        version: manager.as_ref().and_then(|m| m.version),
        gid,
        group,
        daemon_uid,
        cluster,
        conf_text,
        inspection,
        loaded: Settings::load(home, &Overrides::default()),
        rules: rules::all_rule_ids(home).map_err(|e| e.to_string()),
        now: crate::runtime::cache::now_unix() as i64,
    }
}

fn cluster_check(ctx: &Ctx) -> Check {
    const ID: &str = "cluster.role";
    match ctx.cluster {
        Some(ClusterRole::Disabled) => Check::pass(ID, "standalone manager (cluster disabled)"),
        Some(ClusterRole::Master) => Check::pass(
            ID,
            "cluster master: integratord runs on every node, so every worker also needs integrations/custom-misp, etc/custom-misp.json and the <integration> block (run `wazuh-misp setup` on each); the rules are synced from here to the workers",
        ),
        Some(ClusterRole::Worker) => Check::pass(
            ID,
            "cluster worker: this node needs its own binary copy, settings file and <integration> block (checked below); the rules come from the master's cluster sync",
        ),
        None => Check::skip(ID, "ossec.conf could not be read"),
    }
    .data(json!({"role": ctx.cluster.map(|c| format!("{c:?}").to_lowercase())}))
}

/// `chown root:GROUP PATH && chmod MODE PATH`.
pub(crate) fn chown_chmod(ctx: &Ctx, path: &Path, mode: u32) -> String {
    format!(
        "chown root:{g} {p} && chmod {mode:04o} {p}",
        g = ctx.group,
        p = path.display()
    )
}

/// One line of text for the report: control characters dropped, at most `max` characters.
pub(crate) fn one_line(text: &str, max: usize) -> String {
    let mut s: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.chars().count() > max {
        s = s.chars().take(max).collect::<String>() + "…";
    }
    s
}
