//! Native matching's rules (`templates/custom-misp_native_rules.xml`, rendered by
//! `wazuh::native_rules`) checked against facts about Wazuh 4.14.7's stock ruleset
//! (`tests/fixtures/native/stock-rules-4.14.7.tsv`, from `scripts/native-facts.sh`): every parent
//! exists, every hit rule has its parent's level and is tried before any stock sibling that
//! could end the evaluation instead, every companion copies its stock counter exactly, every
//! list and lookup fits its kind, and the ids stay in the native block.

use std::collections::{BTreeMap, BTreeSet};
use wazuh_misp::ioc::IocKind;
use wazuh_misp::wazuh::native_rules::{self, NATIVE_GROUP};
use wazuh_misp::wazuh::xml;

const BASE: u32 = 117_100;

/// A rule: a stock one as the facts file has it, or one of ours as rendered.
#[derive(Debug, Clone)]
struct Rule {
    id: u32,
    level: u8,
    frequency: Option<String>,
    timeframe: Option<String>,
    ignore: Option<String>,
    same_source_ip: bool,
    if_sid: Vec<u32>,
    if_matched_sid: Vec<u32>,
    /// (field, lookup, list path): ours only.
    lists: Vec<(String, String, String)>,
    groups: Vec<String>,
}

fn opt(s: &str) -> Option<String> {
    (s != "-").then(|| s.to_string())
}

fn ids(s: &str) -> Vec<u32> {
    s.split(',').filter_map(|i| i.trim().parse().ok()).collect()
}

fn stock() -> BTreeMap<u32, Rule> {
    let text = include_str!("fixtures/native/stock-rules-4.14.7.tsv");
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let c: Vec<&str> = line.split('\t').collect();
        assert_eq!(c.len(), 10, "{line}");
        let id = c[0].parse().unwrap();
        out.insert(
            id,
            Rule {
                id,
                level: c[1].parse().unwrap(),
                frequency: opt(c[3]),
                timeframe: opt(c[4]),
                ignore: opt(c[5]),
                same_source_ip: c[6] == "yes",
                if_sid: ids(c[7]),
                if_matched_sid: ids(c[8]),
                lists: Vec::new(),
                groups: c[9].split(',').map(str::to_string).collect(),
            },
        );
    }
    out
}

fn ours(log_alert_level: u8) -> Vec<Rule> {
    let text = native_rules::render(BASE, log_alert_level).unwrap();
    let doc = xml::parse(text.as_bytes()).unwrap();
    let mut out = Vec::new();
    for root in doc.roots() {
        assert_eq!(root.name, "group");
        let outer: Vec<String> = String::from_utf8_lossy(root.attribute("name").unwrap())
            .split(',')
            .filter(|g| !g.is_empty())
            .map(str::to_string)
            .collect();
        for rule in root.children_named("rule") {
            let attr = |n: &str| {
                rule.attribute(n)
                    .map(|v| String::from_utf8_lossy(v).into_owned())
            };
            let text_of = |n: &str| {
                rule.child(n)
                    .map(|c| c.trimmed_text().into_owned())
                    .unwrap_or_default()
            };
            let mut groups = outer.clone();
            for g in rule.children_named("group") {
                groups.extend(
                    g.trimmed_text()
                        .split(',')
                        .filter(|g| !g.is_empty())
                        .map(str::to_string),
                );
            }
            out.push(Rule {
                id: attr("id").unwrap().parse().unwrap(),
                level: attr("level").unwrap().parse().unwrap(),
                frequency: attr("frequency"),
                timeframe: attr("timeframe"),
                ignore: attr("ignore"),
                same_source_ip: rule.child("same_source_ip").is_some(),
                if_sid: ids(&text_of("if_sid")),
                if_matched_sid: ids(&text_of("if_matched_sid")),
                lists: rule
                    .children_named("list")
                    .map(|l| {
                        let a = |n: &str| {
                            String::from_utf8_lossy(l.attribute(n).unwrap_or_default()).into_owned()
                        };
                        (a("field"), a("lookup"), l.trimmed_text().into_owned())
                    })
                    .collect(),
                groups,
            });
        }
    }
    out
}

fn hits(rules: &[Rule]) -> impl Iterator<Item = &Rule> {
    rules.iter().filter(|r| !r.lists.is_empty())
}

#[test]
fn ids_are_unique_and_in_the_native_block() {
    let rules = ours(3);
    assert!(rules.len() >= 40, "{}", rules.len());
    let mut seen = BTreeSet::new();
    for r in &rules {
        assert!(
            native_rules::native_rule_ids(BASE).contains(&r.id),
            "{}",
            r.id
        );
        assert!(seen.insert(r.id), "duplicate id {}", r.id);
    }
}

#[test]
fn every_parent_is_a_stock_rule_or_ours_and_every_hit_has_its_parents_level() {
    let stock = stock();
    let rules = ours(3);
    let mine: BTreeSet<u32> = rules.iter().map(|r| r.id).collect();
    for r in &rules {
        for p in r.if_sid.iter().chain(&r.if_matched_sid) {
            assert!(
                stock.contains_key(p) || mine.contains(p),
                "rule {}: parent {p} is not a 4.14.7 rule",
                r.id
            );
        }
    }
    for r in hits(&rules) {
        assert!(!r.if_sid.is_empty(), "rule {} hangs from nothing", r.id);
        // One level for all parents: the highest of theirs (raised to 3), or one below it where
        // the rule must stay behind the stock children (see below).
        let top = r.if_sid.iter().map(|p| stock[p].level).max().unwrap();
        let expected = top.max(3);
        assert!(
            r.level == expected || r.level + 1 == expected,
            "rule {}: level {} for parents of level {top}",
            r.id,
            r.level
        );
    }
}

/// A stock child of our parent that is tried before ours (level 0, a higher level, or the same
/// level: stock rules load first) and can take the event must have one of our rules under it
/// too, or be a stock CDB rule (its list is Wazuh's own) or a rule we accept (documented).
#[test]
fn no_stock_sibling_takes_an_event_before_ours_without_ours_under_it() {
    let stock = stock();
    let rules = ours(3);
    let covered: BTreeSet<u32> = hits(&rules).flat_map(|r| r.if_sid.clone()).collect();
    // Wazuh's own CDB rules (0999-malicious-ioc-rules.xml) take only Wazuh's list's values.
    let wazuh_lists: BTreeSet<u32> = (99901..=99920).collect();
    // Documented in docs/native-rules.md: 4xx children that Wazuh itself leaves unalerted (level
    // 0 "ignore" rules: 31102, 31107, 31140, 31141), the 400/500 cross-cutting 31166/31167, 5758
    // (maximum authentication attempts, level 8).
    let accepted: BTreeSet<u32> = [31102, 31107, 31140, 31141, 31166, 31167, 5758].into();
    for r in hits(&rules) {
        for parent in &r.if_sid {
            for (id, child) in stock.iter().filter(|(_, s)| s.if_sid.contains(parent)) {
                let before = child.level == 0 || child.level >= r.level;
                if before
                    && !covered.contains(id)
                    && !wazuh_lists.contains(id)
                    && !accepted.contains(id)
                {
                    panic!(
                        "rule {} under {parent}: stock child {id} (level {}) is tried first and has none of ours",
                        r.id, child.level
                    );
                }
            }
        }
    }
}

/// For every stock counter of a parent whose events one of our rules takes, a companion counts
/// our rule the same way.
#[test]
fn every_diverted_counter_has_a_companion_that_copies_it() {
    let stock = stock();
    let rules = ours(3);
    let by_id: BTreeMap<u32, &Rule> = rules.iter().map(|r| (r.id, r)).collect();
    let mut checked = 0;
    for r in hits(&rules) {
        for parent in &r.if_sid {
            for (cid, counter) in stock
                .iter()
                .filter(|(_, s)| s.if_matched_sid.contains(parent))
            {
                let companion = rules
                    .iter()
                    .find(|c| c.if_matched_sid == [r.id])
                    .unwrap_or_else(|| {
                        panic!(
                            "rule {} diverts {parent}'s counter {cid} and has no companion",
                            r.id
                        )
                    });
                assert_eq!(companion.level, counter.level, "{cid}");
                assert_eq!(companion.frequency, counter.frequency, "{cid}");
                assert_eq!(companion.timeframe, counter.timeframe, "{cid}");
                assert_eq!(companion.ignore, counter.ignore, "{cid}");
                assert_eq!(companion.same_source_ip, counter.same_source_ip, "{cid}");
                assert!(
                    !companion.groups.iter().any(|g| g == NATIVE_GROUP),
                    "a companion is a correlation, not a hit: {}",
                    companion.id
                );
                for g in counter.groups.iter().filter(|g| *g != "-") {
                    assert!(
                        companion.groups.contains(g),
                        "{}: group {g} of {cid}",
                        companion.id
                    );
                }
                assert!(by_id.contains_key(&r.id));
                checked += 1;
            }
        }
    }
    // 5712, 5720, 5763, 5719, 5551, 31151-31154, 31161-31163, 4151 and 87702 (twice each:
    // source and destination rules).
    assert_eq!(checked, 16);
}

#[test]
fn lists_lookups_and_groups_fit_each_kind() {
    let stock = stock();
    let used: BTreeMap<String, IocKind> = native_rules::lists_used()
        .into_iter()
        .map(|k| (native_rules::list_path(k), k))
        .collect();
    for r in hits(&ours(3)) {
        assert_eq!(r.lists.len(), 1, "rule {}: lists are AND-ed", r.id);
        let (_field, lookup, path) = &r.lists[0];
        let kind = used
            .get(path)
            .unwrap_or_else(|| panic!("rule {}: {path} is not one of our lists", r.id));
        assert_eq!(
            lookup, "match_key",
            "rule {}: exact keys, as we write them",
            r.id
        );
        assert!(r.groups.iter().any(|g| g == NATIVE_GROUP), "rule {}", r.id);
        assert!(
            r.groups.contains(&format!("misp_native_{}", kind.as_str())),
            "rule {}",
            r.id
        );
        assert!(!r.groups.iter().any(|g| g == "misp"), "rule {}", r.id);
        // The groups all its parents share stay, for dashboards and integratord's filters.
        let shared = r.if_sid.iter().map(|p| &stock[p].groups).fold(
            None,
            |acc: Option<BTreeSet<String>>, g| {
                let g: BTreeSet<String> = g.iter().filter(|g| *g != "-").cloned().collect();
                Some(match acc {
                    None => g,
                    Some(a) => a.intersection(&g).cloned().collect(),
                })
            },
        );
        for g in shared.unwrap_or_default() {
            assert!(r.groups.contains(&g), "rule {}: parent group {g}", r.id);
        }
    }
}

#[test]
fn a_higher_log_alert_level_raises_every_hit_to_it() {
    let low = ours(3);
    let high = ours(7);
    for (a, b) in hits(&low).zip(hits(&high)) {
        assert_eq!(b.level, a.level.max(7), "rule {}", a.id);
    }
}
