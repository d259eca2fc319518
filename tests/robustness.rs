//! No alert may crash the runtime: arbitrary bytes through the alert reader, arbitrary JSON
//! through extraction and event building, arbitrary argv through the integratord parser.

use proptest::prelude::*;
use serde_json::Value;
use wazuh_misp::fieldmap;
use wazuh_misp::ioc::IocKind;
use wazuh_misp::runtime::{alert, argv, event, extract};
use wazuh_misp::settings::Allowlist;

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "[ -~\u{80}-\u{10ffff}]{0,40}".prop_map(Value::String),
        prop_oneof![
            "8.8.8.8",
            "::ffff:1.2.3.4",
            "2a0d:5600:24::abcd",
            "%evil.com%",
            "http://a.b/c",
            "SHA1=abc,MD5=44d88612fea8a8f36de82e1278abb02f"
        ]
        .prop_map(|s| Value::String(s.to_string())),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    "data",
                    "srcip",
                    "win",
                    "eventdata",
                    "hashes",
                    "dns",
                    "queries",
                    "rrname",
                    "syscheck",
                    "event",
                    "agent",
                    "id",
                    "name",
                    "rule",
                    "integration",
                    "[a-z]{1,8}"
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_bytes_are_an_alert_or_a_clean_error(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = alert::parse(&bytes);
    }

    #[test]
    fn any_json_alert_extracts_and_builds_events(alert in json_value()) {
        let rules = fieldmap::default_rules();
        let allow = Allowlist::default();
        let policy = extract::Policy { kinds: &IocKind::ALL, allowlist: &allow };
        let ex = extract::extract(&alert, &rules, &policy);
        prop_assert!(ex.indicators.len() <= extract::MAX_INDICATORS);
        let r = event::AlertRef::of(&alert);
        let loc = wazuh_misp::wazuh::queue::Location::for_alert(&alert);
        let err = wazuh_misp::misp::MispError::new(wazuh_misp::misp::ErrorKind::Timeout, "x");
        let framed = event::frame_to_fit(&loc, event::error_payload(&err, &r));
        prop_assert!(framed.is_some_and(|f| f.len() <= wazuh_misp::wazuh::queue::MAX_MESSAGE));
    }

    #[test]
    fn any_argv_parses_or_asks_for_the_alert_file(args in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..20), 0..12)) {
        use std::os::unix::ffi::OsStringExt;
        let args: Vec<std::ffi::OsString> = args.into_iter().map(std::ffi::OsString::from_vec).collect();
        let _ = argv::parse(&args);
    }
}
