//! The wizard on a terminal: asks what no flag answered, checks MISP after the connection
//! answers and offers fixes until it answers (or the admin goes on without it), then the alerts
//! to look up and the sample test rule.

use super::answers::{key_format_error, mask_key, Answers, Given, KeySource};
use super::check::{self, MispInfo, Mode};
use super::finish::{finish, free_rule_block};
use super::notes::{
    ca_readability_note, filter_notes, group_hints, show_info, tls_description, INSECURE_RISK,
};
use super::presets::{self, PresetName, GROUP_PRESETS};
use super::prompt::Ui;
use super::{Aborted, Ctx};
use crate::settings::{normalize_base_url, ApiKey, LookupMode};
use crate::wazuh::ossec_conf::Filters;
use crate::wazuh::rules;
use anyhow::{anyhow, Context, Result};
use dialoguer::theme::ColorfulTheme;
use std::io::Write;
use std::path::Path;

pub(super) fn interactive_flow(
    ctx: &Ctx,
    a: &mut Answers,
    given: &Given,
    out: &mut dyn Write,
) -> Result<i32> {
    let ui = Ui {
        theme: ColorfulTheme::default(),
    };
    writeln!(
        out,
        "Current answers are shown in (parentheses): Enter keeps them. Ctrl-C stops at any point without changing anything.\n"
    )?;
    if given.url {
        writeln!(
            out,
            "MISP URL: {} (--misp-url)",
            a.url.as_deref().unwrap_or("")
        )?;
    } else {
        ask_url(&ui, a, out)?;
    }
    if let KeySource::Flag(source) = a.key_source {
        writeln!(out, "MISP API key: from {source}")?;
    } else {
        ask_key(&ui, a, out)?;
    }
    if given.tls {
        writeln!(out, "TLS: {}", tls_description(a))?;
    } else if !a.is_http() {
        ask_tls(&ui, a, out)?;
    }
    let info = if ctx.args.skip_check {
        writeln!(out, "not checking the connection (--skip-check)")?;
        None
    } else {
        connection_loop(ctx, &ui, a, out)?
    };
    if given.filters {
        writeln!(
            out,
            "\nAlerts to look up: {}",
            presets::describe(&a.filters)
        )?;
        group_hints(&a.filters.groups, out)?;
        filter_notes(ctx, &a.filters, out)?;
    } else {
        ask_filters(ctx, &ui, a, out)?;
    }
    if !given.sample_rule {
        let default = if ctx.existing.value.is_none() {
            true
        } else {
            a.sample_rule
        };
        a.sample_rule = ui.confirm(
            out,
            &format!(
                "Install the sample test rule (id {}; fires only on a synthetic sshd line marked {}, for `wazuh-misp doctor --live`)?",
                rules::sample_rule_id(a.base()),
                rules::SELFTEST_MARKER
            ),
            default,
        )?;
    }
    if !given.mode {
        ask_mode(&ui, a, out)?;
    }
    // Offered only to a key that may add sightings (what getVersion said).
    let may_sight = info.as_ref().and_then(|i| i.perm_sighting);
    if given.sightings {
        check_sightings(a, may_sight)?;
    } else if may_sight == Some(true) {
        a.sightings = ui.confirm(
            out,
            "Report each hit to MISP as a sighting (sent in batches every few minutes, at most one per indicator per hour)?",
            a.sightings,
        )?;
    } else if a.sightings && may_sight == Some(false) {
        writeln!(
            out,
            "note: this key's role may not add sightings, so sightings are turned off"
        )?;
        a.sightings = false;
    }
    if !given.native && a.mode.uses_mirror() {
        ask_native(ctx, &ui, a, out)?;
    }
    free_rule_block(ctx, Some(&ui), a, out)?;
    finish(ctx, a, info.as_ref(), Some(&ui), out)
}

/// Offered where the manager can hot-reload lists (4.13+, or a version we could not read).
fn ask_native(ctx: &Ctx, ui: &Ui, a: &mut Answers, out: &mut dyn Write) -> Result<()> {
    if ctx
        .manager
        .version
        .is_some_and(|v| !v.hot_reloads_ruleset())
    {
        return Ok(());
    }
    a.native = ui.confirm(
        out,
        "Match natively: analysisd checks every event against the mirror through CDB lists (reloaded after each sync that changes them), so alerts that match nothing start no process?",
        a.native,
    )?;
    Ok(())
}

/// `--sightings` with a key MISP says may not add them is refused, with the next step.
pub(super) fn check_sightings(a: &Answers, may_sight: Option<bool>) -> Result<()> {
    if a.sightings && may_sight == Some(false) {
        anyhow::bail!("--sightings: this key's role may not add sightings (MISP's getVersion says perm_sighting false); give the key's role the sighting permission in MISP, or leave sightings off (--no-sightings). Nothing was changed");
    }
    Ok(())
}

fn ask_mode(ui: &Ui, a: &mut Answers, out: &mut dyn Write) -> Result<()> {
    let modes = [LookupMode::Online, LookupMode::Mirror, LookupMode::Hybrid];
    let items: Vec<String> = [
        "online: each alert asks MISP (cached); new intelligence counts at once, but every uncached indicator costs a MISP request while integratord waits",
        "mirror: a local copy of MISP, refreshed every 5 minutes; no network per alert and alerts keep being matched while MISP is down, but new intelligence counts at the next sync",
        "hybrid: the mirror while it is fresh, MISP for kinds the mirror leaves out and whenever the mirror is stale",
    ]
    .map(String::from)
    .into();
    let at = modes.iter().position(|m| *m == a.mode).unwrap_or(0);
    a.mode = modes[ui.select(out, "How should alerts be checked?", &items, at)?];
    Ok(())
}

fn ask_url(ui: &Ui, a: &mut Answers, out: &mut dyn Write) -> Result<()> {
    loop {
        let url = ui.text(
            out,
            "MISP URL (the address of MISP's web interface)",
            a.url.as_deref(),
            |s| {
                normalize_base_url(s)
                    .map(|_| ())
                    .map_err(|e| e.replace("misp.url ", ""))
            },
        )?;
        let url = normalize_base_url(&url).map_err(|e| anyhow!(e))?;
        if url.starts_with("http://") {
            writeln!(out, "warning: with http:// the API key and every indicator looked up cross the network in clear text; use https:// unless MISP runs on this host")?;
            // Asked once: keeping the http:// URL already in the settings needs no new consent.
            if a.url.as_deref() != Some(url.as_str())
                && !ui.confirm(out, "Use http:// anyway?", false)?
            {
                continue;
            }
        }
        a.url = Some(url);
        return Ok(());
    }
}

fn ask_key(ui: &Ui, a: &mut Answers, out: &mut dyn Write) -> Result<()> {
    let prompt = match &a.key {
        Some(k) => format!("MISP API key (hidden; Enter keeps {})", mask_key(k)),
        None => "MISP API key (hidden; in MISP: your profile > Auth keys)".to_string(),
    };
    let keep = a.key.is_some();
    let typed = ui.secret(out, &prompt, keep, |s| {
        if s.is_empty() && keep {
            return Ok(());
        }
        match key_format_error(s) {
            Some(why) => Err(why),
            None => Ok(()),
        }
    })?;
    if !typed.is_empty() {
        a.key = Some(ApiKey::new(typed));
        a.key_source = KeySource::Typed;
    }
    Ok(())
}

fn confirm_insecure(ui: &Ui, out: &mut dyn Write) -> Result<bool> {
    writeln!(out, "{INSECURE_RISK}")?;
    ui.confirm(out, "Disable certificate verification anyway?", false)
}

fn ask_tls(ui: &Ui, a: &mut Answers, out: &mut dyn Write) -> Result<()> {
    let verify = match &a.ca_file {
        Some(ca) => {
            let items = vec![
                format!(
                    "Verify MISP's certificate with the CA bundle {}",
                    ca.display()
                ),
                "Verify MISP's certificate with the public CAs".to_string(),
                "Do not verify MISP's certificate (unsafe)".to_string(),
            ];
            match ui.select(out, "TLS", &items, if a.verify_tls { 0 } else { 2 })? {
                0 => true,
                1 => {
                    a.ca_file = None;
                    true
                }
                _ => false,
            }
        }
        None => ui.confirm(
            out,
            "Verify MISP's TLS certificate? (strongly recommended)",
            a.verify_tls,
        )?,
    };
    if verify {
        a.verify_tls = true;
    } else if confirm_insecure(ui, out)? {
        a.verify_tls = false;
        a.ca_file = None;
    } else {
        writeln!(out, "keeping certificate verification on")?;
        a.verify_tls = true;
    }
    Ok(())
}

fn ask_ca_file(ctx: &Ctx, ui: &Ui, a: &mut Answers, out: &mut dyn Write) -> Result<()> {
    let current = a.ca_file.as_ref().map(|p| p.display().to_string());
    let path = ui.text(
        out,
        "CA bundle that signed MISP's certificate (PEM file path)",
        current.as_deref(),
        |s| {
            if s.is_empty() {
                return Err("give the path of a PEM file".into());
            }
            check::validate_ca_file(Path::new(s)).map(|_| ())
        },
    )?;
    let abs = check::validate_ca_file(Path::new(&path)).map_err(|e| anyhow!(e))?;
    ca_readability_note(ctx, &abs, out)?;
    a.ca_file = Some(abs);
    a.verify_tls = true;
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Fix {
    CaFile,
    Insecure,
    Url,
    Key,
    Retry,
    Continue,
    Abort,
}

/// The error's message without the client's settings-file hint (the wizard gives its own).
fn failure(e: &crate::misp::MispError) -> &str {
    match e.message.find(": if MISP uses a private") {
        Some(at) => &e.message[..at],
        None => &e.message,
    }
}

/// Checks MISP until it answers, the admin continues without a working connection, or aborts.
fn connection_loop(
    ctx: &Ctx,
    ui: &Ui,
    a: &mut Answers,
    out: &mut dyn Write,
) -> Result<Option<MispInfo>> {
    loop {
        let target = a.target().context("URL and key are set")?;
        writeln!(out, "checking {} …", target.url)?;
        out.flush()?;
        let err = match check::check(&target) {
            Ok(info) => {
                show_info(&info, a, out)?;
                return Ok(Some(info));
            }
            Err(e) => e,
        };
        let url = target.url.to_string();
        writeln!(out, "  failed: {}", failure(&err))?;
        writeln!(
            out,
            "  next step: {}",
            check::next_step(&err, &url, Mode::Interactive)
        )?;
        use crate::misp::ErrorKind as K;
        let (fixes, default): (Vec<(Fix, &str)>, Fix) = if err.kind == K::Tls {
            (
                vec![
                    (
                        Fix::CaFile,
                        "Use a CA bundle file (PEM) to verify MISP's certificate",
                    ),
                    (Fix::Insecure, "Disable certificate verification (unsafe)"),
                    (Fix::Url, "Enter another URL"),
                    (Fix::Retry, "Try again"),
                    (Fix::Abort, "Abort setup"),
                ],
                Fix::CaFile,
            )
        } else {
            let default = match err.kind {
                K::Auth => Fix::Key,
                K::NotFound | K::Connect | K::Protocol | K::Config => Fix::Url,
                _ => Fix::Retry,
            };
            (
                vec![
                    (Fix::Key, "Enter another API key"),
                    (Fix::Url, "Enter another URL"),
                    (Fix::Retry, "Try again"),
                    (
                        Fix::Continue,
                        "Continue without a working connection (not recommended)",
                    ),
                    (Fix::Abort, "Abort setup"),
                ],
                default,
            )
        };
        let items: Vec<String> = fixes.iter().map(|(_, t)| t.to_string()).collect();
        let at = fixes.iter().position(|(f, _)| *f == default).unwrap_or(0);
        match fixes[ui.select(out, "What now?", &items, at)?].0 {
            Fix::CaFile => ask_ca_file(ctx, ui, a, out)?,
            Fix::Insecure => {
                if confirm_insecure(ui, out)? {
                    a.verify_tls = false;
                    a.ca_file = None;
                } else {
                    writeln!(out, "certificate verification stays on")?;
                }
            }
            Fix::Url => ask_url(ui, a, out)?,
            Fix::Key => {
                a.key = None;
                ask_key(ui, a, out)?;
            }
            Fix::Retry => {}
            Fix::Continue => {
                writeln!(out, "continuing without a working connection: lookups will fail until {url} answers")?;
                return Ok(None);
            }
            Fix::Abort => return Err(Aborted.into()),
        }
    }
}

fn ask_filters(ctx: &Ctx, ui: &Ui, a: &mut Answers, out: &mut dyn Write) -> Result<()> {
    loop {
        writeln!(out, "\nWhich alerts should be looked up in MISP?")?;
        writeln!(out, "{}", presets::AND_EXPLANATION)?;
        let (chosen, custom) = presets::split_groups(&a.filters.groups);
        let mut items: Vec<&str> = GROUP_PRESETS.iter().map(|p| p.title).collect();
        items.push(presets::LEVEL_PRESET_TITLE);
        let mut defaults: Vec<bool> = GROUP_PRESETS
            .iter()
            .map(|p| {
                chosen.contains(&p.name)
                    || (a.first_filters && p.name == PresetName::Authentication)
            })
            .collect();
        defaults.push(a.filters.level.is_some());
        let picked = ui.multi(
            out,
            "Presets (space toggles, enter confirms)",
            &items,
            &defaults,
        )?;
        let names: Vec<PresetName> = picked
            .iter()
            .filter_map(|&i| GROUP_PRESETS.get(i).map(|p| p.name))
            .collect();
        let level_preset = picked.contains(&GROUP_PRESETS.len());
        if names.contains(&PresetName::Sysmon) {
            writeln!(out, "note: {}", presets::SYSMON_WARNING)?;
        }
        let level = if level_preset {
            let default = a
                .filters
                .level
                .unwrap_or(presets::DEFAULT_LEVEL)
                .to_string();
            let text = ui.text(out, "Minimum rule level (0-16)", Some(&default), |s| {
                s.parse::<u8>()
                    .map_err(|_| "a number from 0 to 16".to_string())
                    .and_then(presets::check_level)
            })?;
            Some(text.parse::<u8>()?)
        } else {
            None
        };
        let mut extra = custom;
        loop {
            extra = ui.list(
                out,
                "Other rule groups (comma-separated; empty for none)",
                &extra,
                presets::check_groups,
            )?;
            if !group_hints(&extra, out)? || ui.confirm(out, "Keep these group names?", false)? {
                break;
            }
        }
        let rule_ids = ui.list(
            out,
            "Rule ids (comma-separated; empty for none; AND-ed with the groups and level)",
            &a.filters.rule_ids,
            presets::check_rule_ids,
        )?;
        if presets::mentions_sysmon(&extra) && !names.contains(&PresetName::Sysmon) {
            writeln!(out, "note: {}", presets::SYSMON_WARNING)?;
        }
        let filters = Filters {
            level,
            groups: presets::union_groups(&names, &extra),
            rule_ids,
        };
        filter_notes(ctx, &filters, out)?;
        if filters == Filters::default() {
            writeln!(out, "No filter: every alert written to alerts.json would be looked up in MISP, one request per alert.")?;
            if !ui.confirm(out, "Look up every alert?", false)? {
                continue;
            }
        }
        if presets::and_note(&filters).is_some()
            && !ui.confirm(out, "Keep this combination?", true)?
        {
            continue;
        }
        a.filters = filters;
        a.first_filters = false;
        writeln!(out, "Alerts to look up: {}", presets::describe(&a.filters))?;
        return Ok(());
    }
}
