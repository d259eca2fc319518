//! Reads the alert file integratord hands us: one JSON alert (with `<alert_format>json`), or the
//! legacy text form that Wazuh up to 4.5 writes when an earlier integration block lacks it
//! (`alertdate='…'` … `srcip='…'`), which is turned into the same JSON shape. `test` mode and the
//! self test read `alerts.json` lines through [`parse_json`] too, so all three agree on what an
//! alert is.
//!
//! Depth: analysisd writes whatever a decoded JSON log nests, and integratord reads `alerts.json`
//! with cJSON, which accepts up to 1000 levels (`CJSON_NESTING_LIMIT`). serde_json stops at 128
//! to protect the stack, so an attacker who nests one log field 300 deep would hide every
//! indicator of the alert. Deep documents are parsed on a thread with a stack sized for 1000
//! levels, and the parts deeper than [`KEPT_DEPTH`] (far below any field-map path) are dropped
//! there, so the alert the rest of the program sees is shallow and so is its `Drop`.

use serde::Deserialize;
use serde_json::{json, Value};
use std::borrow::Cow;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Far above any real alert (analysisd caps a log at 64 KiB), so a runaway file cannot eat memory.
const MAX_ALERT_BYTES: u64 = 16 << 20;

/// cJSON's `CJSON_NESTING_LIMIT`: integratord never hands over an alert nested deeper.
pub const MAX_DEPTH: usize = 1000;

/// Alerts are kept to this depth; deeper values become `null`. Field-map paths are limited to far
/// fewer steps ([`crate::fieldmap::MAX_STEPS`]), so no indicator a rule can name is lost.
pub const KEPT_DEPTH: usize = 64;
const _: () = assert!(crate::fieldmap::MAX_STEPS * 2 <= KEPT_DEPTH);

/// 1000 levels of serde_json's recursion took between 0.5 and 2 MiB of stack in a debug build;
/// eight times that, of which only the pages touched are ever committed.
const DEEP_PARSE_STACK: usize = 16 << 20;

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
    #[error("alert file {path} is not an alert ({reason}); set <alert_format>json</alert_format> in every <integration> block")]
    NotJson { path: PathBuf, reason: String },
    #[error("alert file {path} is not a usable JSON alert: {reason}")]
    BadJson { path: PathBuf, reason: String },
}

/// Why some bytes are not an alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    Empty,
    /// Does not start with `{`, and is not the legacy text format either.
    NotJson(String),
    /// Starts with `{` but is not a JSON object: truncated, malformed, or nested too deep.
    BadJson(String),
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParseError::Empty => f.write_str("empty"),
            ParseError::NotJson(r) | ParseError::BadJson(r) => f.write_str(r),
        }
    }
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
    let path = path.to_path_buf();
    parse(&bytes).map_err(|e| match e {
        ParseError::Empty => AlertError::Empty { path },
        ParseError::NotJson(reason) => AlertError::NotJson { path, reason },
        ParseError::BadJson(reason) => AlertError::BadJson { path, reason },
    })
}

/// An alert file's content: JSON, or integratord's legacy text format.
pub fn parse(bytes: &[u8]) -> Result<(Value, AlertFormat), ParseError> {
    // Log lines can carry any bytes; a lone invalid byte must not cost us the whole alert.
    let text: Cow<str> = String::from_utf8_lossy(bytes);
    let text = text.trim_start_matches('\u{feff}').trim();
    if text.is_empty() {
        return Err(ParseError::Empty);
    }
    if text.starts_with('{') {
        return parse_object(text).map(|v| (v, AlertFormat::Json));
    }
    parse_legacy(text)
        .map(|v| (v, AlertFormat::Legacy))
        .ok_or_else(|| {
            ParseError::NotJson("neither JSON nor integratord's legacy text format".into())
        })
}

/// One JSON alert (a line of `alerts.json`), at any depth integratord accepts.
pub fn parse_json(bytes: &[u8]) -> Result<Value, ParseError> {
    let text: Cow<str> = String::from_utf8_lossy(bytes);
    let text = text.trim_start_matches('\u{feff}').trim();
    match text.as_bytes().first() {
        None => Err(ParseError::Empty),
        Some(b'{') => parse_object(text),
        Some(_) => Err(ParseError::NotJson("not a JSON object".into())),
    }
}

fn parse_object(text: &str) -> Result<Value, ParseError> {
    let value = match serde_json::from_str::<Value>(text) {
        // serde_json's own limit (128): all real alerts parse here, on our stack, with no thread.
        Err(e) if is_recursion_limit(&e) => parse_deep(text)?,
        other => other.map_err(describe)?,
    };
    match value {
        Value::Object(_) => Ok(value),
        _ => Err(ParseError::BadJson("not a JSON object".into())),
    }
}

fn describe(e: serde_json::Error) -> ParseError {
    ParseError::BadJson(if e.is_eof() {
        format!("truncated JSON: {e}")
    } else {
        format!("invalid JSON: {e}")
    })
}

fn is_recursion_limit(e: &serde_json::Error) -> bool {
    e.is_syntax() && e.to_string().starts_with("recursion limit exceeded")
}

/// The slow path for alerts nested deeper than serde_json's limit: refuse beyond cJSON's limit,
/// else parse without a limit on a thread whose stack fits [`MAX_DEPTH`] levels, and return the
/// alert cut to [`KEPT_DEPTH`] (the cut-off parts are freed on that thread too).
fn parse_deep(text: &str) -> Result<Value, ParseError> {
    let depth = nesting_depth(text.as_bytes());
    if depth > MAX_DEPTH {
        return Err(ParseError::BadJson(format!(
            "nested {depth} levels deep, more than the {MAX_DEPTH} integratord's cJSON reader accepts"
        )));
    }
    std::thread::scope(|scope| {
        let parse = std::thread::Builder::new()
            .name("deep-alert".into())
            .stack_size(DEEP_PARSE_STACK)
            .spawn_scoped(scope, || {
                let mut de = serde_json::Deserializer::from_str(text);
                de.disable_recursion_limit();
                let mut value = Value::deserialize(&mut de).map_err(describe)?;
                de.end().map_err(describe)?;
                cut(&mut value, KEPT_DEPTH);
                Ok(value)
            });
        match parse {
            Ok(handle) => handle
                .join()
                .unwrap_or_else(|_| Err(ParseError::BadJson("parser failed".into()))),
            Err(e) => Err(ParseError::BadJson(format!(
                "cannot start the parser for a {depth}-level alert: {e}"
            ))),
        }
    })
}

/// Replaces every container deeper than `levels` with `null`. Recurses at most `levels` deep.
fn cut(value: &mut Value, levels: usize) {
    if !(value.is_array() || value.is_object()) {
        return;
    }
    if levels == 0 {
        *value = Value::Null;
        return;
    }
    match value {
        Value::Array(items) => items.iter_mut().for_each(|v| cut(v, levels - 1)),
        Value::Object(map) => map.values_mut().for_each(|v| cut(v, levels - 1)),
        _ => {}
    }
}

/// The deepest nesting of `[`/`{` in a JSON text (strings skipped), without recursion.
fn nesting_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in bytes {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
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

/// An alert's `timestamp` (`2026-11-27T06:05:24.123+0000`, as analysisd writes it) in
/// milliseconds since the epoch.
pub fn alert_time_ms(alert: &Value) -> Option<i64> {
    let t = alert.get("timestamp")?.as_str()?;
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = t.get(r)?;
        s.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let (millis, zone) = match t.get(19..20) {
        Some(".") => (num(20..23)?, 23),
        _ => (0, 19),
    };
    let offset_min = match t.get(zone..zone + 1) {
        Some(sign @ ("+" | "-")) => {
            let m = num(zone + 1..zone + 3)? * 60 + num(zone + 3..zone + 5)?;
            if sign == "-" {
                -m
            } else {
                m
            }
        }
        Some("Z") | None => 0,
        Some(_) => return None,
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let days = crate::civil::days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    Some(secs * 1000 + millis)
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
        assert_eq!(parse(b"").unwrap_err(), ParseError::Empty);
        assert_eq!(parse(b" \n").unwrap_err(), ParseError::Empty);
        assert!(matches!(parse(b"{\"rule\":{\"id\":").unwrap_err(),
                         ParseError::BadJson(r) if r.contains("truncated")));
        assert!(matches!(
            parse(b"{\"a\":1} x").unwrap_err(),
            ParseError::BadJson(_)
        ));
        assert!(matches!(
            parse(b"[1,2]").unwrap_err(),
            ParseError::NotJson(_)
        ));
        assert!(matches!(
            parse(b"hello world").unwrap_err(),
            ParseError::NotJson(_)
        ));
        assert!(matches!(
            parse_json(b"alertdate='x'\nruleid='1'").unwrap_err(),
            ParseError::NotJson(_)
        ));
    }

    /// `{"data":{"srcip":IP,"x":{"x":…depth…}}}` as a log decoded by the stock `json` decoder.
    fn nested(depth: usize, trailer: &str) -> String {
        let mut s = String::from("{\"data\":{\"srcip\":\"185.220.101.47\",\"x\":");
        s.push_str(&"{\"x\":".repeat(depth - 2));
        s.push_str("\"deepest\"");
        s.push_str(&"}".repeat(depth - 2));
        s.push_str(trailer);
        s.push_str("}}");
        s
    }

    #[test]
    fn alerts_nested_up_to_cjsons_limit_are_read_and_cut_short() {
        for depth in [127, 128, 129, 300, 900, MAX_DEPTH] {
            let text = nested(depth, ",\"dstip\":\"45.155.205.233\"");
            assert_eq!(nesting_depth(text.as_bytes()), depth);
            let (v, f) = parse(text.as_bytes()).unwrap_or_else(|e| panic!("depth {depth}: {e}"));
            assert_eq!(f, AlertFormat::Json);
            assert_eq!(v["data"]["srcip"], "185.220.101.47", "depth {depth}");
            assert_eq!(v["data"]["dstip"], "45.155.205.233", "depth {depth}");
            assert_eq!(parse_json(text.as_bytes()).unwrap(), v);
            // Real alerts keep every level; deep ones are cut to KEPT_DEPTH.
            let kept = nesting_depth(serde_json::to_string(&v).unwrap().as_bytes());
            assert_eq!(
                kept,
                if depth < 128 { depth } else { KEPT_DEPTH },
                "depth {depth}"
            );
        }
    }

    #[test]
    fn deeper_than_cjson_or_broken_deep_json_is_refused_without_the_format_hint() {
        let too_deep = nested(MAX_DEPTH + 1, "");
        let err = parse(too_deep.as_bytes()).unwrap_err();
        assert!(
            matches!(&err, ParseError::BadJson(r) if r.contains("1001 levels")),
            "{err:?}"
        );
        let truncated = &nested(500, "")[..2000];
        assert!(
            matches!(parse(truncated.as_bytes()).unwrap_err(), ParseError::BadJson(r) if r.contains("truncated"))
        );
        // Braces inside strings are not nesting.
        assert_eq!(nesting_depth(br#"{"a":"{{[[\"{{","b":[{}]}"#), 3);
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
