//! restSearch semantics: turning request parameters into a [`Query`] the way MISP does
//! (`convert_filters`, PHP `empty()`, flag and time parsing) and evaluating it against a
//! dataset with MySQL comparison rules (case-insensitive `=` that ignores trailing spaces,
//! `LIKE` with `%`/`_` wildcards when a value starts or ends with `%`).

use serde_json::{Map, Value};

use crate::dataset::{Attribute, Event};
use crate::store::{Cursor, Store};

/// A filter in MISP's `{"OR": [...], "NOT": [...], "AND": [...]}` form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FilterSet {
    pub or: Vec<String>,
    pub not: Vec<String>,
    pub and: Vec<String>,
}

impl FilterSet {
    fn is_empty(&self) -> bool {
        self.or.is_empty() && self.not.is_empty() && self.and.is_empty()
    }

    /// Whether a row with these column values passes the filter.
    pub(crate) fn matches(&self, fields: &[&str]) -> bool {
        let hit = |f: &str| fields.iter().any(|v| value_matches(f, v));
        (self.or.is_empty() || self.or.iter().any(|f| hit(f)))
            && self.and.iter().all(|f| hit(f))
            && !self.not.iter().any(|f| hit(f))
    }
}

/// PHP's `empty()`: null, false, 0, 0.0, "", "0", [] and {}.
pub(crate) fn php_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty() || s == "0",
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// A scalar as PHP's `strval` would give it (`None` for null, false, arrays, objects).
pub(crate) fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(true) => Some("1".to_string()),
        _ => None,
    }
}

fn push_signed(set: &mut FilterSet, s: String) {
    if s.is_empty() {
        return;
    }
    match s.strip_prefix('!') {
        Some(rest) => set.not.push(rest.to_string()),
        None => set.or.push(s),
    }
}

/// MISP's `convert_filters` for one parameter: `"a&&!b"`, `["a","!b"]` or
/// `{"OR":[..],"NOT":[..],"AND":[..]}`. `None` when the parameter is PHP-empty or yields no
/// filter at all (MISP then does not filter on it).
pub(crate) fn convert_filters(v: &Value) -> Option<FilterSet> {
    if php_empty(v) {
        return None;
    }
    let mut set = FilterSet::default();
    match v {
        Value::String(s) => {
            for part in s.split("&&") {
                push_signed(&mut set, part.to_string());
            }
        }
        Value::Array(items) => {
            for item in items {
                if let Some(s) = scalar(item) {
                    push_signed(&mut set, s);
                }
            }
        }
        Value::Object(map) => {
            let mut operator_form = false;
            for (k, val) in map {
                let target = match k.to_ascii_uppercase().as_str() {
                    "OR" => &mut set.or,
                    "NOT" => &mut set.not,
                    "AND" => &mut set.and,
                    _ => continue,
                };
                operator_form = true;
                match val {
                    Value::Array(items) => target.extend(items.iter().filter_map(scalar)),
                    other => target.extend(scalar(other)),
                }
            }
            if !operator_form {
                // PHP treats an associative array without operators as a list of its values.
                for item in map.values() {
                    if let Some(s) = scalar(item) {
                        push_signed(&mut set, s);
                    }
                }
            }
        }
        other => {
            if let Some(s) = scalar(other) {
                set.or.push(s);
            }
        }
    }
    if set.is_empty() {
        None
    } else {
        Some(set)
    }
}

/// One filter value against one column: `LIKE` (or `=`) when it starts or ends with `%`,
/// otherwise `=`.
pub(crate) fn value_matches(filter: &str, column: &str) -> bool {
    if filter.starts_with('%') || filter.ends_with('%') {
        sql_like(filter, column) || sql_eq(filter, column)
    } else {
        sql_eq(filter, column)
    }
}

/// MySQL `=` under a case-insensitive PAD SPACE collation.
pub(crate) fn sql_eq(a: &str, b: &str) -> bool {
    let a = a.trim_end_matches(' ');
    let b = b.trim_end_matches(' ');
    if a.is_ascii() && b.is_ascii() {
        a.eq_ignore_ascii_case(b)
    } else {
        a.to_lowercase() == b.to_lowercase()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Many,
    One,
    Lit(char),
}

/// MySQL `LIKE`, case-insensitive: `%` any run, `_` one character, `\` escapes.
pub(crate) fn sql_like(pattern: &str, text: &str) -> bool {
    let mut toks = Vec::with_capacity(pattern.len());
    let mut chars = pattern.chars().flat_map(char::to_lowercase);
    while let Some(c) = chars.next() {
        toks.push(match c {
            '%' => Tok::Many,
            '_' => Tok::One,
            '\\' => Tok::Lit(chars.next().unwrap_or('\\')),
            c => Tok::Lit(c),
        });
    }
    let text: Vec<char> = text.chars().flat_map(char::to_lowercase).collect();
    // Greedy matching with backtracking to the last `%`: O(n*m) worst case, no recursion.
    let (mut t, mut p) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match toks.get(p) {
            Some(Tok::Many) => {
                star = Some((p, t));
                p += 1;
            }
            Some(Tok::One) => {
                p += 1;
                t += 1;
            }
            Some(Tok::Lit(c)) if *c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    toks[p..].iter().all(|t| *t == Tok::Many)
}

/// A boolean filter: the set of accepted values. `None` when absent or not understood.
pub(crate) fn parse_flags(v: &Value) -> Option<Vec<bool>> {
    fn one(v: &Value) -> Option<bool> {
        match v {
            Value::Bool(b) => Some(*b),
            Value::Number(n) => {
                let x = n.as_f64();
                if x == Some(0.0) {
                    Some(false)
                } else if x == Some(1.0) {
                    Some(true)
                } else {
                    None
                }
            }
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "0" | "false" => Some(false),
                "1" | "true" | "only" => Some(true),
                _ => None,
            },
            _ => None,
        }
    }
    match v {
        Value::Array(items) => {
            let flags: Vec<bool> = items.iter().filter_map(one).collect();
            if flags.is_empty() {
                None
            } else {
                Some(flags)
            }
        }
        other => one(other).map(|b| vec![b]),
    }
}

/// An inclusive time range `[from, to]`.
pub(crate) type TimeRange = (u64, Option<u64>);

/// MISP's `resolveTimeDelta`: a Unix time, or `"7d"`, `"12h"`, `"30m"`, `"10s"` before `now`.
fn resolve_time(v: &Value, now: u64) -> Option<u64> {
    let s = match v {
        Value::Number(n) => return n.as_u64(),
        Value::String(s) => s.trim(),
        _ => return None,
    };
    if let Ok(n) = s.parse::<u64>() {
        return Some(n);
    }
    let unit = s.chars().last()?;
    let mult = match unit.to_ascii_lowercase() {
        'd' => 86_400,
        'h' => 3_600,
        'm' => 60,
        's' => 1,
        _ => return None,
    };
    let n: u64 = s[..s.len() - unit.len_utf8()].trim().parse().ok()?;
    Some(now.saturating_sub(n.saturating_mul(mult)))
}

/// A time filter: one bound (`>=`) or a `[from, to]` pair.
pub(crate) fn parse_time_range(v: &Value, now: u64) -> Option<TimeRange> {
    if php_empty(v) {
        return None;
    }
    match v {
        Value::Array(items) => match items.as_slice() {
            [from] => Some((resolve_time(from, now)?, None)),
            [from, to, ..] => Some((resolve_time(from, now)?, resolve_time(to, now))),
            [] => None,
        },
        other => Some((resolve_time(other, now)?, None)),
    }
}

pub(crate) fn in_range(range: &Option<TimeRange>, t: u64) -> bool {
    match range {
        None => true,
        Some((from, to)) => t >= *from && to.is_none_or(|to| t <= to),
    }
}

pub(crate) fn parse_usize(v: &Value) -> Option<usize> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Sort key of an `order` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OrderField {
    Id,
    Timestamp,
    Value,
    Type,
    Category,
    EventId,
}

/// A parsed restSearch request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Query {
    pub value: Option<FilterSet>,
    pub kind: Option<FilterSet>,
    pub category: Option<FilterSet>,
    pub uuid: Option<FilterSet>,
    pub eventid: Option<FilterSet>,
    pub tags: Option<FilterSet>,
    pub to_ids: Option<Vec<bool>>,
    pub published: Option<Vec<bool>>,
    pub deleted: Vec<bool>,
    pub publish_timestamp: Option<TimeRange>,
    pub attribute_timestamp: Option<TimeRange>,
    pub limit: Option<usize>,
    pub page: usize,
    pub order: (OrderField, bool),
    pub include_event_uuid: bool,
    pub include_event_tags: bool,
    /// `returnFormat` is absent or `json`.
    pub json: bool,
}

impl Query {
    /// Reads MISP's restSearch parameters; unknown keys are ignored like MISP does.
    pub(crate) fn from_params(p: &Map<String, Value>, now: u64) -> Query {
        let get = |k: &str| p.get(k).filter(|v| !v.is_null());
        let filt = |k: &str| get(k).and_then(convert_filters);
        let truthy = |k: &str| get(k).is_some_and(|v| !php_empty(v));
        let limit = get("limit").and_then(parse_usize).filter(|n| *n > 0);
        let page = get("page").and_then(parse_usize).unwrap_or(1).max(1);
        let order = get("order")
            .and_then(Value::as_str)
            .map(parse_order)
            .unwrap_or((OrderField::Id, true));
        let deleted = get("deleted")
            .and_then(parse_flags)
            .unwrap_or_else(|| vec![false]);
        let json = match get("returnFormat") {
            None => true,
            Some(v) => php_empty(v) || v.as_str().is_some_and(|s| s.eq_ignore_ascii_case("json")),
        };
        let publish_timestamp = get("publish_timestamp")
            .and_then(|v| parse_time_range(v, now))
            .or_else(|| get("last").and_then(|v| parse_time_range(v, now)));
        let attribute_timestamp = get("attribute_timestamp")
            .and_then(|v| parse_time_range(v, now))
            .or_else(|| get("timestamp").and_then(|v| parse_time_range(v, now)));
        Query {
            value: filt("value"),
            kind: filt("type"),
            category: filt("category"),
            uuid: filt("uuid"),
            eventid: filt("eventid").or_else(|| filt("event_id")),
            tags: filt("tags").or_else(|| filt("tag")),
            to_ids: get("to_ids").and_then(parse_flags),
            published: get("published").and_then(parse_flags),
            deleted,
            publish_timestamp,
            attribute_timestamp,
            limit,
            page,
            order,
            include_event_uuid: truthy("includeEventUuid"),
            include_event_tags: truthy("includeEventTags"),
            json,
        }
    }

    /// Whether one attribute (with its event) passes every filter.
    pub(crate) fn accepts(&self, a: &Attribute, e: &Event) -> bool {
        if !self.deleted.contains(&a.deleted) {
            return false;
        }
        if let Some(f) = &self.to_ids {
            if !f.contains(&a.to_ids) {
                return false;
            }
        }
        if let Some(f) = &self.published {
            if !f.contains(&e.published) {
                return false;
            }
        }
        if !in_range(&self.publish_timestamp, e.publish_timestamp)
            || !in_range(&self.attribute_timestamp, a.timestamp)
        {
            return false;
        }
        if let Some(f) = &self.value {
            let (v1, v2) = a.halves();
            if !f.matches(&[v1, v2, a.value.as_str()]) {
                return false;
            }
        }
        if let Some(f) = &self.kind {
            if !f.matches(&[a.kind.as_str()]) {
                return false;
            }
        }
        if let Some(f) = &self.category {
            if !f.matches(&[a.category.as_str()]) {
                return false;
            }
        }
        if let Some(f) = &self.uuid {
            if !f.matches(&[a.uuid.as_str(), e.uuid.as_str()]) {
                return false;
            }
        }
        if let Some(f) = &self.eventid {
            if !f.matches(&[e.id.to_string().as_str()]) {
                return false;
            }
        }
        if let Some(f) = &self.tags {
            let names: Vec<&str> = a
                .tags
                .iter()
                .chain(e.tags.iter())
                .map(|t| t.name.as_str())
                .collect();
            // A tag filter is per tag: OR = has one of them, NOT = has none of them.
            let has = |pat: &str| names.iter().any(|n| value_matches(pat, n));
            if (!f.or.is_empty() && !f.or.iter().any(|p| has(p)))
                || !f.and.iter().all(|p| has(p))
                || f.not.iter().any(|p| has(p))
            {
                return false;
            }
        }
        true
    }
}

fn parse_order(s: &str) -> (OrderField, bool) {
    let mut words = s.split_whitespace();
    let field = words.next().unwrap_or("");
    let field = field
        .strip_prefix("Attribute.")
        .or_else(|| field.strip_prefix("attribute."))
        .unwrap_or(field);
    let asc = !words.next().is_some_and(|d| d.eq_ignore_ascii_case("desc"));
    let field = match field.to_ascii_lowercase().as_str() {
        "timestamp" => OrderField::Timestamp,
        "value" | "value1" => OrderField::Value,
        "type" => OrderField::Type,
        "category" => OrderField::Category,
        "event_id" => OrderField::EventId,
        _ => OrderField::Id,
    };
    (field, asc)
}

/// Event ids named by a plain `eventid` filter (only OR-ed canonical decimal ids), which lets
/// a search read just those events' attributes instead of scanning everything.
fn plain_event_ids(f: &FilterSet) -> Option<Vec<u64>> {
    if f.or.is_empty() || !f.not.is_empty() || !f.and.is_empty() {
        return None;
    }
    let mut ids = Vec::with_capacity(f.or.len());
    for s in &f.or {
        let id: u64 = s.parse().ok()?;
        if id.to_string() != *s {
            return None;
        }
        ids.push(id);
    }
    ids.sort_unstable();
    ids.dedup();
    Some(ids)
}

/// Runs a query: filter, sort, page. Attributes whose event is missing are skipped.
///
/// Id-ordered searches scan in id order and stop once the page is full; a plain `eventid`
/// filter reads only those events' attributes; successive pages of the same query resume
/// where the previous page stopped (a cursor kept by the store).
pub(crate) fn run<'a>(st: &'a Store, q: &Query) -> Vec<(&'a Attribute, &'a Event)> {
    let explicit: Option<Vec<u32>> = q.eventid.as_ref().and_then(plain_event_ids).map(|ids| {
        let mut p: Vec<u32> = ids
            .iter()
            .flat_map(|id| st.event_attribute_positions(*id).iter().copied())
            .collect();
        p.sort_unstable_by_key(|&p| (st.attribute_at(p).id, p));
        p
    });
    let seq: &[u32] = explicit.as_deref().unwrap_or(st.attribute_order());
    let n = seq.len();
    let (field, asc) = q.order;
    let at = |i: usize| if asc { seq[i] } else { seq[n - 1 - i] };
    // Attributes of one event are usually neighbours in id order: remember the last event.
    let mut last: Option<(u64, Option<&'a Event>)> = None;
    let mut pass = |p: u32| -> Option<(&'a Attribute, &'a Event)> {
        let a = st.attribute_at(p);
        let e = match last {
            Some((id, e)) if id == a.event_id => e,
            _ => {
                let e = st.event(a.event_id);
                last = Some((a.event_id, e));
                e
            }
        }?;
        q.accepts(a, e).then_some((a, e))
    };

    if field != OrderField::Id {
        let mut hits: Vec<(&Attribute, &Event)> = (0..n).filter_map(|i| pass(at(i))).collect();
        hits.sort_by(|(a, _), (b, _)| {
            let ord = match field {
                OrderField::Id => a.id.cmp(&b.id),
                OrderField::Timestamp => a.timestamp.cmp(&b.timestamp),
                OrderField::Value => a.value.to_lowercase().cmp(&b.value.to_lowercase()),
                OrderField::Type => a.kind.cmp(&b.kind),
                OrderField::Category => a.category.cmp(&b.category),
                OrderField::EventId => a.event_id.cmp(&b.event_id),
            }
            .then(a.id.cmp(&b.id));
            if asc {
                ord
            } else {
                ord.reverse()
            }
        });
        if let Some(limit) = q.limit {
            let skip = (q.page - 1).saturating_mul(limit);
            hits = hits.into_iter().skip(skip).take(limit).collect();
        }
        return hits;
    }

    let Some(limit) = q.limit else {
        return (0..n).filter_map(|i| pass(at(i))).collect();
    };
    // Id order with a page: resume from a cursor when the previous page (or this one) of the
    // same query was just served.
    let use_cursor = explicit.is_none();
    let key = use_cursor.then(|| Query {
        page: 1,
        ..q.clone()
    });
    let (mut i, mut skip) = (0usize, (q.page - 1).saturating_mul(limit));
    if let Some(c) = key.as_ref().and_then(|k| st.cursor_for(k, q.page)) {
        i = if c.page == q.page { c.start } else { c.end };
        skip = 0;
    }
    let mut hits = Vec::with_capacity(limit.min(16 * 1024));
    let mut start = if skip == 0 { Some(i) } else { None };
    while i < n && hits.len() < limit {
        if let Some(hit) = pass(at(i)) {
            if skip > 0 {
                skip -= 1;
                if skip == 0 {
                    start = Some(i + 1);
                }
            } else {
                hits.push(hit);
            }
        }
        i += 1;
    }
    if let (Some(key), Some(start)) = (key, start) {
        st.save_cursor(Cursor {
            key,
            generation: st.generation(),
            page: q.page,
            start,
            end: i,
        });
    }
    hits
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn q(v: Value) -> Query {
        match v {
            Value::Object(m) => Query::from_params(&m, 1_800_000_000),
            _ => unreachable!(),
        }
    }

    fn values(query: Value) -> Vec<String> {
        let st = Store::new(crate::Dataset::seed());
        run(&st, &q(query))
            .into_iter()
            .map(|(a, _)| a.value.clone())
            .collect()
    }

    #[test]
    fn like_and_eq() {
        assert!(sql_like("%drop.ru", "MALWARE-DROP.RU"));
        assert!(sql_like(
            "http://%/payload.exe",
            "http://malware-drop.ru/payload.exe"
        ));
        assert!(sql_like("a_c%", "abcdef"));
        assert!(!sql_like("a_c", "abbc"));
        assert!(sql_like("%", ""));
        assert!(sql_like("100\\%%", "100% sure"));
        assert!(!sql_like("100\\%%", "1000"));
        assert!(sql_like("%a%b%c%", "xxaxxbxxcxx"));
        assert!(!sql_like("%a%b%c", "xxaxxbxxcxx"));
        assert!(sql_eq("Foo  ", "foo"));
        assert!(!sql_eq(" foo", "foo"));
        assert!(sql_eq("ÉVIL.example", "évil.EXAMPLE"));
    }

    #[test]
    fn convert_filters_forms() {
        let f = convert_filters(&json!("a&&!b&&")).unwrap();
        assert_eq!(f.or, vec!["a"]);
        assert_eq!(f.not, vec!["b"]);
        let f = convert_filters(&json!(["x", "!y", 5, null, true, false])).unwrap();
        assert_eq!(f.or, vec!["x", "5", "1"]);
        assert_eq!(f.not, vec!["y"]);
        let f = convert_filters(&json!({"OR": ["a"], "NOT": "b"})).unwrap();
        assert_eq!(
            (f.or, f.not),
            (vec!["a".to_string()], vec!["b".to_string()])
        );
        assert_eq!(convert_filters(&json!([])), None);
        assert_eq!(convert_filters(&json!("0")), None);
        assert_eq!(convert_filters(&json!([null])), None);
    }

    #[test]
    fn composite_halves_and_whole() {
        assert_eq!(
            values(json!({"value": "91.219.236.166"})),
            vec!["91.219.236.166|443"]
        );
        assert_eq!(values(json!({"value": "443"})), vec!["91.219.236.166|443"]);
        assert_eq!(
            values(json!({"value": "91.219.236.166|443"})),
            vec!["91.219.236.166|443"]
        );
        assert_eq!(
            values(json!({"value": ["BAD-UPDATE.NET", "104.21.33.10"]})),
            vec!["bad-update.net|104.21.33.10"]
        );
        assert_eq!(
            values(json!({"value": "%drop.ru%"})),
            vec!["malware-drop.ru", "http://malware-drop.ru/payload.exe"]
        );
    }

    #[test]
    fn flags_and_defaults() {
        let all = values(json!({}));
        assert_eq!(all.len(), crate::seed::LIVE_ATTRIBUTE_COUNT);
        assert!(!all.contains(&crate::seed::DELETED_IP.to_string()));
        assert_eq!(values(json!({"deleted": 1})), vec![crate::seed::DELETED_IP]);
        assert_eq!(
            values(json!({"deleted": [0, 1]})).len(),
            crate::seed::ATTRIBUTE_COUNT
        );
        assert_eq!(
            values(json!({"to_ids": "0"})),
            vec![crate::seed::NON_IDS_IP]
        );
        assert!(!values(json!({"published": true}))
            .contains(&crate::seed::UNPUBLISHED_DOMAIN.to_string()));
        assert_eq!(
            values(json!({"published": false})),
            vec![crate::seed::UNPUBLISHED_DOMAIN]
        );
    }

    #[test]
    fn tags_time_order_page() {
        assert_eq!(
            values(json!({"tags": "kill-chain:Reconnaissance"})),
            vec![crate::seed::BRUTE_FORCE_IP]
        );
        assert_eq!(values(json!({"tags": "tlp:green"})).len(), 2);
        assert_eq!(
            values(json!({"publish_timestamp": 1_737_000_000})),
            vec![crate::seed::BRUTE_FORCE_IP]
        );
        let desc = values(json!({"order": "Attribute.id desc", "limit": 2}));
        assert_eq!(
            desc,
            vec![crate::seed::NON_IDS_IP, crate::seed::UNPUBLISHED_DOMAIN]
        );
        let p2 = values(json!({"limit": "5", "page": 3}));
        assert_eq!(p2.len(), 4);
        assert!(values(json!({"limit": 5, "page": 4})).is_empty());
    }

    #[test]
    fn time_parsing() {
        assert_eq!(resolve_time(&json!("1d"), 100_000), Some(100_000 - 86_400));
        assert_eq!(resolve_time(&json!("12"), 0), Some(12));
        assert_eq!(resolve_time(&json!("x"), 0), None);
        assert_eq!(resolve_time(&json!("é"), 0), None);
        assert_eq!(parse_time_range(&json!([5, 9]), 0), Some((5, Some(9))));
    }
}
