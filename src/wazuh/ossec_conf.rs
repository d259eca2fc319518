//! `etc/ossec.conf`: the format-preserving editor for the one `<integration>` block wazuh-misp
//! manages (add, update in place, remove, take over the old manual guide's hand-written
//! custom-misp block), and a reader for the few settings elsewhere in the file that decide
//! whether alerts reach us. It splices bytes at the spans `xml` reports and never re-serialises
//! the file: every byte outside our block (comments, blank lines, CRLF, a BOM, tabs, other
//! integrations, several `<ossec_config>` roots) stays as it was.
//!
//! Our block is framed by two comments so an admin sees who manages it:
//!
//! ```text
//!   <!-- wazuh-misp: managed block, change it with `wazuh-misp setup`; checksum 1a2b3c4d -->
//!   <integration>
//!     <name>custom-misp</name>
//!     <level>5</level>
//!     <alert_format>json</alert_format>
//!   </integration>
//!   <!-- wazuh-misp: end of managed block -->
//! ```
//!
//! The checksum is FNV-1a 32 of the bytes between the two markers, taken line by line with
//! surrounding spaces, tabs and CRs dropped and empty lines skipped: re-indenting or converting
//! line endings is not an edit, anything else is, and a hand-edited block is left alone.
//!
//! Layout: a new block goes last in the first `<ossec_config>` (that has an end tag), on its own
//! lines, indented like that root's children, with the line endings of the line it joins. The
//! inserted bytes always run from a line break to the end of the end marker, so removal takes
//! exactly "the line break before the start marker's line … the end marker" and restores the
//! file byte for byte. When `</ossec_config>` shares its line with other content, the block goes
//! right before it, so the end marker is then followed by `</ossec_config>` on the same line.

pub mod lists;

use crate::wazuh::xml::{self, Comment, Document, Element, Node, Span, XmlError};

pub const INTEGRATION_NAME: &str = "custom-misp";
/// The only root element Wazuh 4.x accepts in ossec.conf.
pub const ROOT: &str = "ossec_config";
/// The start marker's text begins with this.
pub const START_MARKER: &str = "wazuh-misp: managed block";
/// The end marker's text.
pub const END_MARKER: &str = "wazuh-misp: end of managed block";
/// analysisd's value when `<alerts><log_alert_level>` is absent: `Config.logbylevel = 1` in
/// src/analysisd/config.c (4.x). The packaged ossec.conf sets 3 explicitly.
pub const DEFAULT_LOG_ALERT_LEVEL: u8 = 1;
/// The highest rule level.
pub const MAX_LEVEL: u8 = 16;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Filters {
    pub level: Option<u8>,
    pub groups: Vec<String>,
    pub rule_ids: Vec<String>,
}

/// Our block: the name is always custom-misp, alert_format always json, never an api_key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationBlock {
    pub filters: Filters,
    pub timeout: Option<u32>,
    pub retries: Option<u32>,
    /// Native matching's second `<integration>`, right after the first, with the same timeout
    /// and retries: integratord AND-s the filters inside one block, so "our CDB rules' alerts OR
    /// the sources CDB cannot match" takes two blocks (`src/os_integrator/integrator.c`).
    pub native_hits: Option<Filters>,
    /// The command wodle that runs the mirror's sync, right after the `<integration>`s.
    pub schedule: Option<Schedule>,
}

/// `<wodle name="command">` for the scheduled sync (`src/config/wmodules-command.c`): modulesd
/// runs `command` as root every `interval_s`, on start too, ends it after `timeout_s`, and with
/// `ignore_output` no printed line becomes an event (the sync raises its own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub command: String,
    pub interval_s: u64,
    pub timeout_s: u64,
}

/// The wodle's `<tag>`: modulesd names the command by it in ossec.log.
pub const SCHEDULE_TAG: &str = "wazuh-misp-sync";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Added,
    Updated,
    Unchanged,
    ReplacedLegacy { legacy_filters: Filters },
    KeptHandEdited,
    Removed,
    Absent,
}

/// The result of an edit: the whole new file (identical bytes when nothing changed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub text: Vec<u8>,
    pub outcome: Outcome,
    /// Sentences for the admin about what was found or done beyond the outcome.
    pub notices: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManagedState {
    Intact(IntegrationBlock),
    /// The markers are there but the block between them changed, or they are incomplete.
    HandEdited,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterRole {
    Disabled,
    Master,
    Worker,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    pub managed: Option<ManagedState>,
    /// Hand-written custom-misp blocks, in file order, filters merged as integratord does.
    pub legacy: Vec<Filters>,
    /// Names of the other `<integration>` blocks, in file order.
    pub other_integrations: Vec<String>,
    pub cluster: ClusterRole,
    /// `<global><jsonout_output>`: alerts.json, which integratord reads, is written.
    pub jsonout_output: bool,
    /// `<alerts><log_alert_level>`: alerts below it never reach integrations.
    pub log_alert_level: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfError {
    #[error("Wazuh cannot read this file: {0}")]
    Xml(#[from] XmlError),
    #[error(
        "line {line}, column {column}: the top-level element <{name}> is not <ossec_config>: \
         Wazuh refuses to start with it"
    )]
    ForeignRoot {
        line: usize,
        column: usize,
        name: String,
    },
    #[error(
        "line {line}, column {column}: this is a Wazuh 5 configuration (<wazuh_config>); \
         wazuh-misp works with Wazuh 4.x, whose integratord Wazuh 5 removed"
    )]
    Wazuh5 { line: usize, column: usize },
    #[error("there is no <ossec_config> element: this is not a Wazuh ossec.conf")]
    NoOssecConfig,
    #[error("every <ossec_config> is written as an empty tag <ossec_config/>: there is no place for the block")]
    NoPlaceForBlock,
    #[error("there is no <ruleset> with children in ossec.conf to declare the lists in (the packaged ossec.conf has one)")]
    NoRuleset,
    #[error("invalid {field} {value:?}: {reason}")]
    InvalidValue {
        field: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("line {line}, column {column}: {reason}")]
    Integration {
        line: usize,
        column: usize,
        reason: String,
    },
    #[error("internal error, nothing was changed: {0}")]
    Internal(String),
}

/// Scan `original` and check what Wazuh checks before reading any section: its XML dialect, and
/// that every root is `<ossec_config>`.
pub fn validate(original: &[u8]) -> Result<(), ConfError> {
    load(original).map(|_| ())
}

/// What the file says about our block, hand-written custom-misp blocks, and the settings that
/// decide whether alerts reach integrations.
pub fn inspect(original: &[u8]) -> Result<Inspection, ConfError> {
    let doc = load(original)?;
    let found = analyze(original, &doc)?;
    let managed = found.managed.as_ref().map(|m| match m {
        Managed::Intact { block, .. } => ManagedState::Intact(block.clone()),
        Managed::HandEdited { .. } => ManagedState::HandEdited,
    });
    let roots: Vec<&Element> = doc.roots().collect();
    Ok(Inspection {
        managed,
        legacy: found.legacy.iter().map(|l| l.filters.clone()).collect(),
        other_integrations: found.others,
        cluster: cluster_role(&roots),
        jsonout_output: last_value(&roots, "global", "jsonout_output").is_none_or(|v| v != "no"),
        log_alert_level: last_value(&roots, "alerts", "log_alert_level")
            .and_then(|v| parse_digits::<u8>(&v))
            .unwrap_or(DEFAULT_LOG_ALERT_LEVEL),
    })
}

/// Add our block, or bring it up to date in place, or take over a hand-written one.
pub fn upsert(original: &[u8], block: &IntegrationBlock) -> Result<Edit, ConfError> {
    check_block(block)?;
    let doc = load(original)?;
    let found = analyze(original, &doc)?;
    let layout = Layout::detect(original, &doc);
    let mut notices = Vec::new();
    let mut edits: Vec<(Span, Vec<u8>)> = Vec::new();

    let outcome = match &found.managed {
        Some(Managed::HandEdited { line }) => {
            notices.push(hand_edited_notice(*line));
            return Ok(Edit {
                text: original.to_vec(),
                outcome: Outcome::KeptHandEdited,
                notices,
            });
        }
        Some(Managed::Intact {
            start,
            integration,
            end,
            block: current,
        }) => {
            remove_legacy(original, &found.legacy, &mut edits, &mut notices);
            if current != block {
                let indent = indent_before(original, start.span.start)
                    .unwrap_or(&layout.child_indent)
                    .to_vec();
                let unit = block_unit(original, integration).unwrap_or(layout.unit.clone());
                let nl = newline_after(original, start.span.end)
                    .unwrap_or_else(|| first_newline(original));
                let text = render(block, &indent, &unit, nl);
                edits.push((Span::new(start.span.start, end.span.end), text));
            }
            if edits.is_empty() {
                Outcome::Unchanged
            } else {
                Outcome::Updated
            }
        }
        None => match found.legacy.split_first() {
            Some((first, rest)) => {
                let el = first.element;
                let indent = indent_before(original, el.start_tag.start)
                    .unwrap_or(&layout.child_indent)
                    .to_vec();
                let unit = block_unit(original, el).unwrap_or(layout.unit.clone());
                let nl = newline_after(original, el.start_tag.end)
                    .unwrap_or_else(|| first_newline(original));
                edits.push((el.span(), render(block, &indent, &unit, nl)));
                notices.push(format!(
                    "replaced the hand-written custom-misp <integration> block on line {} ({}) \
                     with the block wazuh-misp manages{}",
                    el.line,
                    describe(&first.filters),
                    dropped(&first.dropped),
                ));
                remove_legacy(original, rest, &mut edits, &mut notices);
                Outcome::ReplacedLegacy {
                    legacy_filters: first.filters.clone(),
                }
            }
            None => {
                let root = doc
                    .roots()
                    .find(|r| r.end_tag.is_some())
                    .ok_or(ConfError::NoPlaceForBlock)?;
                let (at, text) = insertion(original, root, block, &layout);
                edits.push((Span::new(at, at), text));
                Outcome::Added
            }
        },
    };

    let text = apply(original, edits);
    // Check our own work before anyone writes it.
    let after =
        load(&text).map_err(|e| ConfError::Internal(format!("the result does not parse: {e}")))?;
    match analyze(&text, &after)? {
        Analysis {
            managed: Some(Managed::Intact { block: written, .. }),
            legacy,
            ..
        } if written == *block && legacy.is_empty() => {}
        _ => {
            return Err(ConfError::Internal(
                "the written block does not read back as written".into(),
            ))
        }
    }
    Ok(Edit {
        text,
        outcome,
        notices,
    })
}

/// Remove our block (only ours: a hand-edited one and hand-written ones stay, with a notice).
pub fn remove(original: &[u8]) -> Result<Edit, ConfError> {
    let doc = load(original)?;
    let found = analyze(original, &doc)?;
    let mut notices = Vec::new();
    for legacy in &found.legacy {
        notices.push(format!(
            "the hand-written custom-misp <integration> block on line {} was not written by \
             wazuh-misp and was left in place; delete it by hand if integratord should stop \
             running custom-misp",
            legacy.element.line
        ));
    }
    let (text, outcome) = match &found.managed {
        None => (original.to_vec(), Outcome::Absent),
        Some(Managed::HandEdited { line }) => {
            notices.insert(0, hand_edited_notice(*line));
            (original.to_vec(), Outcome::KeptHandEdited)
        }
        Some(Managed::Intact { start, end, .. }) => {
            let from = removal_start(original, start);
            let text = apply(original, vec![(Span::new(from, end.span.end), Vec::new())]);
            (text, Outcome::Removed)
        }
    };
    Ok(Edit {
        text,
        outcome,
        notices,
    })
}

fn load(original: &[u8]) -> Result<Document, ConfError> {
    let doc = xml::parse(original)?;
    for root in doc.roots() {
        if root.name == "wazuh_config" {
            return Err(ConfError::Wazuh5 {
                line: root.line,
                column: root.column,
            });
        }
        if root.name != ROOT {
            return Err(ConfError::ForeignRoot {
                line: root.line,
                column: root.column,
                name: root.name.clone(),
            });
        }
    }
    if doc.roots().next().is_none() {
        return Err(ConfError::NoOssecConfig);
    }
    Ok(doc)
}

// ---------------------------------------------------------------------------------------------
// Finding our block and hand-written ones

enum Managed<'d> {
    Intact {
        start: &'d Comment,
        integration: &'d Element,
        end: &'d Comment,
        block: IntegrationBlock,
    },
    HandEdited {
        line: usize,
    },
}

struct Legacy<'d> {
    element: &'d Element,
    filters: Filters,
    /// Children the managed block does not carry (api_key, hook_url, …).
    dropped: Vec<String>,
}

struct Analysis<'d> {
    managed: Option<Managed<'d>>,
    legacy: Vec<Legacy<'d>>,
    others: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Marker {
    Start,
    End,
}

fn marker(source: &[u8], comment: &Comment) -> Option<Marker> {
    let body = xml::trim(comment.body(source));
    if body.starts_with(START_MARKER.as_bytes()) {
        Some(Marker::Start)
    } else if body.starts_with(END_MARKER.as_bytes()) {
        Some(Marker::End)
    } else {
        None
    }
}

/// The checksum a start marker records.
fn recorded_checksum(source: &[u8], comment: &Comment) -> Option<u32> {
    let body = comment.body(source);
    let at = body.windows(9).position(|w| w == b"checksum ")? + 9;
    let hex = std::str::from_utf8(body.get(at..at + 8)?).ok()?;
    u32::from_str_radix(hex, 16).ok()
}

/// Integratord's name for an `<integration>`: the last `<name>`.
fn integration_name(el: &Element) -> Option<String> {
    el.last_child("name").map(|n| n.trimmed_text().into_owned())
}

fn analyze<'d>(source: &[u8], doc: &'d Document) -> Result<Analysis<'d>, ConfError> {
    let mut starts: Vec<(&Comment, usize, usize)> = Vec::new(); // (marker, root, index)
    let mut ends: Vec<(&Comment, usize, usize)> = Vec::new();
    let mut legacy = Vec::new();
    let mut others = Vec::new();
    let mut first_marker_line = None;
    for (r, root) in doc.roots().enumerate() {
        let mut inside = false;
        for (i, node) in root.nodes.iter().enumerate() {
            match node {
                Node::Comment(c) => {
                    if let Some(m) = marker(source, c) {
                        first_marker_line
                            .get_or_insert_with(|| xml::line_column(source, c.span.start).0);
                        inside = m == Marker::Start;
                        if inside {
                            starts.push((c, r, i));
                        } else {
                            ends.push((c, r, i));
                        }
                    }
                }
                Node::Element(el) if el.name == "integration" => match integration_name(el) {
                    Some(name) if name == INTEGRATION_NAME && !inside => {
                        let (filters, dropped) = legacy_filters(el)?;
                        legacy.push(Legacy {
                            element: el,
                            filters,
                            dropped,
                        });
                    }
                    Some(name) if name == INTEGRATION_NAME => {}
                    Some(name) => others.push(name),
                    None => {}
                },
                Node::Element(_) => {}
            }
        }
    }
    let managed = match (starts.as_slice(), ends.as_slice()) {
        ([], []) => None,
        ([(start, sr, si)], [(end, er, ei)]) if sr == er && (si + 2..=si + 4).contains(ei) => {
            let root = doc.roots().nth(*sr);
            let element = |i: usize| root.and_then(|r| r.nodes.get(i)).and_then(Node::as_element);
            let integration = element(si + 1).filter(|e| e.name == "integration");
            // Between the integration and the end marker: native matching's second
            // integration, then our wodle, each optional, nothing else.
            let mut next = si + 2;
            let native_hits = match element(next).filter(|e| e.name == "integration") {
                Some(el) => {
                    next += 1;
                    managed_block(el).map(|b| Some(b.filters))
                }
                None => Some(None),
            };
            let schedule = match element(next).filter(|_| next < *ei) {
                Some(el) => {
                    next += 1;
                    managed_schedule(el).map(Some)
                }
                None => Some(None),
            };
            let complete = next == *ei;
            let between = Span::new(start.span.end, end.span.start).of(source);
            let block = integration
                .filter(|_| complete && recorded_checksum(source, start) == Some(checksum(between)))
                .and_then(managed_block)
                .zip(schedule)
                .zip(native_hits)
                .map(|((block, schedule), native_hits)| IntegrationBlock {
                    schedule,
                    native_hits,
                    ..block
                });
            Some(match (integration, block) {
                (Some(integration), Some(block)) => Managed::Intact {
                    start,
                    integration,
                    end,
                    block,
                },
                _ => Managed::HandEdited {
                    line: xml::line_column(source, start.span.start).0,
                },
            })
        }
        _ => Some(Managed::HandEdited {
            line: first_marker_line.unwrap_or(0),
        }),
    };
    Ok(Analysis {
        managed,
        legacy,
        others,
    })
}

/// Read back a block we wrote; `None` if it is not in our exact form.
fn managed_block(el: &Element) -> Option<IntegrationBlock> {
    let mut children = el.children().peekable();
    let mut next = |name: &str| {
        children
            .next_if(|c| c.name == name)
            .map(|c| c.text().to_vec())
    };
    if next("name")? != INTEGRATION_NAME.as_bytes() {
        return None;
    }
    let level = match next("level") {
        Some(v) => Some(parse_digits::<u8>(std::str::from_utf8(&v).ok()?)?),
        None => None,
    };
    let list = |v: Option<Vec<u8>>| -> Option<Vec<String>> {
        match v {
            None => Some(Vec::new()),
            Some(v) => Some(
                String::from_utf8(v)
                    .ok()?
                    .split(',')
                    .map(str::to_string)
                    .collect(),
            ),
        }
    };
    let groups = list(next("group"))?;
    let rule_ids = list(next("rule_id"))?;
    if next("alert_format")? != b"json" {
        return None;
    }
    let number = |v: Option<Vec<u8>>| -> Option<Option<u32>> {
        match v {
            None => Some(None),
            Some(v) => Some(Some(parse_digits::<u32>(std::str::from_utf8(&v).ok()?)?)),
        }
    };
    let timeout = number(next("timeout"))?;
    let retries = number(next("retries"))?;
    if children.next().is_some() || el.comments().next().is_some() {
        return None;
    }
    let block = IntegrationBlock {
        filters: Filters {
            level,
            groups,
            rule_ids,
        },
        timeout,
        retries,
        native_hits: None,
        schedule: None,
    };
    check_block(&block).ok().map(|_| block)
}

/// Read back the wodle we wrote; `None` if it is not in our exact form.
fn managed_schedule(el: &Element) -> Option<Schedule> {
    if el.name != "wodle" || el.attribute("name") != Some(b"command") {
        return None;
    }
    let texts: Vec<(String, String)> = el
        .children()
        .map(|c| {
            (
                c.name.clone(),
                String::from_utf8_lossy(c.text()).into_owned(),
            )
        })
        .collect();
    let get = |name: &str| {
        texts
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let schedule = Schedule {
        command: get("command")?.to_string(),
        interval_s: parse_digits::<u64>(get("interval")?.strip_suffix('s')?)?,
        timeout_s: parse_digits::<u64>(get("timeout")?)?,
    };
    let expected: Vec<String> = schedule_lines(&schedule);
    let written: Vec<String> = texts
        .iter()
        .map(|(n, v)| format!("<{n}>{v}</{n}>"))
        .collect();
    (written == expected && el.comments().next().is_none()).then_some(schedule)
}

/// A hand-written custom-misp block's filters, merged as integratord reads them
/// (src/config/integrator-config.c): repeated `<rule_id>` elements add up, for a repeated
/// `<group>` or `<level>` the last one wins. Group names are trimmed (integratord compares them
/// untrimmed, so ` b` in `a, b` never matched: the admin meant `b`).
fn legacy_filters(el: &Element) -> Result<(Filters, Vec<String>), ConfError> {
    let mut filters = Filters::default();
    let mut dropped = Vec::new();
    for child in el.children() {
        match child.name.as_str() {
            "level" => {
                let text = child.trimmed_text();
                let level = parse_digits::<u8>(&text).ok_or_else(|| ConfError::Integration {
                    line: child.line,
                    column: child.column,
                    reason: format!(
                        "<level> of the custom-misp integration is {text:?}, not a number: \
                         integratord refuses this file"
                    ),
                })?;
                filters.level = Some(level);
            }
            "group" => {
                filters.groups = String::from_utf8_lossy(child.text())
                    .split(',')
                    .map(str::trim)
                    .filter(|g| !g.is_empty())
                    .map(str::to_string)
                    .collect();
            }
            "rule_id" => {
                for id in integratord_rule_ids(child.text()) {
                    if !filters.rule_ids.contains(&id) {
                        filters.rule_ids.push(id);
                    }
                }
            }
            "name" | "alert_format" => {}
            other => {
                if !dropped.iter().any(|d| d == other) {
                    dropped.push(other.to_string());
                }
            }
        }
    }
    Ok((filters, dropped))
}

/// integratord's `<rule_id>` loop: spaces and commas are skipped, a digit starts a number that
/// runs to the next comma (`atoi`), anything else ends the list.
pub fn integratord_rule_ids(text: &[u8]) -> Vec<String> {
    let mut ids = Vec::new();
    let mut i = 0;
    while let Some(&c) = text.get(i) {
        if c == b' ' || c == b',' {
            i += 1;
        } else if c.is_ascii_digit() {
            let digits: Vec<u8> = text[i..]
                .iter()
                .copied()
                .take_while(u8::is_ascii_digit)
                .collect();
            let trimmed = String::from_utf8_lossy(&digits)
                .trim_start_matches('0')
                .to_string();
            ids.push(if trimmed.is_empty() {
                "0".into()
            } else {
                trimmed
            });
            match text[i..].iter().position(|&b| b == b',') {
                Some(comma) => i += comma + 1,
                None => break,
            }
        } else {
            break;
        }
    }
    ids
}

fn parse_digits<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

// ---------------------------------------------------------------------------------------------
// Writing

fn is_group_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

fn check_block(block: &IntegrationBlock) -> Result<(), ConfError> {
    if let Some(s) = &block.schedule {
        if s.command.trim().is_empty()
            || s.command.len() > 4096
            || s.command.contains(['<', '&', '\n', '\r'])
        {
            return Err(ConfError::InvalidValue {
                field: "command",
                value: s.command.clone(),
                reason: "the scheduled command is one line of plain text (no <, & or line break: a Wazuh home with one cannot hold the schedule)",
            });
        }
        if s.interval_s == 0 {
            return Err(ConfError::InvalidValue {
                field: "interval",
                value: "0".into(),
                reason: "the sync interval is at least 1 second",
            });
        }
    }
    check_filters(&block.filters)?;
    if let Some(native) = &block.native_hits {
        check_filters(native)?;
    }
    Ok(())
}

fn check_filters(f: &Filters) -> Result<(), ConfError> {
    if let Some(level) = f.level {
        if level > MAX_LEVEL {
            return Err(ConfError::InvalidValue {
                field: "level",
                value: level.to_string(),
                reason: "rule levels go from 0 to 16",
            });
        }
    }
    for group in &f.groups {
        if group.is_empty() || !group.chars().all(is_group_char) {
            return Err(ConfError::InvalidValue {
                field: "group",
                value: group.clone(),
                reason: "a group name is letters, digits, '_', '.' and '-'",
            });
        }
    }
    for id in &f.rule_ids {
        if id.is_empty() || id.len() > 6 || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ConfError::InvalidValue {
                field: "rule_id",
                value: id.clone(),
                reason: "a rule id is 1 to 6 digits",
            });
        }
    }
    Ok(())
}

/// The lines of the `<integration>` element's children, in integratord's documented order.
fn child_lines(block: &IntegrationBlock, f: &Filters) -> Vec<String> {
    let mut lines = vec![format!("<name>{INTEGRATION_NAME}</name>")];
    if let Some(level) = f.level {
        lines.push(format!("<level>{level}</level>"));
    }
    if !f.groups.is_empty() {
        lines.push(format!("<group>{}</group>", f.groups.join(",")));
    }
    if !f.rule_ids.is_empty() {
        lines.push(format!("<rule_id>{}</rule_id>", f.rule_ids.join(",")));
    }
    lines.push("<alert_format>json</alert_format>".into());
    if let Some(timeout) = block.timeout {
        lines.push(format!("<timeout>{timeout}</timeout>"));
    }
    if let Some(retries) = block.retries {
        lines.push(format!("<retries>{retries}</retries>"));
    }
    lines
}

fn schedule_lines(s: &Schedule) -> Vec<String> {
    vec![
        "<disabled>no</disabled>".into(),
        format!("<tag>{SCHEDULE_TAG}</tag>"),
        format!("<command>{}</command>", s.command),
        format!("<interval>{}s</interval>", s.interval_s),
        "<run_on_start>yes</run_on_start>".into(),
        format!("<timeout>{}</timeout>", s.timeout_s),
        "<ignore_output>yes</ignore_output>".into(),
    ]
}

/// From the start marker to the end of the end marker; the first line's indentation is the
/// caller's, the others get `indent`.
fn render(block: &IntegrationBlock, indent: &[u8], unit: &[u8], nl: &[u8]) -> Vec<u8> {
    let mut inner = Vec::new();
    let mut line = |depth: usize, text: &[u8]| {
        inner.extend_from_slice(nl);
        inner.extend_from_slice(indent);
        for _ in 0..depth {
            inner.extend_from_slice(unit);
        }
        inner.extend_from_slice(text);
    };
    for filters in std::iter::once(&block.filters).chain(&block.native_hits) {
        line(0, b"<integration>");
        for child in child_lines(block, filters) {
            line(1, child.as_bytes());
        }
        line(0, b"</integration>");
    }
    if let Some(schedule) = &block.schedule {
        line(0, b"<wodle name=\"command\">");
        for child in schedule_lines(schedule) {
            line(1, child.as_bytes());
        }
        line(0, b"</wodle>");
    }
    line(0, b"");
    let mut out = format!(
        "<!-- {START_MARKER}, change it with `wazuh-misp setup`; checksum {:08x} -->",
        checksum(&inner)
    )
    .into_bytes();
    out.extend_from_slice(&inner);
    out.extend_from_slice(format!("<!-- {END_MARKER} -->").as_bytes());
    out
}

/// FNV-1a 32 of the lines of `between`, each without surrounding spaces, tabs and CRs, empty
/// ones skipped, joined by `\n`.
fn checksum(between: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    let mut eat = |b: u8| {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    };
    let mut first = true;
    for line in between.split(|&b| b == b'\n') {
        let start = line.iter().position(|b| !b" \t\r".contains(b));
        let end = line.iter().rposition(|b| !b" \t\r".contains(b));
        let (Some(start), Some(end)) = (start, end) else {
            continue;
        };
        if !first {
            eat(b'\n');
        }
        first = false;
        line[start..=end].iter().for_each(|&b| eat(b));
    }
    hash
}

/// Where a new block goes in `root` and the bytes to insert there.
fn insertion(
    source: &[u8],
    root: &Element,
    block: &IntegrationBlock,
    layout: &Layout,
) -> (usize, Vec<u8>) {
    let close = root.end_tag.map_or(root.start_tag.end, |t| t.start);
    let ls = line_start(source, close);
    let (at, nl) = if ls > 0 && is_indent(&source[ls..close]) {
        // `</ossec_config>` on its own line: the block goes before the line break that ends
        // the line above, so it takes over that break and ends where the closing line begins.
        if ls >= 2 && &source[ls - 2..ls] == b"\r\n" {
            (ls - 2, &b"\r\n"[..])
        } else {
            (ls - 1, &b"\n"[..])
        }
    } else {
        (close, first_newline(source))
    };
    let mut text = nl.to_vec();
    text.extend_from_slice(&layout.child_indent);
    text.extend(render(block, &layout.child_indent, &layout.unit, nl));
    (at, text)
}

/// Where the removal of a managed block starts: the line break before the start marker's line
/// (mirrors `insertion`), or the marker itself if it does not start its line.
fn removal_start(source: &[u8], start: &Comment) -> usize {
    let m = start.span.start;
    let ls = line_start(source, m);
    if ls == 0 || !is_indent(&source[ls..m]) {
        return m;
    }
    let crlf = newline_after(source, start.span.end) == Some(&b"\r\n"[..]);
    if crlf && source[..ls].ends_with(b"\r\n") {
        ls - 2
    } else {
        ls - 1
    }
}

/// Remove extra hand-written custom-misp blocks, whole lines when they stand alone.
fn remove_legacy(
    source: &[u8],
    legacy: &[Legacy],
    edits: &mut Vec<(Span, Vec<u8>)>,
    notices: &mut Vec<String>,
) {
    for l in legacy {
        edits.push((whole_lines(source, l.element.span()), Vec::new()));
        notices.push(format!(
            "removed another hand-written custom-misp <integration> block on line {} ({}){}: \
             integratord would have run custom-misp once per block",
            l.element.line,
            describe(&l.filters),
            dropped(&l.dropped),
        ));
    }
}

/// `span` widened to its whole lines (with the line break) if nothing else is on them.
fn whole_lines(source: &[u8], span: Span) -> Span {
    let ls = line_start(source, span.start);
    if !is_indent(&source[ls..span.start]) {
        return span;
    }
    let mut i = span.end;
    while matches!(source.get(i), Some(b' ' | b'\t')) {
        i += 1;
    }
    match source.get(i..) {
        Some(rest) if rest.starts_with(b"\r\n") => Span::new(ls, i + 2),
        Some(rest) if rest.starts_with(b"\n") => Span::new(ls, i + 1),
        Some([]) => Span::new(ls, i),
        _ => span,
    }
}

/// Splice non-overlapping edits into a copy of `source`.
fn apply(source: &[u8], mut edits: Vec<(Span, Vec<u8>)>) -> Vec<u8> {
    edits.sort_by_key(|(span, _)| span.start);
    let mut out = Vec::with_capacity(source.len() + 512);
    let mut at = 0;
    for (span, text) in edits {
        out.extend_from_slice(&source[at.min(span.start)..span.start]);
        out.extend_from_slice(&text);
        at = at.max(span.end);
    }
    out.extend_from_slice(&source[at.min(source.len())..]);
    out
}

fn hand_edited_notice(line: usize) -> String {
    format!(
        "the wazuh-misp block in ossec.conf (line {line}) was changed by hand since wazuh-misp \
         wrote it, so it was left exactly as it is. To let wazuh-misp manage it again, delete \
         it from the `{START_MARKER}` comment to the `{END_MARKER}` comment and run \
         `wazuh-misp setup` again; to have your edits taken over, delete only those two \
         comments"
    )
}

fn describe(f: &Filters) -> String {
    let mut parts = Vec::new();
    if let Some(level) = f.level {
        parts.push(format!("level {level}"));
    }
    if !f.groups.is_empty() {
        parts.push(format!("groups {}", f.groups.join(",")));
    }
    if !f.rule_ids.is_empty() {
        parts.push(format!("rule ids {}", f.rule_ids.join(",")));
    }
    if parts.is_empty() {
        "no filters".into()
    } else {
        format!("filters: {}", parts.join("; "))
    }
}

fn dropped(names: &[String]) -> String {
    if names.is_empty() {
        return String::new();
    }
    let list: Vec<String> = names.iter().map(|n| format!("<{n}>")).collect();
    format!(
        "; its {} {} not carried over (wazuh-misp reads the MISP address and key from \
         etc/custom-misp.json)",
        list.join(", "),
        if list.len() == 1 { "was" } else { "were" }
    )
}

// ---------------------------------------------------------------------------------------------
// Layout

fn line_start(source: &[u8], pos: usize) -> usize {
    source[..pos]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1)
}

fn is_indent(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b == b' ' || b == b'\t')
}

/// The spaces and tabs before `pos` on its line, if nothing else precedes it there.
fn indent_before(source: &[u8], pos: usize) -> Option<&[u8]> {
    let ls = line_start(source, pos);
    let mut indent = &source[ls..pos];
    if ls == 0 && indent.starts_with(xml::BOM) {
        indent = &indent[xml::BOM.len()..];
    }
    is_indent(indent).then_some(indent)
}

fn newline_after(source: &[u8], pos: usize) -> Option<&'static [u8]> {
    let rest = source.get(pos..)?;
    if rest.starts_with(b"\r\n") {
        Some(b"\r\n")
    } else if rest.starts_with(b"\n") {
        Some(b"\n")
    } else {
        None
    }
}

/// The file's newline: the first line break's, LF if there is none.
fn first_newline(source: &[u8]) -> &'static [u8] {
    match source.iter().position(|&b| b == b'\n') {
        Some(i) if i > 0 && source[i - 1] == b'\r' => b"\r\n",
        _ => b"\n",
    }
}

/// The indentation step inside an `<integration>`: its first child's indent minus its own.
fn block_unit(source: &[u8], el: &Element) -> Option<Vec<u8>> {
    let own = indent_before(source, el.start_tag.start)?;
    let child = indent_before(source, el.children().next()?.start_tag.start)?;
    let unit = child.strip_prefix(own)?;
    (!unit.is_empty()).then(|| unit.to_vec())
}

struct Layout {
    /// Indentation of the first root's children.
    child_indent: Vec<u8>,
    /// One nesting step.
    unit: Vec<u8>,
}

fn most_common(samples: &[Vec<u8>]) -> Option<Vec<u8>> {
    let mut best: Option<(&Vec<u8>, usize)> = None;
    for s in samples {
        let n = samples.iter().filter(|t| *t == s).count();
        if best.is_none_or(|(_, m)| n > m) {
            best = Some((s, n));
        }
    }
    best.map(|(s, _)| s.clone())
}

impl Layout {
    fn detect(source: &[u8], doc: &Document) -> Layout {
        let roots: Vec<&Element> = doc.roots().collect();
        let children_indents = |root: &Element| -> Vec<Vec<u8>> {
            root.nodes
                .iter()
                .filter_map(|n| indent_before(source, n.span().start).map(<[u8]>::to_vec))
                .collect()
        };
        // The step between a child of a root and its own children, over the whole file.
        let mut steps = Vec::new();
        for root in &roots {
            for child in root.children() {
                let Some(outer) = indent_before(source, child.start_tag.start) else {
                    continue;
                };
                for grandchild in &child.nodes {
                    if let Some(inner) = indent_before(source, grandchild.span().start) {
                        match inner.strip_prefix(outer) {
                            Some(step) if !step.is_empty() => steps.push(step.to_vec()),
                            _ => {}
                        }
                    }
                }
            }
        }
        let first = roots.iter().find(|r| r.end_tag.is_some()).or(roots.first());
        let root_indent = first
            .and_then(|r| indent_before(source, r.start_tag.start))
            .unwrap_or(b"")
            .to_vec();
        let child_indent = first
            .and_then(|r| most_common(&children_indents(r)))
            .or_else(|| roots.iter().find_map(|r| most_common(&children_indents(r))));
        let unit = most_common(&steps)
            .or_else(|| {
                child_indent
                    .as_ref()
                    .and_then(|c| c.strip_prefix(root_indent.as_slice()))
                    .filter(|s| !s.is_empty())
                    .map(<[u8]>::to_vec)
            })
            .unwrap_or_else(|| b"  ".to_vec());
        let child_indent = child_indent.unwrap_or_else(|| [root_indent, unit.clone()].concat());
        Layout { child_indent, unit }
    }
}

// ---------------------------------------------------------------------------------------------
// Settings elsewhere in the file

/// The last `<section><key>` over all roots, trimmed: later values override earlier ones.
fn last_value(roots: &[&Element], section: &str, key: &str) -> Option<String> {
    roots
        .iter()
        .flat_map(|r| r.children_named(section))
        .flat_map(|s| s.children_named(key))
        .last()
        .map(|e| e.trimmed_text().into_owned())
}

/// As the cluster daemon reads it (framework/wazuh/core/cluster/utils.py): no `<cluster>` at
/// all is disabled; a `<cluster>` without `<disabled>` is enabled, and `node_type` defaults to
/// master (`client` is the old name of worker).
fn cluster_role(roots: &[&Element]) -> ClusterRole {
    if !roots.iter().any(|r| r.child("cluster").is_some()) {
        return ClusterRole::Disabled;
    }
    if last_value(roots, "cluster", "disabled").is_some_and(|v| v == "yes") {
        return ClusterRole::Disabled;
    }
    match last_value(roots, "cluster", "node_type").as_deref() {
        Some("worker" | "client") => ClusterRole::Worker,
        _ => ClusterRole::Master,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_as_integratord_reads_them() {
        assert_eq!(
            integratord_rule_ids(b"100100, 110000"),
            ["100100", "110000"]
        );
        assert_eq!(integratord_rule_ids(b",,5,,007"), ["5", "7"]);
        assert_eq!(integratord_rule_ids(b"1 2,3"), ["1", "3"]);
        assert!(integratord_rule_ids(b"\n 1\n").is_empty());
        assert_eq!(integratord_rule_ids(b"12x,4"), ["12", "4"]);
    }

    #[test]
    fn checksum_ignores_indentation_and_line_endings_only() {
        let a = checksum(b"\n  <a>\n    <b>1</b>\n  </a>\n  ");
        assert_eq!(a, checksum(b"\r\n\t<a>\r\n\t\t<b>1</b>\r\n\r\n\t</a>\r\n"));
        assert_ne!(a, checksum(b"\n  <a>\n    <b>2</b>\n  </a>\n  "));
        assert_ne!(a, checksum(b"\n  <a><b>1</b></a>\n  "));
    }

    #[test]
    fn markers_hold_no_double_dash() {
        let block = IntegrationBlock {
            filters: Filters::default(),
            timeout: None,
            retries: None,
            native_hits: None,
            schedule: None,
        };
        let text = render(&block, b"  ", b"  ", b"\n");
        let text = String::from_utf8(text).unwrap();
        for comment in text.split("<!--").skip(1) {
            let body = comment.split("-->").next().unwrap();
            assert!(!body.contains("--"), "{body}");
        }
    }
}
