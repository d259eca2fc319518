//! Turns one alert into the de-duplicated list of indicators worth asking MISP about: walks the
//! field map, parses each value by its format, normalises it as MISP stores it, and drops what is
//! invalid, not global, disabled or allowlisted, remembering why (for `test` and debug logs).

use crate::fieldmap::{FieldKind, FieldRule, ValueFormat};
use crate::ioc::{self, Indicator, IocKind, UrlHost};
use crate::settings::Allowlist;
use serde_json::Value;
use std::collections::HashSet;

/// Bounds the request MISP gets for one alert, however many values a decoder emits.
pub const MAX_INDICATORS: usize = 256;

/// What to keep.
pub struct Policy<'a> {
    pub kinds: &'a [IocKind],
    pub allowlist: &'a Allowlist,
}

#[derive(Debug, Default)]
pub struct Extraction {
    pub indicators: Vec<Indicator>,
    pub skipped: Vec<Skipped>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub field: String,
    pub value: String,
    pub reason: SkipReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    Invalid(FieldKind),
    NotGlobal,
    Allowlisted,
    KindDisabled,
    Wildcard,
    TooMany,
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::Invalid(kind) => {
                write!(f, "not a valid {}", format!("{kind:?}").to_lowercase())
            }
            SkipReason::NotGlobal => f.write_str("not a global IP"),
            SkipReason::Allowlisted => f.write_str("allowlisted"),
            SkipReason::KindDisabled => f.write_str("kind not enabled in lookup.kinds"),
            SkipReason::Wildcard => {
                f.write_str("starts or ends with % (MISP would treat it as a wildcard)")
            }
            SkipReason::TooMany => write!(f, "more than {MAX_INDICATORS} indicators in one alert"),
        }
    }
}

/// True for events this integration produced: looking them up again would loop forever.
pub fn is_own_event(alert: &Value) -> bool {
    alert.pointer("/data/integration").and_then(Value::as_str) == Some("misp")
}

/// Extraction as the runtime does it under `settings`: their field map (or the built-in one),
/// kinds and allowlist.
pub fn extract_with(alert: &Value, settings: &crate::settings::Settings) -> Extraction {
    let default_rules;
    let rules = match &settings.field_map {
        Some(rules) => rules,
        None => {
            default_rules = crate::fieldmap::default_rules();
            &default_rules
        }
    };
    let policy = Policy {
        kinds: &settings.lookup.kinds,
        allowlist: &settings.allowlist,
    };
    extract(alert, rules, &policy)
}

pub fn extract(alert: &Value, rules: &[FieldRule], policy: &Policy) -> Extraction {
    let mut ex = Extractor {
        policy,
        seen: HashSet::new(),
        out: Extraction::default(),
    };
    let mut values = Vec::new();
    for rule in rules {
        if rule.when.as_ref().is_some_and(|c| !c.holds(alert)) {
            continue;
        }
        values.clear();
        rule.path.collect(alert, &mut values);
        let field = rule.path.as_str();
        for value in &values {
            match &rule.split {
                Some(sep) if !sep.is_empty() => value
                    .split(sep.as_str())
                    .filter(|piece| !piece.trim().is_empty())
                    .for_each(|piece| ex.value(field, piece, rule)),
                _ => ex.value(field, value, rule),
            }
        }
    }
    ex.out
}

struct Extractor<'p, 'a> {
    policy: &'p Policy<'a>,
    seen: HashSet<(IocKind, String)>,
    out: Extraction,
}

impl Extractor<'_, '_> {
    fn value(&mut self, field: &str, raw: &str, rule: &FieldRule) {
        match rule.format {
            ValueFormat::Hashes => {
                for pair in raw.split(',') {
                    let Some((algo, digest)) = pair.split_once('=') else {
                        // Wazuh's legacy WinEvtLog decoders (`Hashes: \S+=(\S*)` in
                        // 0380-windows_decoders.xml) cut the first `KEY=` off, and the oldest
                        // Sysmon wrote one bare `Hash:`: such a digest is known by its length.
                        if let Some(kind) = ioc::hash_kind_by_len(pair.trim()) {
                            self.typed(field, pair, kind, rule.kind);
                        }
                        continue;
                    };
                    // IMPHASH (an import-table hash) and SHA384 have no MISP counterpart here.
                    let kind = match algo.trim().to_ascii_uppercase().as_str() {
                        "MD5" => IocKind::Md5,
                        "SHA1" => IocKind::Sha1,
                        "SHA256" => IocKind::Sha256,
                        _ => continue,
                    };
                    self.typed(field, digest, kind, rule.kind);
                }
            }
            ValueFormat::Plain => match rule.kind {
                FieldKind::Ip => self.typed(field, raw, IocKind::Ip, rule.kind),
                FieldKind::Domain => self.typed(field, raw, IocKind::Domain, rule.kind),
                FieldKind::Md5 => self.typed(field, raw, IocKind::Md5, rule.kind),
                FieldKind::Sha1 => self.typed(field, raw, IocKind::Sha1, rule.kind),
                FieldKind::Sha256 => self.typed(field, raw, IocKind::Sha256, rule.kind),
                FieldKind::Hash => match ioc::hash_kind_by_len(raw) {
                    Some(kind) => self.typed(field, raw, kind, rule.kind),
                    None => self.skip(field, raw, SkipReason::Invalid(FieldKind::Hash)),
                },
                FieldKind::Url => match ioc::normalize_url(raw) {
                    None => self.skip(field, raw, SkipReason::Invalid(FieldKind::Url)),
                    Some((url, host)) => {
                        self.accept(field, IocKind::Url, url);
                        match host {
                            Some(UrlHost::Domain(d)) => self.accept(field, IocKind::Domain, d),
                            Some(UrlHost::Ip(ip)) => {
                                self.accept(field, IocKind::Ip, ip.to_string())
                            }
                            None => {}
                        }
                    }
                },
            },
        }
    }

    fn typed(&mut self, field: &str, raw: &str, kind: IocKind, declared: FieldKind) {
        match ioc::normalize(raw, kind) {
            Some(value) => self.accept(field, kind, value),
            None => self.skip(field, raw, SkipReason::Invalid(declared)),
        }
    }

    fn accept(&mut self, field: &str, kind: IocKind, value: String) {
        if let Some(reason) = self.rejection(kind, &value) {
            return self.skip(field, &value, reason);
        }
        if !self.seen.insert((kind, value.clone())) {
            return;
        }
        if self.out.indicators.len() >= MAX_INDICATORS {
            return self.skip(field, &value, SkipReason::TooMany);
        }
        self.out.indicators.push(Indicator {
            kind,
            value,
            field: field.to_string(),
        });
    }

    fn rejection(&self, kind: IocKind, value: &str) -> Option<SkipReason> {
        if !self.policy.kinds.contains(&kind) {
            return Some(SkipReason::KindDisabled);
        }
        let allow = self.policy.allowlist;
        ioc::exclusion(kind, value, &allow.cidrs, &allow.domains).map(|e| match e {
            ioc::Exclusion::Wildcard => SkipReason::Wildcard,
            ioc::Exclusion::NotGlobal => SkipReason::NotGlobal,
            ioc::Exclusion::Allowlisted => SkipReason::Allowlisted,
        })
    }

    fn skip(&mut self, field: &str, value: &str, reason: SkipReason) {
        let value: String = value.chars().take(120).collect();
        self.out.skipped.push(Skipped {
            field: field.to_string(),
            value,
            reason,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fieldmap::default_rules;
    use serde_json::json;

    fn run(alert: Value) -> Extraction {
        run_with(alert, &Allowlist::default())
    }

    fn run_with(alert: Value, allowlist: &Allowlist) -> Extraction {
        let policy = Policy {
            kinds: &IocKind::ALL,
            allowlist,
        };
        extract(&alert, &default_rules(), &policy)
    }

    fn found(ex: &Extraction) -> Vec<(IocKind, &str, &str)> {
        ex.indicators
            .iter()
            .map(|i| (i.kind, i.value.as_str(), i.field.as_str()))
            .collect()
    }

    #[test]
    fn sysmon_hashes_are_split_and_imphash_ignored() {
        let ex = run(json!({"data": {"win": {"eventdata": {"hashes":
            "SHA1=3395856CE81F2B7382DEE72602F798B642F14140,MD5=44D88612FEA8A8F36DE82E1278ABB02F,SHA256=275A021BBFB6489E54D471899F7DB9D1663FC695EC2FE2A2C4538AABF651FD0F,IMPHASH=F34D5F2D4577ED6D9CEEC516C1F5A744"}}}}));
        let f = "data.win.eventdata.hashes";
        assert_eq!(
            found(&ex),
            vec![
                (IocKind::Sha1, "3395856ce81f2b7382dee72602f798b642f14140", f),
                (IocKind::Md5, "44d88612fea8a8f36de82e1278abb02f", f),
                (
                    IocKind::Sha256,
                    "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f",
                    f
                ),
            ]
        );
    }

    #[test]
    fn sysmon_15_and_the_legacy_winevtlog_hashes_are_read() {
        // Sysmon 15 (FileCreateStreamHash) names the field `Hash`.
        let ex = run(json!({"data": {"win": {"eventdata": {"hash":
            "MD5=44D88612FEA8A8F36DE82E1278ABB02F,SHA256=275A021BBFB6489E54D471899F7DB9D1663FC695EC2FE2A2C4538AABF651FD0F,IMPHASH=F34D5F2D4577ED6D9CEEC516C1F5A744"}}}}));
        let f = "data.win.eventdata.hash";
        assert_eq!(
            found(&ex),
            vec![
                (IocKind::Md5, "44d88612fea8a8f36de82e1278abb02f", f),
                (
                    IocKind::Sha256,
                    "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f",
                    f
                ),
            ]
        );
        // The legacy decoders drop the first key: `MD5=a,SHA256=b` arrives as `a,SHA256=b`.
        let ex = run(json!({"data": {"sysmon": {
            "hashes": "44D88612FEA8A8F36DE82E1278ABB02F,SHA256=275A021BBFB6489E54D471899F7DB9D1663FC695EC2FE2A2C4538AABF651FD0F",
            "hash": "3395856CE81F2B7382DEE72602F798B642F14140",
            "destinationHostname": "Malware-Drop.RU"}}}));
        assert_eq!(
            found(&ex),
            vec![
                (
                    IocKind::Md5,
                    "44d88612fea8a8f36de82e1278abb02f",
                    "data.sysmon.hashes"
                ),
                (
                    IocKind::Sha256,
                    "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f",
                    "data.sysmon.hashes"
                ),
                (
                    IocKind::Sha1,
                    "3395856ce81f2b7382dee72602f798b642f14140",
                    "data.sysmon.hash"
                ),
                (
                    IocKind::Domain,
                    "malware-drop.ru",
                    "data.sysmon.destinationHostname"
                ),
            ]
        );
        // A bare value that is no digest (Linux Sysmon's `-`, a cut IMPHASH-only list) is nothing.
        assert!(found(&run(json!({"data": {"sysmon": {"hashes": "-,x"}}}))).is_empty());
    }

    #[test]
    fn windows_logon_addresses_are_read_unmapped_and_placeholders_skipped() {
        let f = "data.win.eventdata.ipAddress";
        for (value, expected) in [
            ("45.155.205.233", Some("45.155.205.233")),
            ("::ffff:45.155.205.233", Some("45.155.205.233")),
            ("2A0D:5600:24::ABCD", Some("2a0d:5600:24::abcd")),
            ("-", None),
            ("::1", None),
            ("10.0.0.5", None),
        ] {
            let ex = run(json!({"data": {"win": {"eventdata": {"ipAddress": value}}}}));
            let want: Vec<_> = expected.map(|v| (IocKind::Ip, v, f)).into_iter().collect();
            assert_eq!(found(&ex), want, "{value}");
        }
    }

    #[test]
    fn sysmon_dns_results_unmap_ipv4_and_skip_cname_records() {
        let ex = run(
            json!({"data": {"win": {"eventdata": {"queryName": "Malware-Drop.RU.",
            "queryResults": "type:  5 cdn.example.net;::ffff:45.155.205.233;2a0d:5600:24::abcd;::ffff:10.0.0.1;"}}}}),
        );
        assert_eq!(
            found(&ex),
            vec![
                (
                    IocKind::Domain,
                    "malware-drop.ru",
                    "data.win.eventdata.queryName"
                ),
                (
                    IocKind::Ip,
                    "45.155.205.233",
                    "data.win.eventdata.queryResults"
                ),
                (
                    IocKind::Ip,
                    "2a0d:5600:24::abcd",
                    "data.win.eventdata.queryResults"
                ),
            ]
        );
        assert!(ex
            .skipped
            .iter()
            .any(|s| s.reason == SkipReason::NotGlobal && s.value == "10.0.0.1"));
    }

    #[test]
    fn syscheck_hashes_only_for_added_and_modified_files() {
        let fim = |event: &str| {
            json!({"syscheck": {"event": event, "path": "/tmp/x",
            "md5_after": "44d88612fea8a8f36de82e1278abb02f", "sha256_after": "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"}})
        };
        assert_eq!(run(fim("added")).indicators.len(), 2);
        assert_eq!(run(fim("modified")).indicators.len(), 2);
        assert!(run(fim("deleted")).indicators.is_empty());
    }

    #[test]
    fn urls_bring_their_host_and_private_ips_are_dropped() {
        let ex = run(
            json!({"data": {"srcip": "192.168.1.10", "dstip": "::ffff:185.220.101.47",
            "url": "http://Malware-Drop.ru/payload.exe", "hostname": "malware-drop.ru."}}),
        );
        assert_eq!(
            found(&ex),
            vec![
                (IocKind::Ip, "185.220.101.47", "data.dstip"),
                (
                    IocKind::Url,
                    "http://Malware-Drop.ru/payload.exe",
                    "data.url"
                ),
                (IocKind::Domain, "malware-drop.ru", "data.url"),
            ]
        );
    }

    #[test]
    fn suricata_fields_including_dns_query_arrays() {
        let ex = run(
            json!({"data": {"event_type": "dns", "src_ip": "10.0.0.5", "dest_ip": "45.155.205.233",
            "dns": {"queries": [{"rrname": "bad-update.net"}, {"rrname": "wpad"}]},
            "tls": {"sni": "login.micr0soft-secure.com"}, "http": {"url": "/index.php"}}}),
        );
        let kinds: Vec<_> = found(&ex).into_iter().map(|(_, v, _)| v).collect();
        assert_eq!(
            kinds,
            vec![
                "45.155.205.233",
                "bad-update.net",
                "login.micr0soft-secure.com"
            ]
        );
    }

    #[test]
    fn allowlists_disabled_kinds_and_wildcards() {
        let allow: Allowlist = serde_json::from_value(
            json!({"cidrs": ["45.155.204.0/23"], "domains": ["micr0soft-secure.com"]}),
        )
        .unwrap();
        let ex = run_with(
            json!({"data": {"srcip": "45.155.205.233", "hostname": "login.micr0soft-secure.com",
            "url": "http://x.example.com/a%"}}),
            &allow,
        );
        assert_eq!(
            found(&ex),
            vec![(IocKind::Domain, "x.example.com", "data.url")]
        );
        let reasons: Vec<_> = ex.skipped.iter().map(|s| s.reason).collect();
        assert_eq!(
            reasons,
            vec![
                SkipReason::Allowlisted,
                SkipReason::Wildcard,
                SkipReason::Allowlisted
            ]
        );
        let policy = Policy {
            kinds: &[IocKind::Domain],
            allowlist: &Allowlist::default(),
        };
        let ex = extract(
            &json!({"data": {"srcip": "8.8.8.8", "hostname": "a.example.org"}}),
            &default_rules(),
            &policy,
        );
        assert_eq!(
            found(&ex),
            vec![(IocKind::Domain, "a.example.org", "data.hostname")]
        );
    }

    #[test]
    fn duplicates_are_reported_once_with_the_first_field() {
        let ex = run(
            json!({"data": {"srcip": "8.8.8.8", "src_ip": "8.8.8.8", "eventdata": {"Hashes": "-"}}}),
        );
        assert_eq!(found(&ex), vec![(IocKind::Ip, "8.8.8.8", "data.srcip")]);
    }

    #[test]
    fn own_events_are_recognised() {
        assert!(is_own_event(&json!({"data": {"integration": "misp"}})));
        assert!(!is_own_event(
            &json!({"data": {"integration": "virustotal"}})
        ));
        assert!(!is_own_event(&json!({"data": "x"})));
    }
}
