//! `sightings.*` checks, when sightings are on: the scheduled run that delivers them, the spool
//! (waiting, dropped because it was full) and the last flush.

use super::{Check, Ctx};
use crate::sightings::{flush, spool};
use crate::wazuh::home::state_dir;
use crate::wazuh::ossec_conf::ManagedState;

pub(super) fn sightings_checks(ctx: &Ctx) -> Vec<Check> {
    let Ok(loaded) = &ctx.loaded else {
        return Vec::new();
    };
    if !loaded.settings.sightings.enabled {
        return Vec::new();
    }
    let dir = state_dir(&ctx.home);
    let scheduled = matches!(&ctx.inspection, Ok(i) if matches!(&i.managed, Some(ManagedState::Intact(b)) if b.schedule.is_some()));
    let (waiting, sending) = spool::pending(&dir);
    let dropped = spool::dropped(&dir);
    let status = flush::Status::read(&dir);
    let mut out = vec![if scheduled {
        Check::pass(
            "sightings.schedule",
            "wazuh-modulesd delivers the spool with the scheduled run",
        )
    } else {
        Check::fail(
            "sightings.schedule",
            "no scheduled run in ossec.conf: sightings are spooled but never sent",
            "run `sudo wazuh-misp install --restart` (it adds the scheduled run to the managed block)",
        )
    }];
    let summary = format!("{waiting} waiting, {sending} being delivered, {} sent, {} refused by MISP, {dropped} dropped because the spool was full", status.sent_total, status.rejected_total);
    out.push(match &status.last_error {
        Some(e) if status.failing_since != 0 => Check::warn(
            "sightings.flush",
            format!(
                "delivery failing since {}: {e}; {summary}",
                crate::civil::format_utc(status.failing_since as i64)
            ),
            "see the misp.* checks; the records are kept and sent once MISP answers",
        ),
        _ if dropped > 0 => Check::warn(
            "sightings.flush",
            summary,
            "raise sightings.max_spool_kb, or check that the scheduled run works",
        ),
        _ => Check::pass("sightings.flush", summary),
    });
    out
}
