//! `wazuh-misp mirror stats|lookup`: what the mirror holds, how old it is and how the last syncs
//! went; and what it knows of one value, answered exactly as an alert would be.

use super::{age_s, Mirror, Status, MIRROR_FILE};
use crate::ioc::{self, Indicator, IocKind};
use crate::misp::search::Policy;
use crate::settings::{Overrides, Settings};
use anyhow::{bail, Result};
use serde_json::json;
use std::io::Write;
use std::path::Path;

fn open(home: &Path) -> Result<(Option<Mirror>, Status, std::path::PathBuf)> {
    let dir = crate::wazuh::home::state_dir(home);
    if !dir.is_dir() {
        bail!(
            "{} does not exist: run `sudo wazuh-misp install` first",
            dir.display()
        );
    }
    let path = dir.join(MIRROR_FILE);
    Ok((Mirror::open(&path)?, Status::read(&dir), path))
}

pub fn stats(home: &Path, as_json: bool, out: &mut dyn Write) -> Result<()> {
    let loaded = Settings::load(home, &Overrides::default())?;
    let (mirror, status, path) = open(home)?;
    let now = crate::runtime::cache::now_unix();
    let max_age = loaded.settings.mirror.max_age_s();
    let Some(m) = mirror else {
        if as_json {
            writeln!(out, "{}", json!({"present": false, "status": status}))?;
        } else {
            writeln!(
                out,
                "no mirror at {}: run `sudo wazuh-misp sync`",
                path.display()
            )?;
            print_status(out, &status)?;
        }
        return Ok(());
    };
    let age = age_s(&m, &status, now);
    let current = m.meta().policy == super::policy::fingerprint(&loaded);
    if as_json {
        writeln!(
            out,
            "{}",
            json!({"present": true, "path": path, "size": m.size(), "age_s": age, "max_age_s": max_age,
                   "stale": age > max_age, "current_policy": current, "meta": m.meta(), "status": status})
        )?;
        return Ok(());
    }
    let meta = m.meta();
    writeln!(
        out,
        "mirror {}: {} attributes from {} events of {}, {} KiB",
        path.display(),
        meta.attributes,
        meta.events,
        meta.misp_url,
        m.size() / 1024
    )?;
    let keys: Vec<String> = meta.keys.iter().map(|(k, n)| format!("{k} {n}")).collect();
    writeln!(out, "keys: {}", keys.join(", "))?;
    writeln!(
        out,
        "age: {} s (matched MISP as of then; stale after {max_age} s){}",
        age,
        if age > max_age { ": STALE" } else { "" }
    )?;
    if !current {
        writeln!(out, "built for another MISP, key or lookup policy: the runtime does not use it until `sudo wazuh-misp sync` rebuilds it")?;
    }
    print_status(out, &status)?;
    Ok(())
}

fn print_status(out: &mut dyn Write, s: &Status) -> Result<()> {
    if s.last_attempt == 0 {
        writeln!(out, "last sync: never")?;
        return Ok(());
    }
    writeln!(
        out,
        "last sync: {} ({} {}, {} requests, {} ms){}",
        crate::civil::format_utc(s.last_attempt as i64),
        s.last_kind,
        s.last_result,
        s.last_requests,
        s.last_duration_ms,
        s.last_error
            .as_ref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default()
    )?;
    if s.failing_since != 0 {
        writeln!(
            out,
            "failing since {} ({} attempts); the mirror answers from its last good copy",
            crate::civil::format_utc(s.failing_since as i64),
            s.consecutive_failures
        )?;
    }
    Ok(())
}

/// The indicators an admin's value stands for, normalised as extraction would.
fn indicators_for(value: &str) -> Vec<Indicator> {
    let ind = |kind, value: String| Indicator {
        kind,
        value,
        field: "mirror lookup".into(),
    };
    if let Some((url, host)) = ioc::normalize_url(value) {
        let mut out = vec![ind(IocKind::Url, url)];
        match host {
            Some(ioc::UrlHost::Domain(d)) => out.push(ind(IocKind::Domain, d)),
            Some(ioc::UrlHost::Ip(ip)) => out.push(ind(IocKind::Ip, ip.to_string())),
            None => {}
        }
        return out;
    }
    [
        IocKind::Ip,
        IocKind::Md5,
        IocKind::Sha1,
        IocKind::Sha256,
        IocKind::Domain,
    ]
    .into_iter()
    .find_map(|k| ioc::normalize(value, k).map(|v| vec![ind(k, v)]))
    .unwrap_or_default()
}

/// Exit 0 when the mirror holds something for `value`, 1 when it holds nothing.
pub fn lookup(home: &Path, value: &str, as_json: bool, out: &mut dyn Write) -> Result<i32> {
    let loaded = Settings::load(home, &Overrides::default())?;
    let (mirror, _, path) = open(home)?;
    let Some(m) = mirror else {
        bail!(
            "no mirror at {}: run `sudo wazuh-misp sync`",
            path.display()
        );
    };
    if m.meta().policy != super::policy::fingerprint(&loaded) {
        bail!("the mirror at {} was built for another MISP, key or lookup policy, and the runtime does not use it: run `sudo wazuh-misp sync`", path.display());
    }
    let indicators = indicators_for(value);
    if indicators.is_empty() {
        bail!("{value:?} is not an IP, domain, URL or MD5/SHA-1/SHA-256 hash");
    }
    let matches = super::answer(&m, &indicators, &Policy::from(&loaded.settings.lookup));
    if as_json {
        let list: Vec<_> = matches
            .iter()
            .map(|x| json!({"indicator": {"kind": x.indicator.kind.as_str(), "value": x.indicator.value}, "attribute": x.attribute}))
            .collect();
        writeln!(out, "{}", json!({"matches": list}))?;
    } else if matches.is_empty() {
        let asked: Vec<String> = indicators
            .iter()
            .map(|i| format!("{} {}", i.kind, i.value))
            .collect();
        writeln!(out, "the mirror holds nothing for {}", asked.join(", "))?;
    } else {
        for x in &matches {
            let a = &x.attribute;
            writeln!(
                out,
                "{} {}: attribute {} ({} {}, to_ids {}) in event {} \"{}\"{}",
                x.indicator.kind,
                x.indicator.value,
                a.id,
                a.kind,
                a.value,
                a.to_ids,
                a.event_id,
                a.event_info,
                if a.tags.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", a.tags.join(", "))
                }
            )?;
        }
    }
    Ok(if matches.is_empty() { 1 } else { 0 })
}
