//! What Wazuh's command wodle runs every `mirror.interval_s` (`integrations/custom-misp
//! --scheduled-sync`, from our managed ossec.conf block): the mirror's sync when a mirror mode is
//! on, then the delivery of the sightings spool when sightings are on. The exit code is the
//! sync's (modulesd logs a warning for a non-zero one), else the flush's (0, or 6 when MISP
//! failed and the records were kept).

use crate::settings::{Overrides, Settings};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long one flush may keep sending before it leaves the rest for the next run.
const FLUSH_TIME_LIMIT: Duration = Duration::from_secs(120);

pub fn run(home: &Path, out: &mut dyn Write) -> i32 {
    let loaded = match Settings::load(home, &Overrides::default()) {
        Ok(l) => l,
        Err(e) => {
            let _ = writeln!(out, "wazuh-misp: {e}");
            return crate::sync::EXIT_SETTINGS;
        }
    };
    let mut code = crate::sync::EXIT_OK;
    if loaded.settings.lookup.mode.uses_mirror() {
        let opts = crate::sync::Options {
            quiet: true,
            ..Default::default()
        };
        code = crate::sync::run(home, &opts, out);
    }
    if loaded.settings.sightings.enabled {
        let flushed = flush(home, &loaded, out);
        if code == crate::sync::EXIT_OK {
            code = flushed;
        }
    }
    code
}

/// `wazuh-misp sightings flush`, and the scheduled run's second half.
pub fn flush(home: &Path, loaded: &crate::settings::Loaded, out: &mut dyn Write) -> i32 {
    let log = crate::wazuh::log::IntegrationsLog::new(home, false);
    let client = match crate::misp::MispClient::new(
        &loaded.misp_url,
        loaded.api_key.clone(),
        &loaded.settings.misp,
        Duration::from_secs(loaded.settings.mirror.request_timeout_s),
    ) {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(out, "wazuh-misp: {e}");
            return crate::sync::EXIT_SETTINGS;
        }
    };
    let now = crate::runtime::cache::now_unix();
    let o = crate::sightings::flush::flush_and_record(
        home,
        loaded,
        &client,
        now,
        Instant::now() + FLUSH_TIME_LIMIT,
        &log,
    );
    let _ = writeln!(
        out,
        "sightings: {} sent ({} requests), {} folded into recent ones, {} refused by MISP, {} kept for later{}",
        o.sent,
        o.requests,
        o.folded,
        o.rejected,
        o.pending,
        o.error.as_ref().map(|e| format!(": {e}")).unwrap_or_default()
    );
    if o.error.is_some() && o.pending > 0 {
        crate::sync::EXIT_MISP
    } else {
        crate::sync::EXIT_OK
    }
}
