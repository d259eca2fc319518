//! Every value setup decides: the defaults (the current settings, else the filters of an
//! existing block), the flags that answer prompts, and what the settings file gets from them.

use super::check::{self, Target};
use super::flags::SetupArgs;
use super::presets::{self, PresetName};
use super::Ctx;
use crate::settings::{normalize_base_url, ApiKey, InstallChoices, LookupMode, SetupChoices};
use crate::wazuh::ossec_conf::{Filters, ManagedState};
use crate::wazuh::rules::{self, DEFAULT_RULE_ID_BASE};
use anyhow::{anyhow, bail, Result};
use std::path::PathBuf;

/// Where the key came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KeySource {
    Settings,
    Flag(&'static str),
    Typed,
}

/// Every value setup decides.
#[derive(Debug, Clone)]
pub(super) struct Answers {
    pub(super) url: Option<String>,
    pub(super) key: Option<ApiKey>,
    pub(super) key_source: KeySource,
    pub(super) verify_tls: bool,
    pub(super) ca_file: Option<PathBuf>,
    pub(super) filters: Filters,
    /// No choice of alerts was ever made (no settings, no block).
    pub(super) first_filters: bool,
    pub(super) rule_id_base: Option<u32>,
    pub(super) sample_rule: bool,
    pub(super) mode: LookupMode,
    pub(super) sightings: bool,
    pub(super) native: bool,
}

/// Which prompts a flag already answered.
#[derive(Debug, Default)]
pub(super) struct Given {
    pub(super) url: bool,
    pub(super) key: bool,
    pub(super) tls: bool,
    pub(super) filters: bool,
    pub(super) sample_rule: bool,
    pub(super) mode: bool,
    pub(super) sightings: bool,
    pub(super) native: bool,
}

impl Answers {
    /// The current settings, or else the filters of an existing block.
    pub(super) fn defaults(ctx: &Ctx) -> Answers {
        let s = &ctx.existing.settings;
        let i = &s.install;
        let mut filters = Filters {
            level: i.level,
            groups: i.groups.clone(),
            rule_ids: i.rule_ids.clone(),
        };
        let mut first_filters = false;
        if ctx.existing.value.is_none() {
            let from_conf = match &ctx.inspection.managed {
                Some(ManagedState::Intact(block)) => Some(block.filters.clone()),
                _ => ctx.inspection.legacy.first().cloned(),
            };
            match from_conf {
                Some(f) => filters = f,
                None => first_filters = true,
            }
        }
        Answers {
            url: s.misp.url.clone(),
            key: s.misp.api_key.clone(),
            key_source: KeySource::Settings,
            verify_tls: s.misp.verify_tls,
            ca_file: s.misp.ca_file.clone(),
            filters,
            first_filters,
            rule_id_base: i.rule_id_base,
            sample_rule: i.sample_rule,
            mode: s.lookup.mode,
            sightings: s.sightings.enabled,
            native: s.native.enabled,
        }
    }

    pub(super) fn apply_flags(
        &mut self,
        args: &SetupArgs,
        key: Option<(ApiKey, &'static str)>,
    ) -> Result<Given> {
        let mut given = Given::default();
        if let Some(url) = &args.misp_url {
            self.url = Some(normalize_base_url(url).map_err(|e| anyhow!("--misp-url: {e}"))?);
            given.url = true;
        }
        if let Some((key, source)) = key {
            self.key = Some(key);
            self.key_source = KeySource::Flag(source);
            given.key = true;
        }
        if let Some(ca) = &args.ca_file {
            self.ca_file =
                Some(check::validate_ca_file(ca).map_err(|e| anyhow!("--ca-file: {e}"))?);
            self.verify_tls = true;
            given.tls = true;
        }
        if args.insecure {
            self.verify_tls = false;
            self.ca_file = None;
            given.tls = true;
        }
        if !args.presets.is_empty()
            || !args.groups.is_empty()
            || !args.rule_ids.is_empty()
            || args.level.is_some()
        {
            if args.presets.contains(&PresetName::Level) && args.level.is_none() {
                bail!("--preset level needs --level N (look up every alert of level N or more)");
            }
            let groups: Vec<String> = args
                .groups
                .iter()
                .flat_map(|g| presets::parse_list(g))
                .collect();
            let rule_ids: Vec<String> = args
                .rule_ids
                .iter()
                .flat_map(|r| presets::parse_list(r))
                .collect();
            presets::check_groups(&groups).map_err(|e| anyhow!("--group: {e}"))?;
            presets::check_rule_ids(&rule_ids).map_err(|e| anyhow!("--rule-id: {e}"))?;
            self.filters = Filters {
                level: args.level,
                groups: presets::union_groups(&args.presets, &groups),
                rule_ids,
            };
            self.first_filters = false;
            given.filters = true;
        }
        if let Some(base) = args.rule_id_base {
            rules::check_base(base).map_err(|e| anyhow!("--rule-id-base: {e}"))?;
            self.rule_id_base = Some(base);
        }
        if args.sample_rule || args.no_sample_rule {
            self.sample_rule = args.sample_rule;
            given.sample_rule = true;
        }
        if let Some(mode) = args.mode {
            self.mode = mode;
            given.mode = true;
        }
        if args.sightings || args.no_sightings {
            self.sightings = args.sightings;
            given.sightings = true;
        }
        if args.native || args.no_native {
            if args.native && !self.mode.uses_mirror() {
                bail!("--native needs a mirror to match from: add --mode mirror (or hybrid)");
            }
            self.native = args.native;
            given.native = true;
        }
        Ok(given)
    }

    pub(super) fn base(&self) -> u32 {
        self.rule_id_base.unwrap_or(DEFAULT_RULE_ID_BASE)
    }

    pub(super) fn is_http(&self) -> bool {
        self.url
            .as_deref()
            .is_some_and(|u| u.starts_with("http://"))
    }

    pub(super) fn target(&self) -> Option<Target<'_>> {
        Some(Target {
            url: self.url.as_deref()?,
            api_key: self.key.as_ref()?,
            verify_tls: self.verify_tls,
            ca_file: self.ca_file.as_deref(),
        })
    }

    /// What the settings file gets from these answers.
    pub(super) fn setup_choices(&self) -> SetupChoices {
        SetupChoices {
            url: self.url.clone(),
            api_key: self.key.clone(),
            verify_tls: self.verify_tls,
            ca_file: self.ca_file.clone(),
            mode: self.mode,
            sightings: self.sightings,
            // Native matching is built from the mirror, so it cannot outlive it.
            native: self.native && self.mode.uses_mirror(),
            install: InstallChoices {
                level: self.filters.level,
                groups: self.filters.groups.clone(),
                rule_ids: self.filters.rule_ids.clone(),
                rule_id_base: self.rule_id_base,
                sample_rule: self.sample_rule,
            },
        }
    }
}

/// `abcd…(36 more)`: enough to recognise a key, never enough to use it.
pub fn mask_key(key: &ApiKey) -> String {
    let k = key.expose();
    let shown: String = k.chars().take(4).collect();
    let rest = k.chars().count().saturating_sub(4);
    format!("{shown}…({rest} more)")
}

pub(super) fn key_format_error(key: &str) -> Option<String> {
    let key = ApiKey::new(key);
    (!key.is_well_formed()).then(|| {
        format!(
            "a MISP API key is exactly 40 letters and digits (this one has {} characters)",
            key.expose().chars().count()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_masked_to_four_characters() {
        let k = ApiKey::new("0123456789abcdefABCDEF0123456789abcdefAB");
        assert_eq!(mask_key(&k), "0123…(36 more)");
        assert!(key_format_error("short").unwrap().contains("5 characters"));
        assert_eq!(key_format_error(k.expose()), None);
    }
}
