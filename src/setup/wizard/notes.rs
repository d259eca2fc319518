//! What both flows tell the admin about the answers: the TLS choice and a CA file integratord
//! cannot read, the MISP account the key belongs to, and notes on the alerts to look up.

use super::answers::Answers;
use super::check::{self, MispInfo};
use super::presets;
use super::Ctx;
use crate::wazuh::ossec_conf::Filters;
use anyhow::Result;
use std::io::Write;
use std::path::Path;

pub(super) const INSECURE_RISK: &str = "Without certificate verification, anyone on the network path between this manager and MISP can pose as MISP: they read the API key sent with every lookup, and answer whatever they like.";

pub(super) fn ca_readability_note(ctx: &Ctx, ca: &Path, out: &mut dyn Write) -> Result<()> {
    if !check::readable_by_wazuh(ca, ctx.manager.gid) {
        writeln!(
            out,
            "warning: integratord runs wazuh-misp as user wazuh, which cannot read {}: copy it to {}/etc/custom-misp-ca.pem (root:{}, mode 0640) and use that path",
            ca.display(),
            ctx.home.display(),
            ctx.manager.group_name
        )?;
    }
    Ok(())
}

pub(super) fn tls_description(a: &Answers) -> String {
    if a.is_http() {
        "none (http://)".into()
    } else if !a.verify_tls {
        "certificate NOT verified".into()
    } else if let Some(ca) = &a.ca_file {
        format!("certificate verified with the CA bundle {}", ca.display())
    } else {
        "certificate verified with the public CAs".into()
    }
}

pub(super) fn show_info(info: &MispInfo, a: &Answers, out: &mut dyn Write) -> Result<()> {
    writeln!(out, "  ok: {}", info.describe())?;
    if let Some(w) = &info.warning {
        writeln!(out, "  note: {w}")?;
    }
    if info.perm_sighting == Some(false) {
        writeln!(
            out,
            "  note: this key's role may not add sightings; lookups work, reporting sightings back will not"
        )?;
    }
    if !a.is_http() && !a.verify_tls {
        writeln!(out, "  warning: MISP's certificate is not verified")?;
    }
    Ok(())
}

/// Notes about a choice of filters: misspelt groups, AND-ed combinations, levels that never
/// reach alerts.json.
pub(super) fn filter_notes(ctx: &Ctx, f: &Filters, out: &mut dyn Write) -> Result<()> {
    if let Some(note) = presets::and_note(f) {
        writeln!(out, "note: {note}")?;
    }
    let floor = ctx.inspection.log_alert_level;
    if f.level.is_some_and(|l| l < floor) {
        writeln!(out, "note: alerts below level {floor} (<log_alert_level> in ossec.conf) never reach alerts.json, so they are not looked up either")?;
    }
    if !ctx.inspection.jsonout_output {
        writeln!(out, "warning: <jsonout_output> is off in ossec.conf: integratord reads alerts.json, so no alert reaches wazuh-misp until it is set to yes")?;
    }
    Ok(())
}

/// Warns about group names that look misspelt; returns whether there was any.
pub(super) fn group_hints(groups: &[String], out: &mut dyn Write) -> Result<bool> {
    let mut any = false;
    for hint in groups.iter().filter_map(|g| presets::group_hint(g)) {
        writeln!(out, "warning: {hint}")?;
        any = true;
    }
    Ok(any)
}
