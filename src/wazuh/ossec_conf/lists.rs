//! Our `<list>` lines in ossec.conf, for native matching: inside the `<ruleset>` that declares the
//! stock lists, between two marker comments of their own, spliced in and out like the managed
//! block (adding then removing them gives back the original bytes).
//!
//! Which `<ruleset>`: each block that has `<list>` children replaces the lists of the blocks
//! before it (`Read_Rules` in `src/config/rules-config.c`), so a separate block would silently
//! unload every stock list and the rules that use them. Ours go into the last `<ruleset>` that
//! declares lists (the effective ones), after its last `<list>`; with no list anywhere, into the
//! last `<ruleset>`.

use super::{
    apply, first_newline, indent_before, load, newline_after, removal_start, ConfError, Outcome,
};
use crate::wazuh::home::LISTS_DIR;
use crate::wazuh::xml::{self, Comment, Element, Node, Span};

/// The start marker's text begins with this (unlike the managed block's, so neither reader
/// mistakes one for the other).
pub const LISTS_START: &str = "wazuh-misp lists: managed by wazuh-misp";
pub const LISTS_END: &str = "wazuh-misp lists: end";

/// The whole new file and what happened (`Added`, `Updated`, `Unchanged`, `Removed`, `Absent`,
/// `KeptHandEdited`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListsEdit {
    pub text: Vec<u8>,
    pub outcome: Outcome,
}

struct Section<'d> {
    start: &'d Comment,
    end: &'d Comment,
    /// Our exact lines, or `None` when the section was edited by hand.
    paths: Option<Vec<String>>,
    /// No later `<ruleset>` declares lists: ours are loaded.
    effective: bool,
}

fn is_marker(source: &[u8], c: &Comment, text: &str) -> bool {
    xml::trim(c.body(source)).starts_with(text.as_bytes())
}

/// Our section, wherever it is.
fn find<'d>(source: &[u8], rulesets: &[&'d Element]) -> Option<Section<'d>> {
    for (at, rs) in rulesets.iter().enumerate() {
        let effective = rulesets[at + 1..]
            .iter()
            .all(|later| later.children_named("list").next().is_none());
        let nodes = &rs.nodes;
        let Some(si) = nodes
            .iter()
            .position(|n| matches!(n, Node::Comment(c) if is_marker(source, c, LISTS_START)))
        else {
            continue;
        };
        let ei = nodes[si..]
            .iter()
            .position(|n| matches!(n, Node::Comment(c) if is_marker(source, c, LISTS_END)))
            .map(|i| si + i);
        let (Node::Comment(start), Some(Node::Comment(end))) =
            (&nodes[si], ei.and_then(|i| nodes.get(i)))
        else {
            // A start marker without its end: edited by hand; never add a second section.
            let Node::Comment(start) = &nodes[si] else {
                return None;
            };
            return Some(Section {
                start,
                end: start,
                paths: None,
                effective,
            });
        };
        let between = &nodes[si + 1..ei.unwrap_or(si)];
        let paths: Option<Vec<String>> = between
            .iter()
            .map(|n| match n {
                Node::Element(e) if e.name == "list" && e.children().next().is_none() => {
                    // A path outside our folder is the admin's own line: hand-edited.
                    Some(String::from_utf8_lossy(e.text()).into_owned()).filter(|p| {
                        p.starts_with(LISTS_DIR) && p.as_bytes().get(LISTS_DIR.len()) == Some(&b'/')
                    })
                }
                _ => None,
            })
            .collect();
        return Some(Section {
            start,
            end,
            paths,
            effective,
        });
    }
    None
}

fn render(paths: &[String], indent: &[u8], nl: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut line = |text: &str| {
        out.extend_from_slice(nl);
        out.extend_from_slice(indent);
        out.extend_from_slice(text.as_bytes());
    };
    line(&format!(
        "<!-- {LISTS_START} (native matching); change it with `wazuh-misp setup` -->"
    ));
    for p in paths {
        line(&format!("<list>{p}</list>"));
    }
    line(&format!("<!-- {LISTS_END} -->"));
    out
}

fn check_paths(paths: &[String]) -> Result<(), ConfError> {
    for p in paths {
        if p.is_empty() || p.contains(['<', '>', '&', '\n', '\r']) || p.len() > 1024 {
            return Err(ConfError::InvalidValue {
                field: "list",
                value: p.clone(),
                reason: "a list path is one line of plain text",
            });
        }
    }
    Ok(())
}

/// Declares exactly `paths` (in order) as our lists.
pub fn upsert_lists(original: &[u8], paths: &[String]) -> Result<ListsEdit, ConfError> {
    check_paths(paths)?;
    let doc = load(original)?;
    let rulesets: Vec<&Element> = doc
        .roots()
        .flat_map(|r| r.children_named("ruleset"))
        .collect();
    let (outcome, edit) = match find(original, &rulesets) {
        // A later `<ruleset>` with lists (added by hand) replaces ours: move them after its own.
        Some(Section {
            paths: Some(_),
            effective: false,
            ..
        }) => {
            let removed = remove_lists(original)?;
            let moved = upsert_lists(&removed.text, paths)?;
            return Ok(ListsEdit {
                text: moved.text,
                outcome: Outcome::Updated,
            });
        }
        Some(Section { paths: None, .. }) => {
            return Ok(ListsEdit {
                text: original.to_vec(),
                outcome: Outcome::KeptHandEdited,
            })
        }
        Some(Section {
            paths: Some(current),
            ..
        }) if current == paths => {
            return Ok(ListsEdit {
                text: original.to_vec(),
                outcome: Outcome::Unchanged,
            })
        }
        Some(Section { start, end, .. }) => {
            let from = removal_start(original, start);
            let indent = indent_before(original, start.span.start).unwrap_or(b"    ");
            let nl =
                newline_after(original, start.span.end).unwrap_or_else(|| first_newline(original));
            let text = if from < start.span.start {
                render(paths, indent, nl)
            } else {
                // The marker shared its line: keep it that way.
                render(paths, b"", b"")
            };
            (Outcome::Updated, (Span::new(from, end.span.end), text))
        }
        None => {
            let target = rulesets
                .iter()
                .rev()
                .find(|r| r.children_named("list").next().is_some())
                .or_else(|| rulesets.last())
                .ok_or(ConfError::NoRuleset)?;
            let anchor = target
                .children_named("list")
                .last()
                .or_else(|| target.children().last())
                .ok_or(ConfError::NoRuleset)?;
            let at = anchor.span().end;
            let indent = indent_before(original, anchor.start_tag.start).unwrap_or(b"    ");
            let nl = newline_after(original, at).unwrap_or_else(|| first_newline(original));
            (
                Outcome::Added,
                (Span::new(at, at), render(paths, indent, nl)),
            )
        }
    };
    let text = apply(original, vec![edit]);
    // Check our own work: it parses, and reads back as written.
    let after =
        load(&text).map_err(|e| ConfError::Internal(format!("the result does not parse: {e}")))?;
    let rulesets: Vec<&Element> = after
        .roots()
        .flat_map(|r| r.children_named("ruleset"))
        .collect();
    match find(&text, &rulesets) {
        Some(Section {
            paths: Some(written),
            ..
        }) if written == paths => {}
        _ => {
            return Err(ConfError::Internal(
                "the written <list> lines do not read back as written".into(),
            ))
        }
    }
    Ok(ListsEdit { text, outcome })
}

/// Removes our section (a hand-edited one stays).
pub fn remove_lists(original: &[u8]) -> Result<ListsEdit, ConfError> {
    let doc = load(original)?;
    let rulesets: Vec<&Element> = doc
        .roots()
        .flat_map(|r| r.children_named("ruleset"))
        .collect();
    Ok(match find(original, &rulesets) {
        None => ListsEdit {
            text: original.to_vec(),
            outcome: Outcome::Absent,
        },
        Some(Section { paths: None, .. }) => ListsEdit {
            text: original.to_vec(),
            outcome: Outcome::KeptHandEdited,
        },
        Some(Section { start, end, .. }) => {
            let from = removal_start(original, start);
            ListsEdit {
                text: apply(original, vec![(Span::new(from, end.span.end), Vec::new())]),
                outcome: Outcome::Removed,
            }
        }
    })
}

/// The lists our section declares, when it is intact and loaded: a later `<ruleset>` that
/// declares lists of its own replaces them (`Read_Rules` in `src/config/rules-config.c`).
pub fn declared_lists(original: &[u8]) -> Option<Vec<String>> {
    let doc = load(original).ok()?;
    let rulesets: Vec<&Element> = doc
        .roots()
        .flat_map(|r| r.children_named("ruleset"))
        .collect();
    find(original, &rulesets)
        .filter(|s| s.effective)
        .and_then(|s| s.paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STOCK: &str = "<ossec_config>\n  <ruleset>\n    <decoder_dir>ruleset/decoders</decoder_dir>\n    <rule_dir>ruleset/rules</rule_dir>\n    <list>etc/lists/audit-keys</list>\n    <list>etc/lists/malicious-ioc/malicious-ip</list>\n    <decoder_dir>etc/decoders</decoder_dir>\n  </ruleset>\n</ossec_config>\n";

    fn ours() -> Vec<String> {
        [
            "etc/lists/wazuh-misp/misp-ip",
            "etc/lists/wazuh-misp/misp-domain",
        ]
        .map(String::from)
        .into()
    }

    #[test]
    fn added_after_the_stock_lists_and_removed_byte_for_byte() {
        let added = upsert_lists(STOCK.as_bytes(), &ours()).unwrap();
        assert_eq!(added.outcome, Outcome::Added);
        let text = String::from_utf8(added.text.clone()).unwrap();
        assert!(text.contains("<list>etc/lists/malicious-ioc/malicious-ip</list>\n    <!-- wazuh-misp lists: managed by wazuh-misp (native matching); change it with `wazuh-misp setup` -->\n    <list>etc/lists/wazuh-misp/misp-ip</list>\n    <list>etc/lists/wazuh-misp/misp-domain</list>\n    <!-- wazuh-misp lists: end -->\n    <decoder_dir>"), "{text}");
        assert_eq!(declared_lists(&added.text), Some(ours()));
        assert_eq!(
            upsert_lists(&added.text, &ours()).unwrap().outcome,
            Outcome::Unchanged
        );
        let fewer = upsert_lists(&added.text, &ours()[..1]).unwrap();
        assert_eq!(fewer.outcome, Outcome::Updated);
        assert_eq!(declared_lists(&fewer.text), Some(ours()[..1].to_vec()));
        let removed = remove_lists(&fewer.text).unwrap();
        assert_eq!(removed.outcome, Outcome::Removed);
        assert_eq!(removed.text, STOCK.as_bytes());
        assert_eq!(
            remove_lists(STOCK.as_bytes()).unwrap().outcome,
            Outcome::Absent
        );
    }

    #[test]
    fn the_last_ruleset_with_lists_is_the_one_that_counts() {
        let two = "<ossec_config>\r\n\t<ruleset>\r\n\t\t<list>etc/lists/a</list>\r\n\t</ruleset>\r\n\t<ruleset>\r\n\t\t<rule_dir>etc/rules</rule_dir>\r\n\t</ruleset>\r\n</ossec_config>\r\n<ossec_config>\r\n\t<ruleset>\r\n\t\t<list>etc/lists/b</list>\r\n\t</ruleset>\r\n</ossec_config>\r\n";
        let added = upsert_lists(two.as_bytes(), &ours()).unwrap();
        let text = String::from_utf8(added.text.clone()).unwrap();
        assert!(
            text.contains("<list>etc/lists/b</list>\r\n\t\t<!-- wazuh-misp lists"),
            "{text}"
        );
        assert_eq!(text.matches("wazuh-misp/misp-ip").count(), 1);
        assert_eq!(remove_lists(&added.text).unwrap().text, two.as_bytes());
        let none = "<ossec_config><global/></ossec_config>";
        assert!(matches!(
            upsert_lists(none.as_bytes(), &ours()),
            Err(ConfError::NoRuleset)
        ));
    }

    #[test]
    fn a_later_ruleset_with_lists_moves_ours_after_its_own() {
        let added = upsert_lists(STOCK.as_bytes(), &ours()).unwrap();
        let later = String::from_utf8(added.text)
            .unwrap()
            .replace(
                "</ossec_config>\n",
                "</ossec_config>\n<ossec_config>\n  <ruleset>\n    <list>etc/lists/mine</list>\n  </ruleset>\n</ossec_config>\n",
            );
        // Ours are no longer loaded.
        assert_eq!(declared_lists(later.as_bytes()), None);
        let moved = upsert_lists(later.as_bytes(), &ours()).unwrap();
        assert_eq!(moved.outcome, Outcome::Updated);
        let text = String::from_utf8(moved.text.clone()).unwrap();
        assert!(
            text.contains("<list>etc/lists/mine</list>\n    <!-- wazuh-misp lists"),
            "{text}"
        );
        assert_eq!(text.matches("wazuh-misp/misp-ip").count(), 1);
        assert_eq!(declared_lists(&moved.text), Some(ours()));
    }

    #[test]
    fn a_hand_edited_section_is_left_alone() {
        let added = upsert_lists(STOCK.as_bytes(), &ours()).unwrap();
        let edited = String::from_utf8(added.text).unwrap().replace(
            "misp-domain</list>",
            "misp-domain</list>\n    <list>etc/lists/mine</list>",
        );
        assert_eq!(
            upsert_lists(edited.as_bytes(), &ours()).unwrap().outcome,
            Outcome::KeptHandEdited
        );
        assert_eq!(
            remove_lists(edited.as_bytes()).unwrap().outcome,
            Outcome::KeptHandEdited
        );
        assert_eq!(declared_lists(edited.as_bytes()), None);
    }
}
