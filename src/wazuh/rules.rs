//! Our Wazuh rules file `etc/rules/custom-misp_rules.xml`: rendering it from the compiled-in
//! template (`templates/custom-misp_rules.xml`) for a chosen block of rule ids, and reading the
//! rules already installed, to find ids that would collide with ours and, for `doctor`, which
//! rules carry which groups at which level.
//!
//! Wazuh facts this module relies on (checked in wazuh/wazuh v4.9.2 and v4.14.7,
//! `src/analysisd/rules.c`, `rules_list.c`, `src/config/rules-config.c`):
//! - a rule id is at most 6 digits and a level 0-16; a duplicate id, or an `if_sid` naming no
//!   loaded rule, is only a warning and the rule is dropped, so we never write either;
//! - every `*.xml` of `etc/rules/` and `ruleset/rules/` is loaded (not recursively), all of them
//!   sorted by file name, and `if_sid` is resolved while loading: `custom-misp_rules.xml` sorts
//!   after the stock `0095-sshd_rules.xml`, whose rules 5710, 5716 and 5760 the self-test rule
//!   hangs from;
//! - sibling rules are tried in descending level order (ties in file order), the first match
//!   wins, and a `<field>` naming a field the event lacks never matches.

use std::collections::BTreeSet;
use std::fmt;
use std::ops::RangeInclusive;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Relative to the Wazuh home.
pub const RULES_FILE: &str = "etc/rules/custom-misp_rules.xml";

/// The first of our rule ids unless the admin picks another block. Wazuh leaves 100000-120000
/// to custom rules by convention, and the bottom of it is crowded: the examples in Wazuh's
/// documentation (100001, 100002…), and the ids other MISP integrations ship and copy from one
/// another (100620-100626, 100800-100806, 101806-101811). Stock Wazuh rules above 100000
/// start at 150100. 117100-117119 is used by none of them nor by any public rule file we could
/// find, and a round hundred is easy to recognise in alerts.
pub const DEFAULT_RULE_ID_BASE: u32 = 117100;

/// The ids we reserve, contiguous from the base: 17 rules today (base, 5 hit rules, 10 error
/// rules, the mirror's status rule), two spare ids so a later version can add rules without
/// needing ids that may collide, and the self-test rule, always last. The whole block is checked for collisions and
/// reserved even when the self-test rule is not installed.
pub const RULE_COUNT: u32 = 20;

/// Ids below this belong to Wazuh's own ruleset, and a Wazuh upgrade may add any of them.
pub const MIN_RULE_ID_BASE: u32 = 100_000;
/// Wazuh reads at most 6 digits of a rule id.
pub const MAX_RULE_ID: u32 = 999_999;
/// The ids Wazuh leaves to custom rules by convention.
pub const CUSTOM_RULE_IDS: RangeInclusive<u32> = 100_000..=120_000;

/// The level of every hit rule.
pub const HIT_LEVEL: u8 = 12;
/// The group every rule of ours but the self test carries (the root `<group name>`).
pub const GROUP: &str = "misp";
/// Carried by hit rules.
pub const HIT_GROUP: &str = "misp_alert";
/// Carried by error rules.
pub const ERROR_GROUP: &str = "misp_error";
/// Carried by the self-test rule.
pub const SELFTEST_GROUP: &str = "misp_selftest";
/// What a log line must contain to fire the self-test rule.
pub const SELFTEST_MARKER: &str = "wazuh-misp-selftest";
/// The stock sshd rules (`ruleset/rules/0095-sshd_rules.xml`) the self-test rule is a child of:
/// non-existent user, authentication failed, failed password. All decode `srcip`.
pub const STOCK_SSHD_PARENTS: [u32; 3] = [5710, 5716, 5760];
/// The self test's level when the integration block asks for less.
pub const SELFTEST_MIN_LEVEL: u8 = 10;
/// The self test's highest level.
pub const SELFTEST_MAX_LEVEL: u8 = 15;

/// Rule id blocks other MISP integrations use; we never suggest a base that overlaps them.
const THIRD_PARTY_BLOCKS: [RangeInclusive<u32>; 3] =
    [100_620..=100_626, 100_800..=100_806, 101_806..=101_811];
/// Groups the template already gives the self-test rule.
const SELFTEST_FIXED_GROUPS: [&str; 4] =
    ["syslog", "sshd", "authentication_failed", SELFTEST_GROUP];

const TEMPLATE: &str = include_str!("../../templates/custom-misp_rules.xml");

/// The optional self-test rule, made to pass the filters of our `<integration>` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleRule {
    /// The integration block's `<level>` (0 when it has none). The rule's level is
    /// [`sample_level`] of it.
    pub level: u8,
    /// The integration block's `<group>` names (empty when it has none); the rule carries all.
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesSpec {
    /// The first rule id; the block is [`rule_ids`] of it.
    pub base: u32,
    pub sample: Option<SampleRule>,
}

impl Default for RulesSpec {
    fn default() -> Self {
        RulesSpec {
            base: DEFAULT_RULE_ID_BASE,
            sample: None,
        }
    }
}

/// A rule of someone else's with an id in our block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collision {
    pub file: PathBuf,
    pub id: u32,
}

impl fmt::Display for Collision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rule id {} in {}", self.id, self.file.display())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("rule id base {base} is not usable: wazuh-misp needs {RULE_COUNT} ids from the base, between {MIN_RULE_ID_BASE} (lower ids belong to Wazuh's own rules) and {MAX_RULE_ID} (Wazuh reads 6 digits); the default is {DEFAULT_RULE_ID_BASE}")]
    BaseOutOfRange { base: u32 },
    #[error("invalid rule group name {0:?}: use only letters, digits, '_', '.' and '-'")]
    BadGroup(String),
    #[error("the self-test rule cannot pass an integration <level> of {0}: its level is at most {SELFTEST_MAX_LEVEL}; lower the integration's <level> or install without the sample rule")]
    SampleLevel(u8),
    #[error("rules template: {0}")]
    Template(String),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}: rule {id}: {reason}")]
    BadRule {
        file: PathBuf,
        id: String,
        reason: String,
    },
    #[error("{}", collision_message(*.base, .collisions, *.suggestion))]
    Collision {
        base: u32,
        collisions: Vec<Collision>,
        suggestion: Option<u32>,
    },
}

fn collision_message(base: u32, collisions: &[Collision], suggestion: Option<u32>) -> String {
    let ids = rule_ids(base);
    let mut msg = match collisions.first() {
        Some(c) => format!(
            "rule id {} in {} is one of the ids wazuh-misp needs ({}-{})",
            c.id,
            c.file.display(),
            ids.start(),
            ids.end()
        ),
        None => format!("rule ids {}-{} are taken", ids.start(), ids.end()),
    };
    if collisions.len() > 1 {
        const SHOWN: usize = 4;
        let others: Vec<String> = collisions[1..]
            .iter()
            .take(SHOWN)
            .map(Collision::to_string)
            .collect();
        msg.push_str(&format!(", as is {}", others.join(", ")));
        if collisions.len() - 1 > SHOWN {
            msg.push_str(&format!(" and {} more", collisions.len() - 1 - SHOWN));
        }
    }
    match suggestion {
        Some(n) => msg.push_str(&format!(
            "; choose another block with `--rule-id-base {n}` (ids {n}-{} are free)",
            sample_rule_id(n)
        )),
        None => msg.push_str(&format!(
            "; choose another block with `--rule-id-base N` (no free block of {RULE_COUNT} ids was found in {}-{})",
            CUSTOM_RULE_IDS.start(),
            CUSTOM_RULE_IDS.end()
        )),
    }
    msg
}

/// The ids reserved for a base (saturating, so an absurd base cannot overflow).
pub fn rule_ids(spec_base: u32) -> RangeInclusive<u32> {
    spec_base..=spec_base.saturating_add(RULE_COUNT - 1)
}

/// The self-test rule's id: the last of the block.
pub fn sample_rule_id(base: u32) -> u32 {
    base.saturating_add(RULE_COUNT - 1)
}

/// The self-test rule's level for an integration block's `<level>`: at least
/// [`SELFTEST_MIN_LEVEL`] so it stands out, and at least the block's level so it passes it.
pub fn sample_level(integration_level: u8) -> u8 {
    integration_level.clamp(SELFTEST_MIN_LEVEL, SELFTEST_MAX_LEVEL)
}

/// Checks a base: the whole block must be 6-digit custom ids.
pub fn check_base(base: u32) -> Result<(), RulesError> {
    if !(MIN_RULE_ID_BASE..=MAX_RULE_ID - (RULE_COUNT - 1)).contains(&base) {
        return Err(RulesError::BaseOutOfRange { base });
    }
    Ok(())
}

/// A warning for a usable base outside Wazuh's custom range, where stock rules live too.
pub fn base_warning(base: u32) -> Option<String> {
    let ids = rule_ids(base);
    if CUSTOM_RULE_IDS.contains(ids.start()) && CUSTOM_RULE_IDS.contains(ids.end()) {
        return None;
    }
    Some(format!(
        "rule ids {}-{} are outside {}-{}, the ids Wazuh leaves to custom rules; Wazuh's own ruleset uses ids above it (150100, 184665, 500000…) and an upgrade may add more",
        ids.start(),
        ids.end(),
        CUSTOM_RULE_IDS.start(),
        CUSTOM_RULE_IDS.end()
    ))
}

/// A Wazuh group name we are willing to write: `[A-Za-z0-9_.-]+`.
pub fn valid_group(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// The rules file for `spec`, ready to write to [`RULES_FILE`].
pub fn render(spec: &RulesSpec) -> Result<String, RulesError> {
    check_base(spec.base)?;
    let (keep_sample, sample_level_text, sample_groups) = match &spec.sample {
        None => (false, String::new(), String::new()),
        Some(sample) => {
            if sample.level > SELFTEST_MAX_LEVEL {
                return Err(RulesError::SampleLevel(sample.level));
            }
            let mut seen: BTreeSet<&str> = SELFTEST_FIXED_GROUPS.into_iter().collect();
            let mut groups = String::new();
            for g in &sample.groups {
                let g = g.trim();
                if !valid_group(g) {
                    return Err(RulesError::BadGroup(g.to_string()));
                }
                if seen.insert(g) {
                    groups.push_str(g);
                    groups.push(',');
                }
            }
            (true, sample_level(sample.level).to_string(), groups)
        }
    };

    let mut out = String::with_capacity(TEMPLATE.len());
    let mut section: Option<(&str, bool)> = None;
    for line in TEMPLATE.lines() {
        if let Some(name) = marker(line, "{{#") {
            if section.is_some() {
                return Err(RulesError::Template(format!("nested section {name}")));
            }
            let keep = match name {
                "SAMPLE" => keep_sample,
                "NOTES" => false,
                other => return Err(RulesError::Template(format!("unknown section {other}"))),
            };
            section = Some((name, keep));
            continue;
        }
        if let Some(name) = marker(line, "{{/") {
            match section {
                Some((open, _)) if open == name => section = None,
                _ => return Err(RulesError::Template(format!("unexpected end of {name}"))),
            }
            continue;
        }
        if matches!(section, Some((_, false))) {
            continue;
        }
        out.push_str(&substitute(
            line,
            spec.base,
            &sample_level_text,
            &sample_groups,
        )?);
        out.push('\n');
    }
    if let Some((name, _)) = section {
        return Err(RulesError::Template(format!("section {name} not closed")));
    }
    // Blank lines left where a section was dropped.
    while out.ends_with("\n\n") {
        out.pop();
    }
    Ok(out)
}

/// The name of a `{{#NAME}}` / `{{/NAME}}` section marker on `line`.
fn marker<'a>(line: &'a str, open: &str) -> Option<&'a str> {
    let start = line.find(open)? + open.len();
    let len = line[start..].find("}}")?;
    Some(&line[start..start + len])
}

fn substitute(
    line: &str,
    base: u32,
    sample_level: &str,
    sample_groups: &str,
) -> Result<String, RulesError> {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(len) = after.find("}}") else {
            return Err(RulesError::Template(format!(
                "unclosed placeholder in {line:?}"
            )));
        };
        let name = &after[..len];
        match name {
            "BASE" => out.push_str(&base.to_string()),
            "SAMPLE_ID" => out.push_str(&sample_rule_id(base).to_string()),
            "SAMPLE_LEVEL" => out.push_str(sample_level),
            "SAMPLE_GROUPS" => out.push_str(sample_groups),
            _ => {
                let offset = name
                    .strip_prefix("BASE+")
                    .and_then(|n| n.parse::<u32>().ok())
                    .filter(|n| *n < RULE_COUNT)
                    .ok_or_else(|| {
                        RulesError::Template(format!("unknown placeholder {{{{{name}}}}}"))
                    })?;
                out.push_str(&(base + offset).to_string());
            }
        }
        rest = &after[len + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Every rule of someone else's with an id in `ids`, in the files Wazuh loads by default
/// (`etc/rules/*.xml` and `ruleset/rules/*.xml`, our own [`RULES_FILE`] and native rules
/// excepted). Commented-out rules do not count; ids that are not numbers cannot collide and are
/// skipped.
pub fn find_collisions(
    home: &Path,
    ids: RangeInclusive<u32>,
) -> Result<Vec<Collision>, RulesError> {
    let mut found = Vec::new();
    for file in rule_files(home, false)? {
        let text = read_lossy(&file)?;
        for tag in Lexer::new(&text) {
            if let Token::Open { name, attrs, .. } = tag {
                if !name.eq_ignore_ascii_case("rule") {
                    continue;
                }
                if let Some(id) = attr(&attrs, "id").and_then(parse_rule_id) {
                    if ids.contains(&id) {
                        found.push(Collision {
                            file: file.clone(),
                            id,
                        });
                    }
                }
            }
        }
    }
    found.sort_by(|a, b| (a.id, &a.file).cmp(&(b.id, &b.file)));
    Ok(found)
}

/// The first base, counting in hundreds from [`DEFAULT_RULE_ID_BASE`] up to the end of the
/// custom range, then from its start, whose block no rule in `home` uses and no other MISP
/// integration is known to use.
pub fn free_base(home: &Path) -> Result<Option<u32>, RulesError> {
    let used: BTreeSet<u32> = find_collisions(home, CUSTOM_RULE_IDS)?
        .into_iter()
        .map(|c| c.id)
        .collect();
    let last_base = CUSTOM_RULE_IDS.end() - (RULE_COUNT - 1);
    let candidates = (DEFAULT_RULE_ID_BASE..=last_base)
        .step_by(100)
        .chain((*CUSTOM_RULE_IDS.start()..DEFAULT_RULE_ID_BASE).step_by(100));
    for base in candidates {
        let ids = rule_ids(base);
        let third_party = THIRD_PARTY_BLOCKS
            .iter()
            .any(|b| b.start() <= ids.end() && ids.start() <= b.end());
        if !third_party && used.range(ids).next().is_none() {
            return Ok(Some(base));
        }
    }
    Ok(None)
}

/// Checks that the block of `base` is usable and free in `home`; the error names the first
/// colliding file and id and suggests a free base.
pub fn ensure_free(home: &Path, base: u32) -> Result<(), RulesError> {
    check_base(base)?;
    let collisions = find_collisions(home, rule_ids(base))?;
    if collisions.is_empty() {
        return Ok(());
    }
    Err(RulesError::Collision {
        base,
        collisions,
        suggestion: free_base(home)?,
    })
}

/// One rule as loaded: the file, its id, its level, and its groups (the enclosing
/// `<group name="…">` then its own `<group>` children, in order, without empty names).
pub type RuleEntry = (PathBuf, u32, u8, Vec<String>);

/// Every rule in the files Wazuh loads by default, ours included, in file-name order as Wazuh
/// loads them. A rule with no valid id or level is an error naming the file and the id.
pub fn all_rule_ids(home: &Path) -> Result<Vec<RuleEntry>, RulesError> {
    let mut rules = Vec::new();
    for file in rule_files(home, true)? {
        let text = read_lossy(&file)?;
        parse_rules(&file, &text, &mut rules)?;
    }
    Ok(rules)
}

/// A rule being read.
struct OpenRule {
    id: u32,
    level: u8,
    groups: Vec<String>,
    /// Inside one of its `<group>` children.
    in_group: bool,
}

fn parse_rules(file: &Path, text: &str, out: &mut Vec<RuleEntry>) -> Result<(), RulesError> {
    // Enclosing `<group name>` elements (Wazuh allows them only at the root; we do not mind).
    let mut roots: Vec<Vec<String>> = Vec::new();
    let mut rule: Option<OpenRule> = None;
    for token in Lexer::new(text) {
        match token {
            Token::Open {
                name,
                attrs,
                self_closing,
            } => {
                if name.eq_ignore_ascii_case("rule") {
                    let open = open_rule(file, &attrs, &roots)?;
                    if self_closing {
                        out.push((file.to_path_buf(), open.id, open.level, open.groups));
                    } else {
                        // A rule left open by a broken file ends where the next one starts.
                        if let Some(prev) = rule.replace(open) {
                            out.push((file.to_path_buf(), prev.id, prev.level, prev.groups));
                        }
                    }
                } else if name.eq_ignore_ascii_case("group") {
                    match rule.as_mut() {
                        Some(r) => r.in_group = !self_closing,
                        None if !self_closing => {
                            roots.push(split_groups(attr(&attrs, "name").unwrap_or("")));
                        }
                        None => {}
                    }
                }
            }
            Token::Close { name } => {
                if name.eq_ignore_ascii_case("rule") {
                    if let Some(r) = rule.take() {
                        out.push((file.to_path_buf(), r.id, r.level, r.groups));
                    }
                } else if name.eq_ignore_ascii_case("group") {
                    match rule.as_mut() {
                        Some(r) if r.in_group => r.in_group = false,
                        Some(_) => {}
                        None => {
                            roots.pop();
                        }
                    }
                }
            }
            Token::Text(t) => {
                if let Some(r) = rule.as_mut().filter(|r| r.in_group) {
                    r.groups.extend(split_groups(t));
                }
            }
        }
    }
    if let Some(r) = rule {
        out.push((file.to_path_buf(), r.id, r.level, r.groups));
    }
    Ok(())
}

fn open_rule(
    file: &Path,
    attrs: &[(&str, &str)],
    roots: &[Vec<String>],
) -> Result<OpenRule, RulesError> {
    let bad = |id: &str, reason: &str| RulesError::BadRule {
        file: file.to_path_buf(),
        id: id.to_string(),
        reason: reason.to_string(),
    };
    let id_text = attr(attrs, "id").ok_or_else(|| bad("(none)", "no id attribute"))?;
    let id = parse_rule_id(id_text)
        .ok_or_else(|| bad(id_text, "the id must be a number of at most 6 digits"))?;
    let level_text = attr(attrs, "level").ok_or_else(|| bad(id_text, "no level attribute"))?;
    let level = level_text
        .parse::<u8>()
        .ok()
        .filter(|l| *l <= 16 && level_text.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            bad(
                id_text,
                &format!("level {level_text:?} is not a number from 0 to 16"),
            )
        })?;
    Ok(OpenRule {
        id,
        level,
        groups: roots.iter().flatten().cloned().collect(),
        in_group: false,
    })
}

fn split_groups(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(str::to_string)
        .collect()
}

/// Wazuh's rule id: digits only, at most 6 of them.
fn parse_rule_id(text: &str) -> Option<u32> {
    let text = text.trim();
    if text.is_empty() || text.len() > 6 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn attr<'a>(attrs: &[(&'a str, &'a str)], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}

/// The `*.xml` files of `etc/rules/` and `ruleset/rules/` (not recursive, as Wazuh), sorted by
/// file name as Wazuh loads them. A missing directory holds no rules.
pub(crate) fn rule_files(home: &Path, include_ours: bool) -> Result<Vec<PathBuf>, RulesError> {
    let ours = [
        home.join(RULES_FILE),
        home.join(super::native_rules::NATIVE_RULES_FILE),
    ];
    let mut files = Vec::new();
    for dir in ["ruleset/rules", "etc/rules"] {
        let dir = home.join(dir);
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(RulesError::Read { path: dir, source }),
        };
        for entry in entries {
            let entry = entry.map_err(|source| RulesError::Read {
                path: dir.clone(),
                source,
            })?;
            let path = entry.path();
            let is_xml = path.file_name().is_some_and(|n| {
                let n = n.as_bytes();
                n.len() > 4 && n[n.len() - 4..].eq_ignore_ascii_case(b".xml")
            });
            // Follows symlinks; a dangling one is skipped like any non-file.
            if !is_xml || !path.is_file() || (!include_ours && ours.contains(&path)) {
                continue;
            }
            files.push(path);
        }
    }
    files.sort_by(|a, b| (a.file_name(), a).cmp(&(b.file_name(), b)));
    Ok(files)
}

fn read_lossy(path: &Path) -> Result<String, RulesError> {
    std::fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .map_err(|source| RulesError::Read {
            path: path.to_path_buf(),
            source,
        })
}

/// Just enough of an XML tokenizer for rule files as Wazuh accepts them (single or double
/// quotes, any spacing, several roots), tolerant of anything else: comments, prologs,
/// doctypes and CDATA are skipped, and a tag that never closes ends the file.
#[derive(Debug, PartialEq)]
enum Token<'a> {
    Open {
        name: &'a str,
        attrs: Vec<(&'a str, &'a str)>,
        self_closing: bool,
    },
    Close {
        name: &'a str,
    },
    Text(&'a str),
}

struct Lexer<'a> {
    rest: &'a str,
}

impl<'a> Lexer<'a> {
    fn new(text: &'a str) -> Self {
        Lexer { rest: text }
    }

    /// Skips past `end`, or to the end of the text.
    fn skip_past(&mut self, end: &str) {
        self.rest = match self.rest.find(end) {
            Some(i) => &self.rest[i + end.len()..],
            None => "",
        };
    }
}

impl<'a> Iterator for Lexer<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            if !self.rest.starts_with('<') {
                let end = self.rest.find('<').unwrap_or(self.rest.len());
                let text = &self.rest[..end];
                self.rest = &self.rest[end..];
                return Some(Token::Text(text));
            }
            if self.rest.starts_with("<!--") {
                self.skip_past("-->");
                continue;
            }
            if self.rest.starts_with("<![CDATA[") {
                self.skip_past("]]>");
                continue;
            }
            if self.rest.starts_with("<?") {
                self.skip_past("?>");
                continue;
            }
            if self.rest.starts_with("<!") {
                self.skip_past(">");
                continue;
            }
            let Some(end) = tag_end(self.rest) else {
                self.rest = "";
                return None;
            };
            // Tolerates `< rule`: better one collision too many than one missed.
            let inner = self.rest[1..end].trim_start();
            self.rest = &self.rest[end + 1..];
            if let Some(name) = inner.strip_prefix('/') {
                return Some(Token::Close { name: name.trim() });
            }
            let (inner, self_closing) = match inner.trim_end().strip_suffix('/') {
                Some(inner) => (inner, true),
                None => (inner, false),
            };
            let name_end = inner
                .find(|c: char| c.is_whitespace())
                .unwrap_or(inner.len());
            return Some(Token::Open {
                name: &inner[..name_end],
                attrs: parse_attrs(&inner[name_end..]),
                self_closing,
            });
        }
    }
}

/// The index of the `>` that ends the tag starting at `text[0]`, ignoring any in quotes.
fn tag_end(text: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    for (i, c) in text.char_indices().skip(1) {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '>') => return Some(i),
            (None, _) => {}
        }
    }
    None
}

/// `name = "value"`, `name='value'`, or an unquoted `name=value`; anything else is skipped.
fn parse_attrs(mut s: &str) -> Vec<(&str, &str)> {
    let mut attrs = Vec::new();
    loop {
        s = s.trim_start();
        let Some(eq) = s.find('=') else {
            return attrs;
        };
        let name = s[..eq].trim();
        // A bare word before the name (`<rule noalert id="1">`) is dropped.
        let name = name.rsplit(char::is_whitespace).next().unwrap_or(name);
        s = s[eq + 1..].trim_start();
        let value;
        match s.chars().next() {
            Some(q @ ('"' | '\'')) => {
                let body = &s[1..];
                let end = body.find(q).unwrap_or(body.len());
                value = &body[..end];
                s = body.get(end + 1..).unwrap_or("");
            }
            Some(_) => {
                let end = s.find(char::is_whitespace).unwrap_or(s.len());
                value = &s[..end];
                s = &s[end..];
            }
            None => return attrs,
        }
        if !name.is_empty() {
            attrs.push((name, value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexer_reads_odd_spacing_quotes_and_skips_comments() {
        let text = "<?xml version=\"1.0\"?><!-- <rule id=\"1\" level=\"1\"> -->\
                    <group name='a,b,'>< rule\n level = '3'\tid= \"42\" >t</rule ><x/></group>";
        let tokens: Vec<Token> = Lexer::new(text).collect();
        assert_eq!(
            tokens[0],
            Token::Open {
                name: "group",
                attrs: vec![("name", "a,b,")],
                self_closing: false
            }
        );
        assert_eq!(
            tokens[1],
            Token::Open {
                name: "rule",
                attrs: vec![("level", "3"), ("id", "42")],
                self_closing: false
            }
        );
        assert!(tokens.contains(&Token::Open {
            name: "x",
            attrs: vec![],
            self_closing: true
        }));
    }

    #[test]
    fn attrs_in_any_order_and_quotes() {
        assert_eq!(
            parse_attrs(" level = '3'\n  id=\"42\" overwrite=yes"),
            vec![("level", "3"), ("id", "42"), ("overwrite", "yes")]
        );
    }

    #[test]
    fn rule_ids_are_six_digits_at_most() {
        assert_eq!(parse_rule_id("117103"), Some(117103));
        assert_eq!(parse_rule_id(" 5710 "), Some(5710));
        assert_eq!(parse_rule_id("1171030"), None);
        assert_eq!(parse_rule_id("-1"), None);
        assert_eq!(parse_rule_id(""), None);
    }

    #[test]
    fn unterminated_tag_ends_the_file() {
        let tokens: Vec<Token> = Lexer::new("<rule id=\"1\" level='2").collect();
        assert!(tokens.is_empty());
    }
}
