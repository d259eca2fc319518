//! Sightings: telling MISP that an indicator was seen in this Wazuh. The per-alert run only
//! appends its reported hits to a bounded local spool (`spool`); the scheduled run delivers them
//! (`flush`), so no alert ever waits on MISP for it.

pub mod flush;
pub mod spool;

use std::io::Write;
use std::path::Path;

/// `wazuh-misp sightings stats`.
pub fn stats(home: &Path, as_json: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    let loaded = crate::settings::Settings::load(home, &Default::default())?;
    let dir = crate::wazuh::home::state_dir(home);
    let (waiting, sending) = spool::pending(&dir);
    let dropped = spool::dropped(&dir);
    let status = flush::Status::read(&dir);
    let enabled = loaded.settings.sightings.enabled;
    if as_json {
        writeln!(
            out,
            "{}",
            serde_json::json!({"enabled": enabled, "source": flush::source(&loaded), "waiting": waiting,
                               "being_delivered": sending, "dropped": dropped, "status": status})
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "sightings {} (source {:?}): {waiting} waiting, {sending} being delivered, {dropped} dropped (spool full)",
        if enabled { "on" } else { "off" },
        flush::source(&loaded)
    )?;
    if status.last_flush == 0 {
        writeln!(out, "last flush: never")?;
    } else {
        writeln!(
            out,
            "last flush: {} ({}); {} sent, {} refused by MISP in all{}",
            crate::civil::format_utc(status.last_flush as i64),
            status.last_result,
            status.sent_total,
            status.rejected_total,
            status
                .last_error
                .as_ref()
                .map(|e| format!("; last error: {e}"))
                .unwrap_or_default()
        )?;
    }
    Ok(())
}
