//! Throw-away Wazuh homes for the tests, built in one place: the packaged 4.x layout (or the part
//! of it a run of the integration needs), ossec.conf, stock-like rules, the built binary as
//! `integrations/custom-misp`, stand-in `bin/wazuh-*` programs, analysisd's queue socket, the
//! state directory, the settings file, daemons' pid files, and the owners and modes a packaged
//! manager gives them (root:wazuh, when the tests run as root and the group exists).

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

/// A 4.x manager's directories that the tests use.
pub const MANAGER_DIRS: &[&str] = &[
    "etc/rules",
    "ruleset/rules",
    "integrations",
    "bin",
    "logs/alerts",
    "queue/sockets",
    "var/run",
];
/// What one run of the integration needs.
pub const RUNTIME_DIRS: &[&str] = &["etc", "logs/alerts", "queue/sockets", "integrations", "var"];

pub const LOCAL_RULES: &str = r#"<!-- Local rules -->
<group name="local,syslog,sshd,">
  <rule id="100001" level="5">
    <if_sid>5716</if_sid>
    <srcip>1.1.1.1</srcip>
    <description>sshd: authentication failed from IP 1.1.1.1.</description>
    <group>authentication_failed,pci_dss_10.2.4,pci_dss_10.2.5,</group>
  </rule>
</group>
"#;

pub const SSHD_RULES: &str = r#"<group name="syslog,sshd,">
  <rule id="5700" level="0" noalert="1">
    <decoded_as>sshd</decoded_as>
    <description>SSHD messages grouped.</description>
  </rule>
  <rule id="5710" level="5">
    <if_sid>5700</if_sid>
    <match>illegal user|invalid user</match>
    <description>sshd: Attempt to login using a non-existent user</description>
    <group>invalid_login,authentication_failed,</group>
  </rule>
  <rule id="5716" level="5">
    <if_sid>5700</if_sid>
    <match>^Failed|^error: PAM: Authentication</match>
    <description>sshd: authentication failed.</description>
    <group>authentication_failed,</group>
  </rule>
</group>
"#;

/// The Wazuh programs the stand-ins play.
const STAND_IN_NAMES: [&str; 4] = [
    "wazuh-control",
    "wazuh-integratord",
    "wazuh-analysisd",
    "wazuh-modulesd",
];

pub fn wazuh_gid() -> Option<u32> {
    nix::unistd::Group::from_name("wazuh")
        .ok()
        .flatten()
        .map(|g| g.gid.as_raw())
}

pub fn wazuh_uid() -> Option<u32> {
    nix::unistd::User::from_name("wazuh")
        .ok()
        .flatten()
        .map(|u| u.uid.as_raw())
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

pub fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Owner root and group wazuh, when we can give them (root, and the group exists).
pub fn chown_root_wazuh(path: &Path) {
    if is_root() {
        if let Some(gid) = wazuh_gid() {
            std::os::unix::fs::chown(path, Some(0), Some(gid)).unwrap();
        }
    }
}

/// `mode`, root:wazuh as the installer and Wazuh's packages make their files.
pub fn root_wazuh(path: &Path, mode: u32) {
    chown_root_wazuh(path);
    set_mode(path, mode);
}

/// Writes `<home>/etc/custom-misp.json` as setup does: pretty JSON, root:wazuh, `mode`.
pub fn write_settings(home: &Path, settings: &serde_json::Value, mode: u32) -> PathBuf {
    let p = home.join("etc/custom-misp.json");
    std::fs::write(&p, serde_json::to_vec_pretty(settings).unwrap()).unwrap();
    root_wazuh(&p, mode);
    p
}

/// `var/run/<daemon>-<pid>.pid`, as a Wazuh daemon writes it when it starts.
pub fn pid_file(home: &Path, daemon: &str, pid: u32) {
    std::fs::write(
        home.join(format!("var/run/{daemon}-{pid}.pid")),
        format!("{pid}\n"),
    )
    .unwrap();
}

/// What a path gets once it is there.
#[derive(Debug, Clone, Copy)]
pub enum Perm {
    /// Mode and owner as created.
    AsCreated,
    /// This mode, owner as created.
    Mode(u32),
    /// This mode, root:wazuh.
    RootWazuh(u32),
    /// root:wazuh, mode as created.
    RootWazuhAsCreated,
}

enum Step {
    Dirs(&'static [&'static str]),
    Dir(&'static str, Perm),
    File(String, Vec<u8>, Perm),
    Copy(String, PathBuf, Perm),
    Tree(PathBuf),
    Queue(Perm),
}

/// The pieces of a home, made in the order they were added.
pub struct HomeBuilder {
    prefix: &'static str,
    steps: Vec<Step>,
    owners: bool,
}

/// A built home: its directory (removed when dropped) and the queue socket, when bound.
pub struct Home {
    pub dir: tempfile::TempDir,
    pub queue: Option<UnixDatagram>,
}

impl HomeBuilder {
    /// An empty home.
    pub fn new() -> HomeBuilder {
        HomeBuilder {
            prefix: "wazuh-home-",
            steps: Vec::new(),
            owners: true,
        }
    }

    /// What [`HomeBuilder::build`] names its temporary directory: `<prefix>…`.
    pub fn prefix(mut self, prefix: &'static str) -> HomeBuilder {
        self.prefix = prefix;
        self
    }

    /// A 4.x manager's directories, `integrations` (0750) and `etc/rules` (0770) root:wazuh.
    pub fn manager_layout(self) -> HomeBuilder {
        self.dirs(MANAGER_DIRS)
            .dir("integrations", Perm::RootWazuh(0o750))
            .dir("etc/rules", Perm::RootWazuh(0o770))
    }

    /// The directories one run of the integration needs.
    pub fn runtime_layout(self) -> HomeBuilder {
        self.dirs(RUNTIME_DIRS)
    }

    pub fn dirs(mut self, rels: &'static [&'static str]) -> HomeBuilder {
        self.steps.push(Step::Dirs(rels));
        self
    }

    /// A directory (made when missing) and what it gets.
    pub fn dir(mut self, rel: &'static str, perm: Perm) -> HomeBuilder {
        self.steps.push(Step::Dir(rel, perm));
        self
    }

    pub fn file(mut self, rel: &str, bytes: impl Into<Vec<u8>>, perm: Perm) -> HomeBuilder {
        self.steps
            .push(Step::File(rel.to_string(), bytes.into(), perm));
        self
    }

    pub fn copy(mut self, rel: &str, from: impl Into<PathBuf>, perm: Perm) -> HomeBuilder {
        self.steps
            .push(Step::Copy(rel.to_string(), from.into(), perm));
        self
    }

    /// Everything under `from`, copied into the home as it is.
    pub fn tree(mut self, from: impl Into<PathBuf>) -> HomeBuilder {
        self.steps.push(Step::Tree(from.into()));
        self
    }

    /// `etc/ossec.conf`, root:wazuh 0660 as Wazuh ships it.
    pub fn ossec_conf(self, text: impl Into<Vec<u8>>) -> HomeBuilder {
        self.file("etc/ossec.conf", text, Perm::RootWazuh(0o660))
    }

    /// `etc/rules/local_rules.xml` (root:wazuh 0660) and `ruleset/rules/0095-sshd_rules.xml`.
    pub fn stock_rules(self) -> HomeBuilder {
        self.file(
            "etc/rules/local_rules.xml",
            LOCAL_RULES,
            Perm::RootWazuh(0o660),
        )
        .file(
            "ruleset/rules/0095-sshd_rules.xml",
            SSHD_RULES,
            Perm::AsCreated,
        )
    }

    /// The built binary as `integrations/custom-misp`, root:wazuh 0750 as `install` makes it.
    pub fn integration(self) -> HomeBuilder {
        self.copy(
            "integrations/custom-misp",
            super::BIN,
            Perm::RootWazuh(0o750),
        )
    }

    /// `bin/wazuh-control`, `wazuh-integratord`, `wazuh-analysisd` and `wazuh-modulesd`, each
    /// running `script`.
    pub fn stand_ins(mut self, script: &str) -> HomeBuilder {
        for name in STAND_IN_NAMES {
            self = self.file(&format!("bin/{name}"), script, Perm::Mode(0o750));
        }
        self
    }

    /// `var/custom-misp`, root:wazuh 0770 as `install` makes it.
    pub fn state_dir(self) -> HomeBuilder {
        self.dir("var/custom-misp", Perm::RootWazuh(0o770))
    }

    /// A datagram socket bound as analysisd's queue, `queue/sockets/queue`.
    pub fn queue(mut self, perm: Perm) -> HomeBuilder {
        self.steps.push(Step::Queue(perm));
        self
    }

    /// Leaves every owner and mode as created: a package's maintainer script sets them.
    pub fn without_owners(mut self) -> HomeBuilder {
        self.owners = false;
        self
    }

    pub fn build(self) -> Home {
        let dir = tempfile::Builder::new()
            .prefix(self.prefix)
            .tempdir()
            .unwrap();
        let queue = self.build_at(dir.path());
        Home { dir, queue }
    }

    /// Makes the home at `home` (a package's staging tree); returns the queue socket, when bound.
    pub fn build_at(self, home: &Path) -> Option<UnixDatagram> {
        let mut queue = None;
        let apply = |path: &Path, perm: Perm| match (self.owners, perm) {
            (false, _) | (_, Perm::AsCreated) => {}
            (true, Perm::Mode(mode)) => set_mode(path, mode),
            (true, Perm::RootWazuh(mode)) => root_wazuh(path, mode),
            (true, Perm::RootWazuhAsCreated) => chown_root_wazuh(path),
        };
        for step in &self.steps {
            match step {
                Step::Dirs(rels) => {
                    for d in *rels {
                        std::fs::create_dir_all(home.join(d)).unwrap();
                    }
                }
                Step::Dir(rel, perm) => {
                    std::fs::create_dir_all(home.join(rel)).unwrap();
                    apply(&home.join(rel), *perm);
                }
                Step::File(rel, bytes, perm) => {
                    std::fs::write(home.join(rel), bytes).unwrap();
                    apply(&home.join(rel), *perm);
                }
                Step::Copy(rel, from, perm) => {
                    std::fs::copy(from, home.join(rel)).unwrap();
                    apply(&home.join(rel), *perm);
                }
                Step::Tree(from) => copy_tree(from, home),
                Step::Queue(perm) => {
                    let path = home.join("queue/sockets/queue");
                    queue = Some(UnixDatagram::bind(&path).unwrap());
                    apply(&path, *perm);
                }
            }
        }
        queue
    }
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
