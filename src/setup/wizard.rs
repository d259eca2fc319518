//! `wazuh-misp setup`: connects this Wazuh manager to MISP in one guided command, or unattended
//! (`--non-interactive`, or no terminal) from flags.
//!
//! It asks for (or takes from flags) the MISP URL, the API key (hidden, never on a command line),
//! the TLS choice, which alerts to enrich and whether to install the sample test rule, checks the
//! live MISP after each connection-related answer, then shows a summary and the diff of every
//! file, and applies everything through the installer as one transaction (settings file
//! included). Nothing is written before the final confirmation; a failure while applying rolls
//! every file back. A re-run takes the current settings as its defaults and keeps keys of the
//! settings file it does not know.

pub mod check;
mod interrupt;
pub mod presets;

use crate::settings::{
    self, normalize_base_url, ApiKey, InstallChoices, Settings, SetupChoices, FORBIDDEN_MODE_BITS,
    SETTINGS_PATH,
};
use crate::wazuh::detect::{self, Manager, OSSEC_CONF};
use crate::wazuh::install::{plan_install, InstallOptions};
use crate::wazuh::ossec_conf::{self, ClusterRole, Filters, Inspection, ManagedState};
use crate::wazuh::rules::{self, RulesError, DEFAULT_RULE_ID_BASE};
use crate::wazuh::service::ServiceManager;
use anyhow::{anyhow, bail, Context, Result};
use check::{MispInfo, Mode, Target};
use dialoguer::theme::ColorfulTheme;
use dialoguer::{Confirm, Input, MultiSelect, Password, Select};
use presets::{PresetName, GROUP_PRESETS};
use serde_json::Value;
use std::io::{IsTerminal, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The environment variable an unattended setup may take the key from.
pub const API_KEY_ENV: &str = "MISP_API_KEY";
/// The exit status when the admin declines or aborts (nothing was changed).
pub const EXIT_DECLINED: i32 = 1;
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

/// The admin declined or aborted; nothing was changed.
#[derive(Debug)]
struct Aborted;

impl std::fmt::Display for Aborted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("setup aborted")
    }
}

impl std::error::Error for Aborted {}

/// Runs the wizard (on a terminal) or the unattended setup. Returns the exit status: 0 when set
/// up (or nothing to change, or a dry run), [`EXIT_DECLINED`] when the admin declined, 130 when
/// interrupted; errors (nothing changed, or everything rolled back) are returned as such.
pub fn run(home: &Path, args: &SetupArgs, out: &mut dyn Write) -> Result<i32> {
    // Read the key from the environment once and drop it from ours, so that nothing we start
    // could inherit it (the installer's children get a clean environment anyway).
    let env_key = take_env_key();
    let interactive = !args.non_interactive
        && !args.api_key_stdin
        && std::io::stdin().is_terminal()
        && std::io::stderr().is_terminal();
    if !args.dry_run && !nix::unistd::geteuid().is_root() {
        bail!("setup changes the Wazuh manager's files and needs root: run it with sudo (or add --dry-run to only see the changes)");
    }
    let manager = detect::detect(home)?;
    let conf = std::fs::read(home.join(OSSEC_CONF))
        .with_context(|| format!("cannot read {}", home.join(OSSEC_CONF).display()))?;
    let inspection = ossec_conf::inspect(&conf)
        .with_context(|| format!("{} cannot be used", home.join(OSSEC_CONF).display()))?;
    let existing = Existing::read(home)?;
    let key_flag = key_from_flags(args, env_key)?;
    let ctx = Ctx {
        home,
        args,
        manager,
        inspection,
        existing,
    };
    let mut a = Answers::defaults(&ctx);
    let given = a.apply_flags(args, key_flag)?;
    writeln!(
        out,
        "wazuh-misp setup: Wazuh manager at {} ({}group {}{})",
        home.display(),
        ctx.manager
            .version
            .map(|v| format!("Wazuh {v}, "))
            .unwrap_or_default(),
        ctx.manager.group_name,
        match ctx.manager.cluster {
            ClusterRole::Master => ", cluster master",
            ClusterRole::Worker => ", cluster worker",
            ClusterRole::Disabled => "",
        }
    )?;
    for w in &ctx.existing.warnings {
        writeln!(out, "warning: {w}")?;
    }
    let result = if interactive {
        interrupt::guard_terminal(libc::STDIN_FILENO);
        interactive_flow(&ctx, &mut a, &given, out)
    } else {
        unattended_flow(&ctx, &mut a, out)
    };
    match result {
        Err(e) if e.is::<Aborted>() => {
            writeln!(out, "setup aborted: nothing was changed")?;
            Ok(EXIT_DECLINED)
        }
        other => other,
    }
}

struct Ctx<'a> {
    home: &'a Path,
    args: &'a SetupArgs,
    manager: Manager,
    inspection: Inspection,
    existing: Existing,
}

impl Ctx<'_> {
    fn how(&self) -> &'static str {
        if self.args.non_interactive {
            "with --non-interactive"
        } else if self.args.api_key_stdin {
            "with --api-key-stdin (which makes setup non-interactive)"
        } else {
            "without a terminal to ask on (non-interactive)"
        }
    }
}

/// The settings file as it is now.
struct Existing {
    path: PathBuf,
    /// The whole JSON document, to keep keys this version does not know.
    value: Option<Value>,
    settings: Settings,
    warnings: Vec<String>,
}

impl Existing {
    fn read(home: &Path) -> Result<Existing> {
        let path = home.join(SETTINGS_PATH);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Existing {
                    path,
                    value: None,
                    settings: Settings::default(),
                    warnings: Vec::new(),
                })
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let invalid = |why: String| {
            anyhow!(
                "{} is not valid ({why}): fix it, or move it away to start afresh",
                path.display()
            )
        };
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
        if !value.is_object() {
            return Err(invalid("not a JSON object".into()));
        }
        let settings: Settings =
            serde_json::from_value(value.clone()).map_err(|e| invalid(e.to_string()))?;
        let mut warnings = Vec::new();
        let mode = std::fs::metadata(&path)?.mode() & 0o7777;
        if mode & FORBIDDEN_MODE_BITS != 0 {
            warnings.push(format!(
                "{} has mode {mode:04o} but holds the API key, and integratord's runs refuse it: run `chmod 0640 {}`",
                path.display(),
                path.display()
            ));
        }
        Ok(Existing {
            path,
            value: Some(value),
            settings,
            warnings,
        })
    }
}

/// Where the key came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeySource {
    Settings,
    Flag(&'static str),
    Typed,
}

/// Every value setup decides.
#[derive(Debug, Clone)]
struct Answers {
    url: Option<String>,
    key: Option<ApiKey>,
    key_source: KeySource,
    verify_tls: bool,
    ca_file: Option<PathBuf>,
    filters: Filters,
    /// No choice of alerts was ever made (no settings, no block).
    first_filters: bool,
    rule_id_base: Option<u32>,
    sample_rule: bool,
}

/// Which prompts a flag already answered.
#[derive(Debug, Default)]
struct Given {
    url: bool,
    key: bool,
    tls: bool,
    filters: bool,
    sample_rule: bool,
}

impl Answers {
    /// The current settings, or else the filters of an existing block.
    fn defaults(ctx: &Ctx) -> Answers {
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
        }
    }

    fn apply_flags(
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
        Ok(given)
    }

    fn base(&self) -> u32 {
        self.rule_id_base.unwrap_or(DEFAULT_RULE_ID_BASE)
    }

    fn is_http(&self) -> bool {
        self.url
            .as_deref()
            .is_some_and(|u| u.starts_with("http://"))
    }

    fn target(&self) -> Option<Target<'_>> {
        Some(Target {
            url: self.url.as_deref()?,
            api_key: self.key.as_ref()?,
            verify_tls: self.verify_tls,
            ca_file: self.ca_file.as_deref(),
        })
    }

    /// What the settings file gets from these answers.
    fn setup_choices(&self) -> SetupChoices {
        SetupChoices {
            url: self.url.clone(),
            api_key: self.key.clone(),
            verify_tls: self.verify_tls,
            ca_file: self.ca_file.clone(),
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

fn key_format_error(key: &str) -> Option<String> {
    let key = ApiKey::new(key);
    (!key.is_well_formed()).then(|| {
        format!(
            "a MISP API key is exactly 40 letters and digits (this one has {} characters)",
            key.expose().chars().count()
        )
    })
}

fn take_env_key() -> Option<ApiKey> {
    let value = std::env::var_os(API_KEY_ENV)?;
    std::env::remove_var(API_KEY_ENV);
    let text = value.to_string_lossy().trim().to_string();
    (!text.is_empty()).then(|| ApiKey::new(text))
}

/// The key from `--api-key-file`, `--api-key-stdin` or `MISP_API_KEY`, in that order.
fn key_from_flags(
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

// ---------------------------------------------------------------------------------------------
// Interactive

struct Ui {
    theme: ColorfulTheme,
}

impl Ui {
    fn text(
        &self,
        out: &mut dyn Write,
        prompt: &str,
        default: Option<&str>,
        validate: impl Fn(&str) -> Result<(), String>,
    ) -> Result<String> {
        out.flush()?;
        let mut input = Input::<String>::with_theme(&self.theme).with_prompt(prompt);
        if let Some(d) = default.filter(|d| !d.is_empty()) {
            input = input.default(d.to_string());
        }
        let value = input
            .validate_with(|s: &String| validate(s.trim()))
            .interact_text()?;
        Ok(value.trim().to_string())
    }

    /// A comma-separated list, pre-filled with the current one (editable, may be emptied).
    fn list(
        &self,
        out: &mut dyn Write,
        prompt: &str,
        current: &[String],
        validate: impl Fn(&[String]) -> Result<(), String>,
    ) -> Result<Vec<String>> {
        out.flush()?;
        let value: String = Input::with_theme(&self.theme)
            .with_prompt(prompt)
            .with_initial_text(current.join(","))
            .allow_empty(true)
            .validate_with(|s: &String| validate(&presets::parse_list(s)))
            .interact_text()?;
        Ok(presets::parse_list(&value))
    }

    fn confirm(&self, out: &mut dyn Write, prompt: &str, default: bool) -> Result<bool> {
        out.flush()?;
        Ok(Confirm::with_theme(&self.theme)
            .with_prompt(prompt)
            .default(default)
            .wait_for_newline(true)
            .interact()?)
    }

    fn select(
        &self,
        out: &mut dyn Write,
        prompt: &str,
        items: &[String],
        default: usize,
    ) -> Result<usize> {
        out.flush()?;
        Ok(Select::with_theme(&self.theme)
            .with_prompt(prompt)
            .items(items)
            .default(default)
            .interact()?)
    }

    fn multi(
        &self,
        out: &mut dyn Write,
        prompt: &str,
        items: &[&str],
        defaults: &[bool],
    ) -> Result<Vec<usize>> {
        out.flush()?;
        Ok(MultiSelect::with_theme(&self.theme)
            .with_prompt(prompt)
            .items(items)
            .defaults(defaults)
            .interact()?)
    }

    /// Hidden input; the terminal never shows what is typed.
    fn secret(
        &self,
        out: &mut dyn Write,
        prompt: &str,
        allow_empty: bool,
        validate: impl Fn(&str) -> Result<(), String>,
    ) -> Result<String> {
        out.flush()?;
        let value = Password::with_theme(&self.theme)
            .with_prompt(prompt)
            .allow_empty_password(allow_empty)
            .validate_with(|s: &String| validate(s.trim()))
            .interact()?;
        Ok(value.trim().to_string())
    }
}

fn interactive_flow(ctx: &Ctx, a: &mut Answers, given: &Given, out: &mut dyn Write) -> Result<i32> {
    let ui = Ui {
        theme: ColorfulTheme::default(),
    };
    writeln!(
        out,
        "Current answers are shown in (parentheses): Enter keeps them. Ctrl-C stops at any point without changing anything.\n"
    )?;
    if given.url {
        writeln!(
            out,
            "MISP URL: {} (--misp-url)",
            a.url.as_deref().unwrap_or("")
        )?;
    } else {
        ask_url(&ui, a, out)?;
    }
    if let KeySource::Flag(source) = a.key_source {
        writeln!(out, "MISP API key: from {source}")?;
    } else {
        ask_key(&ui, a, out)?;
    }
    if given.tls {
        writeln!(out, "TLS: {}", tls_description(a))?;
    } else if !a.is_http() {
        ask_tls(&ui, a, out)?;
    }
    let info = if ctx.args.skip_check {
        writeln!(out, "not checking the connection (--skip-check)")?;
        None
    } else {
        connection_loop(ctx, &ui, a, out)?
    };
    if given.filters {
        writeln!(
            out,
            "\nAlerts to look up: {}",
            presets::describe(&a.filters)
        )?;
        group_hints(&a.filters.groups, out)?;
        filter_notes(ctx, &a.filters, out)?;
    } else {
        ask_filters(ctx, &ui, a, out)?;
    }
    if !given.sample_rule {
        let default = if ctx.existing.value.is_none() {
            true
        } else {
            a.sample_rule
        };
        a.sample_rule = ui.confirm(
            out,
            &format!(
                "Install the sample test rule (id {}; fires only on a synthetic sshd line marked {}, for `wazuh-misp doctor --live`)?",
                rules::sample_rule_id(a.base()),
                rules::SELFTEST_MARKER
            ),
            default,
        )?;
    }
    free_rule_block(ctx, Some(&ui), a, out)?;
    finish(ctx, a, info.as_ref(), Some(&ui), out)
}

fn ask_url(ui: &Ui, a: &mut Answers, out: &mut dyn Write) -> Result<()> {
    loop {
        let url = ui.text(
            out,
            "MISP URL (the address of MISP's web interface)",
            a.url.as_deref(),
            |s| {
                normalize_base_url(s)
                    .map(|_| ())
                    .map_err(|e| e.replace("misp.url ", ""))
            },
        )?;
        let url = normalize_base_url(&url).map_err(|e| anyhow!(e))?;
        if url.starts_with("http://") {
            writeln!(out, "warning: with http:// the API key and every indicator looked up cross the network in clear text; use https:// unless MISP runs on this host")?;
            // Asked once: keeping the http:// URL already in the settings needs no new consent.
            if a.url.as_deref() != Some(url.as_str())
                && !ui.confirm(out, "Use http:// anyway?", false)?
            {
                continue;
            }
        }
        a.url = Some(url);
        return Ok(());
    }
}

fn ask_key(ui: &Ui, a: &mut Answers, out: &mut dyn Write) -> Result<()> {
    let prompt = match &a.key {
        Some(k) => format!("MISP API key (hidden; Enter keeps {})", mask_key(k)),
        None => "MISP API key (hidden; in MISP: your profile > Auth keys)".to_string(),
    };
    let keep = a.key.is_some();
    let typed = ui.secret(out, &prompt, keep, |s| {
        if s.is_empty() && keep {
            return Ok(());
        }
        match key_format_error(s) {
            Some(why) => Err(why),
            None => Ok(()),
        }
    })?;
    if !typed.is_empty() {
        a.key = Some(ApiKey::new(typed));
        a.key_source = KeySource::Typed;
    }
    Ok(())
}

const INSECURE_RISK: &str = "Without certificate verification, anyone on the network path between this manager and MISP can pose as MISP: they read the API key sent with every lookup, and answer whatever they like.";

fn confirm_insecure(ui: &Ui, out: &mut dyn Write) -> Result<bool> {
    writeln!(out, "{INSECURE_RISK}")?;
    ui.confirm(out, "Disable certificate verification anyway?", false)
}

fn ask_tls(ui: &Ui, a: &mut Answers, out: &mut dyn Write) -> Result<()> {
    let verify = match &a.ca_file {
        Some(ca) => {
            let items = vec![
                format!(
                    "Verify MISP's certificate with the CA bundle {}",
                    ca.display()
                ),
                "Verify MISP's certificate with the public CAs".to_string(),
                "Do not verify MISP's certificate (unsafe)".to_string(),
            ];
            match ui.select(out, "TLS", &items, if a.verify_tls { 0 } else { 2 })? {
                0 => true,
                1 => {
                    a.ca_file = None;
                    true
                }
                _ => false,
            }
        }
        None => ui.confirm(
            out,
            "Verify MISP's TLS certificate? (strongly recommended)",
            a.verify_tls,
        )?,
    };
    if verify {
        a.verify_tls = true;
    } else if confirm_insecure(ui, out)? {
        a.verify_tls = false;
        a.ca_file = None;
    } else {
        writeln!(out, "keeping certificate verification on")?;
        a.verify_tls = true;
    }
    Ok(())
}

fn ask_ca_file(ctx: &Ctx, ui: &Ui, a: &mut Answers, out: &mut dyn Write) -> Result<()> {
    let current = a.ca_file.as_ref().map(|p| p.display().to_string());
    let path = ui.text(
        out,
        "CA bundle that signed MISP's certificate (PEM file path)",
        current.as_deref(),
        |s| {
            if s.is_empty() {
                return Err("give the path of a PEM file".into());
            }
            check::validate_ca_file(Path::new(s)).map(|_| ())
        },
    )?;
    let abs = check::validate_ca_file(Path::new(&path)).map_err(|e| anyhow!(e))?;
    ca_readability_note(ctx, &abs, out)?;
    a.ca_file = Some(abs);
    a.verify_tls = true;
    Ok(())
}

fn ca_readability_note(ctx: &Ctx, ca: &Path, out: &mut dyn Write) -> Result<()> {
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

fn tls_description(a: &Answers) -> String {
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

#[derive(Clone, Copy, PartialEq, Eq)]
enum Fix {
    CaFile,
    Insecure,
    Url,
    Key,
    Retry,
    Continue,
    Abort,
}

/// The error's message without the client's settings-file hint (the wizard gives its own).
fn failure(e: &crate::misp::MispError) -> &str {
    match e.message.find(": if MISP uses a private") {
        Some(at) => &e.message[..at],
        None => &e.message,
    }
}

fn show_info(info: &MispInfo, a: &Answers, out: &mut dyn Write) -> Result<()> {
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

/// Checks MISP until it answers, the admin continues without a working connection, or aborts.
fn connection_loop(
    ctx: &Ctx,
    ui: &Ui,
    a: &mut Answers,
    out: &mut dyn Write,
) -> Result<Option<MispInfo>> {
    loop {
        let target = a.target().context("URL and key are set")?;
        writeln!(out, "checking {} …", target.url)?;
        out.flush()?;
        let err = match check::check(&target) {
            Ok(info) => {
                show_info(&info, a, out)?;
                return Ok(Some(info));
            }
            Err(e) => e,
        };
        let url = target.url.to_string();
        writeln!(out, "  failed: {}", failure(&err))?;
        writeln!(
            out,
            "  next step: {}",
            check::next_step(&err, &url, Mode::Interactive)
        )?;
        use crate::misp::ErrorKind as K;
        let (fixes, default): (Vec<(Fix, &str)>, Fix) = if err.kind == K::Tls {
            (
                vec![
                    (
                        Fix::CaFile,
                        "Use a CA bundle file (PEM) to verify MISP's certificate",
                    ),
                    (Fix::Insecure, "Disable certificate verification (unsafe)"),
                    (Fix::Url, "Enter another URL"),
                    (Fix::Retry, "Try again"),
                    (Fix::Abort, "Abort setup"),
                ],
                Fix::CaFile,
            )
        } else {
            let default = match err.kind {
                K::Auth => Fix::Key,
                K::NotFound | K::Connect | K::Protocol | K::Config => Fix::Url,
                _ => Fix::Retry,
            };
            (
                vec![
                    (Fix::Key, "Enter another API key"),
                    (Fix::Url, "Enter another URL"),
                    (Fix::Retry, "Try again"),
                    (
                        Fix::Continue,
                        "Continue without a working connection (not recommended)",
                    ),
                    (Fix::Abort, "Abort setup"),
                ],
                default,
            )
        };
        let items: Vec<String> = fixes.iter().map(|(_, t)| t.to_string()).collect();
        let at = fixes.iter().position(|(f, _)| *f == default).unwrap_or(0);
        match fixes[ui.select(out, "What now?", &items, at)?].0 {
            Fix::CaFile => ask_ca_file(ctx, ui, a, out)?,
            Fix::Insecure => {
                if confirm_insecure(ui, out)? {
                    a.verify_tls = false;
                    a.ca_file = None;
                } else {
                    writeln!(out, "certificate verification stays on")?;
                }
            }
            Fix::Url => ask_url(ui, a, out)?,
            Fix::Key => {
                a.key = None;
                ask_key(ui, a, out)?;
            }
            Fix::Retry => {}
            Fix::Continue => {
                writeln!(out, "continuing without a working connection: lookups will fail until {url} answers")?;
                return Ok(None);
            }
            Fix::Abort => return Err(Aborted.into()),
        }
    }
}

fn ask_filters(ctx: &Ctx, ui: &Ui, a: &mut Answers, out: &mut dyn Write) -> Result<()> {
    loop {
        writeln!(out, "\nWhich alerts should be looked up in MISP?")?;
        writeln!(out, "{}", presets::AND_EXPLANATION)?;
        let (chosen, custom) = presets::split_groups(&a.filters.groups);
        let mut items: Vec<&str> = GROUP_PRESETS.iter().map(|p| p.title).collect();
        items.push(presets::LEVEL_PRESET_TITLE);
        let mut defaults: Vec<bool> = GROUP_PRESETS
            .iter()
            .map(|p| {
                chosen.contains(&p.name)
                    || (a.first_filters && p.name == PresetName::Authentication)
            })
            .collect();
        defaults.push(a.filters.level.is_some());
        let picked = ui.multi(
            out,
            "Presets (space toggles, enter confirms)",
            &items,
            &defaults,
        )?;
        let names: Vec<PresetName> = picked
            .iter()
            .filter_map(|&i| GROUP_PRESETS.get(i).map(|p| p.name))
            .collect();
        let level_preset = picked.contains(&GROUP_PRESETS.len());
        if names.contains(&PresetName::Sysmon) {
            writeln!(out, "note: {}", presets::SYSMON_WARNING)?;
        }
        let level = if level_preset {
            let default = a
                .filters
                .level
                .unwrap_or(presets::DEFAULT_LEVEL)
                .to_string();
            let text = ui.text(out, "Minimum rule level (0-16)", Some(&default), |s| {
                s.parse::<u8>()
                    .map_err(|_| "a number from 0 to 16".to_string())
                    .and_then(presets::check_level)
            })?;
            Some(text.parse::<u8>()?)
        } else {
            None
        };
        let mut extra = custom;
        loop {
            extra = ui.list(
                out,
                "Other rule groups (comma-separated; empty for none)",
                &extra,
                presets::check_groups,
            )?;
            if !group_hints(&extra, out)? || ui.confirm(out, "Keep these group names?", false)? {
                break;
            }
        }
        let rule_ids = ui.list(
            out,
            "Rule ids (comma-separated; empty for none; AND-ed with the groups and level)",
            &a.filters.rule_ids,
            presets::check_rule_ids,
        )?;
        if presets::mentions_sysmon(&extra) && !names.contains(&PresetName::Sysmon) {
            writeln!(out, "note: {}", presets::SYSMON_WARNING)?;
        }
        let filters = Filters {
            level,
            groups: presets::union_groups(&names, &extra),
            rule_ids,
        };
        filter_notes(ctx, &filters, out)?;
        if filters == Filters::default() {
            writeln!(out, "No filter: every alert written to alerts.json would be looked up in MISP, one request per alert.")?;
            if !ui.confirm(out, "Look up every alert?", false)? {
                continue;
            }
        }
        if presets::and_note(&filters).is_some()
            && !ui.confirm(out, "Keep this combination?", true)?
        {
            continue;
        }
        a.filters = filters;
        a.first_filters = false;
        writeln!(out, "Alerts to look up: {}", presets::describe(&a.filters))?;
        return Ok(());
    }
}

/// Notes about a choice of filters: misspelt groups, AND-ed combinations, levels that never
/// reach alerts.json.
fn filter_notes(ctx: &Ctx, f: &Filters, out: &mut dyn Write) -> Result<()> {
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
fn group_hints(groups: &[String], out: &mut dyn Write) -> Result<bool> {
    let mut any = false;
    for hint in groups.iter().filter_map(|g| presets::group_hint(g)) {
        writeln!(out, "warning: {hint}")?;
        any = true;
    }
    Ok(any)
}

/// Moves our rule id block when another rule file already uses an id of it (asking first on a
/// terminal; unattended, the installer's error names --rule-id-base).
fn free_rule_block(ctx: &Ctx, ui: Option<&Ui>, a: &mut Answers, out: &mut dyn Write) -> Result<()> {
    if ctx.manager.cluster == ClusterRole::Worker {
        return Ok(());
    }
    let Some(ui) = ui else { return Ok(()) };
    if let Err(RulesError::Collision {
        suggestion: Some(free),
        ..
    }) = rules::ensure_free(ctx.home, a.base())
    {
        let err = rules::ensure_free(ctx.home, a.base()).unwrap_err();
        writeln!(out, "{err}")?;
        let end = rules::sample_rule_id(free);
        if ui.confirm(out, &format!("Use rule ids {free}-{end} instead?"), true)? {
            a.rule_id_base = Some(free);
        } else {
            return Err(Aborted.into());
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Unattended

fn unattended_flow(ctx: &Ctx, a: &mut Answers, out: &mut dyn Write) -> Result<i32> {
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
    free_rule_block(ctx, None, a, out)?;
    finish(ctx, a, info.as_ref(), None, out)
}

// ---------------------------------------------------------------------------------------------
// Both

fn finish(
    ctx: &Ctx,
    a: &Answers,
    info: Option<&MispInfo>,
    ui: Option<&Ui>,
    out: &mut dyn Write,
) -> Result<i32> {
    let args = ctx.args;
    let bytes = settings::compose(ctx.existing.value.as_ref(), &a.setup_choices())?;
    Settings::from_bytes(&bytes, &ctx.existing.path)
        .context("the new settings would not be usable")?;
    writeln!(out, "\nSummary")?;
    writeln!(out, "  MISP            {}", a.url.as_deref().unwrap_or(""))?;
    writeln!(out, "  TLS             {}", tls_description(a))?;
    writeln!(
        out,
        "  MISP account    {}",
        info.map(MispInfo::describe)
            .unwrap_or_else(|| "not checked".into())
    )?;
    if let Some(k) = &a.key {
        writeln!(
            out,
            "  API key         {}{}",
            mask_key(k),
            match a.key_source {
                KeySource::Settings => " (kept)".to_string(),
                KeySource::Typed => String::new(),
                KeySource::Flag(s) => format!(" (from {s})"),
            }
        )?;
    }
    writeln!(out, "  Alerts          {}", presets::describe(&a.filters))?;
    let ids = rules::rule_ids(a.base());
    writeln!(
        out,
        "  Rule ids        {}-{}; sample test rule {}: {}",
        ids.start(),
        ids.end(),
        rules::sample_rule_id(a.base()),
        if a.sample_rule { "yes" } else { "no" }
    )?;
    writeln!(
        out,
        "  Settings        {} (root:{}, mode 0640)",
        ctx.existing.path.display(),
        ctx.manager.group_name
    )?;
    let opts = InstallOptions {
        dry_run: args.dry_run,
        restart: false,
        service: args.service_manager,
        rule_id_base: None,
        sample_rule: None,
    };
    writeln!(out)?;
    let plan = plan_install(ctx.home, &opts, Some(bytes), out)?;
    if !plan.changes_anything() {
        writeln!(
            out,
            "everything is already set up this way: nothing to change"
        )?;
        return Ok(0);
    }
    writeln!(out, "Changes:")?;
    plan.show(out)?;
    if args.dry_run {
        writeln!(out, "dry run: nothing was changed")?;
        return Ok(0);
    }
    let asking = ui.filter(|_| !args.yes);
    if let Some(ui) = asking {
        if !ui.confirm(out, "Apply these changes?", true)? {
            writeln!(out, "nothing was changed")?;
            return Ok(EXIT_DECLINED);
        }
    }
    let restart = !args.no_restart
        && match asking {
            Some(ui) => {
                writeln!(out, "The manager loads the change when it restarts. The restart is safe: Wazuh checks the configuration first, and every file is restored if the restart fails.")?;
                ui.confirm(out, "Restart the Wazuh manager now?", true)?
            }
            None => true,
        };
    writeln!(out, "applying (Ctrl-C is ignored until this is done) …")?;
    out.flush()?;
    let guard = interrupt::Uninterruptible::begin();
    let result = plan.apply(restart, args.service_manager, out);
    if matches!(result, Ok(true)) {
        guard.changed();
    }
    drop(guard);
    result?;
    if let (Some(ui), true, true) = (asking, a.sample_rule, restart) {
        writeln!(out, "The live self test sends a synthetic sshd event through analysisd, integratord, this integration and MISP, and follows both alerts in alerts.json. It needs a test IP MISP knows: it creates a labelled test event for it (your key must be allowed to add and publish events) and deletes it afterwards.")?;
        if ui.confirm(out, "Run the live self test now?", false)? {
            let opts = crate::setup::selftest::SelfTestOptions {
                create_test_ioc: true,
                ..Default::default()
            };
            return crate::setup::selftest::run(ctx.home, &opts, out);
        }
    }
    writeln!(
        out,
        "\nwazuh-misp is set up. `wazuh-misp doctor` checks the whole chain{}.",
        if a.sample_rule {
            "; `wazuh-misp doctor --live` sends a test event through it"
        } else {
            ""
        }
    )?;
    Ok(0)
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

    #[test]
    fn first_non_empty_line_is_the_key() {
        assert_eq!(first_line(b"\n  abc  \r\nnext"), "abc");
        assert_eq!(first_line(b""), "");
    }
}
