//! The settings file as setup finds it: the defaults of a re-run, and the whole document, so
//! that keys this version does not know are kept.

use crate::settings::{Settings, FORBIDDEN_MODE_BITS, SETTINGS_PATH};
use anyhow::{anyhow, Context, Result};
use serde_json::Value;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The settings file as it is now.
pub(super) struct Existing {
    pub(super) path: PathBuf,
    /// The whole JSON document, to keep keys this version does not know.
    pub(super) value: Option<Value>,
    pub(super) settings: Settings,
    pub(super) warnings: Vec<String>,
}

impl Existing {
    pub(super) fn read(home: &Path) -> Result<Existing> {
        let path = home.join(SETTINGS_PATH);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Existing {
                    path,
                    value: None,
                    settings: Settings::default(),
                    warnings: Vec::new(),
                })
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let invalid = |why: String| {
            anyhow!(
                "{} is not valid ({why}): fix it, or move it away to start afresh",
                path.display()
            )
        };
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
        if !value.is_object() {
            return Err(invalid("not a JSON object".into()));
        }
        let settings: Settings =
            serde_json::from_value(value.clone()).map_err(|e| invalid(e.to_string()))?;
        let mut warnings = Vec::new();
        let mode = std::fs::metadata(&path)?.mode() & 0o7777;
        if mode & FORBIDDEN_MODE_BITS != 0 {
            warnings.push(format!(
                "{} has mode {mode:04o} but holds the API key, and integratord's runs refuse it: run `chmod 0640 {}`",
                path.display(),
                path.display()
            ));
        }
        Ok(Existing {
            path,
            value: Some(value),
            settings,
            warnings,
        })
    }
}
