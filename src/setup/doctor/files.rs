//! The files integratord and the runtime need: the binary copy `integrations/custom-misp` and
//! the settings file `etc/custom-misp.json` (presence, owner, mode, version, contents).

use super::{chown_chmod, Check, Ctx};
use crate::settings::{SettingsError, SETTINGS_PATH};
use crate::wazuh::install::INTEGRATION_PATH;
use serde_json::json;
use std::os::unix::fs::MetadataExt;

const INSTALL: &str =
    "run `sudo wazuh-misp install` (it copies this program there, root:wazuh 0750)";

pub(super) fn binary_checks(ctx: &Ctx) -> Vec<Check> {
    let path = ctx.home.join(INTEGRATION_PATH);
    let rel = ctx.rel(&path);
    let link = match std::fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return vec![
                Check::fail(
                    "binary.file",
                    format!("{rel} is missing: integratord disables the integration at start (\"File not found inside 'integrations'\")"),
                    INSTALL,
                ),
                Check::skip("binary.permissions", format!("no {rel}")),
                Check::skip("binary.version", format!("no {rel}")),
            ];
        }
        Err(e) => {
            return vec![
                Check::fail(
                    "binary.file",
                    format!("cannot inspect {rel}: {e}"),
                    "run `sudo wazuh-misp doctor`",
                ),
                Check::skip("binary.permissions", "not readable"),
                Check::skip("binary.version", "not readable"),
            ]
        }
    };
    let mut checks = Vec::new();
    let meta = match std::fs::metadata(&path) {
        Ok(m) if m.is_file() => m,
        _ => {
            return vec![
                Check::fail(
                    "binary.file",
                    format!("{rel} is not a regular file (a directory, a dangling link…)"),
                    format!("remove it, then {INSTALL}"),
                ),
                Check::skip("binary.permissions", format!("{rel} is not a file")),
                Check::skip("binary.version", format!("{rel} is not a file")),
            ]
        }
    };
    if link.file_type().is_symlink() {
        let target = std::fs::read_link(&path).unwrap_or_default();
        checks.push(Check::warn(
            "binary.file",
            format!("{rel} is a symbolic link to {}: an upgrade of the target changes the integration behind integratord's back, and install refuses to write through it", target.display()),
            format!("remove the link, then {INSTALL}"),
        ));
    } else {
        checks.push(Check::pass(
            "binary.file",
            format!("{rel} ({:.1} MiB)", meta.len() as f64 / 1_048_576.0),
        ));
    }
    checks.push(binary_permissions(ctx, &rel, &meta));
    checks.push(binary_version(&path, &rel, &meta));
    checks
}

fn binary_permissions(ctx: &Ctx, rel: &str, meta: &std::fs::Metadata) -> Check {
    const ID: &str = "binary.permissions";
    let path = ctx.home.join(INTEGRATION_PATH);
    let mode = meta.mode() & 0o7777;
    let (uid, gid) = (meta.uid(), meta.gid());
    let fix = format!(
        "{}, then restart the manager (integratord checks the file when it starts)",
        chown_chmod(ctx, &path, 0o750)
    );
    let daemon_owns = ctx.daemon_uid == Some(uid);
    let group_is_wazuh = ctx.gid == Some(gid);
    let mut fails = Vec::new();
    if mode & 0o020 != 0 {
        fails.push("writable by its group");
    }
    if mode & 0o002 != 0 {
        fails.push("writable by everyone");
    }
    if daemon_owns && mode & 0o200 != 0 {
        fails.push("owned and writable by the Wazuh user");
    }
    let executable = if daemon_owns {
        mode & 0o100 != 0
    } else if group_is_wazuh {
        mode & 0o010 != 0
    } else {
        mode & 0o001 != 0
    };
    if !executable {
        fails.push("not executable by integratord's user");
    }
    let owner = format!("{}:{} {mode:04o}", user_name(uid), group_name(gid));
    let data = json!({"mode": format!("{mode:04o}"), "uid": uid, "gid": gid});
    if !fails.is_empty() {
        return Check::fail(
            ID,
            format!(
                "{rel} is {owner}: {}; integratord refuses to run a file its user can write (exit 127, \"Couldn't execute command\") and needs to execute it",
                fails.join(", ")
            ),
            fix,
        )
        .data(data);
    }
    let mut warns = Vec::new();
    if uid != 0 {
        warns.push(format!("owned by {} instead of root", user_name(uid)));
    }
    if !group_is_wazuh {
        warns.push(format!(
            "group {} instead of {}",
            group_name(gid),
            ctx.group
        ));
    }
    if mode != 0o750 {
        warns.push(format!("mode {mode:04o} instead of 0750"));
    }
    if warns.is_empty() {
        Check::pass(ID, format!("{rel} is {owner}")).data(data)
    } else {
        Check::warn(ID, format!("{rel} is {owner}: {}", warns.join(", ")), fix).data(data)
    }
}

/// The copy is compared byte for byte with this program; when they differ, the version is read
/// from the copy's bytes (the `wazuh-misp/X.Y.Z` User-Agent every version embeds). Running the
/// copy with `--version` cannot work: a program named `custom-…` is, by design, always run as
/// the integration and would take `--version` for an alert file.
fn binary_version(path: &std::path::Path, rel: &str, meta: &std::fs::Metadata) -> Check {
    const ID: &str = "binary.version";
    let ours = env!("CARGO_PKG_VERSION");
    let this = crate::wazuh::home::current_executable();
    let same_bytes = this.as_ref().is_some_and(|exe| {
        std::fs::metadata(exe).is_ok_and(|m| m.len() == meta.len())
            && match (std::fs::read(exe), std::fs::read(path)) {
                (Ok(a), Ok(b)) => a == b,
                _ => false,
            }
    });
    if same_bytes {
        return Check::pass(ID, format!("{rel} is this program (wazuh-misp {ours})"))
            .data(json!({"installed": ours, "this": ours, "identical": true}));
    }
    let installed = file_version(path);
    let data = json!({"installed": installed, "this": ours, "identical": false});
    match installed {
        Some(v) if v == ours => Check::pass(
            ID,
            format!("{rel} is wazuh-misp {v}, the version of this program (another build of it)"),
        )
        .data(data),
        Some(v) => Check::warn(
            ID,
            format!("{rel} is wazuh-misp {v}, this program is {ours}"),
            "run `sudo wazuh-misp install` to copy this version there (no restart needed: integratord runs the file afresh for every alert)",
        )
        .data(data),
        None => Check::warn(
            ID,
            format!("{rel} is not a wazuh-misp binary this version recognises"),
            INSTALL,
        )
        .data(data),
    }
}

/// The version in the `wazuh-misp/X.Y.Z` User-Agent string a binary embeds, read a MiB at a
/// time: the string sits in the first few MiB (.rodata), long before a debug build's 60 MiB end.
pub(super) fn file_version(path: &std::path::Path) -> Option<String> {
    const CHUNK: usize = 1 << 20;
    const OVERLAP: usize = 128;
    let mut f = std::fs::File::open(path).ok()?;
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK + OVERLAP);
    let mut chunk = vec![0u8; CHUNK];
    loop {
        let n = std::io::Read::read(&mut f, &mut chunk).ok()?;
        buf.extend_from_slice(&chunk[..n]);
        if let Some(v) = embedded_version(&buf, n == 0) {
            return Some(v);
        }
        if n == 0 {
            return None;
        }
        let keep = buf.len().saturating_sub(OVERLAP);
        buf.drain(..keep);
    }
}

/// The first `wazuh-misp/X.Y.Z[-pre]` in `bytes`; unless `complete`, only one that ends before
/// the end of `bytes` (the rest may be in the next chunk).
pub(super) fn embedded_version(bytes: &[u8], complete: bool) -> Option<String> {
    const NEEDLE: &[u8] = b"wazuh-misp/";
    let mut from = 0;
    while from < bytes.len() {
        let at = from + find_byte(&bytes[from..], NEEDLE[0])?;
        from = at + 1;
        if !bytes[at..].starts_with(NEEDLE) {
            continue;
        }
        let rest = &bytes[at + NEEDLE.len()..];
        let len = rest
            .iter()
            .take(64)
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+'))
            .count();
        if len == rest.len() && !complete {
            return None;
        }
        let candidate = std::str::from_utf8(&rest[..len]).ok()?;
        let core = candidate.split(['-', '+']).next().unwrap_or("");
        let parts: Vec<&str> = core.split('.').collect();
        if parts.len() == 3
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        {
            return Some(candidate.to_string());
        }
    }
    None
}

/// `memchr`: a 60 MiB debug binary is scanned in milliseconds even in an unoptimised build.
fn find_byte(hay: &[u8], byte: u8) -> Option<usize> {
    if hay.is_empty() {
        return None;
    }
    // SAFETY: the pointer and length describe `hay`, which outlives the call; memchr only reads.
    let p = unsafe { libc::memchr(hay.as_ptr().cast(), i32::from(byte), hay.len()) };
    (!p.is_null()).then(|| p as usize - hay.as_ptr() as usize)
}

fn user_name(uid: u32) -> String {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| uid.to_string())
}

fn group_name(gid: u32) -> String {
    nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
        .ok()
        .flatten()
        .map(|g| g.name)
        .unwrap_or_else(|| gid.to_string())
}

pub(super) fn settings_checks(ctx: &Ctx) -> Vec<Check> {
    let path = ctx.home.join(SETTINGS_PATH);
    let rel = ctx.rel(&path);
    let fix = chown_chmod(ctx, &path, 0o640);
    let perms = match std::fs::metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Check::fail(
            "settings.permissions",
            format!("{rel} is missing: the integration has no MISP URL or key"),
            "run `sudo wazuh-misp setup`",
        ),
        Err(e) => Check::fail(
            "settings.permissions",
            format!("cannot inspect {rel}: {e}"),
            "run `sudo wazuh-misp doctor`",
        ),
        Ok(meta) => {
            let mode = meta.mode() & 0o7777;
            let (uid, gid) = (meta.uid(), meta.gid());
            let owner = format!("{}:{} {mode:04o}", user_name(uid), group_name(gid));
            let data = json!({"mode": format!("{mode:04o}"), "uid": uid, "gid": gid});
            let readable = (ctx.gid == Some(gid) && mode & 0o040 != 0)
                || (ctx.daemon_uid == Some(uid) && mode & 0o400 != 0);
            if mode & 0o007 != 0 {
                Check::fail(
                    "settings.permissions",
                    format!("{rel} is {owner}: other users can access it, but it holds the MISP API key (the integration refuses such a file)"),
                    fix.clone(),
                )
            } else if mode & 0o030 != 0 {
                Check::fail(
                    "settings.permissions",
                    format!("{rel} is {owner}: its group may write it (the integration refuses such a file)"),
                    fix.clone(),
                )
            } else if !readable {
                Check::fail(
                    "settings.permissions",
                    format!("{rel} is {owner}: integratord's user (group {}) cannot read it, so every run fails with \"settings missing or invalid\"", ctx.group),
                    fix.clone(),
                )
            } else if uid != 0 {
                Check::warn(
                    "settings.permissions",
                    format!("{rel} is {owner}: owned by {} instead of root", user_name(uid)),
                    fix.clone(),
                )
            } else {
                Check::pass("settings.permissions", format!("{rel} is {owner}"))
            }
            .data(data)
        }
    };
    let load = match &ctx.loaded {
        Ok(l) => {
            let s = &l.settings;
            let mut notes = Vec::new();
            if !l.api_key.is_well_formed() {
                notes.push(
                    "misp.api_key is not 40 letters and digits, the form of MISP keys".to_string(),
                );
            }
            if !l.unknown_keys.is_empty() {
                notes.push(format!(
                    "keys unknown to wazuh-misp {} are ignored: {}",
                    env!("CARGO_PKG_VERSION"),
                    l.unknown_keys.join(", ")
                ));
            }
            let summary = format!(
                "MISP {} ({}), lookups of {}",
                l.misp_url,
                if s.misp.verify_tls {
                    match &s.misp.ca_file {
                        Some(ca) => format!("TLS verified with {}", ca.display()),
                        None => "TLS verified with the bundled roots".into(),
                    }
                } else {
                    "TLS verification OFF".into()
                },
                s.lookup
                    .kinds
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            );
            let data = json!({"misp_url": l.misp_url, "unknown_keys": l.unknown_keys});
            if notes.is_empty() {
                Check::pass("settings.load", summary).data(data)
            } else {
                Check::warn(
                    "settings.load",
                    format!("{summary}; {}", notes.join("; ")),
                    if l.unknown_keys.is_empty() {
                        "check the key in MISP and store it again with `sudo wazuh-misp setup`"
                    } else {
                        "upgrade wazuh-misp on this node to the version that wrote them (setup on a newer node), or remove those keys"
                    },
                )
                .data(data)
            }
        }
        Err(SettingsError::TooOpen { .. }) => Check::fail(
            "settings.load",
            format!("{rel} is refused for its mode (see settings.permissions)"),
            fix,
        ),
        Err(e @ SettingsError::Missing { .. }) => Check::fail(
            "settings.load",
            e.to_string(),
            "run `sudo wazuh-misp setup`",
        ),
        Err(e @ SettingsError::Unreadable { .. }) => Check::fail(
            "settings.load",
            e.to_string(),
            "run `sudo wazuh-misp doctor` as root",
        ),
        Err(e @ SettingsError::Invalid { .. }) => Check::fail(
            "settings.load",
            e.to_string(),
            "correct the value it names, or write the file again with `sudo wazuh-misp setup`",
        ),
    };
    vec![perms, load]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_found_in_binary_bytes() {
        let mut bytes = vec![0u8; 1000];
        bytes.extend_from_slice(b"xx wazuh-misp/src wazuh-misp/1.2 wazuh-misp/0.3.10-rc1\0tail");
        assert_eq!(
            embedded_version(&bytes, true).as_deref(),
            Some("0.3.10-rc1")
        );
        assert_eq!(embedded_version(b"wazuh-misp/", true), None);
        assert_eq!(embedded_version(b"", true), None);
        // Cut at the end of a chunk: wait for the next one.
        assert_eq!(embedded_version(b"wazuh-misp/0.1.1", false), None);
        assert_eq!(
            embedded_version(b"wazuh-misp/0.1.1", true).as_deref(),
            Some("0.1.1")
        );
        // Across chunks of a file.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("custom-misp");
        let mut big = vec![b'w'; (1 << 20) - 13];
        big.extend_from_slice(b"wazuh-misp/12.34.56 x");
        std::fs::write(&p, &big).unwrap();
        assert_eq!(file_version(&p).as_deref(), Some("12.34.56"));
    }
}
