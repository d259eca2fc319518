//! Our rules file `etc/rules/custom-misp_rules.xml`: the rendered text is something Wazuh's XML
//! dialect and rule loader accept without dropping a rule, the rules send each event of the
//! runtime's schema to the intended rule, the optional self-test rule passes the integration's
//! filters, and rule id collisions are found in a fixture ruleset (tests/fixtures/ruleset/).

use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use wazuh_misp::wazuh::rules::{self, RulesError, RulesSpec, SampleRule};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ruleset")
}

fn spec(base: u32, sample: Option<(u8, &[&str])>) -> RulesSpec {
    RulesSpec {
        base,
        sample: sample.map(|(level, groups)| SampleRule {
            level,
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// A checker for Wazuh's XML dialect and rule loader, written independently of the library.

/// One `<rule>` as the loader would see it.
#[derive(Debug, Clone, Default)]
struct Rule {
    id: u32,
    level: u8,
    groups: Vec<String>,
    if_sid: Vec<u32>,
    fields: Vec<(String, String)>,
    matches: Vec<String>,
    description: String,
}

/// Parses `text` strictly: no prolog, CDATA, doctype or entity, no `--` inside comments, no
/// raw `<` in text, balanced tags, roots `<group name="…">` only, known rule children only.
/// Panics with the reason on anything Wazuh would reject or warn about.
fn wazuh_parse(text: &str) -> Vec<Rule> {
    assert!(!text.contains("<?"), "a prolog or processing instruction");
    assert!(!text.contains("<![CDATA["), "CDATA");
    assert!(!text.contains("<!DOCTYPE"), "a doctype");
    assert!(
        !text.contains('&'),
        "an entity (Wazuh does not decode them)"
    );
    assert!(!text.contains("{{"), "a placeholder left in the output");

    let mut rules: Vec<Rule> = Vec::new();
    let mut stack: Vec<String> = Vec::new();
    let mut root_groups: Vec<String> = Vec::new();
    let mut current: Option<Rule> = None;
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("<!--") {
            let end = after.find("-->").expect("unterminated comment");
            // Wazuh's parser also ends a comment at `!>`.
            assert!(!after[..end].contains("!>"), "`!>` inside a comment");
            assert!(
                !after[..end].contains("--"),
                "a double hyphen inside a comment: {:?}",
                &after[..end]
            );
            rest = &after[end + 3..];
            continue;
        }
        if let Some(after) = rest.strip_prefix('<') {
            let end = after.find('>').expect("unterminated tag");
            let tag = &after[..end];
            rest = &after[end + 1..];
            if let Some(name) = tag.strip_prefix('/') {
                let open = stack.pop().expect("a close tag without an open one");
                assert_eq!(open, name, "mismatched close tag");
                if name == "rule" {
                    rules.push(current.take().expect("a rule"));
                }
                continue;
            }
            assert!(!tag.ends_with('/'), "self-closing tags are not used: {tag}");
            let (name, attrs) = split_tag(tag);
            match (stack.len(), name.as_str()) {
                (0, "group") => {
                    assert_eq!(attrs.len(), 1, "a root group has only a name: {tag}");
                    let groups = attrs.get("name").expect("a root group name");
                    assert!(groups.ends_with(','), "group list ends with a comma");
                    root_groups = split(groups);
                }
                (0, other) => panic!("invalid root element {other}"),
                (1, "rule") => {
                    let id: u32 = attrs["id"].parse().expect("numeric id");
                    assert!(attrs["id"].len() <= 6, "id over 6 digits");
                    let level: u8 = attrs["level"].parse().expect("numeric level");
                    assert!(level <= 16, "level over 16");
                    assert_eq!(attrs.len(), 2, "only id and level: {tag}");
                    current = Some(Rule {
                        id,
                        level,
                        groups: root_groups.clone(),
                        ..Rule::default()
                    });
                }
                (1, other) => panic!("{other} in a root group"),
                (2, "field") => assert!(attrs.contains_key("name") && attrs.len() == 1),
                (2, "decoded_as" | "if_sid" | "match" | "description" | "group" | "options") => {
                    assert!(attrs.is_empty(), "unexpected attributes: {tag}")
                }
                (depth, other) => panic!("unexpected element {other} at depth {depth}"),
            }
            // The element's text, up to the next tag.
            let text_end = rest.find('<').unwrap_or(rest.len());
            let content = &rest[..text_end];
            assert!(content.len() < 20480, "element text over Wazuh's limit");
            if stack.len() == 2 {
                let rule = current.as_mut().expect("inside a rule");
                match name.as_str() {
                    "if_sid" => {
                        rule.if_sid = content
                            .split(',')
                            .map(|s| s.trim().parse().expect("numeric if_sid"))
                            .collect()
                    }
                    "field" => rule
                        .fields
                        .push((attrs["name"].clone(), content.to_string())),
                    "match" => rule.matches.push(content.to_string()),
                    "description" => rule.description = content.to_string(),
                    "group" => {
                        assert!(content.ends_with(','), "group list ends with a comma");
                        rule.groups.extend(split(content))
                    }
                    "decoded_as" => assert_eq!(content, "json"),
                    "options" => assert_eq!(content, "no_full_log"),
                    _ => {}
                }
                assert!(!content.trim().is_empty(), "empty <{name}>");
            }
            stack.push(name);
            continue;
        }
        let end = rest.find('<').unwrap_or(rest.len());
        let outside = &rest[..end];
        if stack.len() != 3 {
            assert!(outside.trim().is_empty(), "stray text {outside:?}");
        }
        rest = &rest[end..];
    }
    assert!(stack.is_empty(), "unclosed elements: {stack:?}");

    // The loader: no duplicate id, every if_sid refers to a rule loaded before (ours earlier in
    // the file, or a stock sshd rule, whose file sorts before ours).
    let mut seen = BTreeSet::new();
    for rule in &rules {
        for parent in &rule.if_sid {
            assert!(
                seen.contains(parent) || rules::STOCK_SSHD_PARENTS.contains(parent),
                "rule {} hangs from {parent}, which is not loaded before it",
                rule.id
            );
        }
        assert!(seen.insert(rule.id), "duplicate rule id {}", rule.id);
    }
    rules
}

fn split(list: &str) -> Vec<String> {
    list.split(',')
        .filter(|g| !g.is_empty())
        .map(|g| {
            assert!(rules::valid_group(g), "group name {g:?}");
            g.to_string()
        })
        .collect()
}

/// `name a="x" b="y"` (our output uses double quotes and no spaces around `=`).
fn split_tag(tag: &str) -> (String, BTreeMap<String, String>) {
    let mut parts = tag.splitn(2, char::is_whitespace);
    let name = parts.next().unwrap_or("").to_string();
    let mut attrs = BTreeMap::new();
    let mut rest = parts.next().unwrap_or("").trim();
    while !rest.is_empty() {
        let eq = rest.find("=\"").expect("attribute in double quotes");
        let key = rest[..eq].trim().to_string();
        let after = &rest[eq + 2..];
        let close = after.find('"').expect("closing quote");
        assert!(attrs.insert(key, after[..close].to_string()).is_none());
        rest = after[close + 1..].trim();
    }
    (name, attrs)
}

// ---------------------------------------------------------------------------------------------
// What analysisd does with our events: the json decoder flattens them, then rules are tried.

/// The json decoder's dynamic fields: nested keys joined with dots, scalars as text.
fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        Value::String(s) => {
            out.insert(prefix.to_string(), s.clone());
        }
        Value::Null => {}
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

/// OS_Regex, only the forms our template uses: `|`-separated `^literal$` and `\.` (any char).
fn os_regex(pattern: &str, value: &str) -> bool {
    pattern.split('|').any(|alt| {
        if alt == "\\." {
            return !value.is_empty();
        }
        let lit = alt
            .strip_prefix('^')
            .and_then(|a| a.strip_suffix('$'))
            .unwrap_or_else(|| panic!("pattern form not emulated: {alt:?}"));
        assert!(lit.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        lit == value
    })
}

/// The rule analysisd picks: from the root rule down, children by descending level, ties in
/// file order, first match wins; a field the event lacks never matches.
fn classify(rules: &[Rule], event: &Value) -> u32 {
    let mut fields = BTreeMap::new();
    flatten("", event, &mut fields);
    let matches = |r: &Rule| {
        r.fields
            .iter()
            .all(|(name, pattern)| fields.get(name).is_some_and(|v| os_regex(pattern, v)))
    };
    let root = rules
        .iter()
        .find(|r| r.if_sid.is_empty() && r.matches.is_empty())
        .expect("root");
    assert!(matches(root), "the base rule must take every event of ours");
    let mut at = root.id;
    loop {
        let mut children: Vec<&Rule> = rules.iter().filter(|r| r.if_sid.contains(&at)).collect();
        children.sort_by_key(|r| std::cmp::Reverse(if r.level == 0 { 99 } else { r.level }));
        match children.into_iter().find(|r| matches(r)) {
            Some(child) => at = child.id,
            None => return at,
        }
    }
}

fn hit(kind: &str) -> Value {
    json!({"integration": "misp", "misp": {
        "value": "185.220.101.47", "type": "ip-src", "category": "Network activity", "to_ids": true,
        "event_id": "4", "event_info": "SSH brute force sources", "tags": "tlp:white",
        "ioc_kind": kind, "ioc_value": "185.220.101.47", "ioc_field": "data.srcip",
        "alert": {"id": "1.2", "rule_id": "5710", "rule_level": 5, "rule_description": "sshd"}}})
}

fn error(kind: &str) -> Value {
    json!({"integration": "misp", "misp": {
        "error": {"kind": kind, "status": null, "message": "boom"},
        "alert": {"id": "1.2", "rule_id": "5710", "rule_level": 5, "rule_description": "sshd"}}})
}

// ---------------------------------------------------------------------------------------------

#[test]
fn rendered_file_is_valid_for_wazuh_and_stays_in_the_block() {
    for sample in [None, Some((7u8, &["authentication_failed", "ids"][..]))] {
        for base in [rules::DEFAULT_RULE_ID_BASE, 100_000, 119_981, 999_980] {
            let text = rules::render(&spec(base, sample)).unwrap();
            assert!(text.starts_with("<!--"), "starts with a comment");
            assert!(!text.contains("NOTES"), "the template notes are dropped");
            let parsed = wazuh_parse(&text);
            let ids = rules::rule_ids(base);
            assert_eq!(ids.clone().count(), rules::RULE_COUNT as usize);
            for rule in &parsed {
                assert!(ids.contains(&rule.id), "{} outside {ids:?}", rule.id);
            }
            assert_eq!(parsed.len(), if sample.is_some() { 18 } else { 17 });
            assert_eq!(parsed[0].id, base);
            assert!(text.contains(&format!("{} to {}", base, base + rules::RULE_COUNT - 1)));
        }
    }
}

#[test]
fn base_rule_keys_on_the_integration_and_every_rule_carries_misp() {
    let parsed = wazuh_parse(&rules::render(&RulesSpec::default()).unwrap());
    let base = &parsed[0];
    assert_eq!(base.level, 0);
    assert_eq!(
        base.fields,
        vec![("integration".to_string(), "^misp$".to_string())]
    );
    for rule in &parsed {
        assert_eq!(rule.groups[0], rules::GROUP);
        if rule.id != base.id {
            assert_eq!(rule.if_sid, vec![base.id]);
        }
    }
    // Another integration's events never reach our base rule.
    assert!(!os_regex("^misp$", "virustotal"));
}

#[test]
fn each_event_of_the_schema_lands_on_its_rule() {
    let base = rules::DEFAULT_RULE_ID_BASE;
    let parsed = wazuh_parse(&rules::render(&spec(base, Some((3, &[])))).unwrap());
    let by_id: BTreeMap<u32, &Rule> = parsed.iter().map(|r| (r.id, r)).collect();

    let hits = [
        ("ip", 1, "misp_ip", "IP "),
        ("domain", 2, "misp_domain", "domain "),
        ("url", 3, "misp_url", "URL "),
        ("md5", 4, "misp_hash", "hash "),
        ("sha1", 4, "misp_hash", "hash "),
        ("sha256", 4, "misp_hash", "hash "),
        ("email", 5, "misp_other", "$(misp.ioc_kind)"),
    ];
    for (kind, offset, group, word) in hits {
        let id = classify(&parsed, &hit(kind));
        assert_eq!(id, base + offset, "hit of kind {kind}");
        let rule = by_id[&id];
        assert_eq!(rule.level, rules::HIT_LEVEL);
        assert_eq!(rule.groups, vec!["misp", rules::HIT_GROUP, group]);
        for needle in [
            word,
            "$(misp.value)",
            "$(misp.type)",
            "$(misp.event_id)",
            "$(misp.event_info)",
        ] {
            assert!(
                rule.description.contains(needle),
                "{}: {needle}",
                rule.description
            );
        }
    }

    let errors = [
        ("connect", 6, 3),
        ("tls", 7, 5),
        ("timeout", 8, 3),
        ("auth", 9, 5),
        ("not_found", 10, 3),
        ("rate_limited", 11, 3),
        ("server", 12, 3),
        ("protocol", 13, 3),
        ("config", 14, 5),
        ("something_new", 15, 3),
    ];
    for (kind, offset, level) in errors {
        let id = classify(&parsed, &error(kind));
        assert_eq!(id, base + offset, "error of kind {kind}");
        let rule = by_id[&id];
        assert_eq!(rule.level, level, "{kind}");
        assert_eq!(rule.groups, vec!["misp", rules::ERROR_GROUP]);
        assert!(rule.description.starts_with("MISP error"));
        assert!(!rule.fields.iter().any(|(f, _)| f == "misp.ioc_kind"));
    }
    // Hit rules need misp.ioc_kind, which error events never carry, and the reverse.
    for rule in &parsed {
        let names: Vec<&str> = rule.fields.iter().map(|(n, _)| n.as_str()).collect();
        if rule.groups.contains(&rules::HIT_GROUP.to_string()) {
            assert_eq!(names, ["misp.ioc_kind"]);
        }
        if rule.groups.contains(&"misp_service".to_string()) {
            assert_eq!(names, ["misp.service.status"]);
        } else if rule.groups.contains(&rules::ERROR_GROUP.to_string()) {
            assert_eq!(names, ["misp.error.kind"]);
        }
    }
    // The mirror's own events (sync failing, stale, missing) have their rule.
    for status in ["sync_failed", "stale", "missing"] {
        let event = json!({"integration": "misp", "misp": {"service": {"component": "mirror", "status": status, "message": "m", "since": 0}}});
        let id = classify(&parsed, &event);
        assert_eq!(id, base + 16, "{status}");
        assert_eq!(by_id[&id].level, 5);
    }
    // Another MISP integration's events (no ioc_kind, error as a string) stay at level 0.
    let foreign =
        json!({"integration": "misp", "misp": {"error": "Error: connection", "value": "x"}});
    assert_eq!(classify(&parsed, &foreign), base);
    // The sample rule is no child of ours.
    assert!(!parsed
        .iter()
        .any(|r| r.if_sid.contains(&rules::sample_rule_id(base))));
}

#[test]
fn sample_rule_absent_unless_asked() {
    let base = 117_300;
    let text = rules::render(&spec(base, None)).unwrap();
    assert!(!text.contains(rules::SELFTEST_MARKER));
    assert!(!text.contains(&format!("id=\"{}\"", rules::sample_rule_id(base))));
    assert!(!text.contains("sshd"));
    assert!(text.ends_with("</group>\n"));
}

#[test]
fn sample_rule_passes_the_integration_filters() {
    let base = rules::DEFAULT_RULE_ID_BASE;
    assert_eq!(rules::sample_rule_id(base), base + rules::RULE_COUNT - 1);
    for (integration_level, expected) in [(0u8, 10u8), (3, 10), (10, 10), (12, 12), (15, 15)] {
        let groups = [
            "authentication_failed",
            "sysmon_event1",
            "ids",
            "ids",
            " web ",
        ];
        let text = rules::render(&spec(base, Some((integration_level, &groups)))).unwrap();
        let parsed = wazuh_parse(&text);
        let sample = parsed.last().unwrap();
        assert_eq!(sample.id, rules::sample_rule_id(base));
        assert_eq!(sample.level, expected);
        assert_eq!(rules::sample_level(integration_level), expected);
        assert!(sample.level >= integration_level);
        assert_eq!(sample.if_sid, rules::STOCK_SSHD_PARENTS);
        assert_eq!(sample.matches, vec![rules::SELFTEST_MARKER]);
        assert!(sample.description.contains("wazuh-misp self test"));
        for g in [
            "authentication_failed",
            "sysmon_event1",
            "ids",
            "web",
            rules::SELFTEST_GROUP,
        ] {
            assert_eq!(
                sample.groups.iter().filter(|x| *x == g).count(),
                1,
                "{g} once in {:?}",
                sample.groups
            );
        }
        assert!(
            !sample.groups.contains(&rules::GROUP.to_string()),
            "not one of the misp events"
        );
    }
    // No group filter at all.
    let parsed = wazuh_parse(&rules::render(&spec(base, Some((0, &[])))).unwrap());
    assert_eq!(
        parsed.last().unwrap().groups,
        vec![
            "syslog",
            "sshd",
            "authentication_failed",
            rules::SELFTEST_GROUP
        ]
    );
}

#[test]
fn sample_rule_refuses_a_level_it_cannot_reach() {
    let err = rules::render(&spec(rules::DEFAULT_RULE_ID_BASE, Some((16, &[])))).unwrap_err();
    assert!(matches!(err, RulesError::SampleLevel(16)), "{err}");
    assert!(err.to_string().contains("<level>"));
}

#[test]
fn group_names_are_validated() {
    for bad in [
        "",
        "a,b",
        "a b",
        "a<b",
        "sysmon event",
        "grüppe",
        "x\"y",
        "a&b",
    ] {
        let err = rules::render(&spec(rules::DEFAULT_RULE_ID_BASE, Some((0, &[bad])))).unwrap_err();
        assert!(matches!(err, RulesError::BadGroup(_)), "{bad:?}: {err}");
    }
    for good in [
        "sysmon_event_10",
        "pci_dss_10.2.4",
        "gdpr_IV_35.7.d",
        "web-attack",
        "A1",
    ] {
        assert!(rules::valid_group(good), "{good}");
        rules::render(&spec(rules::DEFAULT_RULE_ID_BASE, Some((0, &[good])))).unwrap();
    }
}

#[test]
fn base_must_leave_room_for_six_digit_custom_ids() {
    let last_base = 999_999 - (rules::RULE_COUNT - 1);
    for bad in [0, 5710, 99_999, last_base + 1, 1_000_000, u32::MAX] {
        let err = rules::render(&spec(bad, None)).unwrap_err();
        assert!(matches!(err, RulesError::BaseOutOfRange { .. }), "{bad}");
        assert!(err.to_string().contains(&bad.to_string()));
    }
    rules::render(&spec(last_base, None)).unwrap();
    assert_eq!(*rules::rule_ids(u32::MAX).end(), u32::MAX);

    assert_eq!(rules::base_warning(rules::DEFAULT_RULE_ID_BASE), None);
    assert_eq!(rules::base_warning(100_000), None);
    assert_eq!(rules::base_warning(120_000 - rules::RULE_COUNT + 1), None);
    assert!(rules::base_warning(120_000 - rules::RULE_COUNT + 2).is_some());
    assert!(rules::base_warning(150_100).unwrap().contains("150100"));
}

#[test]
fn default_block_avoids_the_other_misp_integrations() {
    let ids = rules::rule_ids(rules::DEFAULT_RULE_ID_BASE);
    for taken in [
        100_620..=100_626,
        100_800..=100_806,
        101_806..=101_811,
        100_000..=100_010,
    ] {
        assert!(
            taken.end() < ids.start() || ids.end() < taken.start(),
            "{taken:?}"
        );
    }
    assert!(
        rules::CUSTOM_RULE_IDS.contains(ids.start()) && rules::CUSTOM_RULE_IDS.contains(ids.end())
    );
}

#[test]
fn collision_with_a_third_party_file_is_found_and_explained() {
    let home = fixture();
    let found =
        rules::find_collisions(&home, rules::rule_ids(rules::DEFAULT_RULE_ID_BASE)).unwrap();
    // Not our own older file, not the commented-out rule, not README.txt, not backup/.
    assert_eq!(
        found,
        vec![rules::Collision {
            file: home.join("etc/rules/misp_rules.xml"),
            id: 117_103
        }]
    );

    let err = rules::ensure_free(&home, rules::DEFAULT_RULE_ID_BASE).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            RulesError::Collision {
                suggestion: Some(117_200),
                ..
            }
        ),
        "{msg}"
    );
    assert!(msg.contains("117103"), "{msg}");
    assert!(msg.contains("etc/rules/misp_rules.xml"), "{msg}");
    assert!(msg.contains("--rule-id-base 117200"), "{msg}");
    assert_eq!(rules::free_base(&home).unwrap(), Some(117_200));
}

#[test]
fn moving_the_base_avoids_the_collision() {
    let home = fixture();
    rules::ensure_free(&home, 117_200).unwrap();
    assert!(rules::find_collisions(&home, rules::rule_ids(117_200))
        .unwrap()
        .is_empty());
    // 117104 is only in README.txt and 117105 only in a comment: a block over them is free.
    rules::ensure_free(&home, 117_104).unwrap();
}

#[test]
fn collisions_in_every_quoting_and_directory() {
    let home = fixture();
    let ids = |range: std::ops::RangeInclusive<u32>| -> Vec<(String, u32)> {
        rules::find_collisions(&home, range)
            .unwrap()
            .into_iter()
            .map(|c| {
                (
                    c.file.strip_prefix(&home).unwrap().display().to_string(),
                    c.id,
                )
            })
            .collect()
    };
    assert_eq!(
        ids(100_001..=100_001),
        vec![("etc/rules/local_rules.xml".to_string(), 100_001)]
    );
    assert_eq!(
        ids(100_620..=100_626),
        vec![("etc/rules/misp_rules.xml".to_string(), 100_620)]
    );
    let sshd = "ruleset/rules/0095-sshd_rules.xml".to_string();
    assert_eq!(
        ids(5700..=5760),
        [5700, 5710, 5716, 5720, 5760]
            .map(|id| (sshd.clone(), id))
            .to_vec()
    );
}

#[test]
fn all_rule_ids_reads_levels_and_groups() {
    let home = fixture();
    let all = rules::all_rule_ids(&home).unwrap();
    let get = |id: u32, file: &str| {
        all.iter()
            .find(|(f, i, ..)| *i == id && f.ends_with(file))
            .unwrap_or_else(|| panic!("{id} in {file}"))
            .clone()
    };
    let (_, _, level, groups) = get(100_001, "local_rules.xml");
    assert_eq!(level, 5);
    assert_eq!(
        groups,
        [
            "local",
            "syslog",
            "sshd",
            "authentication_failed",
            "pci_dss_10.2.4",
            "pci_dss_10.2.5"
        ]
    );
    let (_, _, level, groups) = get(117_103, "misp_rules.xml");
    assert_eq!(level, 12);
    assert_eq!(groups, ["misp", "threat_intel", "misp_alert", "ioc"]);
    let (_, _, level, groups) = get(5700, "0095-sshd_rules.xml");
    assert_eq!(
        (level, groups),
        (0, vec!["syslog".to_string(), "sshd".to_string()])
    );
    let (_, _, level, groups) = get(5710, "0095-sshd_rules.xml");
    assert_eq!(level, 5);
    assert!(groups.starts_with(&[
        "syslog".into(),
        "sshd".into(),
        "authentication_failed".into()
    ]));
    // Our own file counts here (doctor wants every rule); the mitre <id> is no rule.
    let (_, _, level, groups) = get(117_101, "custom-misp_rules.xml");
    assert_eq!(
        (level, groups),
        (
            12,
            vec!["misp".into(), "misp_alert".into(), "misp_ip".into()]
        )
    );
    assert!(!all
        .iter()
        .any(|(f, ..)| f.ends_with("backup/misp_rules.xml")));
    assert!(!all
        .iter()
        .any(|(_, id, ..)| *id == 117_104 || *id == 117_105));
    // Stock files first, as Wazuh loads them (sorted by file name).
    assert!(all[0].0.ends_with("0095-sshd_rules.xml"));
    assert_eq!(all.len(), 5 + 2 + 1 + 2);
}

#[test]
fn rendered_file_reads_back_through_all_rule_ids() {
    let dir = tempfile::tempdir().unwrap();
    let rules_dir = dir.path().join("etc/rules");
    std::fs::create_dir_all(&rules_dir).unwrap();
    let groups = ["authentication_failed", "sysmon_event1"];
    let text = rules::render(&spec(117_200, Some((7, &groups)))).unwrap();
    std::fs::write(dir.path().join(rules::RULES_FILE), text).unwrap();
    let all = rules::all_rule_ids(dir.path()).unwrap();
    assert_eq!(all.len(), 18);
    let sample = all
        .iter()
        .find(|(_, id, ..)| *id == rules::sample_rule_id(117_200))
        .unwrap();
    assert_eq!(sample.2, 10);
    assert!(groups.iter().all(|g| sample.3.contains(&g.to_string())));
    // Our own file never collides with itself: a reinstall reuses the block.
    assert!(rules::find_collisions(dir.path(), rules::rule_ids(117_200))
        .unwrap()
        .is_empty());
}

#[test]
fn odd_files_are_tolerated_or_named() {
    let dir = tempfile::tempdir().unwrap();
    let rules_dir = dir.path().join("etc/rules");
    std::fs::create_dir_all(&rules_dir).unwrap();
    // Not UTF-8, upper-case extension, tabs and newlines in the tag.
    let mut bytes =
        b"<group name=\"x,\">\n<rule\tid='117105'\n level=\"3\"><description>caf".to_vec();
    bytes.extend_from_slice(&[0xe9, 0xff]);
    bytes.extend_from_slice(b"</description></rule></group>\n");
    std::fs::write(rules_dir.join("LATIN1.XML"), &bytes).unwrap();
    let found = rules::find_collisions(dir.path(), rules::rule_ids(117_100)).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, 117_105);
    assert!(found[0].file.ends_with("LATIN1.XML"));
    assert_eq!(rules::all_rule_ids(dir.path()).unwrap()[0].2, 3);

    // No ruleset/ at all is no error; a bad id or level is, naming the file and the rule.
    std::fs::write(
        rules_dir.join("bad.xml"),
        "<group name=\"x,\"><rule id=\"12ab\" level=\"3\"></rule></group>",
    )
    .unwrap();
    assert!(rules::find_collisions(dir.path(), rules::rule_ids(117_100)).is_ok());
    let err = rules::all_rule_ids(dir.path()).unwrap_err().to_string();
    assert!(err.contains("bad.xml") && err.contains("12ab"), "{err}");
    std::fs::write(
        rules_dir.join("bad.xml"),
        "<group name=\"x,\"><rule id=\"100900\" level=\"17\"></rule></group>",
    )
    .unwrap();
    let err = rules::all_rule_ids(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("bad.xml") && err.contains("100900") && err.contains("17"),
        "{err}"
    );
    std::fs::remove_file(rules_dir.join("bad.xml")).unwrap();

    // An unreadable file is an error that names it (root reads anything, so only as a user).
    if unsafe { libc::geteuid() } != 0 {
        use std::os::unix::fs::PermissionsExt;
        let locked = rules_dir.join("locked.xml");
        std::fs::write(&locked, "<group name=\"x,\"></group>").unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
        let err = rules::find_collisions(dir.path(), rules::rule_ids(117_100)).unwrap_err();
        assert!(err.to_string().contains("locked.xml"), "{err}");
    }
}
