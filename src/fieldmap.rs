//! The declarative field map: which alert fields hold indicators, of what kind, written how.
//! The built-in map is `templates/field-map.json`; a settings file may replace it, so a new
//! decoder needs no recompile. It is part of the settings schema, and the runtime's extraction
//! walks it.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// The built-in map, compiled in so the runtime needs no file besides its settings.
pub const DEFAULT_FIELD_MAP: &str = include_str!("../templates/field-map.json");

/// Parses the built-in map. It is tested at build time, so a failure here is a packaging bug.
pub fn default_rules() -> Vec<FieldRule> {
    serde_json::from_str(DEFAULT_FIELD_MAP).unwrap_or_default()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldRule {
    pub path: FieldPath,
    pub kind: FieldKind,
    #[serde(default, skip_serializing_if = "ValueFormat::is_plain")]
    pub format: ValueFormat,
    /// Split the value on this separator first (Sysmon's `queryResults` is `;`-separated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<String>,
    /// Only read the field when another field has one of the listed values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Condition>,
    /// Free text for humans: which decoder or product writes this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldKind {
    Ip,
    Domain,
    Url,
    Md5,
    Sha1,
    Sha256,
    /// A digest whose kind follows from its length, or from its key in `hashes` format.
    Hash,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueFormat {
    #[default]
    Plain,
    /// Sysmon's `SHA1=..,MD5=..,SHA256=..,IMPHASH=..` list (any subset, any order).
    Hashes,
}

impl ValueFormat {
    fn is_plain(&self) -> bool {
        *self == ValueFormat::Plain
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    pub path: FieldPath,
    #[serde(rename = "in")]
    pub any_of: Vec<String>,
}

impl Condition {
    pub fn holds(&self, alert: &Value) -> bool {
        let mut found = Vec::new();
        self.path.collect(alert, &mut found);
        found
            .iter()
            .any(|v| self.any_of.iter().any(|want| want == v))
    }
}

/// The most steps a path may have. Alerts are kept to `alert::KEPT_DEPTH` levels when read, far
/// deeper than this, so every path a field map can name is still there.
pub const MAX_STEPS: usize = 32;

/// A dotted path into the alert, where `name[]` walks every element of an array:
/// `data.dns.queries[].rrname`. A leaf that is an array yields each of its strings.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FieldPath {
    text: String,
    steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Step {
    key: String,
    each: bool,
}

impl FieldPath {
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Appends every string found at this path (numbers too, as their text).
    pub fn collect<'a>(&self, alert: &'a Value, out: &mut Vec<std::borrow::Cow<'a, str>>) {
        walk(alert, &self.steps, out);
    }
}

fn walk<'a>(value: &'a Value, steps: &[Step], out: &mut Vec<std::borrow::Cow<'a, str>>) {
    let Some((step, rest)) = steps.split_first() else {
        leaf(value, out);
        return;
    };
    let Some(next) = value.get(&step.key) else {
        return;
    };
    match (step.each, next) {
        (true, Value::Array(items)) => items.iter().for_each(|item| walk(item, rest, out)),
        _ => walk(next, rest, out),
    }
}

fn leaf<'a>(value: &'a Value, out: &mut Vec<std::borrow::Cow<'a, str>>) {
    match value {
        Value::String(s) => out.push(s.as_str().into()),
        Value::Number(n) => out.push(n.to_string().into()),
        Value::Array(items) => items.iter().for_each(|item| match item {
            Value::String(s) => out.push(s.as_str().into()),
            Value::Number(n) => out.push(n.to_string().into()),
            _ => {}
        }),
        _ => {}
    }
}

impl TryFrom<String> for FieldPath {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        let steps = text
            .split('.')
            .map(|part| {
                let (key, each) = match part.strip_suffix("[]") {
                    Some(k) => (k, true),
                    None => (part, false),
                };
                if key.is_empty() || key.contains(['[', ']']) {
                    Err(format!(
                        "{text:?} is not a field path like data.dns.queries[].rrname"
                    ))
                } else {
                    Ok(Step {
                        key: key.to_string(),
                        each,
                    })
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        if steps.len() > MAX_STEPS {
            return Err(format!(
                "{text:?} has {} steps; a field path has at most {MAX_STEPS}",
                steps.len()
            ));
        }
        Ok(FieldPath { text, steps })
    }
}

impl From<FieldPath> for String {
    fn from(p: FieldPath) -> String {
        p.text
    }
}

impl fmt::Debug for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FieldPath({})", self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_built_in_map_parses_completely() {
        let raw: Vec<Value> = serde_json::from_str(DEFAULT_FIELD_MAP).unwrap();
        let rules: Vec<FieldRule> = serde_json::from_str(DEFAULT_FIELD_MAP).unwrap();
        assert_eq!(rules.len(), raw.len());
        assert_eq!(default_rules(), rules);
    }

    #[test]
    fn paths_walk_objects_and_arrays() {
        let alert = json!({"data": {"dns": {"queries": [{"rrname": "a.example"}, {"rrname": "b.example"}, {"x": 1}]},
                                    "list": ["1.1.1.1", 2]}});
        let mut out = Vec::new();
        FieldPath::try_from("data.dns.queries[].rrname".to_string())
            .unwrap()
            .collect(&alert, &mut out);
        assert_eq!(out, vec!["a.example", "b.example"]);
        out.clear();
        FieldPath::try_from("data.list".to_string())
            .unwrap()
            .collect(&alert, &mut out);
        assert_eq!(out, vec!["1.1.1.1", "2"]);
        out.clear();
        FieldPath::try_from("data.missing.deeper".to_string())
            .unwrap()
            .collect(&alert, &mut out);
        assert!(out.is_empty());
        assert!(FieldPath::try_from("data..x".to_string()).is_err());
        assert!(FieldPath::try_from("data.x[0]".to_string()).is_err());
        assert!(FieldPath::try_from(vec!["a"; MAX_STEPS].join(".")).is_ok());
        assert!(FieldPath::try_from(vec!["a"; MAX_STEPS + 1].join(".")).is_err());
    }
}
