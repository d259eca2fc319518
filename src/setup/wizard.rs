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
//!
//! `flags` is the command line; `answers` every value setup decides, from the current settings
//! (`existing`) and the flags; `interactive` (with `prompt`) and `unattended` are the two flows,
//! `notes` what both say about the answers, and `finish` their common end. The settings file
//! itself is composed by [`crate::settings::compose`].

mod answers;
pub mod check;
mod existing;
mod finish;
mod flags;
mod interactive;
mod interrupt;
mod notes;
pub mod presets;
mod prompt;
mod unattended;

pub use answers::mask_key;
pub use flags::{SetupArgs, API_KEY_ENV};

use crate::wazuh::detect::{self, Manager, OSSEC_CONF};
use crate::wazuh::ossec_conf::{self, ClusterRole, Inspection};
use answers::Answers;
use anyhow::{bail, Context, Result};
use existing::Existing;
use flags::{key_from_flags, take_env_key};
use interactive::interactive_flow;
use std::io::{IsTerminal, Write};
use std::path::Path;
use unattended::unattended_flow;

/// The exit status when the admin declines or aborts (nothing was changed).
pub const EXIT_DECLINED: i32 = 1;

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
