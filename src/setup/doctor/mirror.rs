//! `mirror.*` checks, when `lookup.mode` is `mirror` or `hybrid`: the mirror is there and answers
//! for the current settings, it is fresh, the last sync worked, the Wazuh group can read it, and
//! the scheduled sync is in ossec.conf.

use super::{Check, Ctx};
use crate::mirror::{self, Mirror, Status};
use crate::wazuh::home::state_dir;
use crate::wazuh::ossec_conf::ManagedState;
use std::os::unix::fs::MetadataExt;

pub(super) fn mirror_checks(ctx: &Ctx) -> Vec<Check> {
    let Ok(loaded) = &ctx.loaded else {
        return Vec::new();
    };
    let mode = loaded.settings.lookup.mode;
    if !mode.uses_mirror() {
        return Vec::new();
    }
    let dir = state_dir(&ctx.home);
    let path = dir.join(mirror::MIRROR_FILE);
    let rel = ctx.rel(&path);
    let status = Status::read(&dir);
    let mut out = Vec::new();
    let sync_fix = "run `sudo wazuh-misp sync` and read its message";
    let scheduled = match &ctx.inspection {
        Ok(i) => match &i.managed {
            Some(ManagedState::Intact(block)) => block.schedule.is_some(),
            _ => false,
        },
        Err(_) => false,
    };
    out.push(if scheduled {
        Check::pass(
            "mirror.schedule",
            format!(
                "wazuh-modulesd runs the sync every {} s (the command wodle in our ossec.conf block)",
                loaded.settings.mirror.interval_s
            ),
        )
    } else {
        Check::fail(
            "mirror.schedule",
            "no scheduled sync in ossec.conf: the mirror will not be refreshed",
            "run `sudo wazuh-misp install --restart` (it adds the sync to the managed block)",
        )
    });
    let m = match Mirror::open(&path) {
        Ok(Some(m)) => m,
        Ok(None) => {
            out.push(Check::fail(
                "mirror.file",
                format!(
                    "{rel} is missing: lookup.mode {mode:?} matches nothing until the first sync"
                )
                .to_lowercase(),
                sync_fix,
            ));
            return out;
        }
        Err(e) => {
            out.push(Check::fail(
                "mirror.file",
                e.to_string(),
                "run `sudo wazuh-misp sync --full`",
            ));
            return out;
        }
    };
    let meta = std::fs::metadata(&path).ok();
    let readable = meta.as_ref().is_some_and(|md| {
        let mode = md.mode();
        mode & 0o004 != 0
            || (ctx.gid == Some(md.gid()) && mode & 0o040 != 0)
            || (ctx.daemon_uid == Some(md.uid()) && mode & 0o400 != 0)
    });
    out.push(if m.meta().policy != mirror::policy::fingerprint(loaded) {
        Check::fail(
            "mirror.file",
            format!("{rel} was built for another MISP, key or lookup policy, so it is not used"),
            "run `sudo wazuh-misp sync` (it rebuilds it in full)",
        )
    } else if !readable {
        Check::fail(
            "mirror.file",
            format!("{rel} is not readable by integratord's user"),
            format!(
                "chown root:{g} {p} && chmod 0660 {p}",
                g = ctx.group,
                p = path.display()
            ),
        )
    } else {
        Check::pass(
            "mirror.file",
            format!(
                "{rel}: {} attributes from {} events, {} KiB",
                m.meta().attributes,
                m.meta().events,
                m.size() / 1024
            ),
        )
    });
    let now = ctx.now.max(0) as u64;
    let age = mirror::age_s(&m, &status, now);
    let max = loaded.settings.mirror.max_age_s();
    out.push(if age > max {
        Check::warn(
            "mirror.age",
            format!(
                "the mirror last matched MISP {age} s ago, over mirror.max_age_s ({max} s){}",
                if mode == crate::settings::LookupMode::Hybrid {
                    ": hybrid asks MISP meanwhile"
                } else {
                    ": new MISP data is not matched meanwhile"
                }
            ),
            sync_fix,
        )
    } else {
        Check::pass(
            "mirror.age",
            format!("the mirror matched MISP {age} s ago (stale after {max} s)"),
        )
    });
    out.push(match (&status.last_error, status.last_attempt) {
        (_, 0) => Check::warn("mirror.sync", "no sync has run yet", sync_fix),
        (Some(e), _) => Check::warn(
            "mirror.sync",
            format!(
                "the last {} sync(s) failed since {}: {e}; the mirror answers from its last good copy",
                status.consecutive_failures,
                crate::civil::format_utc(status.failing_since as i64)
            ),
            sync_fix,
        ),
        (None, at) => Check::pass(
            "mirror.sync",
            format!(
                "the last sync ({}, {}) succeeded in {} ms",
                crate::civil::format_utc(at as i64),
                status.last_kind,
                status.last_duration_ms
            ),
        ),
    });
    out
}
