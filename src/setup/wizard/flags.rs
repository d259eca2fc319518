//! The flags of `wazuh-misp setup`, and the API key from the sources an unattended setup reads:
//! `--api-key-file`, `--api-key-stdin`, then `MISP_API_KEY`.

use super::answers::key_format_error;
use super::presets::PresetName;
use crate::settings::ApiKey;
use crate::wazuh::service::ServiceManager;
use anyhow::{bail, Context, Result};
use std::io::Read;
use std::path::PathBuf;

/// The environment variable an unattended setup may take the key from.
pub const API_KEY_ENV: &str = "MISP_API_KEY";
/// Longest key file or key line we read.
const MAX_KEY_INPUT: u64 = 4096;

/// The flags of `wazuh-misp setup` (the lead flattens this into the subcommand; `--wazuh-home`
/// is global). Every prompt has a flag; a flag given on a terminal answers its prompt.
#[derive(Debug, clap::Args)]
pub struct SetupArgs {
    /// MISP's base URL, e.g. https://misp.example.org
    #[arg(long, value_name = "URL")]
    pub misp_url: Option<String>,
    /// Read the MISP API key from FILE (its first line). The key is never accepted as a
    /// command-line value; MISP_API_KEY in the environment also works
    #[arg(long, value_name = "FILE", conflicts_with = "api_key_stdin")]
    pub api_key_file: Option<PathBuf>,
    /// Read the MISP API key from the first line of standard input (implies --non-interactive)
    #[arg(long)]
    pub api_key_stdin: bool,
    /// Verify MISP's certificate with this CA bundle (PEM) instead of the public CAs
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    pub ca_file: Option<PathBuf>,
    /// Do not verify MISP's TLS certificate (anyone on the network path can then read the key)
    #[arg(long)]
    pub insecure: bool,
    /// Look up alerts of rule level N or more (AND-ed with groups and rule ids)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(0..=16))]
    pub level: Option<u8>,
    /// Look up alerts carrying one of these rule groups (repeatable or comma-separated)
    #[arg(long = "group", value_name = "GROUP", value_delimiter = ',')]
    pub groups: Vec<String>,
    /// Look up alerts of these rule ids (repeatable or comma-separated; AND-ed with groups and level)
    #[arg(long = "rule-id", value_name = "ID", value_delimiter = ',')]
    pub rule_ids: Vec<String>,
    /// Alerts to look up, as presets whose groups add up (repeatable or comma-separated).
    /// Any of --preset, --group, --rule-id or --level replaces the stored choice of alerts
    #[arg(
        long = "preset",
        value_enum,
        value_name = "NAME",
        value_delimiter = ','
    )]
    pub presets: Vec<PresetName>,
    /// First id of the block of 20 rule ids wazuh-misp uses [default: 117100]
    #[arg(long, value_name = "N")]
    pub rule_id_base: Option<u32>,
    /// Install the sample test rule (for `wazuh-misp doctor --live`)
    #[arg(long, conflicts_with = "no_sample_rule")]
    pub sample_rule: bool,
    /// Do not install the sample test rule (removes it if installed)
    #[arg(long)]
    pub no_sample_rule: bool,
    /// Where answers come from: online (ask MISP per alert, through the cache), mirror (a local
    /// copy synced every few minutes; no network per alert), hybrid (the mirror while it is
    /// fresh, MISP otherwise) [default: the current mode, else online]
    #[arg(long, value_enum, value_name = "MODE")]
    pub mode: Option<crate::settings::LookupMode>,
    /// Report each hit to MISP as a sighting (batched by the scheduled run, never on an alert's
    /// path); needs a key whose role may add sightings
    #[arg(long, conflicts_with = "no_sightings")]
    pub sightings: bool,
    /// Do not report sightings
    #[arg(long)]
    pub no_sightings: bool,
    /// Native matching (needs --mode mirror or hybrid): analysisd matches the mirror's
    /// indicators itself through CDB lists, hot-reloaded after each sync (Wazuh 4.13+), so an
    /// alert that matches nothing starts no process
    #[arg(long, conflicts_with = "no_native")]
    pub native: bool,
    /// Turn native matching off (removes its rules, lists and second integration block)
    #[arg(long)]
    pub no_native: bool,
    /// Apply without asking for confirmation (and restart unless --no-restart)
    #[arg(long)]
    pub yes: bool,
    /// Do not restart the Wazuh manager afterwards
    #[arg(long)]
    pub no_restart: bool,
    /// Never prompt: take every value from flags, MISP_API_KEY and the current settings
    #[arg(long)]
    pub non_interactive: bool,
    /// Show the diff of every file that would change, and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Do not contact MISP (e.g. while building an image); the connection is not checked
    #[arg(long)]
    pub skip_check: bool,
    /// How to restart the manager
    #[arg(long, value_enum, default_value = "auto", hide = true)]
    pub service_manager: ServiceManager,
}

pub(super) fn take_env_key() -> Option<ApiKey> {
    let value = std::env::var_os(API_KEY_ENV)?;
    std::env::remove_var(API_KEY_ENV);
    let text = value.to_string_lossy().trim().to_string();
    (!text.is_empty()).then(|| ApiKey::new(text))
}

/// The key from `--api-key-file`, `--api-key-stdin` or `MISP_API_KEY`, in that order.
pub(super) fn key_from_flags(
    args: &SetupArgs,
    env_key: Option<ApiKey>,
) -> Result<Option<(ApiKey, &'static str)>> {
    let (text, source) = if let Some(path) = &args.api_key_file {
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_KEY_INPUT).read_to_end(&mut bytes))
            .with_context(|| format!("--api-key-file: cannot read {}", path.display()))?;
        (first_line(&bytes), "--api-key-file")
    } else if args.api_key_stdin {
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .take(MAX_KEY_INPUT)
            .read_to_end(&mut bytes)
            .context("--api-key-stdin: cannot read standard input")?;
        (first_line(&bytes), "--api-key-stdin")
    } else if let Some(key) = env_key {
        (key.expose().to_string(), API_KEY_ENV)
    } else {
        return Ok(None);
    };
    if text.is_empty() {
        bail!("{source}: no API key found (expected the key on the first line)");
    }
    if let Some(why) = key_format_error(&text) {
        bail!("{source}: this is not a MISP API key: {why}");
    }
    Ok(Some((ApiKey::new(text), source)))
}

fn first_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_non_empty_line_is_the_key() {
        assert_eq!(first_line(b"\n  abc  \r\nnext"), "abc");
        assert_eq!(first_line(b""), "");
    }
}
