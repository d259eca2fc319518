//! What kind of Wazuh installation a home is: a 4.x manager we can work with (its version, the
//! group its files use, its cluster role), an agent, nothing at all, or Wazuh 5.x, which has no
//! integratord and which we refuse to touch.

use super::ossec_conf::{self, ClusterRole};
use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

pub const OSSEC_CONF: &str = "etc/ossec.conf";
/// Where Wazuh 5 lives, and its configuration file.
const WAZUH5_HOME: &str = "/var/wazuh-manager";
const WAZUH5_CONF: &str = "etc/wazuh-manager.conf";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl Version {
    /// Parses `v4.7.2`, `4.7.2`, `v4.14.0-rc1`.
    pub fn parse(text: &str) -> Option<Version> {
        let t = text.trim().trim_matches('"').trim_start_matches('v');
        let mut parts = t.split(|c: char| !c.is_ascii_digit());
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next().unwrap_or("0").parse().unwrap_or(0);
        let patch = parts.next().unwrap_or("0").parse().unwrap_or(0);
        Some(Version {
            major,
            minor,
            patch,
        })
    }

    /// `<timeout>` and `<retries>` in `<integration>` (and their argv slots) arrived in 4.8.
    pub fn accepts_integration_timeout(self) -> bool {
        (self.major, self.minor) >= (4, 8)
    }

    /// analysisd reloads rules, decoders and CDB lists without a restart from 4.13 on
    /// (`reload-ruleset` in `src/analysisd/asyscom.c`).
    pub fn hot_reloads_ruleset(self) -> bool {
        (self.major, self.minor) >= (4, 13)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[derive(Debug, Clone)]
pub struct Manager {
    pub home: PathBuf,
    /// `None` when no source told (an unusual install); treated as a current 4.x.
    pub version: Option<Version>,
    /// The group Wazuh's files use (`wazuh`, or `ossec` before 4.3).
    pub gid: u32,
    pub group_name: String,
    pub cluster: ClusterRole,
}

impl Manager {
    /// The Wazuh user's uid (the user is named like the group), root's when there is none:
    /// files analysisd writes as that user (CDB lists) belong to it.
    pub fn user_uid(&self) -> u32 {
        nix::unistd::User::from_name(&self.group_name)
            .ok()
            .flatten()
            .map_or(0, |u| u.uid.as_raw())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error("{home} is a Wazuh 5 installation: Wazuh 5 has no wazuh-integratord and rejects <integration> blocks, so wazuh-misp (which integrates through integratord, Wazuh 4.x) cannot be installed there. Nothing was changed.")]
    Wazuh5 { home: PathBuf },
    #[error("{home} is not a Wazuh manager home ({why}); pass --wazuh-home DIR or set WAZUH_HOME")]
    NotManager { home: PathBuf, why: String },
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} cannot be used")]
    Conf {
        path: PathBuf,
        source: ossec_conf::ConfError,
    },
}

/// Inspects `home` and refuses anything but a Wazuh 4.x manager.
pub fn detect(home: &Path) -> Result<Manager, DetectError> {
    let not_manager = |why: &str| DetectError::NotManager {
        home: home.to_path_buf(),
        why: why.to_string(),
    };
    if home.join(WAZUH5_CONF).exists()
        || home == Path::new(WAZUH5_HOME)
        || (home == Path::new(super::home::DEFAULT_HOME)
            && !home.exists()
            && Path::new(WAZUH5_HOME).exists())
    {
        return Err(DetectError::Wazuh5 {
            home: home.to_path_buf(),
        });
    }
    let conf_path = home.join(OSSEC_CONF);
    if !home.is_dir() {
        return Err(not_manager("no such directory"));
    }
    let meta = match std::fs::metadata(&conf_path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(not_manager("no etc/ossec.conf"))
        }
        Err(source) => {
            return Err(DetectError::Io {
                path: conf_path,
                source,
            })
        }
    };
    if !home.join("integrations").is_dir() {
        return Err(not_manager(
            "no integrations/ directory: an agent, or a partial install",
        ));
    }
    let version = read_version(home);
    if version.is_some_and(|v| v.major >= 5) {
        return Err(DetectError::Wazuh5 {
            home: home.to_path_buf(),
        });
    }
    let bytes = std::fs::read(&conf_path).map_err(|source| DetectError::Io {
        path: conf_path.clone(),
        source,
    })?;
    let inspection = ossec_conf::inspect(&bytes).map_err(|source| DetectError::Conf {
        path: conf_path.clone(),
        source,
    })?;
    let gid = meta.gid();
    let group_name = nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
        .ok()
        .flatten()
        .map(|g| g.name)
        .unwrap_or_else(|| gid.to_string());
    Ok(Manager {
        home: home.to_path_buf(),
        version,
        gid,
        group_name,
        cluster: inspection.cluster,
    })
}

/// `bin/wazuh-control info` (4.x prints `WAZUH_VERSION="v4.x.y"`), else the `VERSION=` line of
/// the script itself, else `etc/ossec-init.conf` (before 4.2).
fn read_version(home: &Path) -> Option<Version> {
    let control = home.join("bin/wazuh-control");
    if control.is_file() {
        if let Some(v) = run_info(home, &control) {
            return Some(v);
        }
        if let Ok(text) = std::fs::read(&control) {
            if let Some(v) = version_from_assignments(&String::from_utf8_lossy(&text), "VERSION") {
                return Some(v);
            }
        }
    }
    std::fs::read(home.join("etc/ossec-init.conf"))
        .ok()
        .and_then(|t| version_from_assignments(&String::from_utf8_lossy(&t), "VERSION"))
}

fn run_info(home: &Path, control: &Path) -> Option<Version> {
    let out = super::service::run_bounded(
        Command::new(control)
            .arg("info")
            .current_dir(home)
            .stdin(Stdio::null()),
        Duration::from_secs(10),
    )
    .ok()?;
    version_from_assignments(&out.text, "WAZUH_VERSION")
}

fn version_from_assignments(text: &str, key: &str) -> Option<Version> {
    text.lines().find_map(|line| {
        let (k, v) = line.trim().split_once('=')?;
        (k.trim() == key).then(|| Version::parse(v)).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_from_every_source_format() {
        assert_eq!(
            Version::parse("\"v4.7.2\""),
            Some(Version {
                major: 4,
                minor: 7,
                patch: 2
            })
        );
        assert_eq!(
            Version::parse("v4.14.0-rc1"),
            Some(Version {
                major: 4,
                minor: 14,
                patch: 0
            })
        );
        assert!(Version::parse("4.8.0")
            .unwrap()
            .accepts_integration_timeout());
        assert!(!Version::parse("v4.7.5")
            .unwrap()
            .accepts_integration_timeout());
        assert_eq!(
            version_from_assignments(
                "WAZUH_VERSION=\"v4.9.1\"\nWAZUH_REVISION=\"40917\"\n",
                "WAZUH_VERSION"
            ),
            Version::parse("4.9.1")
        );
        assert_eq!(
            version_from_assignments("DIRECTORY=\"/var/ossec\"\nVERSION=\"v4.1.5\"", "VERSION"),
            Version::parse("4.1.5")
        );
        assert_eq!(Version::parse("garbage"), None);
    }
}
