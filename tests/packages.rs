//! Package tests (issue 6): build the .deb and the .rpm with `scripts/package.sh`, inspect them
//! (file lists, modes and owners, dependencies, maintainer scripts, glibc symbol versions,
//! lintian, rpmlint), then install, reinstall, upgrade, remove and purge them for real in a
//! throwaway Debian 12 root that holds a stand-in `wazuh-manager` package.
//!
//! THEY NEED ROOT (chroot, unshare, files owned by the root's own users) and the tools that
//! `scripts/ci-deps.sh` installs (debootstrap, dpkg-dev, rpm, lintian, rpmlint, zstd,
//! cargo-zigbuild, ziglang). Run as another user they print why and check nothing, except under
//! CI (`CI` set), where that is a failure. CI runs them as root through `.ci/run`.
//!
//! The Debian root is made with `debootstrap --variant=minbase` (about 25 s and 100 MB of
//! downloads the first time) and cached as a tarball with a SHA-256 sidecar under
//! `target/packages-test/cache/`, keyed by suite, architecture, recipe and UTC day; a tarball
//! whose checksum or content does not verify is rebuilt, and older days are deleted.
//! `WAZUH_MISP_TEST_ROOTFS_CACHE` moves the cache, `WAZUH_MISP_TEST_DEBIAN_MIRROR` picks the
//! mirror. Each test extracts its own copy.
//!
//! Every command in a root runs as `unshare --mount --pid --fork --mount-proc=ROOT/proc chroot
//! ROOT …` (the proc mount dies with the namespace, nothing is left mounted on the host) with
//! a `/usr/sbin/policy-rc.d` that exits 101, so no service ever starts. The RPM test uses the
//! host's `rpm --root ROOT --dbpath /var/lib/rpm` with full dependency checks: the root's rpm
//! database holds a stand-in `glibc` 2.17 (every symbol version up to GLIBC_2.17, as on
//! CentOS 7) and a stand-in `wazuh-manager` rpm.
//!
//! The stand-in manager's `bin/wazuh-control`, `wazuh-integratord` and `wazuh-analysisd` log
//! every call to `/var/ossec/stand-in/calls.log` and are steered by files beside it: `running`
//! (status says a daemon runs, so a change is followed by `wazuh-control restart`) and `reject`
//! (every `-t` check fails).

mod common;

use common::home::{HomeBuilder, Perm};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

const REPO: &str = env!("CARGO_MANIFEST_DIR");
/// The version in Cargo.toml, the only source of the packages' version.
const VERSION: &str = env!("CARGO_PKG_VERSION");
const HOME: &str = "/var/ossec";
const SETTINGS: &str = r#"{"version":1,"misp":{"url":"https://misp.example.org","api_key":"0123456789abcdefABCDEF0123456789abcdefAB"},"install":{"level":5}}"#;
const MANAGER_VERSION: &str = "4.9.2";
/// Bump when the way the cached root is made changes, so old tarballs are not reused.
const ROOTFS_RECIPE: &str = "r1";
const SUITE: &str = "bookworm";

// ------------------------------------------------------------------------------------------
// The tests
// ------------------------------------------------------------------------------------------

#[test]
fn deb_and_rpm_contents_dependencies_and_scripts() {
    if !ready() {
        return;
    }
    let built = built();
    let t = Instant::now();
    inspect_deb(&built.deb1, 1);
    inspect_deb(&built.deb2, 2);
    inspect_rpm(&built.rpm1, 1);
    inspect_rpm(&built.rpm2, 2);
    inspect_binary(&built.deb1);
    println!("inspection took {:.1} s", t.elapsed().as_secs_f64());
}

#[test]
fn deb_install_reinstall_upgrade_remove_purge_in_a_debian_root() {
    if !ready() {
        return;
    }
    let built = built_while_preparing_the_root();
    let t = Instant::now();
    let root = Root::new("deb");
    let pm = Pm::Deb;
    let work = tempdir("standin-deb-");
    let manager = stand_in_manager_deb(work.path(), MANAGER_VERSION);
    let manager5 = stand_in_manager_deb(work.path(), "5.0.0");
    lifecycle(&root, &pm, built, &manager, &manager5);
    println!("deb lifecycle took {:.1} s", t.elapsed().as_secs_f64());
}

#[test]
fn rpm_install_reinstall_upgrade_erase_in_a_debian_root() {
    if !ready() {
        return;
    }
    let built = built_while_preparing_the_root();
    let t = Instant::now();
    let root = Root::new("rpm");
    let pm = Pm::Rpm;
    let work = tempdir("standin-rpm-");
    let glibc = stand_in_glibc_rpm(work.path());
    let manager = stand_in_manager_rpm(work.path(), MANAGER_VERSION);
    let manager5 = stand_in_manager_rpm(work.path(), "5.0.0");
    step("rpm: initialise the root's rpm database and install a stand-in glibc 2.17 (CentOS 7's symbol versions)");
    let init = root.rpm(&["--initdb"]);
    expect_success(&init, "rpm --initdb");
    let out = root.rpm(&["-i", glibc.to_str().unwrap()]);
    expect_success(&out, "rpm -i the stand-in glibc");
    lifecycle(&root, &pm, built, &manager, &manager5);
    println!("rpm lifecycle took {:.1} s", t.elapsed().as_secs_f64());
}

// ------------------------------------------------------------------------------------------
// The lifecycle, the same for both package managers
// ------------------------------------------------------------------------------------------

fn lifecycle(root: &Root, pm: &Pm, built: &Built, manager: &Path, manager5: &Path) {
    let (ours1, ours2) = match pm {
        Pm::Deb => (&built.deb1, &built.deb2),
        Pm::Rpm => (&built.rpm1, &built.rpm2),
    };
    let l = pm.label();

    step(&format!(
        "{l}: our package is refused without a Wazuh manager"
    ));
    let out = pm.install(root, ours1);
    expect_refused(
        pm,
        &out,
        "wazuh-manager (>= 4.0.0)",
        "wazuh-manager >= 4.0.0",
    );
    pm.cleanup_refused(root);
    check(
        !root.path(HOME).exists(),
        "nothing was written to /var/ossec",
        || format!("{} exists", root.path(HOME).display()),
    );

    step(&format!(
        "{l}: our package is refused next to a Wazuh 5 manager"
    ));
    expect_success(
        &pm.install_file(root, manager5),
        "installing the stand-in wazuh-manager 5.0.0",
    );
    let out = pm.install(root, ours1);
    expect_refused(pm, &out, "wazuh-manager (<< 5~)", "wazuh-manager < 5~");
    pm.cleanup_refused(root);
    expect_success(
        &pm.remove_named(root, "wazuh-manager"),
        "removing the stand-in wazuh-manager 5.0.0",
    );

    step(&format!(
        "{l}: install the stand-in wazuh-manager {MANAGER_VERSION}"
    ));
    expect_success(
        &pm.install_file(root, manager),
        "installing the stand-in wazuh-manager",
    );
    let stock = root
        .read(&conf())
        .expect("the stand-in manager wrote ossec.conf");
    let stock_meta = root.meta(&conf()).unwrap();
    check_meta(root, &conf(), ("root", "wazuh", 0o660));
    let local_rules = root
        .read(&format!("{HOME}/etc/rules/local_rules.xml"))
        .unwrap();
    let virustotal = root
        .read(&format!("{HOME}/integrations/virustotal"))
        .unwrap();

    step(&format!(
        "{l}: install {} (no settings yet)",
        file_name(ours1)
    ));
    let out = pm.install(root, ours1);
    expect_success(&out, "installing our package");
    check(
        text(&out).contains("sudo wazuh-misp setup"),
        "the install printed the line telling the admin to run `sudo wazuh-misp setup`",
        || text(&out),
    );
    check_installed(root, pm, &pm.version(1));
    check_packaged_files(root, true);
    check_integration_copy(root);
    check_state_dir(root);
    check_bytes(root, &conf(), &stock, "ossec.conf is untouched");
    check_absent(root, &rules());
    check_absent(root, &settings());
    check_restarts(root, 0, "the manager was not restarted");

    step(&format!(
        "{l}: write the settings, reinstall: the block and the rules appear"
    ));
    root.write_settings(0o640);
    root.clear_calls();
    let out = pm.reinstall(root, ours1);
    expect_success(&out, "reinstalling our package");
    let configured = check_configured(root, &stock, stock_meta.clone(), &local_rules);
    check_backup_of(root, &stock);
    check_restarts(root, 0, "no restart: the (stand-in) manager is not running");

    step(&format!(
        "{l}: manager running, reinstall again: nothing changes, so no restart"
    ));
    root.steer("running", true);
    root.clear_calls();
    let out = pm.reinstall(root, ours1);
    expect_success(&out, "reinstalling our package with the manager running");
    check_bytes(root, &conf(), &configured, "ossec.conf is unchanged");
    check_integration_copy(root);
    check_restarts(root, 0, "nothing changed, so the manager was not restarted");

    step(&format!(
        "{l}: a stale integration copy (other bytes, mode 0755), then upgrade to {}",
        file_name(ours2)
    ));
    let copy = root.path(&integration());
    std::fs::write(&copy, "#!/bin/sh\necho stale copy of an older wazuh-misp\n").unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    root.clear_calls();
    let out = pm.upgrade(root, ours2);
    expect_success(&out, "upgrading our package");
    check_installed(root, pm, &pm.version(2));
    check_integration_copy(root);
    check_bytes(
        root,
        &conf(),
        &configured,
        "ossec.conf keeps the block (an upgrade never uninstalls)",
    );
    check_present(
        root,
        &rules(),
        "the rules file is still there after the upgrade",
    );
    check_bytes(
        root,
        &settings(),
        SETTINGS.as_bytes(),
        "the settings are kept",
    );
    check_restarts(
        root,
        1,
        "the integration copy changed and the manager runs: exactly one restart",
    );

    step(&format!("{l}: remove: ossec.conf comes back byte for byte"));
    root.clear_calls();
    let out = pm.remove(root);
    expect_success(&out, "removing our package");
    check_not_installed(root, pm);
    check_bytes(
        root,
        &conf(),
        &stock,
        "ossec.conf is the stock file again, byte for byte",
    );
    check_meta(root, &conf(), stock_meta.as_tuple());
    check_absent(root, &rules());
    check_absent(root, &integration());
    check_packaged_files(root, false);
    check_bytes(
        root,
        &settings(),
        SETTINGS.as_bytes(),
        "the settings stay after a removal",
    );
    check_present(
        root,
        &state_dir(),
        "the state directory stays after a removal",
    );
    check_bytes(
        root,
        &format!("{HOME}/etc/rules/local_rules.xml"),
        &local_rules,
        "local_rules.xml is untouched",
    );
    check_bytes(
        root,
        &format!("{HOME}/integrations/virustotal"),
        &virustotal,
        "the other integration is untouched",
    );
    check_restarts(
        root,
        1,
        "the manager runs and the files changed: exactly one restart",
    );
    if let Pm::Rpm = pm {
        check(
            text(&out).contains("kept /var/ossec/etc/custom-misp.json"),
            "the erase said where the settings (with the API key) were kept",
            || text(&out),
        );
    }

    if let Pm::Deb = pm {
        step("deb: purge: the settings, the state directory and our ossec.conf backups go");
        let out = pm.purge(root);
        expect_success(&out, "purging our package");
        check_absent(root, &settings());
        check_absent(root, &state_dir());
        check(
            root.backups().is_empty(),
            "no ossec.conf.wazuh-misp-*.bak is left (ossec.conf no longer has our block)",
            || format!("left: {:?}", root.backups()),
        );
        check_bytes(root, &conf(), &stock, "ossec.conf is still the stock file");
        check_present(
            root,
            &format!("{HOME}/etc/rules/local_rules.xml"),
            "the manager's own files stay",
        );
    }
    root.steer("running", false);

    step(&format!(
        "{l}: settings the group could read but also others (0644): the install fails, the package operation does not"
    ));
    root.write_settings(0o644);
    let out = pm.install(root, ours2);
    expect_success(&out, "installing our package with unusable settings");
    check(
        text(&out).contains("WARNING: the integration could not be installed"),
        "the package script warned that the integration was not installed",
        || text(&out),
    );
    check_installed(root, pm, &pm.version(2));
    check_bytes(root, &conf(), &stock, "ossec.conf is untouched");
    check_absent(root, &rules());

    step(&format!(
        "{l}: settings fixed (0640), reinstall: configured"
    ));
    root.write_settings(0o640);
    let out = pm.reinstall(root, ours2);
    expect_success(&out, "reinstalling our package");
    let configured = check_configured(root, &stock, stock_meta.clone(), &local_rules);

    step(&format!(
        "{l}: Wazuh's checks reject everything: the removal cannot undo the block, and still succeeds"
    ));
    root.steer("reject", true);
    let out = pm.remove(root);
    expect_success(&out, "removing our package while Wazuh's checks fail");
    check(
        text(&out).contains("WARNING: the integration could not be removed"),
        "the package script warned that the integration was not removed",
        || text(&out),
    );
    check_not_installed(root, pm);
    check_bytes(
        root,
        &conf(),
        &configured,
        "ossec.conf was rolled back to the configured file (the manager is as it was)",
    );
    check_present(
        root,
        &integration(),
        "the integration copy the block needs is still there",
    );

    if let Pm::Deb = pm {
        step("deb: purge with our block still in ossec.conf: the backups stay, and the purge says so");
        let out = pm.purge(root);
        expect_success(&out, "purging our package");
        check_absent(root, &settings());
        check_absent(root, &state_dir());
        check(
            !root.backups().is_empty(),
            "the ossec.conf backups are kept while the block is still there",
            || "no backup left".into(),
        );
        check(
            text(&out).contains("backups"),
            "the purge told the admin about the kept backups",
            || text(&out),
        );
    }
    root.steer("reject", false);
}

// ------------------------------------------------------------------------------------------
// Inspection of the built packages
// ------------------------------------------------------------------------------------------

fn upstream_version() -> String {
    VERSION.replacen('-', "~", 1)
}

/// The files both packages ship (the zsh directory differs), with their modes.
fn expected_files(zsh_dir: &str) -> Vec<(String, u32)> {
    let mut files = vec![
        ("/usr/bin/wazuh-misp".to_string(), 0o755),
        (
            "/usr/share/bash-completion/completions/wazuh-misp".into(),
            0o644,
        ),
        (format!("{zsh_dir}/_wazuh-misp"), 0o644),
        (
            "/usr/share/fish/vendor_completions.d/wazuh-misp.fish".into(),
            0o644,
        ),
        ("/usr/share/doc/wazuh-misp/README.md".into(), 0o644),
        (
            "/usr/share/doc/wazuh-misp/THIRD-PARTY-LICENSES.gz".into(),
            0o644,
        ),
    ];
    for entry in std::fs::read_dir(Path::new(REPO).join("templates")).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            files.push((
                format!(
                    "/usr/share/wazuh-misp/{}",
                    entry.file_name().to_string_lossy()
                ),
                0o644,
            ));
        }
    }
    files
}

/// Man pages: the main one, and one per subcommand (their set follows the CLI).
fn check_man_pages(files: &[(String, u32)], what: &str) {
    let pages: Vec<&String> = files
        .iter()
        .map(|(p, _)| p)
        .filter(|p| p.starts_with("/usr/share/man/"))
        .collect();
    for needed in [
        "wazuh-misp.1.gz",
        "wazuh-misp-install.1.gz",
        "wazuh-misp-uninstall.1.gz",
    ] {
        let path = format!("/usr/share/man/man1/{needed}");
        check(
            pages.iter().any(|p| **p == path),
            &format!("{what} ships {path}"),
            || format!("man pages shipped: {pages:?}"),
        );
    }
    let bad: Vec<&&String> = pages
        .iter()
        .filter(|p| {
            let name = p.strip_prefix("/usr/share/man/man1/").unwrap_or(p);
            !(name.starts_with("wazuh-misp")
                && name.ends_with(".1.gz")
                && files.iter().any(|(f, m)| f == **p && *m == 0o644))
        })
        .collect();
    check(
        bad.is_empty(),
        &format!("{what}: {} man pages, each a gzipped section 1 page of mode 0644 in /usr/share/man/man1", pages.len()),
        || format!("{bad:?}"),
    );
}

fn compare_file_lists(what: &str, mut found: Vec<(String, u32)>, zsh_dir: &str, extra: &[&str]) {
    found.retain(|(p, _)| !p.starts_with("/usr/share/man/"));
    found.sort();
    let mut expected = expected_files(zsh_dir);
    expected.extend(extra.iter().map(|p| (p.to_string(), 0o644)));
    expected.sort();
    let missing: Vec<_> = expected.iter().filter(|e| !found.contains(e)).collect();
    let unexpected: Vec<_> = found.iter().filter(|f| !expected.contains(f)).collect();
    check(
        missing.is_empty() && unexpected.is_empty(),
        &format!(
            "{what}: exactly the expected files with the expected modes (0755 binary, 0644 the rest; man pages checked apart)"
        ),
        || {
            let show = |l: &[&(String, u32)]| {
                l.iter()
                    .map(|(p, m)| format!("  {p} {m:04o}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            format!(
                "missing or with another mode:\n{}\nunexpected or with another mode:\n{}",
                show(&missing),
                show(&unexpected)
            )
        },
    );
}

fn inspect_deb(deb: &Path, release: u32) {
    let what = file_name(deb);
    step(&format!("inspect {what}"));
    let listing = cmd_ok(Command::new("dpkg-deb").arg("-c").arg(deb), "dpkg-deb -c");
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for line in listing.lines() {
        // drwxr-xr-x root/root         0 2026-11-27 07:02 ./usr/
        let cols: Vec<&str> = line.split_whitespace().collect();
        let (perms, owner, path) = (cols[0], cols[1], cols[5].trim_start_matches('.'));
        let fine = owner == "root/root"
            && (path.starts_with("/usr/") || path == "/")
            && (perms == "drwxr-xr-x" || perms.starts_with('-'));
        if !fine {
            problems.push(line.to_string());
        }
        if let Some(bits) = perms.strip_prefix('-') {
            files.push((path.to_string(), perms_to_mode(bits)));
        }
    }
    check(
        problems.is_empty(),
        &format!("{what}: every entry is root/root, under /usr (nothing under /var/ossec or /etc), a 0755 directory or a plain file"),
        || problems.join("\n"),
    );
    check_man_pages(&files, &what);
    compare_file_lists(
        &what,
        files,
        "/usr/share/zsh/vendor-completions",
        &[
            "/usr/share/doc/wazuh-misp/copyright",
            "/usr/share/doc/wazuh-misp/changelog.Debian.gz",
            "/usr/share/lintian/overrides/wazuh-misp",
        ],
    );

    let field = |name: &str| {
        cmd_ok(
            Command::new("dpkg-deb").arg("-f").arg(deb).arg(name),
            "dpkg-deb -f",
        )
        .trim()
        .to_string()
    };
    let version = format!("{}-{release}", upstream_version());
    check_eq(&field("Package"), "wazuh-misp", &format!("{what}: Package"));
    check_eq(
        &field("Version"),
        &version,
        &format!("{what}: Version (from Cargo.toml)"),
    );
    check_eq(
        &field("Architecture"),
        "amd64",
        &format!("{what}: Architecture"),
    );
    check_eq(
        &field("Depends"),
        "libc6 (>= 2.17), wazuh-manager (>= 4.0.0), wazuh-manager (<< 5~)",
        &format!("{what}: Depends (glibc 2.17 by hand; a 4.x manager, never 5)"),
    );
    for f in ["Pre-Depends", "Recommends", "Conflicts", "Breaks"] {
        check_eq(&field(f), "", &format!("{what}: no {f}"));
    }

    let control = tempdir("deb-control-");
    cmd_ok(
        Command::new("dpkg-deb")
            .arg("-e")
            .arg(deb)
            .arg(control.path()),
        "dpkg-deb -e",
    );
    for script in ["postinst", "prerm", "postrm"] {
        let path = control.path().join(script);
        let shipped = std::fs::read(&path).unwrap_or_default();
        let source = std::fs::read(Path::new(REPO).join("debian").join(script)).unwrap();
        check(
            shipped == source,
            &format!("{what}: {script} is debian/{script}"),
            || diff(&source, &shipped),
        );
        let mode = std::fs::metadata(&path)
            .map(|m| m.mode() & 0o7777)
            .unwrap_or(0);
        check(mode == 0o755, &format!("{what}: {script} is 0755"), || {
            format!("mode {mode:04o}")
        });
        let syntax = run(Command::new("sh").arg("-n").arg(&path));
        check(
            syntax.status.success(),
            &format!("{what}: {script} is valid POSIX sh (sh -n)"),
            || text(&syntax),
        );
        let body = String::from_utf8_lossy(&shipped);
        check(
            !body.contains("debconf") && !body.contains("read ") && body.starts_with("#!/bin/sh"),
            &format!("{what}: {script} is plain /bin/sh, no debconf, no prompt"),
            || body.to_string(),
        );
    }
    check(
        !control.path().join("preinst").exists() && !control.path().join("config").exists(),
        &format!("{what}: no preinst, no debconf config"),
        || "found one".into(),
    );

    let lintian = run(Command::new("lintian")
        .args(["--fail-on", "error", "--no-tag-display-limit"])
        .arg(deb));
    println!("{}", indent(&text(&lintian)));
    check(
        lintian.status.success(),
        &format!("{what}: lintian --fail-on error passes"),
        || text(&lintian),
    );
}

fn inspect_rpm(rpm: &Path, release: u32) {
    let what = file_name(rpm);
    step(&format!("inspect {what}"));
    let q = |args: &[&str]| {
        let mut c = Command::new("rpm");
        c.arg("-qp").args(args).arg(rpm);
        cmd_ok(&mut c, "rpm -qp")
    };
    let listing = q(&[
        "--qf",
        "[%{FILEMODES:perms} %{FILEUSERNAME} %{FILEGROUPNAME} %{FILENAMES}\n]",
    ]);
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for line in listing.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let (perms, user, group, path) = (cols[0], cols[1], cols[2], cols[3]);
        let fine = user == "root"
            && group == "root"
            && path.starts_with("/usr/")
            && (perms == "drwxr-xr-x" || perms.starts_with('-'));
        if !fine {
            problems.push(line.to_string());
        }
        if let Some(bits) = perms.strip_prefix('-') {
            files.push((path.to_string(), perms_to_mode(bits)));
        }
    }
    check(
        problems.is_empty(),
        &format!("{what}: in the header every file is root:root, under /usr, a 0755 directory or a plain file"),
        || problems.join("\n"),
    );
    check_man_pages(&files, &what);
    compare_file_lists(
        &what,
        files,
        "/usr/share/zsh/site-functions",
        &["/usr/share/licenses/wazuh-misp/LICENSE"],
    );
    check_eq(
        q(&["--qf", "%{NAME} %{VERSION} %{RELEASE} %{ARCH}"]).trim(),
        &format!("wazuh-misp {} {release} x86_64", upstream_version()),
        &format!("{what}: name, version (from Cargo.toml), release, arch"),
    );
    check_eq(
        q(&["--qf", "%{LICENSE} %{PAYLOADCOMPRESSOR} %{FILEDIGESTALGO}"]).trim(),
        "Apache-2.0 xz 8",
        &format!("{what}: license, xz payload and SHA-256 digests (readable by EL7's rpm 4.11)"),
    );
    let requires = q(&["--requires"]);
    for needed in [
        "wazuh-manager >= 4.0.0",
        "wazuh-manager < 5~",
        "glibc >= 2.17",
    ] {
        check(
            requires.lines().any(|l| l.trim() == needed),
            &format!("{what}: Requires {needed}"),
            || requires.clone(),
        );
    }
    let mut unexpected = Vec::new();
    for line in requires.lines().map(str::trim) {
        let allowed = line.starts_with("wazuh-manager ")
            || line.starts_with("glibc ")
            || line == "/bin/sh"
            || line.starts_with("rpmlib(")
            || line == "rtld(GNU_HASH)"
            || [
                "libc.so.6",
                "libpthread.so.0",
                "libdl.so.2",
                "libm.so.6",
                "librt.so.1",
            ]
            .iter()
            .any(|lib| line.starts_with(lib));
        let too_new = line
            .split("(GLIBC_")
            .nth(1)
            .is_some_and(|v| !version_le(v.trim_end_matches(")(64bit)"), "2.17"));
        if !allowed || too_new {
            unexpected.push(line);
        }
    }
    check(
        unexpected.is_empty(),
        &format!("{what}: every other requirement is glibc's (no symbol version above GLIBC_2.17), /bin/sh or rpmlib's"),
        || format!("unexpected: {unexpected:?}\nall:\n{requires}"),
    );
    let scripts = q(&["--scripts"]);
    for (section, needle) in [
        ("postinstall scriptlet", "install --restart"),
        ("preuninstall scriptlet", "uninstall --restart"),
        ("preuninstall scriptlet", "[ \"$1\" -eq 0 ]"),
        ("postuninstall scriptlet", "[ \"$1\" -eq 0 ]"),
    ] {
        let body = scripts
            .split(section)
            .nth(1)
            .map(|rest| rest.split(" scriptlet (using").next().unwrap_or(rest))
            .unwrap_or("");
        check(
            body.contains(needle),
            &format!("{what}: {section} contains `{needle}`"),
            || scripts.clone(),
        );
    }
    check(
        !scripts.contains("pretrans") && !scripts.contains("preinstall scriptlet"),
        &format!("{what}: no %pre/%pretrans"),
        || scripts.clone(),
    );

    let rpmlint = run(Command::new("rpmlint").arg(rpm));
    println!("{}", indent(&text(&rpmlint)));
    let errors: Vec<&str> = text_lines(&rpmlint)
        .into_iter()
        .filter(|l| l.contains(": E: ") && !l.contains(": E: no-signature"))
        .collect();
    check(
        errors.is_empty(),
        &format!(
            "{what}: rpmlint reports no error but no-signature (packages are signed at release)"
        ),
        || errors.join("\n"),
    );
}

/// The packaged binary: glibc 2.17 at most, only glibc's libraries, the Cargo version.
fn inspect_binary(deb: &Path) {
    step("inspect the packaged binary");
    let dir = tempdir("deb-data-");
    cmd_ok(
        Command::new("dpkg-deb").arg("-x").arg(deb).arg(dir.path()),
        "dpkg-deb -x",
    );
    let bin = dir.path().join("usr/bin/wazuh-misp");
    let symbols = cmd_ok(Command::new("objdump").arg("-T").arg(&bin), "objdump -T");
    let mut newest = "2.2.5".to_string();
    for v in symbols.split("GLIBC_").skip(1).map(|s| {
        s.split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .next()
            .unwrap()
    }) {
        if !v.is_empty() && !version_le(v, &newest) {
            newest = v.to_string();
        }
    }
    check(
        version_le(&newest, "2.17"),
        &format!("objdump -T: the newest glibc symbol version is GLIBC_{newest} (at most 2.17)"),
        || {
            symbols
                .lines()
                .filter(|l| {
                    l.contains("GLIBC_2.1") || l.contains("GLIBC_2.2") || l.contains("GLIBC_2.3")
                })
                .collect::<Vec<_>>()
                .join("\n")
        },
    );
    let headers = cmd_ok(Command::new("objdump").arg("-p").arg(&bin), "objdump -p");
    for line in headers
        .lines()
        .filter(|l| l.trim_start().starts_with("NEEDED"))
    {
        let lib = line.split_whitespace().nth(1).unwrap_or("");
        check(
            [
                "libc.so.6",
                "libpthread.so.0",
                "libdl.so.2",
                "libm.so.6",
                "librt.so.1",
                "libutil.so.1",
                "ld-linux-x86-64.so.2",
            ]
            .contains(&lib),
            &format!("the binary links {lib}, a glibc library"),
            || headers.clone(),
        );
    }
    let built = target_dir().join("x86_64-unknown-linux-gnu/release/wazuh-misp");
    check(
        std::fs::read(&bin).ok() == std::fs::read(&built).ok(),
        &format!("the packaged binary is {}", built.display()),
        || "the bytes differ".into(),
    );
    let out = run(Command::new(&bin).arg("--version"));
    check_eq(
        String::from_utf8_lossy(&out.stdout).trim(),
        &format!("wazuh-misp {VERSION}"),
        "wazuh-misp --version",
    );
    let man = run(Command::new("sh").arg("-c").arg(format!(
        "gzip -dc {}",
        dir.path()
            .join("usr/share/man/man1/wazuh-misp.1.gz")
            .display()
    )));
    let man = String::from_utf8_lossy(&man.stdout);
    check(
        man.contains(".TH wazuh-misp 1")
            && man.contains("custom\\-misp.json")
            && man.contains("install"),
        "the man page is generated from the CLI, with the FILES section",
        || man.to_string(),
    );
    let completions = [
        (
            "usr/share/bash-completion/completions/wazuh-misp",
            "wazuh-misp",
        ),
        (
            "usr/share/zsh/vendor-completions/_wazuh-misp",
            "#compdef wazuh-misp",
        ),
        (
            "usr/share/fish/vendor_completions.d/wazuh-misp.fish",
            "complete -c wazuh-misp",
        ),
    ];
    for (path, needle) in completions {
        let body = std::fs::read_to_string(dir.path().join(path)).unwrap_or_default();
        check(
            body.contains(needle) && body.contains("uninstall"),
            &format!("/{path} completes wazuh-misp's subcommands"),
            || body.chars().take(400).collect(),
        );
    }
}

// ------------------------------------------------------------------------------------------
// Checks on the installed state
// ------------------------------------------------------------------------------------------

fn conf() -> String {
    format!("{HOME}/etc/ossec.conf")
}
fn rules() -> String {
    format!("{HOME}/etc/rules/custom-misp_rules.xml")
}
fn integration() -> String {
    format!("{HOME}/integrations/custom-misp")
}
fn settings() -> String {
    format!("{HOME}/etc/custom-misp.json")
}
fn state_dir() -> String {
    format!("{HOME}/var/custom-misp")
}

fn check_installed(root: &Root, pm: &Pm, version: &str) {
    let found = pm.installed(root);
    check(
        found.as_deref() == Some(version),
        &format!("{} reports wazuh-misp {version} installed", pm.label()),
        || format!("found {found:?}"),
    );
}

fn check_not_installed(root: &Root, pm: &Pm) {
    let found = pm.installed(root);
    check(
        found.is_none(),
        &format!("{} no longer reports wazuh-misp installed", pm.label()),
        || format!("found {found:?}"),
    );
}

/// The packaged files are in the root (or, after removal, gone).
fn check_packaged_files(root: &Root, present: bool) {
    for p in [
        "/usr/bin/wazuh-misp",
        "/usr/share/man/man1/wazuh-misp.1.gz",
        "/usr/share/bash-completion/completions/wazuh-misp",
        "/usr/share/fish/vendor_completions.d/wazuh-misp.fish",
        "/usr/share/doc/wazuh-misp/README.md",
        "/usr/share/wazuh-misp/field-map.json",
    ] {
        if present {
            check_present(root, p, "shipped by the package");
        } else {
            check_absent(root, p);
        }
    }
    if present {
        check_meta(root, "/usr/bin/wazuh-misp", ("root", "root", 0o755));
        let bin = root.read("/usr/bin/wazuh-misp").unwrap();
        let built = std::fs::read(target_dir().join("x86_64-unknown-linux-gnu/release/wazuh-misp"))
            .unwrap();
        check(
            bin == built,
            "/usr/bin/wazuh-misp is the binary package.sh built",
            || "the bytes differ".into(),
        );
    }
}

/// Runs "$0" "$@" as user wazuh (or nobody). setpriv keeps its capabilities until its own
/// execve (so it could exec through a directory the user cannot search): let it exec a shell,
/// which then execs the program with the user's own rights only.
const AS_WAZUH: &str =
    r#"setpriv --reuid=wazuh --regid=wazuh --init-groups /bin/sh -c 'exec "$0" "$@"'"#;
const AS_NOBODY: &str =
    r#"setpriv --reuid=nobody --regid=nogroup --init-groups /bin/sh -c 'exec "$0" "$@"'"#;

/// The copy integratord runs: the packaged binary, root:wazuh 0750; user wazuh can execute it
/// but not write it (integratord refuses a file its user can write), `nobody` cannot execute it.
fn check_integration_copy(root: &Root) {
    let copy = integration();
    check_meta(root, &copy, ("root", "wazuh", 0o750));
    let bin = root.read("/usr/bin/wazuh-misp");
    check(
        root.read(&copy).is_some() && root.read(&copy) == bin,
        &format!("{copy} is /usr/bin/wazuh-misp, byte for byte"),
        || "the bytes differ".into(),
    );
    std::fs::write(
        root.path("/tmp/no-indicator.alert"),
        r#"{"timestamp":"2026-11-27T06:05:24.123+0000","rule":{"level":3,"id":"1002","description":"test","groups":["syslog"]},"agent":{"id":"000","name":"manager"},"id":"1764223524.1","location":"test","data":{}}"#.to_string() + "\n",
    )
    .unwrap();
    std::fs::set_permissions(
        root.path("/tmp/no-indicator.alert"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let as_wazuh = root.sh(&format!(
        "cd {HOME} && {AS_WAZUH} {copy} /tmp/no-indicator.alert '' '' '' '' 10 3 '> /dev/null 2>&1'; echo \"exit=$?\""
    ));
    let t = text(&as_wazuh);
    let code = t
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("exit="))
        .unwrap_or("?");
    check(
        code != "126" && code != "127" && !t.contains("Permission denied"),
        &format!("user wazuh can execute {copy} (it ran: exit {code})"),
        || t.clone(),
    );
    let writable = root.sh(&format!(
        "setpriv --reuid=wazuh --regid=wazuh --init-groups sh -c 'test -w {copy}' && echo writable || echo read-only"
    ));
    check(
        text(&writable).trim() == "read-only",
        &format!("user wazuh cannot write {copy} (integratord would refuse to run it)"),
        || text(&writable),
    );
    let as_nobody = root.sh(&format!(
        "{AS_NOBODY} {copy} /tmp/no-indicator.alert; echo \"exit=$?\""
    ));
    let t = text(&as_nobody);
    check(
        t.contains("exit=126") && t.contains("Permission denied"),
        &format!("user nobody cannot execute {copy}"),
        || t.clone(),
    );
}

fn check_state_dir(root: &Root) {
    check_meta(root, &state_dir(), ("root", "wazuh", 0o770));
}

/// The configured state: ossec.conf is the stock file with exactly one block inserted, same
/// owner and mode; the rules file is there with local_rules.xml's owner and mode; the settings
/// are kept. Returns the configured ossec.conf.
fn check_configured(root: &Root, stock: &[u8], stock_meta: Meta, local_rules: &[u8]) -> Vec<u8> {
    let now = root.read(&conf()).unwrap();
    let prefix = stock.iter().zip(&now).take_while(|(a, b)| a == b).count();
    let suffix = stock
        .iter()
        .rev()
        .zip(now.iter().rev())
        .take_while(|(a, b)| a == b)
        .count()
        .min(stock.len() - prefix);
    let inserted = String::from_utf8_lossy(&now[prefix..now.len() - suffix]).into_owned();
    check(
        prefix + suffix == stock.len() && now.len() > stock.len(),
        "ossec.conf is the stock file with one inserted piece and nothing else changed",
        || diff(stock, &now),
    );
    for needle in [
        "wazuh-misp: managed block",
        "<name>custom-misp</name>",
        "<level>5</level>",
        "<alert_format>json</alert_format>",
        "wazuh-misp: end of managed block",
    ] {
        check(
            inserted.contains(needle),
            &format!("the inserted block has {needle}"),
            || inserted.clone(),
        );
    }
    check(
        count(&now, b"<ossec_config>") == count(stock, b"<ossec_config>"),
        "ossec.conf keeps its <ossec_config> roots",
        || diff(stock, &now),
    );
    check_meta(root, &conf(), stock_meta.as_tuple());
    let local_meta = root
        .meta(&format!("{HOME}/etc/rules/local_rules.xml"))
        .unwrap();
    check_meta(root, &rules(), local_meta.as_tuple());
    let rules_text = String::from_utf8_lossy(&root.read(&rules()).unwrap_or_default()).into_owned();
    check(
        rules_text.contains("<group name=\"misp,\">") && rules_text.contains("117100"),
        "the rules file holds the MISP rules (ids from 117100)",
        || rules_text.chars().take(600).collect(),
    );
    check_bytes(
        root,
        &format!("{HOME}/etc/rules/local_rules.xml"),
        local_rules,
        "local_rules.xml is untouched",
    );
    check_bytes(
        root,
        &settings(),
        SETTINGS.as_bytes(),
        "the settings are kept as written",
    );
    check_meta(root, &settings(), ("root", "wazuh", 0o640));
    check_integration_copy(root);
    check_state_dir(root);
    now
}

fn check_backup_of(root: &Root, stock: &[u8]) {
    let backups = root.backups();
    check(
        backups
            .iter()
            .any(|b| std::fs::read(b).ok().as_deref() == Some(stock)),
        "a backup ossec.conf.wazuh-misp-*.bak holds the stock file",
        || format!("backups: {backups:?}"),
    );
}

fn check_restarts(root: &Root, expected: usize, what: &str) {
    let calls = root.calls();
    let restarts = calls
        .lines()
        .filter(|l| l.starts_with("wazuh-control restart") || l.starts_with("wazuh-control reload"))
        .count();
    check(restarts == expected, what, || {
        format!("{restarts} restart(s); calls:\n{calls}")
    });
}

fn check_meta(root: &Root, rel: &str, (user, group, mode): (&str, &str, u32)) {
    let found = root.meta(rel);
    check(
        found
            .as_ref()
            .is_some_and(|m| m.user == user && m.group == group && m.mode == mode),
        &format!("{rel} is {user}:{group} {mode:04o}"),
        || match &found {
            Some(m) => format!("found {}:{} {:04o}", m.user, m.group, m.mode),
            None => "it does not exist".into(),
        },
    );
}

fn check_bytes(root: &Root, rel: &str, expected: &[u8], what: &str) {
    let found = root.read(rel);
    check(
        found.as_deref() == Some(expected),
        &format!("{what} ({rel})"),
        || match &found {
            Some(f) => format!("diff expected -> found:\n{}", diff(expected, f)),
            None => "it does not exist".into(),
        },
    );
}

fn check_present(root: &Root, rel: &str, what: &str) {
    check(
        root.path(rel).symlink_metadata().is_ok(),
        &format!("{rel} exists: {what}"),
        || "it does not".into(),
    );
}

fn check_absent(root: &Root, rel: &str) {
    check(
        root.path(rel).symlink_metadata().is_err(),
        &format!("{rel} does not exist"),
        || "it does".into(),
    );
}

// ------------------------------------------------------------------------------------------
// Package managers
// ------------------------------------------------------------------------------------------

enum Pm {
    Deb,
    Rpm,
}

impl Pm {
    fn label(&self) -> &'static str {
        match self {
            Pm::Deb => "deb",
            Pm::Rpm => "rpm",
        }
    }

    fn version(&self, release: u32) -> String {
        format!("{}-{release}", upstream_version())
    }

    /// Installs a package file (ours or a stand-in) with dependency checks.
    fn install_file(&self, root: &Root, pkg: &Path) -> Output {
        match self {
            Pm::Deb => {
                let inside = root.copy_in(pkg);
                root.sh(&format!("dpkg -i {inside}"))
            }
            Pm::Rpm => root.rpm(&["-i", pkg.to_str().unwrap()]),
        }
    }

    fn install(&self, root: &Root, pkg: &Path) -> Output {
        self.install_file(root, pkg)
    }

    /// The same version again: dpkg runs prerm upgrade + postinst configure; rpm installs the
    /// new instance, then runs the old one's %preun/%postun with $1 = 1.
    fn reinstall(&self, root: &Root, pkg: &Path) -> Output {
        match self {
            Pm::Deb => self.install_file(root, pkg),
            Pm::Rpm => root.rpm(&["-U", "--replacepkgs", pkg.to_str().unwrap()]),
        }
    }

    fn upgrade(&self, root: &Root, pkg: &Path) -> Output {
        match self {
            Pm::Deb => self.install_file(root, pkg),
            Pm::Rpm => root.rpm(&["-U", pkg.to_str().unwrap()]),
        }
    }

    fn remove(&self, root: &Root) -> Output {
        self.remove_named(root, "wazuh-misp")
    }

    fn remove_named(&self, root: &Root, name: &str) -> Output {
        match self {
            Pm::Deb => root.sh(&format!("dpkg -r {name}")),
            Pm::Rpm => root.rpm(&["-e", name]),
        }
    }

    fn purge(&self, root: &Root) -> Output {
        root.sh("dpkg -P wazuh-misp")
    }

    /// After a refused install: dpkg leaves the package unpacked and unconfigured; rpm leaves
    /// nothing.
    fn cleanup_refused(&self, root: &Root) {
        if let Pm::Deb = self {
            expect_success(&self.purge(root), "purging the unconfigured package");
        }
        check_not_installed(root, self);
    }

    fn installed(&self, root: &Root) -> Option<String> {
        match self {
            Pm::Deb => {
                let out = root.sh("dpkg-query -W -f='${Status} ${Version}' wazuh-misp");
                String::from_utf8_lossy(&out.stdout)
                    .strip_prefix("install ok installed ")
                    .map(str::to_string)
            }
            Pm::Rpm => {
                let out = root.rpm(&["-q", "--qf", "%{VERSION}-%{RELEASE}", "wazuh-misp"]);
                out.status
                    .success()
                    .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
            }
        }
    }
}

fn expect_refused(pm: &Pm, out: &Output, deb_dep: &str, rpm_dep: &str) {
    let t = text(out);
    let needle = match pm {
        Pm::Deb => format!("depends on {deb_dep}"),
        Pm::Rpm => format!("{rpm_dep} is needed by wazuh-misp"),
    };
    check(
        !out.status.success() && t.contains(&needle),
        &format!("{} refuses the package: \"{needle}\"", pm.label()),
        || t.clone(),
    );
}

// ------------------------------------------------------------------------------------------
// The throwaway Debian root
// ------------------------------------------------------------------------------------------

struct Root {
    dir: tempfile::TempDir,
}

/// `WAZUH_MISP_TEST_KEEP_ROOT=1` keeps the root of a failed test for a look inside.
impl Drop for Root {
    fn drop(&mut self) {
        if std::thread::panicking() && std::env::var_os("WAZUH_MISP_TEST_KEEP_ROOT").is_some() {
            let kept = std::mem::replace(&mut self.dir, tempdir("discard-")).keep();
            eprintln!("kept the root of the failed test: {}", kept.display());
        }
    }
}

#[derive(Clone, Debug)]
struct Meta {
    user: String,
    group: String,
    mode: u32,
}

impl Meta {
    fn as_tuple(&self) -> (&str, &str, u32) {
        (&self.user, &self.group, self.mode)
    }
}

impl Root {
    fn new(label: &str) -> Root {
        let tarball = rootfs_tarball();
        step(&format!(
            "{label}: a fresh Debian {SUITE} root from {}",
            tarball.display()
        ));
        let dir = tempdir(&format!("root-{label}-"));
        let out = run(Command::new("sh").arg("-c").arg(format!(
            "zstd -q -dc '{}' | tar --numeric-owner -xpf - -C '{}'",
            tarball.display(),
            dir.path().display()
        )));
        expect_success(&out, "extracting the root");
        let root = Root { dir };
        verify_root(root.dir.path()).unwrap_or_else(|e| panic!("the extracted root: {e}"));
        let policy = root.path("/usr/sbin/policy-rc.d");
        std::fs::write(
            &policy,
            "#!/bin/sh\n# tests/packages.rs: never start a service here\nexit 101\n",
        )
        .unwrap();
        std::fs::set_permissions(&policy, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir_all(root.path("/tmp/pkgs")).unwrap();
        root
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel.trim_start_matches('/'))
    }

    fn read(&self, rel: &str) -> Option<Vec<u8>> {
        std::fs::read(self.path(rel)).ok()
    }

    fn copy_in(&self, pkg: &Path) -> String {
        let inside = format!("/tmp/pkgs/{}", file_name(pkg));
        std::fs::copy(pkg, self.path(&inside)).unwrap();
        inside
    }

    /// Runs a shell script inside the root, in its own mount and pid namespaces.
    fn sh(&self, script: &str) -> Output {
        let root = self.dir.path();
        let mut cmd = Command::new("timeout");
        cmd.args([
            "--kill-after=10",
            "600",
            "unshare",
            "--mount",
            "--pid",
            "--fork",
        ])
        .arg(format!("--mount-proc={}", root.join("proc").display()))
        .arg("chroot")
        .arg(root)
        .args(["/bin/sh", "-c", script]);
        clean_env(&mut cmd);
        let out = run(&mut cmd);
        log_command(&format!("[root] {script}"), &out);
        out
    }

    /// Runs the host's rpm on the root (scriptlets run chrooted in it, with /proc mounted).
    fn rpm(&self, args: &[&str]) -> Output {
        let root = self.dir.path();
        let mut cmd = Command::new("timeout");
        cmd.args([
            "--kill-after=10",
            "600",
            "unshare",
            "--mount",
            "--pid",
            "--fork",
        ])
        .arg(format!("--mount-proc={}", root.join("proc").display()))
        .arg("rpm")
        .args(if matches!(args.first(), Some(&("-i" | "-U" | "-e"))) {
            debian_rpm_flag()
        } else {
            &[]
        })
        .arg("--root")
        .arg(root)
        .args(["--dbpath", "/var/lib/rpm"])
        .args(args);
        clean_env(&mut cmd);
        let out = run(&mut cmd);
        log_command(&format!("rpm --root ROOT {}", args.join(" ")), &out);
        out
    }

    fn id_of(&self, file: &str, name: &str) -> Option<u32> {
        let text = std::fs::read_to_string(self.path(file)).ok()?;
        text.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&name))
                .then(|| f.get(2)?.parse().ok())
                .flatten()
        })
    }

    fn name_of(&self, file: &str, id: u32) -> String {
        std::fs::read_to_string(self.path(file))
            .unwrap_or_default()
            .lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.get(2) == Some(&id.to_string().as_str())).then(|| f[0].to_string())
            })
            .unwrap_or_else(|| id.to_string())
    }

    fn meta(&self, rel: &str) -> Option<Meta> {
        let m = std::fs::symlink_metadata(self.path(rel)).ok()?;
        Some(Meta {
            user: self.name_of("/etc/passwd", m.uid()),
            group: self.name_of("/etc/group", m.gid()),
            mode: m.mode() & 0o7777,
        })
    }

    fn write_settings(&self, mode: u32) {
        let p = self.path(&settings());
        std::fs::write(&p, SETTINGS).unwrap();
        let gid = self
            .id_of("/etc/group", "wazuh")
            .expect("group wazuh in the root");
        std::os::unix::fs::chown(&p, Some(0), Some(gid)).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        println!("    (wrote {} root:wazuh {mode:04o})", settings());
    }

    fn steer(&self, flag: &str, on: bool) {
        let p = self.path(&format!("{HOME}/stand-in/{flag}"));
        if on {
            std::fs::write(&p, "").unwrap();
        } else {
            let _ = std::fs::remove_file(&p);
        }
        println!(
            "    (stand-in manager: {flag} {})",
            if on { "on" } else { "off" }
        );
    }

    fn calls(&self) -> String {
        std::fs::read_to_string(self.path(&format!("{HOME}/stand-in/calls.log")))
            .unwrap_or_default()
    }

    fn clear_calls(&self) {
        let _ = std::fs::write(self.path(&format!("{HOME}/stand-in/calls.log")), "");
    }

    fn backups(&self) -> Vec<PathBuf> {
        let Ok(dir) = std::fs::read_dir(self.path(&format!("{HOME}/etc"))) else {
            return Vec::new();
        };
        let mut found: Vec<PathBuf> = dir
            .filter_map(|e| e.ok())
            .filter(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.starts_with("ossec.conf.wazuh-misp-") && n.ends_with(".bak")
            })
            .map(|e| e.path())
            .collect();
        found.sort();
        found
    }
}

/// Debian's rpm warns that rpm should not install packages on Debian (use alien) unless told
/// `--force-debian`; other builds of rpm do not know the flag.
fn debian_rpm_flag() -> &'static [&'static str] {
    static FLAG: OnceLock<bool> = OnceLock::new();
    let debian = *FLAG.get_or_init(|| {
        let out = run(Command::new("rpm").arg("--help"));
        String::from_utf8_lossy(&out.stdout).contains("--force-debian")
    });
    if debian {
        &["--force-debian"]
    } else {
        &[]
    }
}

fn clean_env(cmd: &mut Command) {
    cmd.env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("LANG", "C")
        .env("HOME", "/root")
        .env("DEBIAN_FRONTEND", "noninteractive");
}

static ROOTFS: OnceLock<Result<PathBuf, String>> = OnceLock::new();

fn rootfs_tarball() -> &'static Path {
    match ROOTFS.get_or_init(make_rootfs) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

/// The cached minbase tarball for today, verified, or a new one.
fn make_rootfs() -> Result<PathBuf, String> {
    let cache = std::env::var_os("WAZUH_MISP_TEST_ROOTFS_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("packages-test/cache"));
    std::fs::create_dir_all(&cache).map_err(|e| format!("{}: {e}", cache.display()))?;
    let day = cmd_ok(Command::new("date").args(["-u", "+%Y%m%d"]), "date");
    let prefix = format!("debian-{SUITE}-amd64-minbase-{ROOTFS_RECIPE}-");
    let tarball = cache.join(format!("{prefix}{}.tar.zst", day.trim()));
    let sidecar = PathBuf::from(format!("{}.sha256", tarball.display()));
    if tarball.exists() {
        let want = std::fs::read_to_string(&sidecar).unwrap_or_default();
        let have = sha256(&tarball)?;
        if want.trim() == have {
            println!(
                "using the cached Debian root {} (sha256 verified)",
                tarball.display()
            );
            return Ok(tarball);
        }
        println!(
            "the cached {} does not verify; making it again",
            tarball.display()
        );
    }
    for entry in std::fs::read_dir(&cache).map_err(|e| e.to_string())? {
        let entry = entry.map_err(|e| e.to_string())?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("debian-") {
            let _ = std::fs::remove_file(entry.path());
        } else if name.starts_with("build-") {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let mirror = std::env::var("WAZUH_MISP_TEST_DEBIAN_MIRROR")
        .unwrap_or_else(|_| "http://deb.debian.org/debian".into());
    let build = cache.join(format!("build-{}", std::process::id()));
    let t = Instant::now();
    println!("debootstrap --variant=minbase {SUITE} from {mirror} (about 25 s) …");
    let mut last = String::new();
    for attempt in 1..=2 {
        let _ = std::fs::remove_dir_all(&build);
        let out = run(Command::new("debootstrap")
            .args(["--variant=minbase", "--components=main", SUITE])
            .arg(&build)
            .arg(&mirror));
        if out.status.success() {
            last.clear();
            break;
        }
        last = format!(
            "debootstrap failed (attempt {attempt}): {}",
            tail(&text(&out), 30)
        );
        println!("{last}");
    }
    if !last.is_empty() {
        let _ = std::fs::remove_dir_all(&build);
        return Err(last);
    }
    // The downloaded .debs and apt lists are not needed in the root.
    let _ = run(Command::new("sh").arg("-c").arg(format!(
        "rm -f '{0}'/var/cache/apt/archives/*.deb; rm -rf '{0}'/var/lib/apt/lists/*",
        build.display()
    )));
    verify_root(&build)?;
    let partial = cache.join(format!("partial-{}.tar.zst", std::process::id()));
    let out = run(Command::new("sh").arg("-c").arg(format!(
        "tar --numeric-owner -C '{}' -cf - . | zstd -q -T0 -3 -f -o '{}'",
        build.display(),
        partial.display()
    )));
    let _ = std::fs::remove_dir_all(&build);
    if !out.status.success() {
        let _ = std::fs::remove_file(&partial);
        return Err(format!("packing the root: {}", text(&out)));
    }
    let sum = sha256(&partial)?;
    std::fs::rename(&partial, &tarball).map_err(|e| e.to_string())?;
    std::fs::write(&sidecar, format!("{sum}\n")).map_err(|e| e.to_string())?;
    println!(
        "made {} in {:.0} s",
        tarball.display(),
        t.elapsed().as_secs_f64()
    );
    Ok(tarball)
}

/// A usable Debian 12 root: dpkg, a shell, setpriv, the users we need.
fn verify_root(root: &Path) -> Result<(), String> {
    let version = std::fs::read_to_string(root.join("etc/debian_version")).unwrap_or_default();
    if !version.starts_with("12") {
        return Err(format!("etc/debian_version is {version:?}, not 12.x"));
    }
    for f in [
        "usr/bin/dpkg",
        "bin/sh",
        "usr/bin/setpriv",
        "usr/sbin/useradd",
        "dev/null",
    ] {
        if root.join(f).symlink_metadata().is_err() {
            return Err(format!("{f} is missing"));
        }
    }
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap_or_default();
    if !passwd.lines().any(|l| l.starts_with("nobody:")) {
        return Err("no user nobody".into());
    }
    Ok(())
}

fn sha256(path: &Path) -> Result<String, String> {
    let out = run(Command::new("sha256sum").arg(path));
    if !out.status.success() {
        return Err(format!("sha256sum {}: {}", path.display(), text(&out)));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string())
}

// ------------------------------------------------------------------------------------------
// Building our packages (once per test process) and the stand-ins
// ------------------------------------------------------------------------------------------

struct Built {
    deb1: PathBuf,
    rpm1: PathBuf,
    deb2: PathBuf,
    rpm2: PathBuf,
}

static BUILT: OnceLock<Result<Built, String>> = OnceLock::new();

fn built() -> &'static Built {
    match BUILT.get_or_init(build_packages) {
        Ok(b) => b,
        Err(e) => panic!("{e}"),
    }
}

/// The packages, built (CPU) while debootstrap (network) prepares the root tarball.
fn built_while_preparing_the_root() -> &'static Built {
    let rootfs = std::thread::spawn(|| {
        rootfs_tarball();
    });
    let built = built();
    if let Err(panic) = rootfs.join() {
        std::panic::resume_unwind(panic);
    }
    built
}

fn build_packages() -> Result<Built, String> {
    let t = Instant::now();
    println!("scripts/package.sh (release 1, into target/packages) …");
    let (deb1, rpm1) = package_sh(None)?;
    println!("  built in {:.0} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    println!("WAZUH_MISP_PKG_RELEASE=2 scripts/package.sh (the upgrade) …");
    let (deb2, rpm2) = package_sh(Some(2))?;
    println!("  built in {:.0} s", t.elapsed().as_secs_f64());
    Ok(Built {
        deb1,
        rpm1,
        deb2,
        rpm2,
    })
}

fn package_sh(release: Option<u32>) -> Result<(PathBuf, PathBuf), String> {
    let mut cmd = Command::new("bash");
    cmd.arg(Path::new(REPO).join("scripts/package.sh"))
        .current_dir(REPO)
        .env_remove("WAZUH_MISP_PKG_RELEASE")
        .env_remove("WAZUH_MISP_PACKAGES_DIR");
    if let Some(r) = release {
        cmd.env("WAZUH_MISP_PKG_RELEASE", r.to_string()).env(
            "WAZUH_MISP_PACKAGES_DIR",
            target_dir().join(format!("packages-test/release-{r}")),
        );
    }
    let out = run(&mut cmd);
    let t = text(&out);
    if !out.status.success() {
        return Err(format!("scripts/package.sh failed:\n{}", tail(&t, 60)));
    }
    let built: Vec<PathBuf> = t
        .lines()
        .filter_map(|l| l.strip_prefix("built: "))
        .map(PathBuf::from)
        .collect();
    let find = |ext: &str| {
        built
            .iter()
            .find(|p| p.extension().is_some_and(|e| e == ext))
            .cloned()
            .ok_or_else(|| {
                format!(
                    "scripts/package.sh printed no `built: ….{ext}` line:\n{}",
                    tail(&t, 30)
                )
            })
    };
    let (deb, rpm) = (find("deb")?, find("rpm")?);
    let release = release.unwrap_or(1);
    let want_deb = format!("wazuh-misp_{}-{release}_amd64.deb", upstream_version());
    let want_rpm = format!("wazuh-misp-{}-{release}.x86_64.rpm", upstream_version());
    if file_name(&deb) != want_deb || file_name(&rpm) != want_rpm {
        return Err(format!(
            "package names: expected {want_deb} and {want_rpm}, got {} and {}",
            file_name(&deb),
            file_name(&rpm)
        ));
    }
    Ok((deb, rpm))
}

/// The stand-in Wazuh programs: every call is logged; `stand-in/running` and `stand-in/reject`
/// steer status and the `-t` checks.
const STAND_IN: &str = r#"#!/bin/sh
# Stand-in for a Wazuh 4.x program (tests/packages.rs).
dir=/var/ossec/stand-in
name=$(basename "$0")
echo "$name $*" >> "$dir/calls.log"
case "$name $1" in
  "wazuh-control info")
    echo 'WAZUH_VERSION="v@VERSION@"'
    echo 'WAZUH_REVISION="40921"'
    echo 'WAZUH_TYPE="server"'
    exit 0 ;;
  "wazuh-control status")
    if [ -e "$dir/running" ]; then echo "wazuh-analysisd is running..."; else echo "wazuh-analysisd not running..."; fi
    exit 0 ;;
  "wazuh-control "*)
    exit 0 ;;
esac
if [ "$1" = "-t" ]; then
  if [ -e "$dir/reject" ]; then
    echo "2026/11/27 07:00:00 $name: CRITICAL: (1202): Configuration error at 'etc/ossec.conf'."
    exit 1
  fi
  exit 0
fi
exit 0
"#;

/// What the stand-in manager's postinst / %post does, as Wazuh's own packages do: the wazuh
/// user and group, then owners and modes of the packaged tree (4.3+ layout).
const MANAGER_SETUP: &str = r#"set -e
getent group wazuh >/dev/null || groupadd --system wazuh
getent passwd wazuh >/dev/null || useradd --system --gid wazuh --home-dir /var/ossec --no-create-home --shell /usr/sbin/nologin wazuh
H=/var/ossec
chown root:wazuh $H $H/etc $H/etc/rules $H/etc/ossec.conf $H/integrations $H/integrations/virustotal $H/queue $H/queue/sockets $H/var $H/var/run $H/ruleset $H/ruleset/rules
chmod 0750 $H $H/integrations $H/integrations/virustotal $H/ruleset $H/ruleset/rules
chmod 0770 $H/etc $H/etc/rules $H/queue $H/queue/sockets $H/var $H/var/run
chmod 0660 $H/etc/ossec.conf
chown wazuh:wazuh $H/etc/rules/local_rules.xml $H/logs $H/logs/alerts
chmod 0660 $H/etc/rules/local_rules.xml
chmod 0770 $H/logs $H/logs/alerts
chown root:root $H/bin $H/bin/* $H/stand-in
chmod 0750 $H/bin $H/bin/*
chmod 0700 $H/stand-in
"#;

/// Two `<ossec_config>` roots, as the packaged file has.
const FALLBACK_STOCK: &str = "<ossec_config>\n  <global>\n    <jsonout_output>yes</jsonout_output>\n  </global>\n\n  <ruleset>\n    <decoder_dir>ruleset/decoders</decoder_dir>\n    <rule_dir>ruleset/rules</rule_dir>\n    <rule_dir>etc/rules</rule_dir>\n  </ruleset>\n</ossec_config>\n\n<ossec_config>\n  <localfile>\n    <log_format>syslog</log_format>\n    <location>/var/ossec/logs/active-responses.log</location>\n  </localfile>\n</ossec_config>\n";

fn stock_conf() -> Vec<u8> {
    std::fs::read(Path::new(REPO).join("tests/fixtures/ossec/stock.conf"))
        .unwrap_or_else(|_| FALLBACK_STOCK.as_bytes().to_vec())
}

/// The stand-in manager's files (a 4.x manager's layout), under `stage`; its maintainer script
/// gives them their owners and modes.
fn stage_manager_tree(stage: &Path, version: &str) {
    HomeBuilder::new()
        .manager_layout()
        .dir("stand-in", Perm::AsCreated)
        .ossec_conf(stock_conf())
        .stock_rules()
        .file(
            "integrations/virustotal",
            "#!/bin/sh\n# stand-in\nexit 0\n",
            Perm::AsCreated,
        )
        .stand_ins(&STAND_IN.replace("@VERSION@", version))
        .file("stand-in/calls.log", "", Perm::AsCreated)
        .without_owners()
        .build_at(&stage.join("var/ossec"));
}

fn stand_in_manager_deb(work: &Path, version: &str) -> PathBuf {
    let stage = work.join(format!("wazuh-manager-{version}"));
    std::fs::create_dir_all(stage.join("DEBIAN")).unwrap();
    // A Wazuh 5 stand-in needs no files: dpkg must refuse our package before anything runs.
    let v4 = version.starts_with('4');
    if v4 {
        stage_manager_tree(&stage, version);
        let postinst = stage.join("DEBIAN/postinst");
        std::fs::write(&postinst, format!("#!/bin/sh\n{MANAGER_SETUP}")).unwrap();
        std::fs::set_permissions(&postinst, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::write(
        stage.join("DEBIAN/control"),
        format!(
            "Package: wazuh-manager\nVersion: {version}-1\nArchitecture: amd64\nMaintainer: tests <tests@example.org>\nDepends: passwd\nDescription: stand-in Wazuh manager for tests/packages.rs\n A /var/ossec tree and shell stand-ins for the Wazuh programs.\n"
        ),
    )
    .unwrap();
    let deb = work.join(format!("wazuh-manager_{version}-1_amd64.deb"));
    cmd_ok(
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zgzip", "--build"])
            .arg(&stage)
            .arg(&deb),
        "dpkg-deb --build (stand-in manager)",
    );
    deb
}

fn rpmbuild(work: &Path, name: &str, spec: &str) -> PathBuf {
    let spec_path = work.join(format!("{name}.spec"));
    std::fs::write(&spec_path, spec).unwrap();
    let out_dir = work.join(format!("rpms-{name}"));
    cmd_ok(
        Command::new("rpmbuild")
            .args(["-bb", "--quiet"])
            .arg(&spec_path)
            .arg("--define")
            .arg(format!(
                "_topdir {}",
                work.join(format!("rpmbuild-{name}")).display()
            ))
            .arg("--define")
            .arg(format!("_rpmdir {}", out_dir.display()))
            .arg("--define")
            .arg("_rpmfilename %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm"),
        "rpmbuild (stand-in)",
    );
    let mut found: Vec<PathBuf> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(found.len(), 1, "rpmbuild made {found:?}");
    found.pop().unwrap()
}

const STAND_IN_SPEC_HEAD: &str = "%global debug_package %{nil}\n%global __os_install_post %{nil}\n%global _build_id_links none\n%global _binary_payload w6.xzdio\n";

fn stand_in_manager_rpm(work: &Path, version: &str) -> PathBuf {
    let stage = work.join(format!("wazuh-manager-{version}"));
    let v4 = version.starts_with('4');
    let (install, post, files) = if v4 {
        stage_manager_tree(&stage, version);
        (
            format!("cp -a {}/. %{{buildroot}}/", stage.display()),
            format!("%post\n{MANAGER_SETUP}"),
            "/var/ossec".to_string(),
        )
    } else {
        (String::new(), String::new(), String::new())
    };
    let spec = format!(
        "{STAND_IN_SPEC_HEAD}Name: wazuh-manager\nVersion: {version}\nRelease: 1\nSummary: stand-in Wazuh manager\nLicense: GPL-2.0-only\nBuildArch: x86_64\n\n%description\nstand-in Wazuh manager for tests/packages.rs\n\n%install\n{install}\n\n{post}\n\n%files\n%defattr(-,root,root,-)\n{files}\n"
    );
    rpmbuild(work, &format!("wazuh-manager-{version}"), &spec)
}

/// What glibc 2.17 (CentOS 7) provides: every symbol version up to GLIBC_2.17 of its
/// libraries, and /bin/sh (bash provides it there; the Debian root has its own).
fn stand_in_glibc_rpm(work: &Path) -> PathBuf {
    let versions = [
        "2.2.5", "2.2.6", "2.3", "2.3.2", "2.3.3", "2.3.4", "2.4", "2.5", "2.6", "2.7", "2.8",
        "2.9", "2.10", "2.11", "2.12", "2.13", "2.14", "2.15", "2.16", "2.17",
    ];
    let mut provides = vec!["/bin/sh".to_string(), "rtld(GNU_HASH)".to_string()];
    for lib in [
        "libc.so.6",
        "libpthread.so.0",
        "libdl.so.2",
        "librt.so.1",
        "libm.so.6",
        "libutil.so.1",
        "ld-linux-x86-64.so.2",
    ] {
        provides.push(format!("{lib}()(64bit)"));
        for v in versions {
            provides.push(format!("{lib}(GLIBC_{v})(64bit)"));
        }
    }
    let provides: String = provides
        .iter()
        .map(|p| format!("Provides: {p}\n"))
        .collect();
    let spec = format!(
        "{STAND_IN_SPEC_HEAD}Name: glibc\nVersion: 2.17\nRelease: 326.el7_9\nSummary: stand-in glibc 2.17\nLicense: LGPL-2.1-or-later\nBuildArch: x86_64\n{provides}\n%description\nWhat CentOS 7's glibc provides, for tests/packages.rs.\n\n%files\n"
    );
    rpmbuild(work, "glibc", &spec)
}

// ------------------------------------------------------------------------------------------
// Small helpers
// ------------------------------------------------------------------------------------------

/// Root and the tools, or a reason to skip (outside CI only).
fn ready() -> bool {
    if !nix::unistd::geteuid().is_root() {
        if std::env::var_os("CI").is_some() {
            panic!(
                "the package tests need root (chroot, unshare, chown); CI must run them as root"
            );
        }
        eprintln!("tests/packages.rs: SKIPPED, they need root (chroot, unshare, chown): run `sudo -E cargo test --test packages`");
        return false;
    }
    let missing: Vec<&str> = [
        "debootstrap",
        "dpkg-deb",
        "rpmbuild",
        "rpm",
        "lintian",
        "rpmlint",
        "unshare",
        "chroot",
        "zstd",
        "sha256sum",
        "objdump",
        "timeout",
    ]
    .into_iter()
    .filter(|t| !on_path(t))
    .collect();
    assert!(
        missing.is_empty(),
        "missing tools for the package tests: {missing:?}; run scripts/ci-deps.sh (as root)"
    );
    true
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
}

fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn tempdir(prefix: &str) -> tempfile::TempDir {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&base).unwrap();
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(base)
        .unwrap()
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Runs and returns stdout; panics with the output when it fails.
fn cmd_ok(cmd: &mut Command, what: &str) -> String {
    let out = run(cmd);
    if !out.status.success() {
        panic!("{what} failed ({:?}):\n{}", out.status, text(&out));
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn expect_success(out: &Output, what: &str) {
    check(out.status.success(), &format!("{what}: exit 0"), || {
        format!("{:?}\n{}", out.status, text(out))
    });
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn text_lines(o: &Output) -> Vec<&str> {
    std::str::from_utf8(&o.stdout)
        .unwrap_or("")
        .lines()
        .chain(std::str::from_utf8(&o.stderr).unwrap_or("").lines())
        .collect()
}

fn log_command(what: &str, out: &Output) {
    println!("  $ {what}  -> {}", out.status);
    let t = text(out);
    if !t.trim().is_empty() {
        println!("{}", indent(&t));
    }
}

fn indent(t: &str) -> String {
    t.lines()
        .map(|l| format!("      | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn tail(t: &str, n: usize) -> String {
    let lines: Vec<&str> = t.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn step(what: &str) {
    println!("== {what}");
}

/// One check: prints it when it holds, panics with exactly what differed when not.
fn check(ok: bool, what: &str, detail: impl FnOnce() -> String) {
    if ok {
        println!("    ok: {what}");
    } else {
        panic!("FAILED: {what}\n{}", detail());
    }
}

fn check_eq(found: &str, expected: &str, what: &str) {
    check(
        found == expected,
        &format!("{what} is {expected:?}"),
        || format!("found {found:?}"),
    );
}

fn diff(a: &[u8], b: &[u8]) -> String {
    let (a, b) = (String::from_utf8_lossy(a), String::from_utf8_lossy(b));
    similar::TextDiff::from_lines(a.as_ref(), b.as_ref())
        .unified_diff()
        .context_radius(2)
        .header("expected", "found")
        .to_string()
}

fn count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

fn file_name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// `rwxr-xr-x` to 0o755 (no special bits expected in our packages).
fn perms_to_mode(p: &str) -> u32 {
    p.chars()
        .take(9)
        .enumerate()
        .filter(|(_, c)| *c != '-')
        .map(|(i, _)| 1 << (8 - i))
        .sum()
}

/// Compares dotted versions numerically (2.9 < 2.17).
fn version_le(a: &str, b: &str) -> bool {
    let parse = |v: &str| -> Vec<u32> { v.split('.').map(|x| x.parse().unwrap_or(0)).collect() };
    parse(a) <= parse(b)
}
