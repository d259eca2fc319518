//! The readable report: one line per stage with a tick or a cross and its time, what was
//! observed, and for a stage that did not happen its likely causes and the relevant log lines;
//! then the verdict.

use super::{Report, StageId, Status};
use std::io::{self, Write};

fn duration(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

pub(super) fn text(r: &Report, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "wazuh-misp {} self test of the Wazuh home {}",
        env!("CARGO_PKG_VERSION"),
        r.home.display()
    )?;
    let mut facts = Vec::new();
    if let Some(ip) = &r.test_ip {
        facts.push(format!("test IP {ip}"));
    }
    if let Some(id) = r.sample_rule_id {
        facts.push(format!("self-test rule {id}"));
    }
    facts.push(format!("timeout {}", duration(r.timeout_ms)));
    writeln!(out, "  {}", facts.join(", "))?;
    for s in &r.stages {
        write!(
            out,
            "{} {}: {}",
            s.status.symbol(),
            s.stage.title(),
            s.summary
        )?;
        if let Some(ms) = s.elapsed_ms {
            write!(out, " ({})", duration(ms))?;
        }
        writeln!(out)?;
        let width = s.checks.iter().map(|c| c.id.len()).max().unwrap_or(0);
        for c in &s.checks {
            write!(
                out,
                "    {} {:<width$}  {}",
                c.status.symbol(),
                c.id,
                c.detail
            )?;
            if let (Some(fix), true) = (&c.fix, c.status != Status::Pass) {
                write!(out, " → fix: {fix}")?;
            }
            writeln!(out)?;
        }
        for d in &s.details {
            writeln!(out, "    {d}")?;
        }
        if !s.causes.is_empty() {
            writeln!(out, "    likely causes, most likely first:")?;
            for (i, c) in s.causes.iter().enumerate() {
                writeln!(out, "      {}. {c}", i + 1)?;
            }
        }
        if !s.log_lines.is_empty() {
            writeln!(out, "    recent log lines:")?;
            for l in &s.log_lines {
                writeln!(out, "      {l}")?;
            }
        }
    }
    let failed: Vec<&str> = r
        .stages
        .iter()
        .filter(|s| s.status == Status::Fail)
        .map(|s| match s.stage {
            StageId::Preconditions => "preconditions",
            StageId::TestIndicator => "test indicator",
            StageId::Inject => "injection",
            StageId::TriggerAlert => "stage A",
            StageId::EnrichedAlert => "stage B",
            StageId::Cleanup => "cleanup",
        })
        .collect();
    if r.passed {
        writeln!(
            out,
            "result: PASSED: analysisd alerted on the test line and wazuh-misp enriched the alert with MISP's answer"
        )
    } else if r.interrupted {
        writeln!(out, "result: INTERRUPTED")
    } else {
        writeln!(out, "result: FAILED ({})", failed.join(", "))
    }
}
