//! Writing the settings file: the keys `setup` decides, set into the current document (keys this
//! version does not know are kept as found), written in the README's key order as pretty JSON.
//! A key setup does not ask about keeps its default by being absent, so a new key of the schema
//! only needs its place in `ORDER` here (and a field in `SetupChoices` if setup asks for it).

use super::{ApiKey, InstallChoices, LookupMode, SCHEMA_VERSION};
use serde_json::{json, Map, Value};
use std::path::PathBuf;

/// What `setup` writes into the settings file.
#[derive(Debug, Clone)]
pub struct SetupChoices {
    pub url: Option<String>,
    pub api_key: Option<ApiKey>,
    pub verify_tls: bool,
    /// `None` removes the key (the bundled roots are trusted again).
    pub ca_file: Option<PathBuf>,
    pub mode: LookupMode,
    pub sightings: bool,
    pub native: bool,
    pub install: InstallChoices,
}

/// The settings file to write: the current document with setup's keys set, unknown keys kept.
pub fn compose(existing: Option<&Value>, choices: &SetupChoices) -> serde_json::Result<Vec<u8>> {
    let mut root = existing
        .filter(|v| v.is_object())
        .cloned()
        .unwrap_or_else(|| json!({}));
    let obj = root.as_object_mut().expect("an object");
    obj.insert("version".into(), json!(SCHEMA_VERSION));
    let misp = object_at(obj, "misp");
    misp.insert("url".into(), json!(choices.url));
    misp.insert(
        "api_key".into(),
        json!(choices.api_key.as_ref().map(ApiKey::expose)),
    );
    misp.insert("verify_tls".into(), json!(choices.verify_tls));
    match &choices.ca_file {
        Some(p) => {
            misp.insert("ca_file".into(), json!(p));
        }
        None => {
            misp.remove("ca_file");
        }
    }
    // The default mode is only written where a file already says which one it uses.
    let has_mode = obj.get("lookup").is_some_and(|l| l.get("mode").is_some());
    if choices.mode != LookupMode::Online || has_mode {
        object_at(obj, "lookup").insert("mode".into(), json!(choices.mode.as_str()));
    }
    let has_sightings = obj
        .get("sightings")
        .is_some_and(|s| s.get("enabled").is_some());
    if choices.sightings || has_sightings {
        object_at(obj, "sightings").insert("enabled".into(), json!(choices.sightings));
    }
    let has_native = obj
        .get("native")
        .is_some_and(|s| s.get("enabled").is_some());
    if choices.native || has_native {
        object_at(obj, "native").insert("enabled".into(), json!(choices.native));
    }
    let install = object_at(obj, "install");
    let stored = serde_json::to_value(&choices.install)?;
    // Unset optional choices are left out by serialisation: drop what an older file had.
    for key in ["level", "rule_id_base"] {
        install.remove(key);
    }
    if let Value::Object(map) = stored {
        install.extend(map);
    }
    let mut bytes = serde_json::to_vec_pretty(&Ordered {
        value: &root,
        keys: Keys::Top,
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// The settings file `bytes` with its `install` section replaced by `choices`, as `install
/// --rule-id-base` / `--sample-rule` store them (keys as serde_json sorts them).
pub fn with_install_choices(bytes: &[u8], choices: &InstallChoices) -> serde_json::Result<Vec<u8>> {
    let mut value: Value = serde_json::from_slice(bytes)?;
    value["install"] = serde_json::to_value(choices)?;
    let mut text = serde_json::to_vec_pretty(&value)?;
    text.push(b'\n');
    Ok(text)
}

/// The order keys are written in (serde_json sorts them otherwise): the README's, then the rest
/// alphabetically. Each top-level section names the order of its own keys; a section with none
/// listed keeps them alphabetical.
const ORDER: &[(&str, &[&str])] = &[
    ("version", &[]),
    (
        "misp",
        &[
            "url",
            "api_key",
            "verify_tls",
            "ca_file",
            "connect_timeout_ms",
            "timeout_ms",
        ],
    ),
    ("lookup", &[]),
    ("allowlist", &[]),
    ("cache", &[]),
    ("breaker", &[]),
    ("mirror", &[]),
    ("sightings", &[]),
    ("native", &[]),
    ("field_map", &[]),
    (
        "install",
        &["level", "groups", "rule_ids", "rule_id_base", "sample_rule"],
    ),
];

/// Where keys go at one level of the document: the top level's by `ORDER`, a section's by its
/// list there, anything deeper alphabetically.
#[derive(Clone, Copy)]
enum Keys<'a> {
    Top,
    Listed(&'a [&'a str]),
}

impl<'a> Keys<'a> {
    fn rank(self, key: &str) -> Option<usize> {
        match self {
            Keys::Top => ORDER.iter().position(|(k, _)| *k == key),
            Keys::Listed(order) => order.iter().position(|k| *k == key),
        }
    }

    fn below(self, key: &str) -> Keys<'a> {
        match self {
            Keys::Top => Keys::Listed(
                ORDER
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map_or(&[], |(_, order)| order),
            ),
            Keys::Listed(_) => Keys::Listed(&[]),
        }
    }
}

struct Ordered<'a> {
    value: &'a Value,
    keys: Keys<'a>,
}

impl serde::Serialize for Ordered<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let Value::Object(map) = self.value else {
            return self.value.serialize(s);
        };
        let mut keys: Vec<&String> = map.keys().collect();
        keys.sort_by_key(|k| (self.keys.rank(k).unwrap_or(usize::MAX), k.as_str()));
        let mut m = s.serialize_map(Some(map.len()))?;
        for k in keys {
            m.serialize_entry(
                k,
                &Ordered {
                    value: &map[k],
                    keys: self.keys.below(k),
                },
            )?;
        }
        m.end()
    }
}

fn object_at<'a>(obj: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let slot = obj.entry(key).or_insert_with(|| json!({}));
    if !slot.is_object() {
        *slot = json!({});
    }
    slot.as_object_mut().expect("an object")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Settings;
    use std::path::Path;

    fn choices() -> SetupChoices {
        SetupChoices {
            url: Some("https://misp.test".into()),
            api_key: Some(ApiKey::new("0123456789abcdefABCDEF0123456789abcdefAB")),
            verify_tls: true,
            ca_file: Some(PathBuf::from("/etc/ssl/ca.pem")),
            mode: LookupMode::Online,
            sightings: false,
            native: false,
            install: InstallChoices {
                level: None,
                groups: vec!["authentication_failed".into()],
                rule_ids: vec![],
                rule_id_base: None,
                sample_rule: true,
            },
        }
    }

    #[test]
    fn the_mode_is_written_only_when_chosen_or_already_there() {
        let fresh: Value = serde_json::from_slice(&compose(None, &choices()).unwrap()).unwrap();
        assert!(fresh["lookup"].get("mode").is_none(), "{fresh}");
        let mirror = SetupChoices {
            mode: LookupMode::Mirror,
            ..choices()
        };
        let v: Value = serde_json::from_slice(&compose(Some(&fresh), &mirror).unwrap()).unwrap();
        assert_eq!(v["lookup"]["mode"], "mirror");
        let back: Value = serde_json::from_slice(&compose(Some(&v), &choices()).unwrap()).unwrap();
        assert_eq!(back["lookup"]["mode"], "online");
    }

    #[test]
    fn settings_keep_unknown_keys_and_set_ours() {
        let existing = json!({
            "version": 1,
            "misp": {"url": "https://old", "api_key": "x", "timeout_ms": 3000, "future": true},
            "lookup": {"max_events": 3},
            "newer_section": {"a": 1},
            "install": {"level": 9, "rule_id_base": 118000, "extra": "kept"}
        });
        let bytes = compose(Some(&existing), &choices()).unwrap();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["misp"]["url"], "https://misp.test");
        assert_eq!(v["misp"]["timeout_ms"], 3000);
        assert_eq!(v["misp"]["future"], true);
        assert_eq!(v["misp"]["ca_file"], "/etc/ssl/ca.pem");
        assert_eq!(v["lookup"]["max_events"], 3);
        assert_eq!(v["newer_section"]["a"], 1);
        assert_eq!(v["install"]["extra"], "kept");
        assert!(v["install"].get("level").is_none(), "level dropped: {v}");
        assert!(v["install"].get("rule_id_base").is_none());
        assert_eq!(v["install"]["groups"], json!(["authentication_failed"]));
        assert_eq!(v["install"]["sample_rule"], true);
        assert!(bytes.ends_with(b"}\n"));
        let text = String::from_utf8(bytes.clone()).unwrap();
        let at = |k: &str| text.find(k).unwrap();
        assert!(at("\"version\"") < at("\"misp\"") && at("\"misp\"") < at("\"install\""));
        assert!(at("\"url\"") < at("\"api_key\"") && at("\"api_key\"") < at("\"verify_tls\""));
        assert!(
            at("\"groups\"") < at("\"sample_rule\"") && at("\"install\"") < at("\"newer_section\"")
        );
        let mut c = choices();
        c.ca_file = None;
        let v: Value = serde_json::from_slice(&compose(Some(&v), &c).unwrap()).unwrap();
        assert!(v["misp"].get("ca_file").is_none());
        let fresh: Value = serde_json::from_slice(&compose(None, &c).unwrap()).unwrap();
        assert_eq!(fresh["version"], 1);
        Settings::from_bytes(
            &serde_json::to_vec(&fresh).unwrap(),
            Path::new("/x/custom-misp.json"),
        )
        .unwrap();
    }

    #[test]
    fn native_is_written_when_chosen_or_already_there() {
        let fresh: Value = serde_json::from_slice(&compose(None, &choices()).unwrap()).unwrap();
        assert!(fresh.get("native").is_none(), "{fresh}");
        let on = SetupChoices {
            mode: LookupMode::Mirror,
            native: true,
            ..choices()
        };
        let v: Value = serde_json::from_slice(&compose(Some(&fresh), &on).unwrap()).unwrap();
        assert_eq!(v["native"]["enabled"], true);
        let off = SetupChoices {
            mode: LookupMode::Mirror,
            ..choices()
        };
        let v: Value = serde_json::from_slice(&compose(Some(&v), &off).unwrap()).unwrap();
        assert_eq!(
            v["native"]["enabled"], false,
            "an explicit choice stays explicit"
        );
    }
}
