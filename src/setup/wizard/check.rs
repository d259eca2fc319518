//! The wizard's live check of a MISP connection: `GET /servers/getVersion` and
//! `GET /users/view/me` with the candidate URL, key and TLS choice, reported as what the admin
//! needs to know (version, user, organisation, role, whether sightings are allowed), or as a
//! failure with a specific next step.

use crate::misp::{ErrorKind, MispClient, MispError};
use crate::settings::{ApiKey, MispSettings};
use serde_json::Value;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A first answer can be slow (a MISP behind a busy proxy); this is a person waiting, not an alert.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const TOTAL_TIMEOUT: Duration = Duration::from_secs(10);

/// What to check.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    /// A normalised base URL.
    pub url: &'a str,
    pub api_key: &'a ApiKey,
    pub verify_tls: bool,
    pub ca_file: Option<&'a Path>,
}

/// What MISP said about itself and the key's user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MispInfo {
    pub version: String,
    pub email: Option<String>,
    pub organisation: Option<String>,
    pub role: Option<String>,
    /// The role may add sightings (`perm_sighting`).
    pub perm_sighting: Option<bool>,
    /// `/users/view/me` failed although the key works (reported, not fatal).
    pub warning: Option<String>,
}

impl MispInfo {
    /// One line: "MISP 2.5.22, user admin@x (organisation ORG, role admin), sightings allowed".
    pub fn describe(&self) -> String {
        let mut s = format!("MISP {}", self.version);
        if let Some(email) = &self.email {
            s.push_str(&format!(", user {email}"));
        }
        let mut who = Vec::new();
        if let Some(org) = &self.organisation {
            who.push(format!("organisation {org}"));
        }
        if let Some(role) = &self.role {
            who.push(format!("role {role}"));
        }
        if !who.is_empty() {
            s.push_str(&format!(" ({})", who.join(", ")));
        }
        s.push_str(match self.perm_sighting {
            Some(true) => ", sightings allowed",
            Some(false) => ", sightings NOT allowed (read-only role)",
            None => "",
        });
        s
    }
}

/// Asks MISP who we are. Any failure of `/servers/getVersion` is returned; a failure of
/// `/users/view/me` only becomes [`MispInfo::warning`].
pub fn check(target: &Target) -> Result<MispInfo, MispError> {
    let settings = MispSettings {
        url: Some(target.url.to_string()),
        api_key: None,
        verify_tls: target.verify_tls,
        ca_file: target.ca_file.map(Path::to_path_buf),
        connect_timeout_ms: CONNECT_TIMEOUT.as_millis() as u64,
        timeout_ms: TOTAL_TIMEOUT.as_millis() as u64,
    };
    let client = MispClient::new(target.url, target.api_key.clone(), &settings, TOTAL_TIMEOUT)?;
    let version = json_of(
        client.get_json("/servers/getVersion")?.body,
        "/servers/getVersion",
    )?;
    let Some(v) = version.get("version").and_then(Value::as_str) else {
        return Err(MispError::new(
            ErrorKind::Protocol,
            "/servers/getVersion answered JSON without a \"version\": this does not look like MISP",
        ));
    };
    let mut info = MispInfo {
        version: v.to_string(),
        perm_sighting: version.get("perm_sighting").and_then(Value::as_bool),
        ..MispInfo::default()
    };
    match client
        .get_json("/users/view/me")
        .and_then(|a| json_of(a.body, "/users/view/me"))
    {
        Ok(me) => {
            let text = |a: &str, b: &str| {
                me.pointer(&format!("/{a}/{b}"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            };
            info.email = text("User", "email");
            info.organisation = text("Organisation", "name");
            info.role = text("Role", "name");
            if info.perm_sighting.is_none() {
                info.perm_sighting = me.pointer("/Role/perm_sighting").and_then(Value::as_bool);
            }
        }
        Err(e) => info.warning = Some(format!("cannot read the key's user: {}", e.message)),
    }
    Ok(info)
}

fn json_of(body: Vec<u8>, path: &str) -> Result<Value, MispError> {
    serde_json::from_slice(&body).map_err(|_| {
        let html = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<');
        MispError::new(
            ErrorKind::Protocol,
            format!(
                "{path} answered {} instead of MISP's JSON",
                if html { "an HTML page" } else { "something" }
            ),
        )
    })
}

/// How the admin fixes the option in question, in the wording of the mode they are in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Interactive,
    Unattended,
}

/// The specific next step for a failed check.
pub fn next_step(e: &MispError, url: &str, mode: Mode) -> String {
    let flags = mode == Mode::Unattended;
    match e.kind {
        ErrorKind::Connect if e.message.contains("resolve") => format!(
            "the host name in {url} does not resolve from this manager: check its spelling and this manager's DNS{}",
            if flags { " (--misp-url)" } else { "" }
        ),
        ErrorKind::Connect => format!(
            "nothing accepts connections at {url}: check that MISP runs, the port (https is 443 unless the URL names another), and any firewall between this manager and MISP"
        ),
        ErrorKind::Tls => {
            if flags {
                "MISP's certificate is not trusted: if MISP uses a private CA or a self-signed certificate, give its CA bundle with --ca-file FILE (PEM); only if you accept that anyone on the network path can read the API key, --insecure disables verification".into()
            } else {
                "MISP's certificate is not trusted: if MISP uses a private CA or a self-signed certificate, use its CA bundle (a PEM file)".into()
            }
        }
        ErrorKind::Timeout => format!(
            "{url} did not answer within {} s: check that no firewall or proxy silently drops the connection, and that MISP is not overloaded",
            TOTAL_TIMEOUT.as_secs()
        ),
        ErrorKind::Auth if e.status.is_some_and(|s| (300..400).contains(&s)) => {
            "MISP sent its login page instead of an API answer: the key was not taken as an API key. Check that it is an auth key (not a password) of a user allowed to use the API, and that no proxy in front of MISP drops the Authorization header".into()
        }
        ErrorKind::Auth => format!(
            "MISP refused the API key: check it in MISP (Administration > List Auth Keys, or your profile's Auth keys): it must be active, not expired, allowed from this manager's IP address, and its user enabled{}",
            if flags { " (--api-key-file, --api-key-stdin or MISP_API_KEY)" } else { "" }
        ),
        ErrorKind::NotFound => format!(
            "{url} is not MISP's base address: use the address you open MISP's web interface with, without /users/login or any other page, including the path prefix if MISP is served under one{}",
            if flags { " (--misp-url)" } else { "" }
        ),
        ErrorKind::Protocol if e.message.contains("redirect") => format!(
            "{url} redirects elsewhere: if it sends http:// to https://, use the https:// URL; otherwise use the address it redirects to{}",
            if flags { " (--misp-url)" } else { "" }
        ),
        ErrorKind::Protocol => format!(
            "{url} does not answer like MISP's API (an HTML page, or unexpected data): check that the URL points at MISP itself and not at a proxy's page or another application"
        ),
        ErrorKind::Server => "MISP failed on a simple request: look at MISP's own logs (app/tmp/logs/error.log) and try again".into(),
        ErrorKind::RateLimited => "the key's role is rate limited: wait for the window to reset, or raise the role's rate limit in MISP".into(),
        ErrorKind::Config => "fix the value named above".into(),
    }
}

/// Checks a CA bundle the admin gives: readable and holding at least one PEM certificate.
/// Returns the absolute path (integratord runs with the Wazuh home as its working directory).
pub fn validate_ca_file(path: &Path) -> Result<PathBuf, String> {
    let abs =
        std::fs::canonicalize(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let bytes = std::fs::read(&abs).map_err(|e| format!("cannot read {}: {e}", abs.display()))?;
    let certs = ureq::tls::parse_pem(&bytes)
        .filter(|item| matches!(item, Ok(ureq::tls::PemItem::Certificate(_))))
        .count();
    if certs == 0 {
        return Err(format!(
            "{} holds no PEM certificate (expected a file with -----BEGIN CERTIFICATE----- blocks)",
            abs.display()
        ));
    }
    Ok(abs)
}

/// integratord runs the integration as user `wazuh` (group `gid`): a CA file it cannot read
/// makes every lookup fail. Checks the file and every directory above it by mode bits.
pub fn readable_by_wazuh(path: &Path, gid: u32) -> bool {
    let uid = nix::unistd::User::from_name("wazuh")
        .ok()
        .flatten()
        .map(|u| u.uid.as_raw());
    let allows = |p: &Path, bit: u32| -> bool {
        let Ok(m) = std::fs::metadata(p) else {
            return false;
        };
        let mode = m.mode();
        if Some(m.uid()) == uid {
            mode & (bit << 6) != 0
        } else if m.gid() == gid {
            mode & (bit << 3) != 0
        } else {
            mode & bit != 0
        }
    };
    allows(path, 0o4)
        && path
            .ancestors()
            .skip(1)
            .all(|dir| dir.as_os_str().is_empty() || allows(dir, 0o1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_reads_as_one_line() {
        let info = MispInfo {
            version: "2.5.22".into(),
            email: Some("admin@admin.test".into()),
            organisation: Some("ORGNAME".into()),
            role: Some("admin".into()),
            perm_sighting: Some(true),
            warning: None,
        };
        assert_eq!(
            info.describe(),
            "MISP 2.5.22, user admin@admin.test (organisation ORGNAME, role admin), sightings allowed"
        );
    }

    #[test]
    fn every_failure_has_its_own_next_step() {
        let url = "https://misp.test";
        let step = |kind, status: Option<u16>, msg: &str| {
            let mut e = MispError::new(kind, msg);
            e.status = status;
            next_step(&e, url, Mode::Unattended)
        };
        assert!(step(ErrorKind::Auth, Some(403), "").contains("refused the API key"));
        assert!(step(ErrorKind::Auth, Some(302), "").contains("login page"));
        assert!(step(ErrorKind::NotFound, Some(404), "").contains("base address"));
        assert!(step(ErrorKind::Tls, None, "").contains("--ca-file"));
        assert!(step(ErrorKind::Timeout, None, "").contains("did not answer"));
        assert!(step(ErrorKind::Connect, None, "cannot connect").contains("accepts connections"));
        assert!(step(ErrorKind::Connect, None, "cannot resolve the host").contains("resolve"));
        assert!(step(ErrorKind::Protocol, Some(302), "redirected to").contains("https://"));
        assert!(
            !next_step(&MispError::new(ErrorKind::Tls, ""), url, Mode::Interactive).contains("--")
        );
    }
}
