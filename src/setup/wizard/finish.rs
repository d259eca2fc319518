//! The end both flows share: a free block of rule ids, the summary, the diff of every file, the
//! confirmation, applying everything as one transaction (Ctrl-C ignored), and the offer of a live
//! self test.

use super::answers::{mask_key, Answers, KeySource};
use super::check::MispInfo;
use super::notes::tls_description;
use super::prompt::Ui;
use super::{interrupt, presets, Aborted, Ctx, EXIT_DECLINED};
use crate::settings::{self, LookupMode, Settings};
use crate::wazuh::install::{plan_install, InstallOptions};
use crate::wazuh::ossec_conf::ClusterRole;
use crate::wazuh::rules::{self, RulesError};
use anyhow::{Context, Result};
use std::io::Write;

/// Moves our rule id block when another rule file already uses an id of it (asking first on a
/// terminal; unattended, the installer's error names --rule-id-base).
pub(super) fn free_rule_block(
    ctx: &Ctx,
    ui: Option<&Ui>,
    a: &mut Answers,
    out: &mut dyn Write,
) -> Result<()> {
    if ctx.manager.cluster == ClusterRole::Worker {
        return Ok(());
    }
    let Some(ui) = ui else { return Ok(()) };
    if let Err(RulesError::Collision {
        suggestion: Some(free),
        ..
    }) = rules::ensure_free(ctx.home, a.base())
    {
        let err = rules::ensure_free(ctx.home, a.base()).unwrap_err();
        writeln!(out, "{err}")?;
        let end = rules::sample_rule_id(free);
        if ui.confirm(out, &format!("Use rule ids {free}-{end} instead?"), true)? {
            a.rule_id_base = Some(free);
        } else {
            return Err(Aborted.into());
        }
    }
    Ok(())
}

pub(super) fn finish(
    ctx: &Ctx,
    a: &Answers,
    info: Option<&MispInfo>,
    ui: Option<&Ui>,
    out: &mut dyn Write,
) -> Result<i32> {
    let args = ctx.args;
    let bytes = settings::compose(ctx.existing.value.as_ref(), &a.setup_choices())?;
    Settings::from_bytes(&bytes, &ctx.existing.path)
        .context("the new settings would not be usable")?;
    writeln!(out, "\nSummary")?;
    writeln!(out, "  MISP            {}", a.url.as_deref().unwrap_or(""))?;
    writeln!(out, "  TLS             {}", tls_description(a))?;
    writeln!(
        out,
        "  MISP account    {}",
        info.map(MispInfo::describe)
            .unwrap_or_else(|| "not checked".into())
    )?;
    if let Some(k) = &a.key {
        writeln!(
            out,
            "  API key         {}{}",
            mask_key(k),
            match a.key_source {
                KeySource::Settings => " (kept)".to_string(),
                KeySource::Typed => String::new(),
                KeySource::Flag(s) => format!(" (from {s})"),
            }
        )?;
    }
    writeln!(out, "  Alerts          {}", presets::describe(&a.filters))?;
    writeln!(
        out,
        "  Lookups         {}",
        match a.mode {
            LookupMode::Online => "online: each alert asks MISP (through the cache)",
            LookupMode::Mirror => "mirror: from a local copy synced every few minutes",
            LookupMode::Hybrid => "hybrid: the mirror while fresh, else MISP",
        }
    )?;
    if a.mode.uses_mirror() {
        writeln!(
            out,
            "  Native matching {}",
            if a.native {
                "on: analysisd matches the mirror's indicators through CDB lists"
            } else {
                "off"
            }
        )?;
    }
    writeln!(
        out,
        "  Sightings       {}",
        if a.sightings {
            "each hit is reported to MISP (batched every few minutes)"
        } else {
            "off"
        }
    )?;
    let ids = rules::rule_ids(a.base());
    writeln!(
        out,
        "  Rule ids        {}-{}; sample test rule {}: {}",
        ids.start(),
        ids.end(),
        rules::sample_rule_id(a.base()),
        if a.sample_rule { "yes" } else { "no" }
    )?;
    writeln!(
        out,
        "  Settings        {} (root:{}, mode 0640)",
        ctx.existing.path.display(),
        ctx.manager.group_name
    )?;
    let opts = InstallOptions {
        dry_run: args.dry_run,
        restart: false,
        service: args.service_manager,
        rule_id_base: None,
        sample_rule: None,
    };
    writeln!(out)?;
    let plan = plan_install(ctx.home, &opts, Some(bytes), out)?;
    if !plan.changes_anything() {
        writeln!(
            out,
            "everything is already set up this way: nothing to change"
        )?;
        return Ok(0);
    }
    writeln!(out, "Changes:")?;
    plan.show(out)?;
    if args.dry_run {
        writeln!(out, "dry run: nothing was changed")?;
        return Ok(0);
    }
    let asking = ui.filter(|_| !args.yes);
    if let Some(ui) = asking {
        if !ui.confirm(out, "Apply these changes?", true)? {
            writeln!(out, "nothing was changed")?;
            return Ok(EXIT_DECLINED);
        }
    }
    let restart = !args.no_restart
        && match asking {
            Some(ui) => {
                writeln!(out, "The manager loads the change when it restarts. The restart is safe: Wazuh checks the configuration first, and every file is restored if the restart fails.")?;
                ui.confirm(out, "Restart the Wazuh manager now?", true)?
            }
            None => true,
        };
    writeln!(out, "applying (Ctrl-C is ignored until this is done) …")?;
    out.flush()?;
    let guard = interrupt::Uninterruptible::begin();
    let result = plan.apply(restart, args.service_manager, out);
    if matches!(result, Ok(true)) {
        guard.changed();
    }
    drop(guard);
    result?;
    if a.mode.uses_mirror() {
        writeln!(
            out,
            "first sync of the mirror (the scheduled one takes over from now on) …"
        )?;
        out.flush()?;
        let code = crate::sync::run(ctx.home, &crate::sync::Options::default(), out);
        if code != crate::sync::EXIT_OK {
            writeln!(out, "the first sync did not complete: until one does, lookups in {} mode match nothing{}; the scheduled sync retries every few minutes, and `sudo wazuh-misp sync` shows why",
                a.mode.as_str(),
                if a.mode == LookupMode::Hybrid { " from the mirror (MISP is asked instead)" } else { "" })?;
        }
    }
    if let (Some(ui), true, true) = (asking, a.sample_rule, restart) {
        writeln!(out, "The live self test sends a synthetic sshd event through analysisd, integratord, this integration and MISP, and follows both alerts in alerts.json. It needs a test IP MISP knows: it creates a labelled test event for it (your key must be allowed to add and publish events) and deletes it afterwards.")?;
        if ui.confirm(out, "Run the live self test now?", false)? {
            let opts = crate::setup::selftest::SelfTestOptions {
                create_test_ioc: true,
                ..Default::default()
            };
            return crate::setup::selftest::run(ctx.home, &opts, out);
        }
    }
    writeln!(
        out,
        "\nwazuh-misp is set up. `wazuh-misp doctor` checks the whole chain{}.",
        if a.sample_rule {
            "; `wazuh-misp doctor --live` sends a test event through it"
        } else {
            ""
        }
    )?;
    Ok(0)
}
