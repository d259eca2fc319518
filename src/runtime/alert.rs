//! Reads the alert file integratord hands us: one JSON alert (with `<alert_format>json`), or the
//! legacy text form that Wazuh up to 4.5 writes when an earlier integration block lacks it
//! (`alertdate='…'` … `srcip='…'`), which is turned into the same JSON shape.

use serde_json::{json, Value};
use std::borrow::Cow;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Far above any real alert (analysisd caps a log at 64 KiB), so a runaway file cannot eat memory.
const MAX_ALERT_BYTES: u64 = 16 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertFormat {
    Json,
    /// Only date, location, rule id/level/description, full_log and `data.srcip` survive it.
    Legacy,
}

#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error("cannot read alert file {path}: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("alert file {path} is empty")]
    Empty { path: PathBuf },
    #[error("alert file {path} is larger than {MAX_ALERT_BYTES} bytes")]
    TooLarge { path: PathBuf },
    #[error("alert file {path} is not a JSON alert ({reason}); set <alert_format>json</alert_format> in every <integration> block")]
    Invalid { path: PathBuf, reason: String },
}

pub fn read(path: &Path) -> Result<(Value, AlertFormat), AlertError> {
    let unreadable = |source| AlertError::Unreadable {
        path: path.to_path_buf(),
        source,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(unreadable)?
        .take(MAX_ALERT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_ALERT_BYTES {
        return Err(AlertError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    parse(&bytes).map_err(|e| match e {
        None => AlertError::Empty {
            path: path.to_path_buf(),
        },
        Some(reason) => AlertError::Invalid {
            path: path.to_path_buf(),
            reason,
        },
    })
}

/// `Err(None)` for an empty input, `Err(Some(reason))` for anything unusable.
pub fn parse(bytes: &[u8]) -> Result<(Value, AlertFormat), Option<String>> {
    // Log lines can carry any bytes; a lone invalid byte must not cost us the whole alert.
    let text: Cow<str> = String::from_utf8_lossy(bytes);
    let text = text.trim_start_matches('\u{feff}').trim();
    if text.is_empty() {
        return Err(None);
    }
    if text.starts_with('{') {
        return match serde_json::from_str::<Value>(text) {
            Ok(v @ Value::Object(_)) => Ok((v, AlertFormat::Json)),
            Ok(_) => Err(Some("not a JSON object".into())),
            Err(e) if e.is_eof() => Err(Some(format!("truncated JSON: {e}"))),
            Err(e) => Err(Some(format!("invalid JSON: {e}"))),
        };
    }
    parse_legacy(text)
        .map(|v| (v, AlertFormat::Legacy))
        .ok_or_else(|| Some("neither JSON nor integratord's legacy text format".into()))
}

fn parse_legacy(text: &str) -> Option<Value> {
    let mut alert = json!({});
    let mut recognised = 0;
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        let value = value.strip_prefix('\'').unwrap_or(value);
        let value = value.strip_suffix('\'').unwrap_or(value);
        let pointer = match key.trim() {
            "alertdate" => "/timestamp",
            "alertlocation" => "/location",
            "ruleid" => "/rule/id",
            "alertlevel" => "/rule/level",
            "ruledescription" => "/rule/description",
            "alertlog" => "/full_log",
            "srcip" => "/data/srcip",
            _ => continue,
        };
        recognised += 1;
        let value = match pointer {
            "/rule/level" => value
                .trim()
                .parse::<u64>()
                .map(Value::from)
                .unwrap_or(Value::Null),
            // integratord blanks characters it dislikes in srcip, so only the trimmed text counts.
            "/data/srcip" => Value::from(value.trim()),
            _ => Value::from(value),
        };
        set(&mut alert, pointer, value);
    }
    (recognised >= 2).then_some(alert)
}

fn set(root: &mut Value, pointer: &str, value: Value) {
    let mut node = root;
    let mut parts = pointer.trim_start_matches('/').split('/').peekable();
    while let Some(part) = parts.next() {
        let Some(obj) = node.as_object_mut() else {
            return;
        };
        if parts.peek().is_none() {
            obj.insert(part.to_string(), value);
            return;
        }
        node = obj.entry(part.to_string()).or_insert_with(|| json!({}));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_alerts_with_or_without_newline_and_with_bad_bytes() {
        let (v, f) =
            parse(b"{\"rule\":{\"id\":\"5710\"},\"data\":{\"srcip\":\"1.2.3.4\"}}\n").unwrap();
        assert_eq!(f, AlertFormat::Json);
        assert_eq!(v["rule"]["id"], "5710");
        let (v, _) =
            parse(b"{\"full_log\":\"caf\xe9 \xff\",\"data\":{\"srcip\":\"8.8.8.8\"}}").unwrap();
        assert_eq!(v["data"]["srcip"], "8.8.8.8");
        assert!(v["full_log"].as_str().unwrap().contains('\u{fffd}'));
    }

    #[test]
    fn empty_truncated_and_foreign_files_are_told_apart() {
        assert_eq!(parse(b"").unwrap_err(), None);
        assert_eq!(parse(b" \n").unwrap_err(), None);
        assert!(parse(b"{\"rule\":{\"id\":")
            .unwrap_err()
            .unwrap()
            .contains("truncated"));
        assert!(parse(b"[1,2]").unwrap_err().is_some());
        assert!(parse(b"hello world").unwrap_err().is_some());
    }

    #[test]
    fn legacy_text_format_becomes_a_json_alert() {
        let legacy = "alertdate='2023-11-14T22:13:20.123+0000'\nalertlocation='/var/log/auth.log'\nruleid='5710'\nalertlevel='5'\nruledescription='sshd: Attempt to login using a non-existent user'\nalertlog='Nov 14 22:13:19 web01 sshd[1234]: Invalid user admin from 185.220.101.47 port 53422'\nsrcip='185.220.101.47 '";
        let (v, f) = parse(legacy.as_bytes()).unwrap();
        assert_eq!(f, AlertFormat::Legacy);
        assert_eq!(v["rule"]["id"], "5710");
        assert_eq!(v["rule"]["level"], 5);
        assert_eq!(v["data"]["srcip"], "185.220.101.47");
        assert_eq!(v["location"], "/var/log/auth.log");
        let (v, _) = parse(b"alertdate='x'\nruleid='1'\nsrcip=''").unwrap();
        assert_eq!(v["data"]["srcip"], "");
    }
}
