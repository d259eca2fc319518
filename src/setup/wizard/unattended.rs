//! Setup without prompts (`--non-interactive`, `--api-key-stdin`, or no terminal): every value
//! from flags, `MISP_API_KEY` and the current settings; what is still missing is one error
//! naming the flags that give it.

use super::answers::Answers;
use super::check::{self, Mode};
use super::finish::{finish, free_rule_block};
use super::flags::API_KEY_ENV;
use super::notes::{ca_readability_note, filter_notes, group_hints, show_info, INSECURE_RISK};
use super::presets;
use super::Ctx;
use crate::wazuh::ossec_conf::Filters;
use anyhow::{bail, Context, Result};
use std::io::Write;

pub(super) fn unattended_flow(ctx: &Ctx, a: &mut Answers, out: &mut dyn Write) -> Result<i32> {
    let how = ctx.how();
    let mut missing = Vec::new();
    if a.url.is_none() {
        missing.push(format!("--misp-url is required {how}"));
    }
    if a.key.is_none() {
        missing.push(format!(
            "a MISP API key is required {how}: give --api-key-file FILE, --api-key-stdin, or {API_KEY_ENV} in the environment"
        ));
    }
    if a.first_filters && a.filters == Filters::default() {
        missing.push(format!(
            "the alerts to look up are required {how}: give --preset NAME (authentication, sysmon, fim, ids, web, level), --group, --rule-id and/or --level"
        ));
    }
    if !missing.is_empty() {
        bail!("{}", missing.join("\n"));
    }
    if a.is_http() {
        writeln!(out, "warning: with http:// the API key and every indicator looked up cross the network in clear text; use https:// unless MISP runs on this host")?;
    }
    if ctx.args.insecure {
        writeln!(
            out,
            "warning: --insecure: MISP's certificate is not verified. {INSECURE_RISK}"
        )?;
    }
    if let Some(ca) = &a.ca_file {
        ca_readability_note(ctx, ca, out)?;
    }
    writeln!(out, "alerts to look up: {}", presets::describe(&a.filters))?;
    group_hints(&a.filters.groups, out)?;
    filter_notes(ctx, &a.filters, out)?;
    if presets::mentions_sysmon(&a.filters.groups) {
        writeln!(out, "note: {}", presets::SYSMON_WARNING)?;
    }
    let info = if ctx.args.skip_check {
        writeln!(out, "not checking the connection (--skip-check)")?;
        None
    } else {
        let target = a.target().context("URL and key are set")?;
        writeln!(out, "checking {} …", target.url)?;
        match check::check(&target) {
            Ok(info) => {
                show_info(&info, a, out)?;
                Some(info)
            }
            Err(e) => bail!(
                "{e}\nnext step: {}\nnothing was changed",
                check::next_step(&e, target.url, Mode::Unattended)
            ),
        }
    };
    super::interactive::check_sightings(a, info.as_ref().and_then(|i| i.perm_sighting))?;
    free_rule_block(ctx, None, a, out)?;
    finish(ctx, a, info.as_ref(), None, out)
}
