//! The settings file `<wazuh-home>/etc/custom-misp.json`: its schema (version 1), the safe
//! defaults, the permission check, and how integratord's own `<api_key>`, `<hook_url>` and
//! `<options>` override it. The runtime is lenient (unknown keys are reported, never fatal) so an
//! older copy on a cluster worker keeps working with a newer master's file. Writing it (`setup`,
//! and `install`'s stored choices) is `write`'s job.

mod write;

pub use write::{compose, with_install_choices, SetupChoices};

use crate::fieldmap::FieldRule;
use crate::ioc::{Cidr, IocKind};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Relative to the Wazuh home.
pub const SETTINGS_PATH: &str = "etc/custom-misp.json";
pub const SCHEMA_VERSION: u64 = 1;
/// Bits that must be clear: group write/exec and anything for others (the file holds the key).
pub const FORBIDDEN_MODE_BITS: u32 = 0o037;
const MAX_SETTINGS_BYTES: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub version: u64,
    pub misp: MispSettings,
    pub lookup: LookupSettings,
    pub allowlist: Allowlist,
    pub cache: CacheSettings,
    pub breaker: BreakerSettings,
    /// The local copy of MISP that `mirror` and `hybrid` lookups answer from.
    pub mirror: MirrorSettings,
    /// Telling MISP when an indicator is seen here.
    pub sightings: SightingsSettings,
    /// The mirror as Wazuh CDB lists that analysisd matches itself.
    pub native: NativeSettings,
    /// Replaces the built-in field map (`templates/field-map.json`) when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field_map: Option<Vec<FieldRule>>,
    /// What the installer chose, so that a reinstall reproduces the same files.
    pub install: InstallChoices,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            version: SCHEMA_VERSION,
            misp: MispSettings::default(),
            lookup: LookupSettings::default(),
            allowlist: Allowlist::default(),
            cache: CacheSettings::default(),
            breaker: BreakerSettings::default(),
            mirror: MirrorSettings::default(),
            sightings: SightingsSettings::default(),
            native: NativeSettings::default(),
            field_map: None,
            install: InstallChoices::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MispSettings {
    pub url: Option<String>,
    pub api_key: Option<ApiKey>,
    pub verify_tls: bool,
    /// PEM bundle trusted instead of the bundled Mozilla roots (a private CA, or the system
    /// bundle `/etc/ssl/certs/ca-certificates.crt`).
    pub ca_file: Option<PathBuf>,
    pub connect_timeout_ms: u64,
    /// The whole request, from connect to the last byte of the body.
    pub timeout_ms: u64,
}

impl Default for MispSettings {
    fn default() -> Self {
        MispSettings {
            url: None,
            api_key: None,
            verify_tls: true,
            ca_file: None,
            connect_timeout_ms: 2_000,
            timeout_ms: 5_000,
        }
    }
}

/// Where a run's answers come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LookupMode {
    /// Ask MISP (through the cache and the circuit breaker).
    #[default]
    Online,
    /// Answer only from the local mirror: no network per alert.
    Mirror,
    /// The mirror for its kinds while it is fresh; MISP for other kinds and while it is stale.
    Hybrid,
}

impl LookupMode {
    pub fn uses_mirror(self) -> bool {
        self != LookupMode::Online
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LookupMode::Online => "online",
            LookupMode::Mirror => "mirror",
            LookupMode::Hybrid => "hybrid",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LookupSettings {
    pub mode: LookupMode,
    pub kinds: Vec<IocKind>,
    /// Only attributes flagged for detection (`to_ids`) match.
    pub to_ids: bool,
    /// Only attributes of published events match.
    pub published: bool,
    pub enforce_warninglist: bool,
    /// Matches reported per alert (one event each).
    pub max_events: usize,
    /// Attributes MISP may return per request.
    pub limit: u32,
}

impl Default for LookupSettings {
    fn default() -> Self {
        LookupSettings {
            mode: LookupMode::Online,
            kinds: IocKind::ALL.to_vec(),
            to_ids: true,
            published: true,
            enforce_warninglist: true,
            max_events: 10,
            limit: 100,
        }
    }
}

/// The lookup cache shared by all runs (`var/custom-misp/cache.db`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CacheSettings {
    pub enabled: bool,
    /// How long an indicator MISP knows is remembered.
    pub positive_ttl_s: u64,
    /// How long "MISP does not know it" is remembered (shorter: new intelligence arrives).
    pub negative_ttl_s: u64,
    /// Entries kept; the oldest are evicted beyond it.
    pub max_entries: u32,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            enabled: true,
            positive_ttl_s: 3600,
            negative_ttl_s: 900,
            max_entries: 65536,
        }
    }
}

/// When MISP keeps failing, stop asking it for a while (`var/custom-misp/breaker`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BreakerSettings {
    /// Consecutive failures that open the breaker.
    pub failures: u32,
    /// First pause; it doubles after each failed probe, up to `max_backoff_s`.
    pub backoff_s: u64,
    pub max_backoff_s: u64,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        BreakerSettings {
            failures: 3,
            backoff_s: 30,
            max_backoff_s: 600,
        }
    }
}

/// `wazuh-misp sync` and the mirror it keeps (`var/custom-misp/mirror.db`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MirrorSettings {
    /// How often the scheduled sync runs.
    pub interval_s: u64,
    /// Older than this, the mirror is reported stale (and `hybrid` asks MISP); default 3 intervals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age_s: Option<u64>,
    /// A full sync at least this often repairs what no event timestamp shows.
    pub full_interval_s: u64,
    /// Kinds the mirror holds; default `lookup.kinds`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kinds: Option<Vec<IocKind>>,
    /// Attributes per restSearch page.
    pub page_size: u32,
    /// Events per `eventid` batch of an incremental sync.
    pub batch_events: u32,
    /// One sync request, connect to last byte.
    pub request_timeout_s: u64,
    /// The largest answer one sync request may return.
    pub max_body_mb: u64,
    /// A whole sync; past it the sync gives up and the previous mirror stays.
    pub time_limit_s: u64,
}

impl Default for MirrorSettings {
    fn default() -> Self {
        MirrorSettings {
            interval_s: 300,
            max_age_s: None,
            full_interval_s: 86_400,
            kinds: None,
            page_size: 5_000,
            batch_events: 100,
            request_timeout_s: 120,
            max_body_mb: 256,
            time_limit_s: 3_600,
        }
    }
}

impl MirrorSettings {
    pub fn max_age_s(&self) -> u64 {
        self.max_age_s
            .unwrap_or_else(|| self.interval_s.saturating_mul(3))
    }
}

/// Sightings: every reported hit is spooled locally (`var/custom-misp/sightings.spool`) and the
/// scheduled run sends them to MISP's `/sightings/add`, never on an alert's path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SightingsSettings {
    pub enabled: bool,
    /// At most one sighting per attribute this often, however many alerts hit it.
    pub min_interval_s: u64,
    /// The sighting's `source` in MISP; default `wazuh:<cluster node name or host name>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The spool's bound; past it the oldest records go first (counted and reported).
    pub max_spool_kb: u64,
}

impl Default for SightingsSettings {
    fn default() -> Self {
        SightingsSettings {
            enabled: false,
            min_interval_s: 3_600,
            source: None,
            max_spool_kb: 4_096,
        }
    }
}

/// Native matching: every sync that changes the mirror also writes it as CDB lists under
/// `etc/lists/wazuh-misp/`, our CDB rules match them inside analysisd, and a hot reload (4.13+)
/// makes them live; only the alerts those rules raise start the runtime, to be enriched from
/// the mirror.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NativeSettings {
    /// Needs `lookup.mode` `mirror` or `hybrid`.
    pub enabled: bool,
    /// At most one hot reload this often: a reload drops events in flight and resets
    /// correlation counters, so list changes in between wait for the next scheduled run.
    pub min_reload_interval_s: u64,
    /// Before Wazuh 4.13 (no hot reload), or once analysisd holds too much (below), restart the
    /// manager safely after the lists changed; off by default: the lists then apply at the next
    /// restart.
    pub restart_without_reload: bool,
    /// analysisd never releases a list it opened when it hot-reloads (`os_remove_cdblist` in
    /// `src/analysisd/lists_list.c` frees the names only): each reload keeps one descriptor and
    /// one mapping per opened list, and a replaced `.cdb` keeps its disk space. Past this many MiB
    /// of replaced `.cdb` files, or this many reloads, since analysisd started, new lists wait
    /// for its next start instead of one more hot reload.
    pub max_held_mb: u64,
    pub max_reloads_per_start: u64,
}

impl Default for NativeSettings {
    fn default() -> Self {
        NativeSettings {
            enabled: false,
            min_reload_interval_s: 300,
            restart_without_reload: false,
            max_held_mb: 1024,
            max_reloads_per_start: 1000,
        }
    }
}

impl Settings {
    /// Whether the scheduled run (the command wodle) has anything to do.
    pub fn needs_schedule(&self) -> bool {
        self.lookup.mode.uses_mirror() || self.sightings.enabled
    }

    /// The kinds the mirror holds: `mirror.kinds` within `lookup.kinds`.
    pub fn mirror_kinds(&self) -> Vec<IocKind> {
        match &self.mirror.kinds {
            Some(k) => IocKind::ALL
                .into_iter()
                .filter(|x| k.contains(x) && self.lookup.kinds.contains(x))
                .collect(),
            None => self.lookup.kinds.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Allowlist {
    pub cidrs: Vec<Cidr>,
    /// Each entry also covers its subdomains.
    pub domains: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InstallChoices {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<u8>,
    pub groups: Vec<String>,
    pub rule_ids: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_id_base: Option<u32>,
    pub sample_rule: bool,
}

impl InstallChoices {
    /// The rule id base our rules are installed with: the chosen one, else the default.
    pub fn base(&self) -> u32 {
        self.rule_id_base
            .unwrap_or(crate::wazuh::rules::DEFAULT_RULE_ID_BASE)
    }
}

/// The MISP API key. It has no `Display`, and its `Debug` is masked, so it cannot end up in a
/// log line or an error message by accident.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(key.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// MISP's own format: exactly 40 ASCII letters and digits.
    pub fn is_well_formed(&self) -> bool {
        self.0.len() == 40 && self.0.bytes().all(|b| b.is_ascii_alphanumeric())
    }
    /// What can go into an HTTP header at all.
    fn is_usable(&self) -> bool {
        !self.0.is_empty() && self.0.bytes().all(|b| b.is_ascii_graphic())
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(****)")
    }
}

/// Values integratord passes on the command line, from `<api_key>`, `<hook_url>`, `<options>`.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub api_key: Option<ApiKey>,
    pub hook_url: Option<String>,
    pub options_file: Option<PathBuf>,
}

/// Settings ready for the runtime: URL and key present, values in range.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub settings: Settings,
    pub misp_url: String,
    pub api_key: ApiKey,
    /// Dotted paths of keys this version does not know (reported, never fatal).
    pub unknown_keys: Vec<String>,
    /// The settings file, when one was read.
    pub file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("settings file {path} not found: run `wazuh-misp setup`, or give the integration both <hook_url> (the MISP URL) and <api_key>")]
    Missing { path: PathBuf },
    #[error("cannot read {path}: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} has mode {mode:04o}, but it holds the MISP API key: run `chown root:wazuh {path} && chmod 0640 {path}`")]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("{origin} is not valid: {message}")]
    Invalid { origin: String, message: String },
}

impl Settings {
    /// Reads and checks the settings file, applies integratord's overrides, and returns settings
    /// the runtime can use.
    pub fn load(home: &Path, overrides: &Overrides) -> Result<Loaded, SettingsError> {
        let path = home.join(SETTINGS_PATH);
        let (mut merged, file) = match read_settings_file(&path)? {
            Some(value) => (value, Some(path.clone())),
            None if overrides.api_key.is_some() && overrides.hook_url.is_some() => {
                (Value::Object(Default::default()), None)
            }
            None => return Err(SettingsError::Missing { path }),
        };
        if let Some(options) = &overrides.options_file {
            let origin = format!("the integration's <options> ({})", options.display());
            let value = read_json(options, 64 * 1024).map_err(|e| match e {
                ReadError::Io(source) => SettingsError::Unreadable {
                    path: options.clone(),
                    source,
                },
                ReadError::Json(message) => SettingsError::Invalid {
                    origin: origin.clone(),
                    message,
                },
            })?;
            if !value.is_object() {
                return Err(SettingsError::Invalid {
                    origin,
                    message: "expected a JSON object such as {\"misp\": {\"verify_tls\": false}}"
                        .into(),
                });
            }
            merge(&mut merged, value);
        }
        let origin = file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "the integration's settings".into());
        Self::finish(merged, file, origin, overrides)
    }

    /// Settings from the bytes of a settings file that is not on disk yet (what `setup` is about
    /// to write), checked exactly as the runtime will check the file.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Loaded, SettingsError> {
        let origin = path.display().to_string();
        let value: Value = serde_json::from_slice(bytes).map_err(|e| SettingsError::Invalid {
            origin: origin.clone(),
            message: e.to_string(),
        })?;
        Self::finish(
            value,
            Some(path.to_path_buf()),
            origin,
            &Overrides::default(),
        )
    }

    fn finish(
        merged: Value,
        file: Option<PathBuf>,
        origin: String,
        overrides: &Overrides,
    ) -> Result<Loaded, SettingsError> {
        let mut unknown_keys = Vec::new();
        let mut settings: Settings = serde_ignored::deserialize(merged, |path| {
            unknown_keys.push(path.to_string());
        })
        .map_err(|e| SettingsError::Invalid {
            origin: origin.clone(),
            message: e.to_string(),
        })?;
        if let Some(key) = &overrides.api_key {
            settings.misp.api_key = Some(key.clone());
        }
        if let Some(url) = &overrides.hook_url {
            settings.misp.url = Some(url.clone());
        }
        let invalid = |message: String| SettingsError::Invalid {
            origin: origin.clone(),
            message,
        };
        let misp_url = settings
            .misp
            .url
            .as_deref()
            .ok_or_else(|| {
                invalid(
                    "misp.url is missing (the MISP base URL, e.g. https://misp.example.org)".into(),
                )
            })
            .and_then(|u| normalize_base_url(u).map_err(invalid))?;
        let api_key = settings
            .misp
            .api_key
            .clone()
            .filter(ApiKey::is_usable)
            .ok_or_else(|| invalid("misp.api_key is missing or contains blanks".into()))?;
        settings.validate().map_err(invalid)?;
        Ok(Loaded {
            settings,
            misp_url,
            api_key,
            unknown_keys,
            file,
        })
    }

    fn validate(&self) -> Result<(), String> {
        if self.version != SCHEMA_VERSION {
            return Err(format!(
                "\"version\" is {}, this wazuh-misp understands version {SCHEMA_VERSION}: upgrade wazuh-misp on this node",
                self.version
            ));
        }
        if self.misp.connect_timeout_ms == 0 || self.misp.timeout_ms == 0 {
            return Err("misp timeouts must be greater than 0".into());
        }
        if self.breaker.failures == 0 || self.breaker.backoff_s == 0 {
            return Err("breaker.failures and breaker.backoff_s must be at least 1".into());
        }
        if self.cache.max_entries < 64 {
            return Err("cache.max_entries must be at least 64".into());
        }
        if self.lookup.max_events == 0 || self.lookup.limit == 0 {
            return Err("lookup.max_events and lookup.limit must be at least 1".into());
        }
        let m = &self.mirror;
        if m.interval_s == 0
            || m.page_size == 0
            || m.batch_events == 0
            || m.request_timeout_s == 0
            || m.max_body_mb == 0
            || m.time_limit_s == 0
        {
            return Err("mirror.interval_s, page_size, batch_events, request_timeout_s, max_body_mb and time_limit_s must be at least 1".into());
        }
        if self.sightings.max_spool_kb < 16 {
            return Err("sightings.max_spool_kb must be at least 16".into());
        }
        if self.native.enabled && !self.lookup.mode.uses_mirror() {
            return Err(format!(
                "native.enabled needs lookup.mode \"mirror\" or \"hybrid\" (it is \"{}\"): native matching builds its lists from the mirror; run `wazuh-misp setup --mode mirror --native`",
                self.lookup.mode.as_str()
            ));
        }
        Ok(())
    }
}

/// Accepts `http(s)://host[:port][/prefix]` and returns it without a trailing slash.
pub fn normalize_base_url(raw: &str) -> Result<String, String> {
    let url = raw.trim().trim_end_matches('/');
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("misp.url {url:?} must start with https:// (or http://)"))?;
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty()
        || url
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        || rest.contains(['?', '#'])
    {
        return Err(format!(
            "misp.url {url:?} is not a base URL like https://misp.example.org"
        ));
    }
    Ok(url.to_string())
}

enum ReadError {
    Io(std::io::Error),
    Json(String),
}

fn read_json(path: &Path, max: u64) -> Result<Value, ReadError> {
    let file = File::open(path).map_err(ReadError::Io)?;
    parse_limited(file, max)
}

fn parse_limited(file: File, max: u64) -> Result<Value, ReadError> {
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > max {
        return Err(ReadError::Json(format!("larger than {max} bytes")));
    }
    serde_json::from_slice(&bytes).map_err(|e| ReadError::Json(e.to_string()))
}

/// `None` when the file does not exist.
fn read_settings_file(path: &Path) -> Result<Option<Value>, SettingsError> {
    let unreadable = |source| SettingsError::Unreadable {
        path: path.to_path_buf(),
        source,
    };
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(unreadable(e)),
    };
    let mode = file.metadata().map_err(unreadable)?.mode() & 0o7777;
    if mode & FORBIDDEN_MODE_BITS != 0 {
        return Err(SettingsError::TooOpen {
            path: path.to_path_buf(),
            mode,
        });
    }
    let value = parse_limited(file, MAX_SETTINGS_BYTES).map_err(|e| match e {
        ReadError::Io(source) => unreadable(source),
        ReadError::Json(message) => SettingsError::Invalid {
            origin: path.display().to_string(),
            message,
        },
    })?;
    match value.get("version") {
        Some(_) if value.is_object() => Ok(Some(value)),
        _ => Err(SettingsError::Invalid {
            origin: path.display().to_string(),
            message: format!("expected a JSON object with \"version\": {SCHEMA_VERSION}"),
        }),
    }
}

/// Deep merge: objects merge key by key, anything else replaces.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (k, v) in over {
                match base.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        base.insert(k, v);
                    }
                }
            }
        }
        (slot, over) => *slot = over,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn home_with(settings: &str, mode: u32) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        let p = dir.path().join(SETTINGS_PATH);
        std::fs::write(&p, settings).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        dir
    }

    const KEY: &str = "0123456789abcdefABCDEF0123456789abcdefAB";

    #[test]
    fn defaults_are_the_safe_ones() {
        let s = Settings::default();
        assert!(s.misp.verify_tls);
        assert!(s.lookup.to_ids && s.lookup.published && s.lookup.enforce_warninglist);
        assert_eq!(s.lookup.max_events, 10);
    }

    #[test]
    fn loads_a_minimal_file_and_keeps_unknown_keys_as_a_report() {
        let home = home_with(
            &format!(
                r#"{{"version":1,"misp":{{"url":"https://misp.test/","api_key":"{KEY}","future":1}},"newer":true}}"#
            ),
            0o640,
        );
        let l = Settings::load(home.path(), &Overrides::default()).unwrap();
        assert_eq!(l.misp_url, "https://misp.test");
        assert_eq!(l.api_key.expose(), KEY);
        assert_eq!(l.unknown_keys, vec!["misp.future", "newer"]);
    }

    #[test]
    fn refuses_a_file_others_can_read() {
        let home = home_with(r#"{"version":1}"#, 0o644);
        let e = Settings::load(home.path(), &Overrides::default()).unwrap_err();
        assert!(
            matches!(e, SettingsError::TooOpen { mode: 0o644, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("chmod 0640"));
    }

    #[test]
    fn integratord_arguments_are_enough_without_a_file() {
        let home = tempfile::tempdir().unwrap();
        let missing = Settings::load(home.path(), &Overrides::default()).unwrap_err();
        assert!(matches!(missing, SettingsError::Missing { .. }));
        let o = Overrides {
            api_key: Some(ApiKey::new(KEY)),
            hook_url: Some("https://misp.test".into()),
            options_file: None,
        };
        let l = Settings::load(home.path(), &o).unwrap();
        assert_eq!(l.misp_url, "https://misp.test");
        assert!(l.file.is_none());
    }

    #[test]
    fn options_override_the_file_deeply() {
        let home = home_with(
            &format!(
                r#"{{"version":1,"misp":{{"url":"https://misp.test","api_key":"{KEY}","timeout_ms":3000}}}}"#
            ),
            0o640,
        );
        let opts = home.path().join("x.options");
        std::fs::write(
            &opts,
            "{\"misp\":{\"verify_tls\":false},\"lookup\":{\"max_events\":2}}\n",
        )
        .unwrap();
        let o = Overrides {
            options_file: Some(opts),
            ..Default::default()
        };
        let l = Settings::load(home.path(), &o).unwrap();
        assert!(!l.settings.misp.verify_tls);
        assert_eq!(l.settings.misp.timeout_ms, 3000);
        assert_eq!(l.settings.lookup.max_events, 2);
    }

    #[test]
    fn invalid_values_are_named_and_the_key_is_never_shown() {
        let home = home_with(
            &format!(r#"{{"version":1,"misp":{{"url":"ftp://x","api_key":"{KEY}"}}}}"#),
            0o640,
        );
        let e = Settings::load(home.path(), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("https://"), "{e}");
        assert!(!e.contains(KEY));
        let home = home_with(
            &format!(r#"{{"version":2,"misp":{{"url":"https://m","api_key":"{KEY}"}}}}"#),
            0o640,
        );
        let e = Settings::load(home.path(), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("version"), "{e}");
        let home = home_with(
            r#"{"version":1,"allowlist":{"cidrs":["10.0.0.0/99"]}}"#,
            0o640,
        );
        let e = Settings::load(home.path(), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("10.0.0.0/99"), "{e}");
        assert_eq!(format!("{:?}", ApiKey::new(KEY)), "ApiKey(****)");
    }

    #[test]
    fn native_matching_needs_a_mirror_mode() {
        let conf = |mode: &str| {
            format!(
                r#"{{"version":1,"misp":{{"url":"https://m","api_key":"{KEY}"}},"lookup":{{"mode":"{mode}"}},"native":{{"enabled":true}}}}"#
            )
        };
        let home = home_with(&conf("online"), 0o640);
        let e = Settings::load(home.path(), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("native.enabled needs lookup.mode"), "{e}");
        assert!(e.contains("--mode mirror --native"), "{e}");
        for mode in ["mirror", "hybrid"] {
            let home = home_with(&conf(mode), 0o640);
            let loaded = Settings::load(home.path(), &Overrides::default()).unwrap();
            assert!(loaded.settings.native.enabled);
            assert_eq!(loaded.settings.native.min_reload_interval_s, 300);
            assert!(!loaded.settings.native.restart_without_reload);
        }
    }
}
