//! The live MISP: reachable (`GET /servers/getVersion`), the key valid and whose it is
//! (`GET /users/view/me`), both through [`MispClient`] (MISP's required headers), and the
//! server certificate with its expiry date (`misp::tlsinfo`).

use super::{one_line, Check, Ctx, Status};
use crate::misp::tlsinfo::{self, TrustError};
use crate::misp::{ErrorKind, MispClient, MispError};
use serde_json::{json, Value};
use std::time::Duration;

const EXPIRY_WARN_DAYS: i64 = 30;

pub(super) fn misp_checks(ctx: &Ctx) -> Vec<Check> {
    let loaded = match &ctx.loaded {
        Ok(l) => l,
        Err(_) => {
            return ["misp.connection", "misp.key", "misp.tls"]
                .into_iter()
                .map(|id| Check::skip(id, "the settings did not load (see settings.load)"))
                .collect()
        }
    };
    let misp = &loaded.settings.misp;
    let total = Duration::from_millis(misp.timeout_ms.max(1000));
    let url = &loaded.misp_url;

    let (connection, key) = match MispClient::new(url, loaded.api_key.clone(), misp, total) {
        Err(e) => (
            Check::fail(
                "misp.connection",
                e.message.clone(),
                "correct misp.ca_file (`sudo wazuh-misp setup`)",
            ),
            Check::skip("misp.key", "no connection"),
        ),
        Ok(client) => match client.get_json("/servers/getVersion") {
            Ok(answer) => {
                let v: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
                match v.get("version").and_then(Value::as_str) {
                    None => (
                        Check::fail(
                            "misp.connection",
                            format!("{url}/servers/getVersion did not answer with MISP's version: is misp.url the MISP base URL?"),
                            "correct misp.url (`sudo wazuh-misp setup`)",
                        ),
                        Check::skip("misp.key", "not a MISP answer"),
                    ),
                    Some(version) => {
                        let sighting = v.get("perm_sighting").and_then(Value::as_bool);
                        let conn = Check::pass("misp.connection", format!("MISP {version} at {url}"))
                            .data(json!({"version": version, "perm_sighting": sighting}));
                        (conn, key_check(&client, sighting))
                    }
                }
            }
            Err(e) if e.kind == ErrorKind::Auth => (
                Check::pass(
                    "misp.connection",
                    format!("{url} answers (and refuses the key)"),
                ),
                auth_failure(&e),
            ),
            Err(e) => (
                connection_failure(&e, url),
                Check::skip("misp.key", "MISP not reached"),
            ),
        },
    };
    let connect_failed = connection.status == Status::Fail
        && connection
            .data
            .get("kind")
            .and_then(Value::as_str)
            .is_some_and(|k| matches!(k, "connect" | "timeout"));
    let tls = if connect_failed {
        Check::skip("misp.tls", "MISP not reached")
    } else {
        tls_check(ctx, loaded, total)
    };
    vec![connection, key, tls]
}

fn key_check(client: &MispClient, sighting: Option<bool>) -> Check {
    const ID: &str = "misp.key";
    let sightings = match sighting {
        Some(true) => "sightings allowed",
        Some(false) => "sightings not allowed (perm_sighting off)",
        None => "sightings unknown",
    };
    match client.get_json("/users/view/me") {
        Ok(answer) => {
            let v: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
            let s = |ptr: &str| v.pointer(ptr).and_then(Value::as_str).map(str::to_string);
            let email = s("/User/email").unwrap_or_else(|| "(unknown user)".into());
            let org = s("/Organisation/name").unwrap_or_else(|| "(unknown organisation)".into());
            let role = s("/Role/name");
            Check::pass(
                ID,
                format!(
                    "valid: user {email} of {org}{}, {sightings}",
                    role.as_ref().map(|r| format!(" (role {r})")).unwrap_or_default()
                ),
            )
            .data(json!({"email": email, "organisation": org, "role": role, "perm_sighting": sighting}))
        }
        Err(e) if e.kind == ErrorKind::Auth => auth_failure(&e),
        Err(e) => Check::warn(
            ID,
            format!(
                "the key works for getVersion, but /users/view/me failed: {}",
                one_line(&e.message, 240)
            ),
            "check the role of the key's user in MISP",
        ),
    }
}

fn auth_failure(e: &MispError) -> Check {
    Check::fail(
        "misp.key",
        format!("MISP refuses the API key: {}", one_line(&e.message, 240)),
        "create an auth key in MISP (your profile, or Administration > List Auth Keys) for a user whose role may use the API, then store it with `sudo wazuh-misp setup`",
    )
    .data(json!({"status": e.status}))
}

fn connection_failure(e: &MispError, url: &str) -> Check {
    let fix = match e.kind {
        ErrorKind::Connect => "check misp.url (host, port), DNS, firewalls between this node and MISP, and that MISP is up",
        ErrorKind::Timeout => "check that MISP is up and not overloaded, and that no firewall drops the traffic; raise misp.timeout_ms if it is merely slow",
        ErrorKind::Tls => "see misp.tls",
        ErrorKind::NotFound => "correct misp.url: the MISP base URL, with its path prefix if it has one",
        ErrorKind::RateLimited => "wait, or raise the rate limit of the key's role in MISP",
        ErrorKind::Server => "see MISP's own logs (app/tmp/logs/error.log)",
        ErrorKind::Protocol | ErrorKind::Auth | ErrorKind::Config => {
            "correct misp.url (`sudo wazuh-misp setup`); a proxy or a login page answers instead of MISP's API"
        }
    };
    let check = if e.kind == ErrorKind::RateLimited {
        Check::warn(
            "misp.connection",
            format!("{url}: {}", one_line(&e.message, 300)),
            fix,
        )
    } else {
        Check::fail("misp.connection", one_line(&e.message, 300), fix)
    };
    check.data(json!({"kind": e.kind.as_str(), "status": e.status}))
}

fn tls_check(ctx: &Ctx, loaded: &crate::settings::Loaded, total: Duration) -> Check {
    const ID: &str = "misp.tls";
    let url = &loaded.misp_url;
    let misp = &loaded.settings.misp;
    if url.starts_with("http://") {
        return Check::warn(
            ID,
            format!("{url} is plain HTTP: the API key and every indicator cross the network unencrypted"),
            "serve MISP over HTTPS and change misp.url (`sudo wazuh-misp setup`)",
        );
    }
    let info = match tlsinfo::probe(url, misp, total) {
        Ok(i) => i,
        Err(e) => {
            return Check::fail(
                ID,
                one_line(&e.to_string(), 300),
                "check that misp.url's port serves HTTPS",
            )
        }
    };
    let Some(leaf) = &info.leaf else {
        return Check::warn(
            ID,
            format!(
                "the server's certificate ({} in the chain) could not be read",
                info.chain_len
            ),
            "inspect it with `openssl s_client -connect HOST:PORT`",
        );
    };
    let expiry = tlsinfo::format_utc(leaf.not_after);
    let days = (leaf.not_after - ctx.now).div_euclid(86_400);
    let data = json!({
        "subject": leaf.subject,
        "issuer": leaf.issuer,
        "not_before": tlsinfo::format_utc(leaf.not_before),
        "not_after": expiry,
        "days_left": days,
        "verified": info.verified.is_ok(),
        "trust": info.trust,
        "protocol": info.protocol,
    });
    let who = format!("{} (issued by {})", leaf.subject, leaf.issuer);
    let renew = "renew MISP's certificate (and update misp.ca_file if its CA changed)";
    if leaf.not_after < ctx.now {
        return Check::fail(
            ID,
            format!("the certificate {who} expired on {expiry}"),
            renew,
        )
        .data(data);
    }
    if leaf.not_before > ctx.now {
        return Check::fail(
            ID,
            format!(
                "the certificate {who} is not valid before {}: check this node's clock",
                tlsinfo::format_utc(leaf.not_before)
            ),
            "correct the clock (NTP) on this node or on the CA that issued it",
        )
        .data(data);
    }
    if !misp.verify_tls {
        return Check::warn(
            ID,
            format!(
                "verification is OFF (misp.verify_tls false), so anyone on the path can read the API key; the certificate {who}, valid until {expiry}, {}",
                match &info.verified {
                    Ok(()) => format!("would verify against {}", info.trust),
                    Err(e) => format!("would not verify against {}: {e}", info.trust),
                }
            ),
            "set misp.ca_file to the CA bundle that issued it and misp.verify_tls to true (`sudo wazuh-misp setup --ca-file FILE`)",
        )
        .data(data);
    }
    match &info.verified {
        Err(TrustError::UnknownIssuer) => Check::fail(
            ID,
            format!("the certificate {who} is not trusted by {}", info.trust),
            "set misp.ca_file to the PEM bundle of the CA that issued it (`sudo wazuh-misp setup --ca-file FILE`)",
        ),
        Err(TrustError::WrongName) => Check::fail(
            ID,
            format!("the certificate {who} is not valid for the host in {url}"),
            "use the host name the certificate was issued for in misp.url, or reissue the certificate with it",
        ),
        Err(TrustError::Expired) => Check::fail(ID, format!("the certificate {who} has expired"), renew),
        Err(e) => Check::fail(
            ID,
            format!("the certificate {who} does not verify against {}: {e}", info.trust),
            "correct misp.ca_file, or the server's certificate chain",
        ),
        Ok(()) if days < EXPIRY_WARN_DAYS => Check::warn(
            ID,
            format!("the certificate {who} expires in {days} day(s), on {expiry}"),
            renew,
        ),
        Ok(()) => Check::pass(
            ID,
            format!(
                "{who}, valid until {expiry} ({days} days), trusted via {}",
                info.trust
            ),
        ),
    }
    .data(data)
}
