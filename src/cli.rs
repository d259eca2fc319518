//! The command line. integratord's invocation is recognised first and parsed by hand (its argv
//! would be rejected by any strict parser); everything an admin types goes through clap.

use crate::runtime;
use crate::wazuh::home;
use crate::wazuh::install::{self, InstallOptions, UninstallOptions};
use crate::wazuh::service::ServiceManager;
use clap::{Parser, Subcommand};
use std::ffi::OsString;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "wazuh-misp",
    version,
    about = "Enrich Wazuh alerts with MISP threat intelligence"
)]
pub struct Cli {
    /// The Wazuh manager's home [env: WAZUH_HOME] [default: /var/ossec]
    #[arg(long, global = true, value_name = "DIR")]
    pub wazuh_home: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Process one alert exactly as integratord runs the integration
    /// (ALERT_FILE [api_key hook_url debug options timeout retries ...])
    Run {
        #[arg(value_name = "ALERT_FILE")]
        alert_file: OsString,
        /// integratord's further positional arguments
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "ARGS"
        )]
        rest: Vec<OsString>,
    },
    /// Connect this manager to MISP: a guided wizard on a terminal, or unattended with
    /// --non-interactive (every prompt has a flag; the key comes from --api-key-file,
    /// --api-key-stdin or MISP_API_KEY, never from the command line)
    Setup(crate::setup::wizard::SetupArgs),
    /// Install or refresh the integration: binary, state directory, and (once `setup` has run)
    /// the ossec.conf block and the MISP rules, validated by Wazuh's own checks
    Install {
        /// Print a diff of every file that would change, and change nothing
        #[arg(long)]
        dry_run: bool,
        /// Restart the manager the safe way if anything changed (rolled back if it fails)
        #[arg(long)]
        restart: bool,
        /// First id of our contiguous rule id block (stored in the settings)
        #[arg(long, value_name = "N")]
        rule_id_base: Option<u32>,
        /// Also install the self-test sample rule (stored in the settings)
        #[arg(long, conflicts_with = "no_sample_rule")]
        sample_rule: bool,
        /// Remove the self-test sample rule (stored in the settings)
        #[arg(long)]
        no_sample_rule: bool,
        #[command(flatten)]
        service: ServiceArg,
    },
    /// Remove the ossec.conf block, the rules and the binary copy (restoring ossec.conf exactly)
    Uninstall {
        /// Print a diff of every file that would change, and change nothing
        #[arg(long)]
        dry_run: bool,
        /// Restart the manager the safe way afterwards
        #[arg(long)]
        restart: bool,
        /// Also remove the settings file and the state directory
        #[arg(long)]
        purge: bool,
        #[command(flatten)]
        service: ServiceArg,
    },
    /// Check the whole installation and report each problem with its fix; with --live, prove
    /// the whole path works by following a synthetic alert through Wazuh and MISP
    Doctor {
        /// Machine-readable output
        #[arg(long)]
        json: bool,
        /// End-to-end self test: inject an event, follow the alert and our enriched alert
        #[arg(long)]
        live: bool,
        /// Seconds to wait for each alert in the live test
        #[arg(long, value_name = "SECS", default_value_t = 30, requires = "live")]
        timeout: u64,
        /// Create (and afterwards delete) a labelled test event in MISP holding the test IP;
        /// needs a key allowed to add and publish events
        #[arg(long, requires = "live")]
        create_test_ioc: bool,
        /// The IP the live test uses (one MISP knows) [default: 192.31.196.200]
        #[arg(long, value_name = "IP", requires = "live")]
        test_ip: Option<String>,
    },
    /// Show or clear the shared lookup cache and circuit breaker
    Cache {
        #[command(subcommand)]
        action: CacheAction,
    },
    /// Refresh the local mirror of MISP (what `lookup.mode` mirror and hybrid answer from):
    /// incremental when it can be, in full when it must
    Sync {
        /// Read everything again instead of only what changed
        #[arg(long)]
        full: bool,
        /// Read MISP and report what would change, but keep the current mirror
        #[arg(long)]
        dry_run: bool,
        /// Machine-readable output
        #[arg(long)]
        json: bool,
        /// No progress lines
        #[arg(long)]
        quiet: bool,
    },
    /// What the mirror holds: its age and last sync, or what it knows of one value
    Mirror {
        #[command(subcommand)]
        action: MirrorAction,
    },
    /// Report hits to MISP as sightings: what is waiting, or deliver it now
    Sightings {
        #[command(subcommand)]
        action: SightingsAction,
    },
    /// Run the pipeline over a JSON-lines alerts file and show what would be sent
    Test {
        /// Alerts file, or - for standard input [default: <wazuh-home>/logs/alerts/alerts.json]
        #[arg(long, value_name = "FILE")]
        alerts: Option<PathBuf>,
        /// Really send the events to analysisd
        #[arg(long)]
        send: bool,
        /// One JSON object per alert, then a summary object
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct ServiceArg {
    /// How to restart the manager
    #[arg(long, value_enum, default_value = "auto", hide = true)]
    pub service_manager: ServiceManager,
}

#[derive(Debug, Subcommand)]
pub enum CacheAction {
    /// Entries, capacity and the circuit breaker's state
    Stats {
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// Forget every cached answer and close the circuit breaker
    Clear,
}

#[derive(Debug, Subcommand)]
pub enum SightingsAction {
    /// The spool (waiting, being delivered, dropped) and the last flush
    Stats {
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// Deliver the spool now (the scheduled run does it every mirror.interval_s)
    Flush,
}

#[derive(Debug, Subcommand)]
pub enum MirrorAction {
    /// Age, last sync result, counts per kind, size
    Stats {
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// What the mirror holds for one value (exit 0), or that it holds nothing (exit 1)
    Lookup {
        /// An IP, domain, URL or hash, written as an alert would carry it
        value: String,
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
}

pub fn main() -> i32 {
    install_panic_hook();
    let args: Vec<OsString> = std::env::args_os().collect();
    let exe = home::current_executable();
    // An admin may ask the installed copy what it is; integratord never passes these.
    let asks_about_itself = args.first().is_some_and(|a| a != home::INTEGRATIONS_DIR)
        && args
            .get(1)
            .is_some_and(|a| ["--version", "-V", "--help", "-h"].iter().any(|f| a == f));
    if args.first().is_some_and(|a| a != home::INTEGRATIONS_DIR)
        && args.get(1).is_some_and(|a| a == home::SCHEDULED_SYNC_ARG)
    {
        let home = runtime::integratord_home(exe.as_deref());
        return crate::schedule::run(&home, &mut std::io::stdout());
    }
    if !asks_about_itself
        && runtime::started_by_integratord(args.first().map(OsString::as_os_str), exe.as_deref())
    {
        let home = runtime::integratord_home(exe.as_deref());
        return runtime::run(&home, args.get(1..).unwrap_or_default());
    }
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                runtime::EXIT_USAGE
            } else {
                0
            };
        }
    };
    let home = home::resolve(cli.wazuh_home.as_deref());
    match cli.command {
        Command::Run { alert_file, rest } => {
            let mut args = vec![alert_file];
            args.extend(rest);
            runtime::run(&home, &args)
        }
        Command::Setup(args) => report(crate::setup::wizard::run(
            &home,
            &args,
            &mut std::io::stdout(),
        )),
        Command::Install {
            dry_run,
            restart,
            rule_id_base,
            sample_rule,
            no_sample_rule,
            service,
        } => {
            let opts = InstallOptions {
                dry_run,
                restart,
                service: service.service_manager,
                rule_id_base,
                sample_rule: match (sample_rule, no_sample_rule) {
                    (true, _) => Some(true),
                    (_, true) => Some(false),
                    _ => None,
                },
            };
            report(install::install(&home, &opts, &mut std::io::stdout()).map(|()| 0))
        }
        Command::Uninstall {
            dry_run,
            restart,
            purge,
            service,
        } => {
            let opts = UninstallOptions {
                dry_run,
                restart,
                purge,
                service: service.service_manager,
            };
            report(install::uninstall(&home, &opts, &mut std::io::stdout()).map(|()| 0))
        }
        Command::Doctor {
            json, live: false, ..
        } => {
            let opts = crate::setup::doctor::DoctorOptions { json };
            report(crate::setup::doctor::run(
                &home,
                &opts,
                &mut std::io::stdout(),
            ))
        }
        Command::Doctor {
            json,
            live: true,
            timeout,
            create_test_ioc,
            test_ip,
        } => {
            let opts = crate::setup::selftest::SelfTestOptions {
                timeout: std::time::Duration::from_secs(timeout),
                create_test_ioc,
                test_ip,
                json,
            };
            report(crate::setup::selftest::run(
                &home,
                &opts,
                &mut std::io::stdout(),
            ))
        }
        Command::Cache { action } => {
            let mut out = std::io::stdout();
            report(
                match action {
                    CacheAction::Stats { json } => runtime::cachecmd::stats(&home, json, &mut out),
                    CacheAction::Clear => runtime::cachecmd::clear(&home, &mut out),
                }
                .map(|()| 0),
            )
        }
        Command::Sync {
            full,
            dry_run,
            json,
            quiet,
        } => {
            let opts = crate::sync::Options {
                full,
                dry_run,
                json,
                quiet,
            };
            crate::sync::run(&home, &opts, &mut std::io::stdout())
        }
        Command::Mirror { action } => {
            let mut out = std::io::stdout();
            match action {
                MirrorAction::Stats { json } => {
                    report(crate::mirror::cmd::stats(&home, json, &mut out).map(|()| 0))
                }
                MirrorAction::Lookup { value, json } => {
                    report(crate::mirror::cmd::lookup(&home, &value, json, &mut out))
                }
            }
        }
        Command::Sightings { action } => {
            let mut out = std::io::stdout();
            match action {
                SightingsAction::Stats { json } => {
                    report(crate::sightings::stats(&home, json, &mut out).map(|()| 0))
                }
                SightingsAction::Flush => {
                    match crate::settings::Settings::load(&home, &Default::default()) {
                        Ok(loaded) => crate::schedule::flush(&home, &loaded, &mut out),
                        Err(e) => {
                            eprintln!("wazuh-misp: {e}");
                            crate::sync::EXIT_SETTINGS
                        }
                    }
                }
            }
        }
        Command::Test { alerts, send, json } => {
            let opts = runtime::testmode::Options { alerts, send, json };
            report(runtime::testmode::run(&home, &opts))
        }
    }
}

fn report(result: anyhow::Result<i32>) -> i32 {
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("wazuh-misp: {e:#}");
            1
        }
    }
}

/// A panic message could quote data (even the key): print only where it happened.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        println!("custom-misp: internal error at {at}; please report it");
    }));
}
