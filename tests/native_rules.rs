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
    /// The names of its `<field>` conditions: ours only.
    conditions: Vec<String>,
    groups: Vec<String>,
    /// Stock only: the group whose rules loaded before this one become its parents.
    if_group: Option<String>,
    /// The group whose rules' events this one counts (a group-based correlation).
    if_matched_group: Option<String>,
    /// Stock only: the position in analysisd's load order (the facts file's row order).
    loaded: usize,
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
    for (loaded, line) in text.lines().filter(|l| !l.starts_with('#')).enumerate() {
        let c: Vec<&str> = line.split('\t').collect();
        assert_eq!(c.len(), 12, "{line}");
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
                conditions: Vec::new(),
                groups: c[9].split(',').map(str::to_string).collect(),
                // Without if_sid or if_group, if_matched_group is the rule's if_group too
                // (`src/analysisd/rules.c`, "If if_matched_group we must have a if_sid or if_group").
                if_group: opt(c[10]).or_else(|| (c[7] == "-").then(|| opt(c[11])).flatten()),
                if_matched_group: opt(c[11]),
                loaded,
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
                conditions: rule
                    .children_named("field")
                    .map(|f| {
                        String::from_utf8_lossy(f.attribute("name").unwrap_or_default())
                            .into_owned()
                    })
                    .collect(),
                groups,
                if_group: None,
                if_matched_group: rule
                    .child("if_matched_group")
                    .map(|c| c.trimmed_text().into_owned()),
                loaded: usize::MAX,
            });
        }
    }
    out
}

/// The stock children of a stock rule: by `<if_sid>`, and by `<if_group>` for a rule loaded
/// after it that carries the group (`_AddtoRule` in `src/analysisd/rules_list.c` attaches an
/// if_group rule to the rules loaded so far).
fn stock_children<'a>(
    stock: &'a BTreeMap<u32, Rule>,
    parent: u32,
) -> impl Iterator<Item = &'a Rule> + 'a {
    let p = &stock[&parent];
    stock.values().filter(move |c| {
        c.if_sid.contains(&parent)
            || c.if_group
                .as_ref()
                .is_some_and(|g| c.loaded > p.loaded && p.groups.contains(g))
    })
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
    // Per field: a child that takes the event first must have a rule of ours reading the same
    // field under it, or that field's indicator goes unmatched there.
    let covered: BTreeSet<(&str, u32)> = hits(&rules)
        .flat_map(|r| r.if_sid.iter().map(|p| (r.lists[0].0.as_str(), *p)))
        .collect();
    // Sysmon's reverse-lookup name (destinationHostname) hangs only under 61605 and the level-0
    // and level-3 rules tried first; the block has no ids left for every detection level.
    let partial: BTreeSet<&str> = ["win.eventdata.destinationHostname"].into();
    // Wazuh's own CDB rules (0999-malicious-ioc-rules.xml) take only Wazuh's list's values.
    let wazuh_lists: BTreeSet<u32> = (99901..=99920).collect();
    // Documented in docs/native-rules.md: 4xx children that Wazuh itself leaves unalerted (level
    // 0 "ignore" rules: 31102, 31107, 31140, 31141), the 400/500 cross-cutting 31166/31167, 5758
    // (maximum authentication attempts, level 8), the level-12 success correlations 40101 (a
    // system user) and 40112 (success after failures, which our own rule mirrors for listed
    // addresses), 92656 (RDP from the loopback address, never listed), and the group counters
    // 40111 and 60204, children of every rule of their group loaded before them, which fire
    // only once their own count is reached (our companion mirrors 60204's for listed addresses).
    let accepted: BTreeSet<u32> = [
        31102, 31107, 31140, 31141, 31166, 31167, 5758, 40101, 40111, 40112, 60204, 92656,
    ]
    .into();
    for r in hits(&rules) {
        for parent in r.if_sid.iter().filter(|p| stock.contains_key(p)) {
            for child in stock_children(&stock, *parent) {
                let id = &child.id;
                let before = child.level == 0 || child.level >= r.level;
                let field = r.lists[0].0.as_str();
                // 86601-86604 take only event_type alert, http, dns and tls: a rule of ours that
                // requires its own event_type (fileinfo) never meets them.
                let other_event_type =
                    (86601..=86604).contains(id) && r.conditions.iter().any(|c| c == "event_type");
                if before
                    && !other_event_type
                    && !covered.contains(&(field, *id))
                    && !partial.contains(field)
                    && !wazuh_lists.contains(id)
                    && !accepted.contains(id)
                {
                    panic!(
                        "rule {} under {parent}: stock child {id} (level {}) is tried first and has none of ours reading {field}",
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
    // 5712, 5720, 5763, 5719, 5551, 31151-31154, 31161-31163, 31316, 4151 and 87702 (twice
    // each: source and destination rules).
    assert_eq!(checked, 17);
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

/// A group counter (`<if_matched_group>`) counts the events that end at a rule of its group
/// loaded before it, unless that rule is counted by an `<if_matched_sid>` rule (an event goes to
/// its rule's sid list, else to its group lists: `src/analysisd/analysisd.c`). Our rules load
/// after every stock counter, so for each parent whose events such a counter loses, a companion
/// counts our rule the same way; and a stock "success after failures" child tried before ours
/// has its twin under ours, loaded after our companions so that it counts them.
#[test]
fn every_group_counter_that_loses_events_has_a_companion() {
    let stock = stock();
    let rules = ours(3);
    // `$MS_FREQ` is a `<var>` of 0580-win-security_rules.xml.
    let resolve = |f: &Option<String>| f.as_deref().map(|f| f.replace("$MS_FREQ", "8"));
    let sid_counted = |p: u32| stock.values().any(|s| s.if_matched_sid.contains(&p));
    let mut checked = Vec::new();
    for r in hits(&rules) {
        for p in r.if_sid.iter().filter_map(|p| stock.get(p)) {
            // Without if_sid, a group rule is a child of the rules of its if_group loaded before
            // it; a plain group counter's if_group is its if_matched_group.
            for counter in stock.values().filter(|c| {
                c.if_sid.is_empty()
                    && c.if_matched_group.is_some()
                    && c.loaded > p.loaded
                    && c.if_group.as_ref().is_some_and(|g| p.groups.contains(g))
                    // 60204's <same_field>win.eventdata.ipAddress</same_field>: an event
                    // without that field is never counted (`Search_LastGroups`,
                    // src/analysisd/eventinfo.c), so only Windows events count.
                    && (c.id != 60204 || p.groups.iter().any(|g| g == "windows"))
            }) {
                if counter.if_group != counter.if_matched_group {
                    // A child that looks back (40112): its twin hangs under ours.
                    let twin = rules
                        .iter()
                        .find(|t| {
                            t.if_sid.contains(&r.id)
                                && t.if_matched_group == counter.if_matched_group
                        })
                        .unwrap_or_else(|| panic!("rule {}: no twin of {}", r.id, counter.id));
                    assert_eq!(twin.level, counter.level, "{}", counter.id);
                    assert_eq!(twin.timeframe, counter.timeframe, "{}", counter.id);
                    assert_eq!(
                        twin.same_source_ip, counter.same_source_ip,
                        "{}",
                        counter.id
                    );
                    assert!(
                        rules.iter().all(|c| c.if_matched_sid.is_empty()
                            || rules.iter().position(|x| x.id == c.id)
                                < rules.iter().position(|x| x.id == twin.id)),
                        "{} must load after every companion",
                        twin.id
                    );
                    assert!(twin.groups.iter().any(|g| g == NATIVE_GROUP));
                    checked.push((counter.id, twin.id));
                } else if !sid_counted(p.id) {
                    let companion = rules
                        .iter()
                        .find(|c| c.if_matched_sid == [r.id])
                        .unwrap_or_else(|| {
                            panic!("rule {} takes {}'s events from {}", r.id, p.id, counter.id)
                        });
                    assert_eq!(companion.level, counter.level, "{}", counter.id);
                    assert_eq!(resolve(&companion.frequency), resolve(&counter.frequency));
                    assert_eq!(companion.timeframe, counter.timeframe, "{}", counter.id);
                    assert_eq!(
                        companion.same_source_ip, counter.same_source_ip,
                        "{}",
                        counter.id
                    );
                    checked.push((counter.id, companion.id));
                }
            }
        }
    }
    checked.sort();
    checked.dedup();
    // 40111 for Apache's authentication failures, 40112 under sshd's success, 60204 for Windows
    // logon failures.
    assert_eq!(
        checked.iter().map(|(c, _)| *c).collect::<Vec<_>>(),
        [40111, 40112, 60204],
        "{checked:?}"
    );
}

/// The integration enriches a hit by looking up the alert's fields through the field map: every
/// field a rule of ours reads must be one the field map reads, or the hit alerts unenriched.
#[test]
fn every_field_a_hit_rule_reads_is_one_the_runtime_looks_up() {
    let map: BTreeSet<String> = wazuh_misp::fieldmap::default_rules()
        .iter()
        .map(|r| r.path.as_str().to_string())
        .collect();
    for r in hits(&ours(3)) {
        let field = &r.lists[0].0;
        // alerts.json: decoded fields under `data`; the FIM decoder's hashes as syscheck.*_after.
        let path = match field.as_str() {
            "md5" | "sha1" | "sha256" => format!("syscheck.{field}_after"),
            _ => format!("data.{field}"),
        };
        assert!(
            map.contains(&path),
            "rule {}: {path} is not in the field map",
            r.id
        );
    }
}
