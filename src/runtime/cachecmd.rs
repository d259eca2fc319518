//! `wazuh-misp cache stats|clear`: what the shared cache and the circuit breaker hold, and a way
//! for admins to start over (clearing the cache also closes the breaker).

use super::breaker::{Breaker, Phase};
use super::cache::{self, Cache};
use super::lookup;
use crate::settings::{Overrides, Settings};
use crate::wazuh::home::state_dir;
use anyhow::{bail, Context, Result};
use serde_json::json;
use std::io::Write;
use std::path::Path;

pub fn stats(home: &Path, as_json: bool, out: &mut dyn Write) -> Result<()> {
    let dir = state_dir(home);
    if !dir.is_dir() {
        bail!(
            "{} does not exist: run `sudo wazuh-misp install` first",
            dir.display()
        );
    }
    let loaded = Settings::load(home, &Overrides::default())?;
    let now = cache::now_unix();
    let c = Cache::open(&dir, &loaded.settings.cache, &lookup::namespace(&loaded))
        .with_context(|| format!("cannot open the cache in {}", dir.display()))?;
    let s = c.stats(now);
    let hit_files = std::fs::read_dir(dir.join(cache::HITS_DIR)).map_or(0, |d| d.count());
    let b = Breaker::open(&dir, &loaded.settings.breaker)?.state();
    if as_json {
        writeln!(
            out,
            "{}",
            json!({"cache": s, "hit_files": hit_files, "breaker": b})
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "cache: {} live entries ({} known to MISP, {} not), {} expired, capacity {}, {} KiB",
        s.positive + s.negative,
        s.positive,
        s.negative,
        s.expired,
        s.capacity,
        s.file_bytes / 1024
    )?;
    let phase = match b.phase {
        Phase::Closed if b.failures == 0 => "closed (MISP healthy)".to_string(),
        Phase::Closed => format!("closed, {} recent failure(s)", b.failures),
        Phase::Open => format!(
            "OPEN: MISP is left alone for {} more s",
            b.retry_at.saturating_sub(now)
        ),
        Phase::HalfOpen => "half-open: one run is probing MISP".to_string(),
    };
    writeln!(out, "circuit breaker: {phase}")?;
    if let Some(e) = &b.last_error {
        writeln!(out, "last MISP error: {} {}", e.kind.as_str(), e.message)?;
    }
    Ok(())
}

pub fn clear(home: &Path, out: &mut dyn Write) -> Result<()> {
    let dir = state_dir(home);
    if !dir.is_dir() {
        writeln!(out, "nothing to clear: {} does not exist", dir.display())?;
        return Ok(());
    }
    cache::clear(&dir).with_context(|| format!("cannot clear the cache in {}", dir.display()))?;
    let breaker = dir.join(super::breaker::BREAKER_FILE);
    if breaker.exists() {
        Breaker::open(&dir, &Default::default())?.reset()?;
    }
    writeln!(out, "cache cleared and circuit breaker closed")?;
    Ok(())
}
