//! Generates the man pages and shell completions that the packages ship, from the clap
//! definition itself (`wazuh_misp::cli::Cli`), so they can never drift from the binary.
//!
//! ```sh
//! cargo run --example gen_docs -- OUT_DIR
//! ```
//!
//! writes
//!
//! | file | installed as |
//! |---|---|
//! | `OUT_DIR/man1/wazuh-misp.1` | `/usr/share/man/man1/wazuh-misp.1.gz` |
//! | `OUT_DIR/man1/wazuh-misp-<subcommand>.1` | one page per visible subcommand |
//! | `OUT_DIR/completions/wazuh-misp.bash` | `/usr/share/bash-completion/completions/wazuh-misp` |
//! | `OUT_DIR/completions/_wazuh-misp` | zsh: `vendor-completions/` (Debian), `site-functions/` (RPM) |
//! | `OUT_DIR/completions/wazuh-misp.fish` | `/usr/share/fish/vendor_completions.d/wazuh-misp.fish` |
//!
//! `scripts/package.sh` runs it. The output is deterministic (no date in the pages).

use clap::CommandFactory;
use clap_complete::Shell;
use std::io::Write;
use std::path::{Path, PathBuf};

const NAME: &str = "wazuh-misp";

fn main() {
    let out = match std::env::args_os().nth(1) {
        Some(dir) => PathBuf::from(dir),
        None => {
            eprintln!("usage: gen_docs OUT_DIR");
            std::process::exit(2);
        }
    };
    if let Err(e) = generate(&out) {
        eprintln!("gen_docs: {e}");
        std::process::exit(1);
    }
}

fn generate(out: &Path) -> std::io::Result<()> {
    let man_dir = out.join("man1");
    let comp_dir = out.join("completions");
    std::fs::create_dir_all(&man_dir)?;
    std::fs::create_dir_all(&comp_dir)?;

    let mut cmd = wazuh_misp::cli::Cli::command()
        .name(NAME)
        .bin_name(NAME)
        .disable_help_subcommand(true);
    cmd.build();
    let version = cmd.get_version().unwrap_or_default().to_string();
    let source = format!("{NAME} {version}");

    // The main page, with the sections clap knows nothing about.
    let man = clap_mangen::Man::new(cmd.clone())
        .source(source.clone())
        .manual("User Commands");
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    page.write_all(DESCRIPTION_EXTRA.as_bytes())?;
    man.render_options_section(&mut page)?;
    man.render_subcommands_section(&mut page)?;
    page.write_all(EXTRA_SECTIONS.as_bytes())?;
    man.render_version_section(&mut page)?;
    std::fs::write(man_dir.join(format!("{NAME}.1")), page)?;

    // One page per visible subcommand (`man wazuh-misp-install`), recursively.
    fn sub_pages(cmd: &clap::Command, dir: &Path, source: &str) -> std::io::Result<()> {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            let man = clap_mangen::Man::new(sub.clone())
                .source(source.to_string())
                .manual("User Commands");
            man.generate_to(dir)?;
            sub_pages(sub, dir, source)?;
        }
        Ok(())
    }
    sub_pages(&cmd, &man_dir, &source)?;

    for (shell, file) in [
        (Shell::Bash, format!("{NAME}.bash")),
        (Shell::Zsh, format!("_{NAME}")),
        (Shell::Fish, format!("{NAME}.fish")),
    ] {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut cmd, NAME, &mut buf);
        std::fs::write(comp_dir.join(file), buf)?;
    }
    Ok(())
}

/// Appended to the DESCRIPTION section (roff).
const DESCRIPTION_EXTRA: &str = r#".PP
\fBwazuh\-misp\fR is the MISP integration of a Wazuh 4.x manager. \fBwazuh\-integratord\fR
runs its copy \fI/var/ossec/integrations/custom\-misp\fR once per alert; that copy looks up
every indicator of the alert in MISP and sends one enriched event per match back to
\fBwazuh\-analysisd\fR. The same binary, installed as \fI/usr/bin/wazuh\-misp\fR, is the
administrator's tool around it.
.PP
After installing the package, run \fBsudo wazuh\-misp setup\fR once to connect MISP; the
package's scripts run \fBwazuh\-misp install \-\-restart\fR on every install and upgrade, and
\fBwazuh\-misp uninstall \-\-restart\fR on removal.
"#;

/// Sections after SUBCOMMANDS (roff).
const EXTRA_SECTIONS: &str = r#".SH FILES
.TP
\fI/var/ossec/etc/custom\-misp.json\fR
The settings: the MISP URL and API key, lookup options, and the installer's choices. Owner
root, group wazuh, mode 0640; anything more open is refused.
.TP
\fI/var/ossec/integrations/custom\-misp\fR
The copy of this binary that integratord runs (root:wazuh, mode 0750).
.TP
\fI/var/ossec/etc/rules/custom\-misp_rules.xml\fR
The rules for the events this integration sends.
.TP
\fI/var/ossec/etc/ossec.conf\fR
Holds the managed \fB<integration>\fR block; \fBuninstall\fR restores the file byte for byte.
Backups are kept beside it as \fIossec.conf.wazuh\-misp\-*.bak\fR.
.TP
\fI/var/ossec/var/custom\-misp/\fR
The state directory: lookup cache and circuit breaker.
.TP
\fI/var/ossec/logs/integrations.log\fR
Errors and warnings of the integration.
.TP
\fI/usr/share/wazuh\-misp/\fR
The templates the binary was built with (the default field map, the rules template).
.SH ENVIRONMENT
.TP
\fBWAZUH_HOME\fR
The Wazuh manager's home when \fB\-\-wazuh\-home\fR is not given (default \fI/var/ossec\fR).
.SH EXIT STATUS
0 on success. When run by integratord: 2 bad arguments, 3 alert file unreadable, 4 settings
missing or invalid, 5 analysisd's queue socket unavailable. Other commands exit 1 on error.
.SH SEE ALSO
\fI/usr/share/doc/wazuh\-misp/README.md\fR
"#;
