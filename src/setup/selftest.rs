//! `wazuh-misp doctor --live`: the end-to-end self test. It proves the whole chain on the running
//! manager by doing what an attack would: an sshd "Invalid user" line from the test IP goes into
//! analysisd, the self-test rule turns it into an alert, integratord runs us on it, and our
//! enriched alert comes back out. Each step is a stage with a tick or a cross, its time, and, when
//! it did not happen, the likely causes ranked by what the test could observe.
//!
//! Stages, in order (a failed precondition stops before anything is injected):
//! 1. `preconditions`: settings, our rules file with the self-test rule, the `<integration>`
//!    block, analysisd's queue socket, `logs/alerts/alerts.json` (failures); the block's filters
//!    against the self-test rule, `log_alert_level`, the binary, live daemons, restarts
//!    outstanding, the circuit breaker (warnings, reused as likely causes later).
//! 2. `test_indicator`: MISP knows the test IP with the integration's own filters (to_ids,
//!    published, warninglist). `--create-test-ioc` first creates and publishes a labelled event
//!    holding it ([`testioc`]), deleted again at the end whatever happens (Ctrl-C included).
//!    A cached lookup answer for the test IP is forgotten, so the integration really asks MISP.
//! 3. `inject`: one datagram `1:wazuh-misp-selftest:<syslog line>` to `queue/sockets/queue`.
//! 4. `trigger_alert` (stage A): the alert whose `full_log` holds the injected line, fired by the
//!    self-test rule, with `data.srcip` = the test IP.
//! 5. `enriched_alert` (stage B): the alert of our event for that alert
//!    (`data.misp.alert.id` = its id): a hit for the test IP under one of our rule ids, or an
//!    error event, reported with its kind and message.
//! 6. `cleanup` (only with `--create-test-ioc`): the test event deleted from MISP.
//!
//! Exit code: 0 when every stage passed, 1 otherwise, 130 when interrupted.

mod diagnose;
pub mod follow;
mod inject;
mod preflight;
mod render;
pub mod testioc;

use crate::ioc::Indicator;
use crate::misp::search::{self, Policy};
use crate::misp::MispClient;
use crate::runtime::cache::{self, Cache, Cached};
use crate::runtime::lookup;
use crate::settings::Loaded;
use crate::wazuh::home::state_dir;
use serde::Serialize;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use inject::{syslog_line, LOCATION};

/// How long stages A and B may take together, from the injection.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The test IP when none is given: 192.31.196.0/24 is AS112-v4 (RFC 7535), the anycast sink that
/// answers reverse-DNS queries for private ranges. It is globally routed (IANA's special-purpose
/// registry marks it global, so the integration looks it up, unlike documentation or private
/// ranges), its servers only answer DNS and never open SSH sessions, so it cannot be a real
/// attacker, and no MISP warninglist covers it (checked against all 136 lists of
/// MISP/misp-warninglists, 2026-08), so `enforceWarninglist` does not hide it.
pub const DEFAULT_TEST_IP: &str = "192.31.196.200";

/// The `info` of the event `--create-test-ioc` creates.
pub const TEST_EVENT_INFO: &str = "wazuh-misp self test — safe to delete";
/// The tag of that event.
pub const TEST_EVENT_TAG: &str = "wazuh-misp:selftest";

/// How often alerts.json is read while following it.
const POLL: Duration = Duration::from_millis(100);
/// How long a freshly published test event may take to become searchable (MISP publishes in a
/// background job when `MISP.background_jobs` is on).
const PUBLISH_WAIT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone)]
pub struct SelfTestOptions {
    /// Stages A and B together, from the injection.
    pub timeout: Duration,
    /// Create (and afterwards delete) a published MISP event holding the test IP.
    pub create_test_ioc: bool,
    /// The test IP; [`DEFAULT_TEST_IP`] when absent.
    pub test_ip: Option<String>,
    /// One JSON document instead of the readable report.
    pub json: bool,
}

impl Default for SelfTestOptions {
    fn default() -> Self {
        SelfTestOptions {
            timeout: DEFAULT_TIMEOUT,
            create_test_ioc: false,
            test_ip: None,
            json: false,
        }
    }
}

/// The same four outcomes `doctor` reports (Skip: not run, because an earlier stage failed or
/// it does not apply).
pub use super::doctor::Status;

/// One precondition.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub id: &'static str,
    pub status: Status,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    fn pass(id: &'static str, detail: impl Into<String>) -> Check {
        Check {
            id,
            status: Status::Pass,
            detail: detail.into(),
            fix: None,
        }
    }
    fn warn(id: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            id,
            status: Status::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
    fn fail(id: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            id,
            status: Status::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StageId {
    Preconditions,
    TestIndicator,
    Inject,
    /// Stage A.
    TriggerAlert,
    /// Stage B.
    EnrichedAlert,
    Cleanup,
}

impl StageId {
    fn title(self) -> &'static str {
        match self {
            StageId::Preconditions => "preconditions",
            StageId::TestIndicator => "test indicator known to MISP",
            StageId::Inject => "sshd log line injected into analysisd",
            StageId::TriggerAlert => "stage A: the self-test rule's alert in alerts.json",
            StageId::EnrichedAlert => "stage B: wazuh-misp's enriched alert in alerts.json",
            StageId::Cleanup => "cleanup: test event deleted from MISP",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Stage {
    pub stage: StageId,
    pub status: Status,
    /// One line: what happened, or what did not.
    pub summary: String,
    /// Time the stage took (A: from the injection; B: from stage A).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elapsed_ms: Option<u64>,
    /// Preconditions only.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<Check>,
    /// Facts observed along the way.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
    /// When the stage failed: the likely causes, most likely first, each with what to do.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<String>,
    /// Recent lines of Wazuh's or our logs that bear on a failure.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub log_lines: Vec<String>,
    /// The alert this stage found, as written to alerts.json.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert: Option<Value>,
}

impl Stage {
    fn new(stage: StageId, status: Status, summary: impl Into<String>) -> Stage {
        Stage {
            stage,
            status,
            summary: summary.into(),
            elapsed_ms: None,
            checks: Vec::new(),
            details: Vec::new(),
            causes: Vec::new(),
            log_lines: Vec::new(),
            alert: None,
        }
    }

    fn skipped(stage: StageId, why: impl Into<String>) -> Stage {
        Stage::new(stage, Status::Skip, why)
    }

    fn took(mut self, d: Duration) -> Stage {
        self.elapsed_ms = Some(u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub home: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_rule_id: Option<u32>,
    /// The injected syslog line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_line: Option<String>,
    pub timeout_ms: u64,
    pub stages: Vec<Stage>,
    pub passed: bool,
    pub interrupted: bool,
    pub exit_code: i32,
}

impl Report {
    pub fn stage(&self, id: StageId) -> Option<&Stage> {
        self.stages.iter().find(|s| s.stage == id)
    }
}

/// Runs the self test against the Wazuh home and writes the report (text or `--json`) to `out`.
/// Returns the exit code: 0 only when every stage passed.
pub fn run(home: &Path, opts: &SelfTestOptions, out: &mut dyn Write) -> anyhow::Result<i32> {
    let report = execute(home, opts, &mut |line: &str| {
        // Progress while waiting, on the readable report only.
        if !opts.json {
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    });
    write_report(&report, opts.json, out)?;
    Ok(report.exit_code)
}

/// Writes a report: readable text, or one pretty-printed JSON document.
pub fn write_report(report: &Report, json: bool, out: &mut dyn Write) -> std::io::Result<()> {
    if json {
        let text = serde_json::to_string_pretty(report).map_err(std::io::Error::other)?;
        writeln!(out, "{text}")
    } else {
        render::text(report, out)
    }
}

/// Runs the self test and returns its report; `progress` gets a line when a stage starts that
/// may take a while.
pub fn execute(home: &Path, opts: &SelfTestOptions, progress: &mut dyn FnMut(&str)) -> Report {
    let mut report = Report {
        home: home.to_path_buf(),
        test_ip: None,
        sample_rule_id: None,
        log_line: None,
        timeout_ms: u64::try_from(opts.timeout.as_millis()).unwrap_or(u64::MAX),
        stages: Vec::new(),
        passed: false,
        interrupted: false,
        exit_code: 1,
    };
    let started = Instant::now();
    let pre = preflight::check(home, opts);
    let mut stage = Stage::new(StageId::Preconditions, Status::Pass, "");
    stage.checks = pre.checks.clone();
    let failed: Vec<&Check> = pre
        .checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .collect();
    let warned = pre
        .checks
        .iter()
        .filter(|c| c.status == Status::Warn)
        .count();
    report.test_ip = pre.test_ip.clone();
    let ctx = match (pre.context, failed.is_empty()) {
        (Some(ctx), true) => {
            stage.summary = match warned {
                0 => "all in place".to_string(),
                1 => "in place, with 1 warning".to_string(),
                n => format!("in place, with {n} warnings"),
            };
            ctx
        }
        _ => {
            stage.status = Status::Fail;
            stage.summary = format!(
                "{}: nothing was injected",
                failed.iter().map(|c| c.id).collect::<Vec<_>>().join(", ")
            );
            report.stages.push(stage.took(started.elapsed()));
            for id in [
                StageId::TestIndicator,
                StageId::Inject,
                StageId::TriggerAlert,
                StageId::EnrichedAlert,
            ] {
                report
                    .stages
                    .push(Stage::skipped(id, "not run: a precondition failed"));
            }
            return finish(report);
        }
    };
    report.stages.push(stage.took(started.elapsed()));
    report.sample_rule_id = Some(ctx.sample_id);

    let mut session = Session {
        home,
        opts,
        ctx: &ctx,
        test_event: None,
        known: Knowledge::Unchecked,
        guard: opts.create_test_ioc.then(interrupt::Guard::install),
    };
    let mut indicator = session.indicator_stage(progress);
    if let Some(note) = forget_cached(home, &ctx.loaded, &ctx.indicator) {
        indicator.details.push(note);
    }
    report.stages.push(indicator);

    if session.interrupted() {
        for id in [
            StageId::Inject,
            StageId::TriggerAlert,
            StageId::EnrichedAlert,
        ] {
            report
                .stages
                .push(Stage::skipped(id, "not run: interrupted"));
        }
    } else {
        session.inject_and_follow(&mut report, progress);
    }
    if let Some(cleanup) = session.cleanup() {
        report.stages.push(cleanup);
    }
    report.interrupted |= session.interrupted();
    finish(report)
}

fn finish(mut report: Report) -> Report {
    report.passed = !report.interrupted
        && report
            .stages
            .iter()
            .all(|s| matches!(s.status, Status::Pass | Status::Warn));
    report.exit_code = if report.interrupted {
        130
    } else {
        i32::from(!report.passed)
    };
    report
}

/// What the test learnt about MISP and the test IP before injecting.
#[derive(Debug, Clone, PartialEq)]
enum Knowledge {
    Unchecked,
    /// MISP answers the test IP: the first event's id and info.
    Known {
        event_id: String,
        event_info: String,
    },
    /// MISP answered, without the test IP (with the integration's filters).
    Unknown,
    /// MISP could not be asked.
    Error(String),
}

struct Session<'a> {
    home: &'a Path,
    opts: &'a SelfTestOptions,
    ctx: &'a preflight::Context,
    test_event: Option<testioc::TestEvent>,
    known: Knowledge,
    /// Catches Ctrl-C while a test event exists in MISP.
    guard: Option<interrupt::Guard>,
}

impl Session<'_> {
    fn interrupted(&self) -> bool {
        self.guard.as_ref().is_some_and(interrupt::Guard::raised)
    }

    /// Injects the line, follows alerts.json, and adds stages inject, A and B to the report.
    fn inject_and_follow(&self, report: &mut Report, progress: &mut dyn FnMut(&str)) {
        let (home, ctx) = (self.home, self.ctx);
        let inject_started = Instant::now();
        let probe = inject::Probe::new(&ctx.test_ip);
        report.log_line = Some(probe.line.clone());
        let before = diagnose::Offsets::take(home);
        let injected_wall = wall_ms(SystemTime::now());
        let alerts = home.join(follow::ALERTS_PATH);
        let sent = match follow::Follower::at_end(&alerts) {
            Ok(f) => inject::send(home, &probe).map(|()| f),
            Err(e) => Err(format!("cannot read {}: {e}", alerts.display())),
        };
        let mut follower = match sent {
            Ok(f) => f,
            Err(e) => {
                let mut s = Stage::new(StageId::Inject, Status::Fail, e);
                s.causes.push("wazuh-analysisd is not running, or its queue socket is stale: start the manager (`systemctl start wazuh-manager`, or `wazuh-control start`)".into());
                report.stages.push(s.took(inject_started.elapsed()));
                for id in [StageId::TriggerAlert, StageId::EnrichedAlert] {
                    report
                        .stages
                        .push(Stage::skipped(id, "not run: nothing was injected"));
                }
                return;
            }
        };
        let mut s = Stage::new(
            StageId::Inject,
            Status::Pass,
            format!("sent to {} as location {LOCATION}", inject::QUEUE_DISPLAY),
        );
        s.details.push(probe.line.clone());
        report.stages.push(s.took(inject_started.elapsed()));
        progress(&format!(
            "waiting up to {} s for the alerts in {}…",
            self.opts.timeout.as_secs_f64(),
            follow::ALERTS_PATH
        ));
        let watched = watch(
            &mut follower,
            &probe,
            inject_started + self.opts.timeout,
            &|| self.interrupted(),
        );
        report.interrupted = watched.interrupted;
        let (a, b) = self.judge(watched, &before, inject_started, injected_wall);
        report.stages.push(a);
        report.stages.push(b);
    }

    fn loaded(&self) -> &Loaded {
        &self.ctx.loaded
    }

    fn client(&self) -> Result<MispClient, String> {
        let misp = &self.loaded().settings.misp;
        MispClient::new(
            &self.loaded().misp_url,
            self.loaded().api_key.clone(),
            misp,
            Duration::from_millis(misp.timeout_ms.max(1)),
        )
        .map_err(|e| e.to_string())
    }

    fn ask_misp(&self, client: &MispClient) -> Knowledge {
        let policy = Policy::from(&self.loaded().settings.lookup);
        match search::search(client, std::slice::from_ref(&self.ctx.indicator), &policy) {
            Ok(found) => match found.matches.first() {
                Some(m) => Knowledge::Known {
                    event_id: m.attribute.event_id.clone(),
                    event_info: m.attribute.event_info.clone(),
                },
                None => Knowledge::Unknown,
            },
            Err(e) => Knowledge::Error(e.to_string()),
        }
    }

    fn indicator_stage(&mut self, progress: &mut dyn FnMut(&str)) -> Stage {
        let started = Instant::now();
        let ip = self.ctx.test_ip.clone();
        let mut stage = Stage::new(StageId::TestIndicator, Status::Pass, "");
        let client = match self.client() {
            Ok(c) => c,
            Err(e) => {
                self.known = Knowledge::Error(e.clone());
                stage.status = Status::Fail;
                stage.summary = format!("cannot set up the MISP client: {e}");
                return stage.took(started.elapsed());
            }
        };
        if self.opts.create_test_ioc {
            progress(&format!(
                "creating a test event in MISP holding {ip} (deleted at the end)…"
            ));
            let own = self.client();
            match own
                .map_err(|message| testioc::Failure {
                    created: None,
                    message,
                    causes: Vec::new(),
                })
                .and_then(|c| testioc::TestEvent::create(c, &ip, &self.ctx.hostname))
            {
                Ok((event, notes)) => {
                    stage.details.push(format!(
                        "created and published MISP event {} \"{TEST_EVENT_INFO}\" (tag {TEST_EVENT_TAG}, distribution: your organisation only) with ip-src {ip}",
                        event.id()
                    ));
                    stage.details.extend(notes);
                    self.test_event = Some(event);
                }
                Err(failure) => {
                    self.test_event = failure.created.map(|e| *e);
                    self.known = Knowledge::Error(failure.message.clone());
                    stage.status = Status::Fail;
                    stage.summary = failure.message;
                    stage.causes.extend(failure.causes);
                    return stage.took(started.elapsed());
                }
            }
        }
        // A freshly published event may need a moment (a background job) to be searchable.
        let until = started
            + if self.test_event.is_some() {
                PUBLISH_WAIT
            } else {
                Duration::ZERO
            };
        let known = loop {
            let k = self.ask_misp(&client);
            if matches!(k, Knowledge::Known { .. }) || Instant::now() >= until || self.interrupted()
            {
                break k;
            }
            std::thread::sleep(Duration::from_millis(500));
        };
        self.known = known.clone();
        match known {
            Knowledge::Known {
                event_id,
                event_info,
            } => {
                stage.summary = format!(
                    "MISP knows {ip}: event {event_id} \"{event_info}\" (searched as the integration does)"
                );
            }
            Knowledge::Unknown => {
                stage.status = Status::Fail;
                let filters = describe_policy(self.loaded());
                if self.test_event.is_some() {
                    stage.summary = format!("MISP does not return the test event's {ip} to a search with the integration's filters ({filters}) within {} s of publishing it", PUBLISH_WAIT.as_secs());
                    stage.causes.push("MISP publishes in a background job: check that its workers run (Administration > Jobs)".into());
                    stage.causes.push("a warninglist enabled in MISP covers the test IP: pick another one with --test-ip".into());
                } else {
                    stage.summary = format!(
                        "MISP does not know {ip} with the integration's filters ({filters})"
                    );
                    stage.causes.push(format!(
                        "the self test needs an IP that MISP knows: give --test-ip with the value of an ip-src/ip-dst attribute of a published event with the IDS flag set, or use --create-test-ioc (a key allowed to add and publish events) to create one for the duration of the test{}",
                        if self.opts.test_ip.is_none() {
                            format!(" (the default test IP is {DEFAULT_TEST_IP})")
                        } else {
                            String::new()
                        }
                    ));
                }
            }
            Knowledge::Error(e) => {
                stage.status = Status::Fail;
                stage.summary = format!("cannot ask MISP about {ip}: {e}");
                stage.causes.push("the integration will meet the same error: stage B should show it as an error event; `wazuh-misp doctor` checks the connection, key and certificate".into());
            }
            Knowledge::Unchecked => {}
        }
        stage.took(started.elapsed())
    }

    fn cleanup(&mut self) -> Option<Stage> {
        let event = self.test_event.take()?;
        let started = Instant::now();
        let id = event.id().to_string();
        let url = format!("{}/events/view/{id}", self.loaded().misp_url);
        let mut stage = match event.delete() {
            Ok(msg) => Stage::new(
                StageId::Cleanup,
                Status::Pass,
                format!("MISP event {id} deleted ({msg})"),
            ),
            Err(e) => {
                let mut s = Stage::new(
                    StageId::Cleanup,
                    Status::Fail,
                    format!("MISP event {id} could not be deleted: {e}"),
                );
                s.causes.push(format!(
                    "delete it by hand: {url} (Delete Event), or `curl -X POST -H 'Authorization: <key>' -H 'Accept: application/json' {}/events/delete/{id}`",
                    self.loaded().misp_url
                ));
                s
            }
        };
        // The integration cached the test event's attribute as a hit: forget it, it is gone.
        if let Some(note) = forget_cached(self.home, self.loaded(), &self.ctx.indicator) {
            stage.details.push(note);
        }
        Some(stage.took(started.elapsed()))
    }

    /// Turns what the follower saw into stages A and B, with likely causes for what is missing.
    fn judge(
        &self,
        w: Watched,
        before: &diagnose::Offsets,
        injected: Instant,
        injected_wall: i64,
    ) -> (Stage, Stage) {
        let ctx = self.ctx;
        let ip = &ctx.test_ip;
        let waited = format!("{:.1} s", injected.elapsed().as_secs_f64());
        let interrupted = if w.interrupted { " (interrupted)" } else { "" };
        let mut a = match &w.trigger {
            Some((alert, at)) => {
                let rule = rule_of(alert);
                let srcip = alert.pointer("/data/srcip").and_then(Value::as_str);
                let mut s = if rule.id == ctx.sample_id.to_string() && srcip == Some(ip.as_str()) {
                    Stage::new(
                        StageId::TriggerAlert,
                        Status::Pass,
                        format!(
                            "rule {} (level {}) alerted on {ip}: alert {}",
                            rule.id,
                            rule.level,
                            text(&alert["id"])
                        ),
                    )
                } else if rule.id == ctx.sample_id.to_string() {
                    let mut s = Stage::new(
                        StageId::TriggerAlert,
                        Status::Fail,
                        format!(
                            "the self-test rule {} fired, but data.srcip is {} instead of {ip}",
                            rule.id,
                            srcip.map_or("missing".to_string(), |s| format!("{s:?}"))
                        ),
                    );
                    s.causes.push("a custom decoder in etc/decoders overrides Wazuh's sshd decoders (0310-ssh_decoders.xml), so srcip is not extracted: check with wazuh-logtest (see below)".into());
                    s
                } else {
                    let mut s = Stage::new(
                        StageId::TriggerAlert,
                        Status::Fail,
                        format!(
                            "analysisd alerted on the line, but with rule {} (level {}: {}) instead of the self-test rule {}",
                            rule.id, rule.level, rule.description, ctx.sample_id
                        ),
                    );
                    s.causes
                        .extend(diagnose::other_rule_causes(self.home, ctx, &rule.id));
                    s
                };
                s.alert = Some(alert.clone());
                s.took(between(
                    Some(injected_wall),
                    follow::alert_time_ms(alert),
                    at.saturating_duration_since(injected),
                ))
            }
            None => {
                let mut s = Stage::new(
                    StageId::TriggerAlert,
                    Status::Fail,
                    format!("no alert for the injected line within {waited}{interrupted}"),
                );
                s.details.push(match w.alerts_read {
                    0 => format!("nothing at all was written to {} meanwhile", follow::ALERTS_PATH),
                    n => format!("{n} other alert(s) were written to {} meanwhile: analysisd works, but not on this line", follow::ALERTS_PATH),
                });
                s.causes.extend(diagnose::no_trigger_causes(self.home, ctx));
                s.log_lines
                    .extend(diagnose::analysisd_log_lines(self.home, before));
                s
            }
        };
        if a.status == Status::Fail && !w.interrupted {
            a.causes.push(format!(
                "see how analysisd handles the line: echo '{}' | {}/bin/wazuh-logtest",
                w.line.replace('\'', "'\\''"),
                self.home.display()
            ));
        }

        let trigger_at = w.trigger.as_ref().map(|(_, at)| *at);
        let b = match (&w.enriched, trigger_at) {
            (_, None) => Stage::skipped(
                StageId::EnrichedAlert,
                "not reached: stage A did not happen",
            ),
            (Some((alert, at)), Some(a_at)) => {
                let took = between(
                    w.trigger
                        .as_ref()
                        .and_then(|(t, _)| follow::alert_time_ms(t)),
                    follow::alert_time_ms(alert),
                    at.saturating_duration_since(a_at),
                );
                let rule = rule_of(alert);
                let misp = alert.pointer("/data/misp").cloned().unwrap_or(Value::Null);
                let ours = rule
                    .id
                    .parse::<u32>()
                    .is_ok_and(|id| crate::wazuh::rules::rule_ids(ctx.base).contains(&id));
                let mut s = if let Some(err) = misp.get("error") {
                    let mut s = Stage::new(
                        StageId::EnrichedAlert,
                        Status::Fail,
                        format!(
                            "wazuh-misp ran but could not ask MISP: error event kind {} ({}): {}",
                            text(&err["kind"]),
                            match &err["status"] {
                                Value::Null => "no HTTP status".to_string(),
                                v => format!("HTTP {}", text(v)),
                            },
                            text(&err["message"])
                        ),
                    );
                    s.causes.push(diagnose::error_kind_fix(&text(&err["kind"])));
                    s.causes.push("`wazuh-misp doctor` checks the connection, the key and the certificate from this manager".into());
                    s
                } else if !ours {
                    let mut s = Stage::new(
                        StageId::EnrichedAlert,
                        Status::Fail,
                        format!(
                            "wazuh-misp's event for {} arrived, but rule {} matched it, not one of ours ({}-{})",
                            text(&misp["value"]),
                            rule.id,
                            ctx.base,
                            crate::wazuh::rules::sample_rule_id(ctx.base)
                        ),
                    );
                    s.causes.push("the rules loaded by analysisd are not the ones in etc/rules/custom-misp_rules.xml (another rule overrides ours, or the rule id base changed): run `wazuh-misp install`, then restart the manager".into());
                    s
                } else {
                    Stage::new(
                        StageId::EnrichedAlert,
                        Status::Pass,
                        format!(
                            "rule {} (level {}): {}",
                            rule.id, rule.level, rule.description
                        ),
                    )
                };
                if let Some(url) = misp.get("event_url").and_then(Value::as_str) {
                    s.details.push(format!("MISP event: {url}"));
                }
                s.alert = Some(alert.clone());
                s.took(took)
            }
            (None, Some(a_at)) => {
                let mut s = Stage::new(
                    StageId::EnrichedAlert,
                    Status::Fail,
                    format!(
                        "no enriched alert from wazuh-misp within {:.1} s of stage A{interrupted}",
                        a_at.elapsed().as_secs_f64()
                    ),
                );
                let known = match &self.known {
                    Knowledge::Known { .. } => Some(true),
                    Knowledge::Unknown => Some(false),
                    _ => None,
                };
                s.causes
                    .extend(diagnose::no_enriched_causes(self.home, ctx, known, &w));
                s.log_lines
                    .extend(diagnose::our_log_lines(self.home, before));
                s.log_lines
                    .extend(diagnose::integratord_log_lines(self.home, before));
                s
            }
        };
        (a, b)
    }
}

fn wall_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The time between two events: from the alerts' own timestamps (millisecond precision) when
/// both are known and plausible, else as seen by polling alerts.json.
fn between(from_ms: Option<i64>, to_ms: Option<i64>, polled: Duration) -> Duration {
    match (from_ms, to_ms) {
        (Some(a), Some(b)) if (-1000..=polled.as_millis() as i64 + 1000).contains(&(b - a)) => {
            Duration::from_millis(u64::try_from(b - a).unwrap_or(0))
        }
        _ => polled,
    }
}

fn describe_policy(loaded: &Loaded) -> String {
    let l = &loaded.settings.lookup;
    let mut parts = Vec::new();
    if l.to_ids {
        parts.push("IDS flag set");
    }
    if l.published {
        parts.push("published events only");
    }
    if l.enforce_warninglist {
        parts.push("warninglists enforced");
    }
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

/// Makes the shared lookup cache forget the test IP, so that the integration asks MISP: a stale
/// "unknown" would hide a test event just created, and a stale hit would outlive its deletion.
/// Returns a note when there was something to forget.
fn forget_cached(home: &Path, loaded: &Loaded, indicator: &Indicator) -> Option<String> {
    let dir = state_dir(home);
    if !loaded.settings.cache.enabled || !dir.join(cache::CACHE_FILE).is_file() {
        return None;
    }
    let c = Cache::open(&dir, &loaded.settings.cache, &lookup::namespace(loaded)).ok()?;
    let what = match c.get(indicator, cache::now_unix()) {
        Cached::Miss => return None,
        Cached::Negative => "that MISP did not know",
        Cached::Positive(_) => "a MISP answer for",
    };
    let deadline = Instant::now() + Duration::from_secs(1);
    match c.forget(indicator, deadline) {
        Ok(_) => Some(format!(
            "the lookup cache remembered {what} {}: forgotten, so that the integration asks MISP",
            indicator.value
        )),
        Err(e) => Some(format!(
            "the lookup cache remembers {what} {} and could not be updated ({e}): run `wazuh-misp cache clear` if stage B disagrees with MISP",
            indicator.value
        )),
    }
}

/// What following alerts.json found.
#[derive(Debug, Default)]
pub(crate) struct Watched {
    pub line: String,
    pub trigger: Option<(Value, Instant)>,
    pub enriched: Option<(Value, Instant)>,
    /// Ctrl-C or SIGTERM ended the wait.
    pub interrupted: bool,
    /// Alerts read from alerts.json, and whether it was rotated or truncated meanwhile.
    pub alerts_read: usize,
    pub rotated: bool,
}

struct RuleRef {
    id: String,
    level: String,
    description: String,
}

fn rule_of(alert: &Value) -> RuleRef {
    RuleRef {
        id: text(&alert["rule"]["id"]),
        level: text(&alert["rule"]["level"]),
        description: text(&alert["rule"]["description"]),
    }
}

/// A JSON string or number as text ("" otherwise).
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

/// Which alert is which.
#[derive(Debug, PartialEq)]
enum Seen {
    /// The alert analysisd raised for the injected line (whatever rule fired).
    Trigger,
    /// Our event for the alert with this id.
    Enriched,
    Other,
}

fn classify(alert: &Value, probe: &inject::Probe, trigger_id: Option<&str>) -> Seen {
    if alert.pointer("/data/integration").and_then(Value::as_str) == Some("misp") {
        let for_alert = alert.pointer("/data/misp/alert/id").map(text);
        return match (trigger_id, for_alert) {
            (Some(t), Some(id)) if t == id => {
                let misp = &alert["data"]["misp"];
                let about_ip = [&misp["ioc_value"], &misp["value"]]
                    .iter()
                    .any(|v| v.as_str() == Some(probe.ip.as_str()));
                if misp.get("error").is_some() || about_ip {
                    Seen::Enriched
                } else {
                    Seen::Other
                }
            }
            _ => Seen::Other,
        };
    }
    match alert.get("full_log").and_then(Value::as_str) {
        Some(log) if log.contains(&probe.needle) => Seen::Trigger,
        _ => Seen::Other,
    }
}

fn watch(
    follower: &mut follow::Follower,
    probe: &inject::Probe,
    deadline: Instant,
    interrupted: &dyn Fn() -> bool,
) -> Watched {
    let mut w = Watched {
        line: probe.line.clone(),
        ..Watched::default()
    };
    loop {
        let batch = follower.poll();
        w.rotated |= follower.rotated();
        for alert in batch {
            w.alerts_read += 1;
            let trigger_id = w.trigger.as_ref().map(|(a, _)| text(&a["id"]));
            match classify(&alert, probe, trigger_id.as_deref()) {
                Seen::Trigger if w.trigger.is_none() => w.trigger = Some((alert, Instant::now())),
                Seen::Enriched if w.enriched.is_none() => {
                    w.enriched = Some((alert, Instant::now()))
                }
                _ => {}
            }
        }
        if w.enriched.is_some() {
            return w;
        }
        if interrupted() {
            w.interrupted = true;
            return w;
        }
        let now = Instant::now();
        if now >= deadline {
            return w;
        }
        std::thread::sleep(POLL.min(deadline - now));
    }
}

/// Ctrl-C and SIGTERM while a test event exists in MISP: the handler only raises a flag, the
/// waits notice it within [`POLL`], and the event is deleted before the report is printed.
mod interrupt {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;

    static RAISED: AtomicBool = AtomicBool::new(false);
    /// Installations in force (the handler stays while any self test in the process needs it)
    /// and the dispositions to restore after the last.
    static STATE: Mutex<(usize, Option<[libc::sigaction; 2]>)> = Mutex::new((0, None));
    const SIGNALS: [libc::c_int; 2] = [libc::SIGINT, libc::SIGTERM];

    extern "C" fn raise(_: libc::c_int) {
        RAISED.store(true, Ordering::SeqCst);
    }

    pub struct Guard(());

    impl Guard {
        pub fn install() -> Guard {
            let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
            if state.0 == 0 {
                RAISED.store(false, Ordering::SeqCst);
                // SAFETY: a zeroed sigaction is valid; the handler only stores to an atomic,
                // which is async-signal-safe.
                unsafe {
                    let mut new: libc::sigaction = std::mem::zeroed();
                    new.sa_sigaction = raise as extern "C" fn(libc::c_int) as usize;
                    libc::sigemptyset(&mut new.sa_mask);
                    let mut old: [libc::sigaction; 2] = std::mem::zeroed();
                    for (sig, slot) in SIGNALS.iter().zip(old.iter_mut()) {
                        libc::sigaction(*sig, &new, slot);
                    }
                    state.1 = Some(old);
                }
            }
            state.0 += 1;
            Guard(())
        }

        /// Ctrl-C or SIGTERM arrived since the first guard in force was installed.
        pub fn raised(&self) -> bool {
            RAISED.load(Ordering::SeqCst)
        }
    }

    impl Drop for Guard {
        fn drop(&mut self) {
            let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
            state.0 = state.0.saturating_sub(1);
            if state.0 == 0 {
                if let Some(old) = state.1.take() {
                    for (sig, prev) in SIGNALS.iter().zip(old.iter()) {
                        // SAFETY: restores the disposition saved by `install`.
                        unsafe { libc::sigaction(*sig, prev, std::ptr::null_mut()) };
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn probe() -> inject::Probe {
        inject::Probe::new("192.31.196.200")
    }

    #[test]
    fn the_trigger_is_the_alert_holding_the_injected_line() {
        let p = probe();
        let trigger = json!({"id": "1.2", "rule": {"id": "117119"}, "full_log": p.line, "data": {"srcip": p.ip}});
        assert_eq!(classify(&trigger, &p, None), Seen::Trigger);
        let other = json!({"id": "1.3", "rule": {"id": "5710"}, "full_log": "Nov 27 07:00:00 h sshd[1]: Invalid user wazuh-misp-selftest from 192.31.196.200 port 1"});
        assert_eq!(
            classify(&other, &p, None),
            Seen::Other,
            "another run's line"
        );
    }

    #[test]
    fn our_event_counts_only_for_the_trigger_alert() {
        let p = probe();
        let hit = json!({"rule": {"id": "117101"}, "data": {"integration": "misp", "misp": {"value": p.ip, "ioc_value": p.ip, "alert": {"id": "1.2"}}}});
        assert_eq!(classify(&hit, &p, Some("1.2")), Seen::Enriched);
        assert_eq!(classify(&hit, &p, Some("9.9")), Seen::Other);
        assert_eq!(classify(&hit, &p, None), Seen::Other);
        let error = json!({"data": {"integration": "misp", "misp": {"error": {"kind": "timeout"}, "alert": {"id": "1.2"}}}});
        assert_eq!(classify(&error, &p, Some("1.2")), Seen::Enriched);
        let unrelated = json!({"data": {"integration": "misp", "misp": {"value": "185.220.101.47", "alert": {"id": "1.2"}}}});
        assert_eq!(classify(&unrelated, &p, Some("1.2")), Seen::Other);
    }

    #[test]
    fn the_default_test_ip_is_looked_up_by_the_integration() {
        let ip = crate::ioc::parse_ip(DEFAULT_TEST_IP).unwrap();
        assert!(crate::ioc::is_global(ip));
    }
}
