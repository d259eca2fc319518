//! integratord's command line. It splits a format string on single spaces, so the layout differs
//! between Wazuh versions (4.0-4.6, 4.7, 4.8+), empty strings stand for unset values, and the
//! non-debug case appends the literal text `> /dev/null 2>&1` as an argument. Parsing is
//! positional for the first three and by content after that, so every layout (and extra or
//! missing arguments) works, and nothing here can panic on non-UTF-8 bytes.

use crate::settings::ApiKey;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// integratord's `<timeout>` default (4.8+), used when none is passed.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    pub alert_file: PathBuf,
    pub api_key: Option<ApiKey>,
    pub hook_url: Option<String>,
    pub debug: bool,
    pub options_file: Option<PathBuf>,
    /// integratord's `<timeout>`: the time we must be done in (nobody else enforces it).
    pub timeout: Duration,
    pub retries: Option<u32>,
    /// Arguments that fit no slot, for the debug log (lossy text, never the key slot).
    pub ignored: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ArgvError {
    #[error("missing the alert file argument (usage: custom-misp ALERT_FILE [api_key] [hook_url] [debug] [options] [timeout] [retries])")]
    NoAlertFile,
}

const REDIRECTION: &[u8] = b"> /dev/null 2>&1";

/// `args` excludes argv[0].
pub fn parse(args: &[OsString]) -> Result<Invocation, ArgvError> {
    let alert = args
        .first()
        .filter(|a| !a.is_empty())
        .ok_or(ArgvError::NoAlertFile)?;
    let mut inv = Invocation {
        alert_file: PathBuf::from(alert),
        api_key: None,
        hook_url: None,
        debug: false,
        options_file: None,
        timeout: DEFAULT_TIMEOUT,
        retries: None,
        ignored: Vec::new(),
    };
    let mut rest = args.iter().skip(1).map(|a| a.as_os_str());
    // Slots 2 and 3 are positional: an empty string means "not set in ossec.conf".
    if let Some(key) = rest.next().and_then(text) {
        inv.api_key = Some(ApiKey::new(key));
    }
    inv.hook_url = rest.next().and_then(text).map(str::to_string);
    let mut numbers = 0;
    for arg in rest {
        let bytes = arg.as_bytes().trim_ascii();
        if bytes.is_empty() || bytes == REDIRECTION {
            continue;
        }
        if bytes == b"debug" {
            inv.debug = true;
        } else if bytes.starts_with(b"/") && inv.options_file.is_none() {
            inv.options_file = Some(Path::new(OsStr::from_bytes(bytes)).to_path_buf());
        } else if let Some(n) = std::str::from_utf8(bytes)
            .ok()
            .and_then(|s| s.parse::<u32>().ok())
        {
            match numbers {
                0 if n > 0 => inv.timeout = Duration::from_secs(u64::from(n)),
                1 => inv.retries = Some(n),
                _ => inv.ignored.push(n.to_string()),
            }
            numbers += 1;
        } else {
            inv.ignored
                .push(String::from_utf8_lossy(bytes).chars().take(80).collect());
        }
    }
    Ok(inv)
}

fn text(arg: &OsStr) -> Option<&str> {
    arg.to_str().map(str::trim).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(parts: &[&str]) -> Vec<OsString> {
        parts.iter().map(OsString::from).collect()
    }

    const KEY: &str = "0123456789abcdefABCDEF0123456789abcdefAB";

    #[test]
    fn wazuh_4_2_to_4_6_layouts() {
        let inv = parse(&argv(&[
            "/tmp/custom-misp-1-2.alert",
            "",
            "",
            " > /dev/null 2>&1",
        ]))
        .unwrap();
        assert_eq!(inv.alert_file, PathBuf::from("/tmp/custom-misp-1-2.alert"));
        assert!(
            !inv.debug && inv.api_key.is_none() && inv.hook_url.is_none() && inv.ignored.is_empty()
        );
        assert_eq!(inv.timeout, DEFAULT_TIMEOUT);
        let inv = parse(&argv(&["/tmp/a.alert", KEY, "https://misp", "debug"])).unwrap();
        assert!(inv.debug);
        assert_eq!(inv.api_key.unwrap().expose(), KEY);
        assert_eq!(inv.hook_url.as_deref(), Some("https://misp"));
    }

    #[test]
    fn wazuh_4_7_layouts() {
        let inv = parse(&argv(&["/tmp/a.alert", "", "", "", "", "> /dev/null 2>&1"])).unwrap();
        assert!(!inv.debug && inv.options_file.is_none() && inv.ignored.is_empty());
        let inv = parse(&argv(&[
            "/tmp/a.alert",
            "",
            "",
            "debug",
            "/tmp/custom-misp-1--5.options",
        ]))
        .unwrap();
        assert!(inv.debug);
        assert_eq!(
            inv.options_file,
            Some(PathBuf::from("/tmp/custom-misp-1--5.options"))
        );
    }

    #[test]
    fn wazuh_4_8_and_later_layouts() {
        let inv = parse(&argv(&[
            "/tmp/a.alert",
            "",
            "",
            "",
            "",
            "10",
            "3",
            "> /dev/null 2>&1",
        ]))
        .unwrap();
        assert_eq!(
            (inv.timeout, inv.retries),
            (Duration::from_secs(10), Some(3))
        );
        let inv = parse(&argv(&[
            "/tmp/a.alert",
            KEY,
            "https://m",
            "debug",
            "/tmp/o.options",
            "4",
            "0",
        ]))
        .unwrap();
        assert!(inv.debug);
        assert_eq!(
            (inv.timeout, inv.retries),
            (Duration::from_secs(4), Some(0))
        );
        assert_eq!(inv.options_file, Some(PathBuf::from("/tmp/o.options")));
    }

    #[test]
    fn tolerates_missing_extra_and_non_utf8_arguments() {
        use std::os::unix::ffi::OsStringExt;
        assert_eq!(parse(&[]), Err(ArgvError::NoAlertFile));
        assert_eq!(parse(&argv(&[""])), Err(ArgvError::NoAlertFile));
        let inv = parse(&argv(&["/tmp/a.alert"])).unwrap();
        assert_eq!(inv.timeout, DEFAULT_TIMEOUT);
        let weird = vec![
            OsString::from_vec(b"/tmp/\xff.alert".to_vec()),
            OsString::from_vec(b"\xfe\xfd".to_vec()),
            OsString::from_vec(b"\xff".to_vec()),
            OsString::from("debug"),
            OsString::from_vec(b"zz\xff".to_vec()),
            OsString::from("5"),
            OsString::from("1"),
            OsString::from("9"),
        ];
        let inv = parse(&weird).unwrap();
        assert!(inv.api_key.is_none() && inv.hook_url.is_none() && inv.debug);
        assert_eq!(inv.timeout, Duration::from_secs(5));
        assert_eq!(inv.ignored, vec!["zz\u{fffd}", "9"]);
    }

    #[test]
    fn a_zero_timeout_keeps_the_default() {
        let inv = parse(&argv(&["/tmp/a.alert", "", "", "", "", "0", "3"])).unwrap();
        assert_eq!(inv.timeout, DEFAULT_TIMEOUT);
    }
}
