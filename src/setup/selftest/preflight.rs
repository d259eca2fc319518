//! The self test's preconditions. Failures stop the test before anything is injected (the
//! stages could not say anything useful); warnings let it run and come back as the first
//! likely causes when a stage does not happen.

use super::{Check, SelfTestOptions, DEFAULT_TEST_IP};
use crate::ioc::{self, Indicator, IocKind};
use crate::runtime::breaker::{Breaker, Phase};
use crate::runtime::cache;
use crate::runtime::extract::{self, SkipReason};
use crate::settings::{Loaded, Overrides, Settings};
use crate::wazuh::daemon::{self, Daemon};
use crate::wazuh::detect::OSSEC_CONF;
use crate::wazuh::home::state_dir;
use crate::wazuh::install::INTEGRATION_PATH;
use crate::wazuh::ossec_conf::{self, Filters, ManagedState};
use crate::wazuh::queue::QUEUE_PATH;
use crate::wazuh::rules::{self, RULES_FILE, SELFTEST_GROUP, STOCK_SSHD_PARENTS};
use serde_json::json;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

/// Everything the stages need, known to be in place.
pub(crate) struct Context {
    pub loaded: Loaded,
    pub base: u32,
    pub sample_id: u32,
    pub sample_level: u8,
    pub test_ip: String,
    /// The test IP as the integration extracts it from the trigger alert.
    pub indicator: Indicator,
    pub hostname: String,
    /// Likely causes, known before injecting, should stage A not happen.
    pub a_warnings: Vec<String>,
    /// Likely causes, known before injecting, should stage B not happen.
    pub b_warnings: Vec<String>,
}

pub(crate) struct Preflight {
    pub checks: Vec<Check>,
    pub test_ip: Option<String>,
    pub context: Option<Context>,
}

struct SampleRule {
    id: u32,
    level: u8,
    groups: Vec<String>,
}

pub(crate) fn check(home: &Path, opts: &SelfTestOptions) -> Preflight {
    let mut checks = Vec::new();
    let mut a_warnings = Vec::new();
    let mut b_warnings = Vec::new();

    // Settings.
    let loaded = match Settings::load(home, &Overrides::default()) {
        Ok(l) => {
            checks.push(Check::pass(
                "settings",
                format!(
                    "{} (MISP {})",
                    l.file
                        .as_deref()
                        .map_or_else(|| "no file".into(), |p| p.display().to_string()),
                    l.misp_url
                ),
            ));
            Some(l)
        }
        Err(e) => {
            checks.push(Check::fail(
                "settings",
                e.to_string(),
                "run `wazuh-misp setup`",
            ));
            None
        }
    };
    let base = loaded
        .as_ref()
        .and_then(|l| l.settings.install.rule_id_base)
        .unwrap_or(rules::DEFAULT_RULE_ID_BASE);

    // Our rules, with the self-test rule.
    let sample = check_rules(home, base, &mut checks, &mut a_warnings);

    // The test IP, as the integration would extract it from the self-test rule's alert.
    let raw_ip = opts.test_ip.as_deref().unwrap_or(DEFAULT_TEST_IP);
    let (test_ip, indicator) = check_test_ip(raw_ip, loaded.as_ref(), &mut checks);

    // The integration block.
    check_block(
        home,
        sample.as_ref(),
        &mut checks,
        &mut a_warnings,
        &mut b_warnings,
    );

    // analysisd's queue and alerts.json.
    let queue = home.join(QUEUE_PATH);
    match std::fs::metadata(&queue) {
        Ok(md) if md.file_type().is_socket() => {
            checks.push(Check::pass("queue_socket", QUEUE_PATH));
        }
        Ok(_) => checks.push(Check::fail(
            "queue_socket",
            format!("{} is not a socket", queue.display()),
            "restart the manager, which recreates it",
        )),
        Err(e) => checks.push(Check::fail(
            "queue_socket",
            format!(
                "analysisd's queue socket {} is unavailable ({e})",
                queue.display()
            ),
            "start the manager (`systemctl start wazuh-manager`): wazuh-analysisd creates it",
        )),
    }
    let alerts = home.join(super::follow::ALERTS_PATH);
    if alerts.is_file() {
        checks.push(Check::pass("alerts_json", super::follow::ALERTS_PATH));
    } else {
        checks.push(Check::fail(
            "alerts_json",
            format!("{} does not exist", alerts.display()),
            "set <jsonout_output>yes</jsonout_output> in <global> of etc/ossec.conf and restart the manager: integratord reads alerts from this file",
        ));
    }

    // The integration binary.
    if home.join(INTEGRATION_PATH).is_file() {
        checks.push(Check::pass("integration", INTEGRATION_PATH));
    } else {
        let msg = format!("{INTEGRATION_PATH} is missing: integratord cannot run wazuh-misp");
        b_warnings.push(format!(
            "{msg}: run `wazuh-misp install`, then restart the manager"
        ));
        checks.push(Check::warn(
            "integration",
            msg,
            "run `wazuh-misp install`, then restart the manager",
        ));
    }

    // The daemons, and restarts still to do.
    check_daemons(home, &mut checks, &mut a_warnings, &mut b_warnings);

    // The circuit breaker.
    if let Some(l) = &loaded {
        let dir = state_dir(home);
        if dir.join(crate::runtime::breaker::BREAKER_FILE).is_file() {
            if let Ok(b) = Breaker::open(&dir, &l.settings.breaker) {
                let s = b.state();
                let now = cache::now_unix();
                if s.phase != Phase::Closed && now < s.retry_at {
                    let last = s
                        .last_error
                        .as_ref()
                        .map(|e| format!(" (last error: {} {})", e.kind.as_str(), e.message))
                        .unwrap_or_default();
                    let msg = format!(
                        "the circuit breaker is open: the integration leaves MISP alone for {} more s{last}",
                        s.retry_at - now
                    );
                    b_warnings.push(format!("{msg}; `wazuh-misp cache clear` closes it"));
                    checks.push(Check::warn(
                        "circuit_breaker",
                        msg,
                        "fix MISP's availability, then `wazuh-misp cache clear`",
                    ));
                }
            }
        }
    }

    let context = match (loaded, sample, indicator) {
        (Some(loaded), Some(sample), Some(indicator)) => Some(Context {
            loaded,
            base,
            sample_id: sample.id,
            sample_level: sample.level,
            test_ip: test_ip.clone().unwrap_or_default(),
            indicator,
            hostname: crate::wazuh::home::host_name(),
            a_warnings,
            b_warnings,
        }),
        _ => None,
    };
    Preflight {
        checks,
        test_ip,
        context,
    }
}

fn check_rules(
    home: &Path,
    base: u32,
    checks: &mut Vec<Check>,
    a_warnings: &mut Vec<String>,
) -> Option<SampleRule> {
    let install =
        "run `wazuh-misp install --sample-rule` (or `wazuh-misp setup`), then restart the manager";
    let file = home.join(RULES_FILE);
    if !file.is_file() {
        checks.push(Check::fail(
            "rules",
            format!("{RULES_FILE} is missing"),
            install,
        ));
        return None;
    }
    let all = match rules::all_rule_ids(home) {
        Ok(r) => r,
        Err(e) => {
            checks.push(Check::fail(
                "rules",
                e.to_string(),
                "fix the rule file named, which wazuh-analysisd cannot load either",
            ));
            return None;
        }
    };
    let ours: Vec<_> = all.iter().filter(|(f, ..)| *f == file).collect();
    let wanted = rules::sample_rule_id(base);
    let found = ours.iter().find(|(_, id, ..)| *id == wanted).or_else(|| {
        ours.iter()
            .find(|(_, _, _, groups)| groups.iter().any(|g| g == SELFTEST_GROUP))
    });
    let Some((_, id, level, groups)) = found else {
        checks.push(Check::fail(
            "rules",
            format!("{RULES_FILE} has no self-test rule (id {wanted})"),
            install,
        ));
        return None;
    };
    let mut detail = format!("{RULES_FILE}: self-test rule {id} (level {level})");
    if *id != wanted {
        detail.push_str(&format!(
            ", not at {wanted} where the stored rule id base {base} puts it"
        ));
    }
    checks.push(Check::pass("rules", detail));
    let parents: Vec<u32> = STOCK_SSHD_PARENTS
        .iter()
        .copied()
        .filter(|p| all.iter().any(|(_, id, ..)| id == p))
        .collect();
    if parents.is_empty() {
        let msg = format!(
            "none of the stock sshd rules {STOCK_SSHD_PARENTS:?} the self-test rule hangs from was found (ruleset/rules/0095-sshd_rules.xml)"
        );
        a_warnings.push(format!(
            "{msg}: without them analysisd drops the self-test rule"
        ));
        checks.push(Check::warn(
            "stock_sshd_rules",
            msg,
            "restore Wazuh's ruleset (reinstall the wazuh-manager package), or check <rule_exclude> in ossec.conf",
        ));
    }
    Some(SampleRule {
        id: *id,
        level: *level,
        groups: groups.clone(),
    })
}

fn check_test_ip(
    raw: &str,
    loaded: Option<&Loaded>,
    checks: &mut Vec<Check>,
) -> (Option<String>, Option<Indicator>) {
    let Some(ip) = ioc::parse_ip(raw) else {
        checks.push(Check::fail(
            "test_ip",
            format!("{raw:?} is not an IP address"),
            format!("give --test-ip an IPv4 or IPv6 address (the default is {DEFAULT_TEST_IP})"),
        ));
        return (None, None);
    };
    let text = ip.to_string();
    if !ioc::is_global(ip) {
        checks.push(Check::fail(
            "test_ip",
            format!("{text} is not a global address: the integration never looks up private, loopback, link-local, CGNAT, documentation or multicast addresses"),
            format!("use a public address with --test-ip (the default {DEFAULT_TEST_IP} is one)"),
        ));
        return (Some(text), None);
    }
    let Some(loaded) = loaded else {
        return (Some(text), None);
    };
    // The alert the self-test rule raises, as far as the field map looks at it.
    let alert = json!({
        "rule": {"id": "0", "groups": ["syslog", "sshd", "authentication_failed"]},
        "decoder": {"parent": "sshd", "name": "sshd"},
        "data": {"srcip": text, "srcport": "22", "srcuser": rules::SELFTEST_MARKER},
    });
    let ex = extract::extract_with(&alert, &loaded.settings);
    match ex.indicators.into_iter().find(|i| i.kind == IocKind::Ip) {
        Some(indicator) => {
            checks.push(Check::pass(
                "test_ip",
                format!(
                    "{text} (looked up from {} of the self-test rule's alert)",
                    indicator.field
                ),
            ));
            (Some(text), Some(indicator))
        }
        None => {
            let (detail, fix) = match ex.skipped.iter().map(|s| s.reason).next() {
                Some(SkipReason::Allowlisted) => (
                    format!("{text} is in allowlist.cidrs, so the integration never looks it up"),
                    "use another --test-ip, or remove it from allowlist.cidrs".to_string(),
                ),
                Some(SkipReason::KindDisabled) => (
                    "lookup.kinds does not include \"ip\": the integration looks up no IP".to_string(),
                    "add \"ip\" to lookup.kinds in etc/custom-misp.json".to_string(),
                ),
                Some(other) => (
                    format!("the integration skips {text}: {other}"),
                    "use another --test-ip".to_string(),
                ),
                None => (
                    "the field map in the settings has no rule for data.srcip, so the self-test rule's alert holds nothing to look up".to_string(),
                    "add {\"path\": \"data.srcip\", \"kind\": \"ip\"} to field_map, or remove field_map to use the built-in one".to_string(),
                ),
            };
            checks.push(Check::fail("test_ip", detail, fix));
            (Some(text), None)
        }
    }
}

/// Which filters of a block the self-test rule fails (empty: it passes them all).
fn filter_misses(f: &Filters, rule: &SampleRule) -> Vec<String> {
    let mut misses = Vec::new();
    if let Some(level) = f.level {
        if rule.level < level {
            misses.push(format!(
                "<level>{level}</level> (the rule's level is {})",
                rule.level
            ));
        }
    }
    if !f.groups.is_empty() && !f.groups.iter().any(|g| rule.groups.contains(g)) {
        misses.push(format!(
            "<group>{}</group> (the rule's groups are {})",
            f.groups.join(","),
            rule.groups.join(",")
        ));
    }
    let id = rule.id.to_string();
    if !f.rule_ids.is_empty() && !f.rule_ids.iter().any(|r| r.trim() == id) {
        misses.push(format!("<rule_id>{}</rule_id>", f.rule_ids.join(",")));
    }
    misses
}

fn check_block(
    home: &Path,
    sample: Option<&SampleRule>,
    checks: &mut Vec<Check>,
    a_warnings: &mut Vec<String>,
    b_warnings: &mut Vec<String>,
) {
    let conf = home.join(OSSEC_CONF);
    let bytes = match std::fs::read(&conf) {
        Ok(b) => b,
        Err(e) => {
            checks.push(Check::fail(
                "integration_block",
                format!("cannot read {}: {e}", conf.display()),
                "run the self test as root on the Wazuh manager (or pass --wazuh-home)",
            ));
            return;
        }
    };
    let inspection = match ossec_conf::inspect(&bytes) {
        Ok(i) => i,
        Err(e) => {
            checks.push(Check::fail(
                "integration_block",
                format!("{OSSEC_CONF}: {e}"),
                "fix etc/ossec.conf (`wazuh-misp doctor` shows where)",
            ));
            return;
        }
    };
    let blocks: Vec<Filters> = match &inspection.managed {
        Some(ManagedState::Intact(block)) => vec![block.filters.clone()],
        _ => inspection.legacy.clone(),
    };
    let hand_edited = matches!(inspection.managed, Some(ManagedState::HandEdited));
    if blocks.is_empty() && !hand_edited {
        checks.push(Check::fail(
            "integration_block",
            format!("{OSSEC_CONF} has no <integration> block for custom-misp"),
            "run `wazuh-misp setup` (or `wazuh-misp install` when the settings exist), then restart the manager",
        ));
        return;
    }
    if !inspection.jsonout_output {
        checks.push(Check::fail(
            "integration_block",
            "<jsonout_output> is off: alerts.json is not written, so integratord gets no alert",
            "set <jsonout_output>yes</jsonout_output> in <global> of etc/ossec.conf and restart the manager",
        ));
        return;
    }
    match (sample, hand_edited) {
        (_, true) => checks.push(Check::pass(
            "integration_block",
            "present (hand-edited: its filters are not checked against the self-test rule)",
        )),
        (None, false) => checks.push(Check::pass("integration_block", "present")),
        (Some(rule), false) => {
            let misses: Vec<Vec<String>> = blocks.iter().map(|f| filter_misses(f, rule)).collect();
            if misses.iter().any(Vec::is_empty) {
                checks.push(Check::pass(
                    "integration_block",
                    format!("present; its filters pass the self-test rule {}", rule.id),
                ));
            } else {
                let msg = format!(
                    "the block's filters do not pass the self-test rule {}: {}",
                    rule.id,
                    misses[0].join(", ")
                );
                b_warnings.push(format!("{msg}: integratord never runs wazuh-misp on its alert; `wazuh-misp install --sample-rule` renders the rule to pass them (then restart)"));
                checks.push(Check::warn(
                    "integration_block",
                    msg,
                    "run `wazuh-misp install --sample-rule`, which renders the rule to pass the block's filters, then restart the manager",
                ));
            }
        }
    }
    if let Some(rule) = sample {
        if inspection.log_alert_level > rule.level {
            let msg = format!(
                "<log_alert_level> is {}, above the self-test rule's level {}: its alert is never written to alerts.json",
                inspection.log_alert_level, rule.level
            );
            a_warnings.push(msg.clone());
            checks.push(Check::warn(
                "log_alert_level",
                msg,
                "lower <alerts><log_alert_level> in etc/ossec.conf (the packaged value is 3), then restart",
            ));
        }
    }
}

fn check_daemons(
    home: &Path,
    checks: &mut Vec<Check>,
    a_warnings: &mut Vec<String>,
    b_warnings: &mut Vec<String>,
) {
    let restart =
        "restart the manager the safe way (`systemctl reload wazuh-manager`, or `bin/wazuh-control restart`: both test the configuration before stopping anything)";
    let analysisd = daemon::status(home, "wazuh-analysisd");
    let integratord = daemon::status(home, "wazuh-integratord");
    match &analysisd {
        Daemon::NotRunning => {
            let msg = "wazuh-analysisd does not run (no live var/run/wazuh-analysisd-*.pid)";
            a_warnings.push(format!("{msg}: {restart}"));
            checks.push(Check::warn("analysisd", msg, restart));
        }
        Daemon::Running { pid, since } => {
            if let Some(changed) = daemon::newer_than(home, &[RULES_FILE], *since) {
                let msg = format!(
                    "{changed} changed after wazuh-analysisd started: the rules it runs are older"
                );
                a_warnings.push(format!("{msg}; {restart}"));
                b_warnings.push(format!("{msg}; {restart}"));
                checks.push(Check::warn("analysisd", msg, restart));
            } else {
                checks.push(Check::pass("analysisd", format!("running (pid {pid})")));
            }
        }
        Daemon::Unknown => {}
    }
    match &integratord {
        Daemon::NotRunning => {
            let msg = "wazuh-integratord does not run (no live var/run/wazuh-integratord-*.pid): it starts only when ossec.conf has an <integration> block";
            b_warnings.push(format!("{msg}; {restart}"));
            checks.push(Check::warn("integratord", msg, restart));
        }
        Daemon::Running { pid, since } => {
            if let Some(changed) = daemon::newer_than(home, &[OSSEC_CONF, INTEGRATION_PATH], *since)
            {
                let msg = format!("{changed} changed after wazuh-integratord started: it reads its blocks and checks the integration only at start");
                b_warnings.push(format!("{msg}; {restart}"));
                checks.push(Check::warn("integratord", msg, restart));
            } else {
                checks.push(Check::pass("integratord", format!("running (pid {pid})")));
            }
        }
        Daemon::Unknown => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> SampleRule {
        SampleRule {
            id: 117119,
            level: 10,
            groups: vec![
                "syslog".into(),
                "sshd".into(),
                "authentication_failed".into(),
                "misp_selftest".into(),
            ],
        }
    }

    #[test]
    fn filters_are_checked_as_integratord_applies_them() {
        let pass = Filters {
            level: Some(10),
            groups: vec!["sysmon_event1".into(), "authentication_failed".into()],
            rule_ids: vec![],
        };
        assert!(filter_misses(&pass, &rule()).is_empty());
        let fail = Filters {
            level: Some(12),
            groups: vec!["ids".into()],
            rule_ids: vec!["61603".into()],
        };
        let misses = filter_misses(&fail, &rule());
        assert_eq!(misses.len(), 3, "{misses:?}");
        assert!(misses[0].contains("<level>12</level>"));
        let ids = Filters {
            rule_ids: vec!["61603".into(), " 117119".into()],
            ..Filters::default()
        };
        assert!(filter_misses(&ids, &rule()).is_empty());
    }
}
