//! `wazuh-misp test`: runs the runtime's pipeline over a JSON-lines alerts file (by default the
//! manager's own `logs/alerts/alerts.json`) and shows, per alert, what was extracted, what MISP
//! matched and what would be sent. Unlike the per-alert runtime it batches: indicators of many
//! alerts go into one search over one kept-alive connection, and each distinct indicator is asked
//! once per run. Nothing reaches analysisd unless `--send` is given.

use super::event::{self, AlertRef};
use super::extract;
use crate::fieldmap;
use crate::ioc::{Indicator, IocKind};
use crate::misp::search::{self, Attribute};
use crate::misp::MispClient;
use crate::settings::{Overrides, Settings};
use crate::wazuh::queue::{Location, Queue};
use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Alerts read before their new indicators are looked up together.
const BATCH_ALERTS: usize = 2000;
/// Values per search request.
const BATCH_VALUES: usize = 500;
/// Alert lines longer than this are reported and skipped rather than buffered.
const MAX_LINE: usize = 16 << 20;

pub struct Options {
    pub alerts: Option<PathBuf>,
    pub send: bool,
    pub json: bool,
}

#[derive(Debug, Default)]
struct Summary {
    lines: u64,
    invalid: u64,
    own_events: u64,
    with_indicators: u64,
    indicators: u64,
    requests: u64,
    matched_alerts: u64,
    events: u64,
    sent: u64,
}

pub fn run(home: &Path, opts: &Options) -> Result<i32> {
    let loaded = Settings::load(home, &Overrides::default())?;
    let client = MispClient::new(
        &loaded.misp_url,
        loaded.api_key.clone(),
        &loaded.settings.misp,
        Duration::from_millis(loaded.settings.misp.timeout_ms),
    )?;
    let rules = loaded
        .settings
        .field_map
        .clone()
        .unwrap_or_else(fieldmap::default_rules);
    let policy = search::Policy::from(&loaded.settings.lookup);
    let queue = if opts.send {
        Some(Queue::connect(home)?)
    } else {
        None
    };
    let source = opts
        .alerts
        .clone()
        .unwrap_or_else(|| home.join("logs/alerts/alerts.json"));
    let input: Box<dyn BufRead> = if source.as_os_str() == "-" {
        Box::new(BufReader::new(std::io::stdin().lock()))
    } else {
        let f = std::fs::File::open(&source)
            .with_context(|| format!("cannot open alerts file {}", source.display()))?;
        Box::new(BufReader::with_capacity(1 << 16, f))
    };

    let mut run = TestRun {
        client,
        rules,
        policy,
        kinds: loaded.settings.lookup.kinds.clone(),
        allowlist: loaded.settings.allowlist.clone(),
        max_events: loaded.settings.lookup.max_events,
        misp_url: loaded.misp_url.clone(),
        known: HashMap::new(),
        attributes: Vec::new(),
        queue,
        json: opts.json,
        out: std::io::BufWriter::new(std::io::stdout().lock()),
        summary: Summary::default(),
        progress: std::io::stderr().is_terminal().then(Instant::now),
    };
    let mut batch: Vec<Pending> = Vec::with_capacity(BATCH_ALERTS);
    let mut lines = input.split(b'\n');
    loop {
        let line = lines.next().transpose().context("reading alerts")?;
        let done = line.is_none();
        if let Some(line) = line {
            if let Some(p) = run.read_alert(&line) {
                batch.push(p);
            }
        }
        if batch.len() >= BATCH_ALERTS || (done && !batch.is_empty()) {
            run.process(std::mem::take(&mut batch))?;
        }
        if done {
            break;
        }
    }
    run.finish()?;
    Ok(0)
}

struct Pending {
    line: u64,
    alert: Value,
    indicators: Vec<Indicator>,
    skipped: Vec<extract::Skipped>,
}

struct TestRun<W: Write> {
    client: MispClient,
    rules: Vec<fieldmap::FieldRule>,
    policy: search::Policy,
    kinds: Vec<IocKind>,
    allowlist: crate::settings::Allowlist,
    max_events: usize,
    misp_url: String,
    /// Every indicator asked so far, with the attributes (indices into `attributes`) that
    /// answer it.
    known: HashMap<(IocKind, String), Vec<usize>>,
    attributes: Vec<Attribute>,
    queue: Option<Queue>,
    json: bool,
    out: W,
    summary: Summary,
    progress: Option<Instant>,
}

impl<W: Write> TestRun<W> {
    fn read_alert(&mut self, line: &[u8]) -> Option<Pending> {
        self.summary.lines += 1;
        let n = self.summary.lines;
        if line.iter().all(u8::is_ascii_whitespace) {
            self.summary.lines -= 1;
            return None;
        }
        if line.len() > MAX_LINE {
            self.summary.invalid += 1;
            let _ = writeln!(self.out, "line {n}: skipped, longer than {MAX_LINE} bytes");
            return None;
        }
        let alert = match super::alert::parse(line) {
            Ok((alert, _)) => alert,
            Err(reason) => {
                self.summary.invalid += 1;
                let _ = writeln!(self.out, "line {n}: not an alert: {reason}");
                return None;
            }
        };
        if extract::is_own_event(&alert) {
            self.summary.own_events += 1;
            return None;
        }
        let policy = extract::Policy {
            kinds: &self.kinds,
            allowlist: &self.allowlist,
        };
        let ex = extract::extract(&alert, &self.rules, &policy);
        if ex.indicators.is_empty() {
            return None;
        }
        self.summary.with_indicators += 1;
        self.summary.indicators += ex.indicators.len() as u64;
        Some(Pending {
            line: n,
            alert,
            indicators: ex.indicators,
            skipped: ex.skipped,
        })
    }

    fn process(&mut self, batch: Vec<Pending>) -> Result<()> {
        self.lookup_new(&batch)?;
        for p in batch {
            self.report(p)?;
        }
        if let Some(started) = self.progress {
            eprint!(
                "\r{} alerts read, {} with indicators, {} matched, {:.0} alerts/s ",
                self.summary.lines,
                self.summary.with_indicators,
                self.summary.matched_alerts,
                self.summary.lines as f64 / started.elapsed().as_secs_f64().max(1e-3)
            );
        }
        Ok(())
    }

    /// Asks MISP about every indicator of the batch not asked before, in chunks.
    fn lookup_new(&mut self, batch: &[Pending]) -> Result<()> {
        let mut new: Vec<Indicator> = Vec::new();
        for p in batch {
            for i in &p.indicators {
                let key = (i.kind, i.value.to_ascii_lowercase());
                if let std::collections::hash_map::Entry::Vacant(slot) = self.known.entry(key) {
                    slot.insert(Vec::new());
                    new.push(i.clone());
                }
            }
        }
        for chunk in new.chunks(BATCH_VALUES) {
            self.summary.requests += 1;
            let found = search::search(&self.client, chunk, &self.policy)
                .map_err(|e| anyhow::anyhow!("{e}"))
                .context("looking up indicators")?;
            for m in found.matches {
                let key = (m.indicator.kind, m.indicator.value.to_ascii_lowercase());
                self.attributes.push(m.attribute);
                let idx = self.attributes.len() - 1;
                self.known.entry(key).or_default().push(idx);
            }
        }
        Ok(())
    }

    fn report(&mut self, p: Pending) -> Result<()> {
        let alert_ref = AlertRef::of(&p.alert);
        let location = Location::for_alert(&p.alert);
        let mut seen = Vec::new();
        let mut payloads = Vec::new();
        for i in &p.indicators {
            let key = (i.kind, i.value.to_ascii_lowercase());
            for &idx in self.known.get(&key).map(Vec::as_slice).unwrap_or_default() {
                if seen.contains(&idx) || payloads.len() >= self.max_events {
                    continue;
                }
                seen.push(idx);
                let m = search::Match {
                    attribute: self.attributes[idx].clone(),
                    indicator: i.clone(),
                };
                payloads.push(event::match_payload(
                    &m,
                    &alert_ref,
                    &self.misp_url,
                    event::Source::Misp,
                ));
            }
        }
        if !payloads.is_empty() {
            self.summary.matched_alerts += 1;
            self.summary.events += payloads.len() as u64;
        }
        let mut sent = Vec::new();
        for payload in &payloads {
            let Some(msg) = event::frame_to_fit(&location, payload.clone()) else {
                continue;
            };
            if let Some(q) = &self.queue {
                q.send(&msg, Instant::now() + Duration::from_secs(5))?;
                self.summary.sent += 1;
            }
            sent.push(String::from_utf8_lossy(&msg).into_owned());
        }
        if self.json {
            let line = json!({
                "line": p.line,
                "alert": {"id": alert_ref.id, "rule_id": alert_ref.rule_id},
                "indicators": p.indicators.iter().map(|i| json!({"kind": i.kind.as_str(), "value": i.value, "field": i.field})).collect::<Vec<_>>(),
                "skipped": p.skipped.iter().map(|s| json!({"field": s.field, "value": s.value, "reason": s.reason.to_string()})).collect::<Vec<_>>(),
                "events": payloads,
                "sent": self.queue.is_some(),
            });
            writeln!(self.out, "{line}")?;
        } else {
            let list: Vec<String> = p
                .indicators
                .iter()
                .map(|i| format!("{} {} ({})", i.kind, i.value, i.field))
                .collect();
            writeln!(
                self.out,
                "line {} alert {} rule {}: {} indicator(s): {}",
                p.line,
                alert_ref.id,
                alert_ref.rule_id,
                p.indicators.len(),
                list.join(", ")
            )?;
            for payload in &payloads {
                let m = &payload["misp"];
                writeln!(
                    self.out,
                    "  MATCH {} {} = {} in event {} {:?} [{}]",
                    m["ioc_kind"].as_str().unwrap_or(""),
                    m["type"].as_str().unwrap_or(""),
                    m["value"].as_str().unwrap_or(""),
                    m["event_id"].as_str().unwrap_or(""),
                    m["event_info"].as_str().unwrap_or(""),
                    m["tags"].as_str().unwrap_or("")
                )?;
            }
            for msg in &sent {
                writeln!(
                    self.out,
                    "  {} {msg}",
                    if self.queue.is_some() {
                        "SENT"
                    } else {
                        "WOULD SEND"
                    }
                )?;
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        if self.progress.is_some() {
            eprintln!();
        }
        let s = &self.summary;
        if self.json {
            writeln!(
                self.out,
                "{}",
                json!({"summary": {
                "alerts": s.lines, "invalid": s.invalid, "own_events": s.own_events,
                "with_indicators": s.with_indicators, "indicators": s.indicators,
                "distinct_indicators": self.known.len(), "misp_requests": s.requests,
                "matched_alerts": s.matched_alerts, "events": s.events, "sent": s.sent}})
            )?;
        } else {
            writeln!(
                self.out,
                "summary: {} alerts ({} invalid, {} from this integration), {} with indicators ({} indicators, {} distinct), {} MISP request(s), {} alerts matched, {} events {}",
                s.lines, s.invalid, s.own_events, s.with_indicators, s.indicators, self.known.len(), s.requests,
                s.matched_alerts, s.events, if self.queue.is_some() { format!("sent ({} delivered)", s.sent) } else { "not sent (use --send)".into() }
            )?;
        }
        self.out.flush()?;
        Ok(())
    }
}
