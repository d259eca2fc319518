//! Tests of the ossec.conf editor (`wazuh::ossec_conf`) and the Wazuh XML scanner under it
//! (`wazuh::xml`): golden files for every fixture in tests/fixtures/ossec (`*.conf` in,
//! `*.expected` out; `UPDATE_GOLDEN=1 cargo test --test ossec_conf` rewrites them, then review
//! the diff by eye), idempotence, updates in place, exact round trips, refusal of files Wazuh
//! refuses, hand-edit detection, takeover of hand-written custom-misp blocks, `inspect()`, and
//! property tests over generated ossec.conf files.

use proptest::prelude::*;
use std::path::PathBuf;
use wazuh_misp::wazuh::ossec_conf::{
    inspect, remove, upsert, validate, ClusterRole, ConfError, Filters, IntegrationBlock,
    ManagedState, Outcome, Schedule, DEFAULT_LOG_ALERT_LEVEL, END_MARKER, START_MARKER,
};
use wazuh_misp::wazuh::xml;

fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/ossec")
        .join(name)
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// The block of the golden files: every optional element present.
fn golden_block() -> IntegrationBlock {
    IntegrationBlock {
        filters: Filters {
            level: Some(5),
            groups: strings(&["authentication_failed", "ids", "sysmon_event3"]),
            rule_ids: strings(&["100200"]),
        },
        timeout: Some(10),
        retries: Some(3),
        native_hits: None,
        schedule: None,
    }
}

fn small_block() -> IntegrationBlock {
    IntegrationBlock {
        filters: Filters {
            level: Some(7),
            groups: Vec::new(),
            rule_ids: Vec::new(),
        },
        timeout: None,
        retries: None,
        native_hits: None,
        schedule: None,
    }
}

/// Fixtures Wazuh reads.
const VALID: &[&str] = &[
    "stock",
    "integrations",
    "crlf",
    "bom",
    "tabs",
    "comments",
    "legacy",
    "legacy-twice",
    "minimal",
    "shared-close",
];
/// Fixtures without a custom-misp block.
const CLEAN: &[&str] = &[
    "stock",
    "integrations",
    "crlf",
    "bom",
    "tabs",
    "comments",
    "minimal",
    "shared-close",
];

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn count(haystack: &[u8], needle: &str) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle.as_bytes())
        .count()
}

fn find(haystack: &[u8], needle: &str) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle.as_bytes())
        .unwrap_or_else(|| panic!("{needle:?} not found"))
}

// ---------------------------------------------------------------------------------------------
// Golden files

#[test]
fn golden_upsert_outputs() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    for name in VALID {
        let original = fixture(&format!("{name}.conf"));
        let edit = upsert(&original, &golden_block()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let expected_path = path(&format!("{name}.expected"));
        if update {
            std::fs::write(&expected_path, &edit.text).unwrap();
            continue;
        }
        let expected = std::fs::read(&expected_path).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            edit.text == expected,
            "{name}: upsert differs from {name}.expected:\n{}",
            text(&edit.text)
        );
        validate(&edit.text).unwrap();
    }
}

#[test]
fn golden_outcomes() {
    for name in CLEAN {
        let edit = upsert(&fixture(&format!("{name}.conf")), &golden_block()).unwrap();
        assert_eq!(edit.outcome, Outcome::Added, "{name}");
        assert!(edit.notices.is_empty(), "{name}: {:?}", edit.notices);
    }
}

#[test]
fn stock_block_goes_last_in_the_first_root_with_its_indentation() {
    let original = fixture("stock.conf");
    let edit = upsert(&original, &golden_block()).unwrap();
    let out = text(&edit.text);
    let block =
        "\n\n  <!-- wazuh-misp: managed block, change it with `wazuh-misp setup`; checksum ";
    let at = out
        .find(block)
        .expect("block after the blank line that follows </cluster>");
    assert!(out[..at].ends_with("  </cluster>"));
    let tail = &out[at..];
    let expected_body = "\n  <integration>\n    <name>custom-misp</name>\n    <level>5</level>\n    \
         <group>authentication_failed,ids,sysmon_event3</group>\n    <rule_id>100200</rule_id>\n    \
         <alert_format>json</alert_format>\n    <timeout>10</timeout>\n    <retries>3</retries>\n  \
         </integration>\n  <!-- wazuh-misp: end of managed block -->\n</ossec_config>\n\n<ossec_config>\n";
    let after_marker = &tail[tail.find(" -->").unwrap() + 4..];
    assert!(after_marker.starts_with(expected_body), "{after_marker}");
    // Everything else is the original, byte for byte.
    assert_eq!(remove(&edit.text).unwrap().text, original);
}

#[test]
fn crlf_file_gets_crlf_lines() {
    let edit = upsert(&fixture("crlf.conf"), &golden_block()).unwrap();
    let lone = edit
        .text
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\n' && (i == 0 || edit.text[i - 1] != b'\r'))
        .count();
    assert_eq!(lone, 0, "{}", text(&edit.text));
    assert!(text(&edit.text).contains("\r\n  <integration>\r\n    <name>custom-misp</name>\r\n"));
}

#[test]
fn bom_is_kept_and_four_space_indent_matched() {
    let edit = upsert(&fixture("bom.conf"), &golden_block()).unwrap();
    assert!(edit.text.starts_with(xml::BOM));
    assert!(text(&edit.text).contains("\n    <integration>\n        <name>custom-misp</name>\n"));
}

#[test]
fn tab_indented_file_gets_tabs() {
    let edit = upsert(&fixture("tabs.conf"), &golden_block()).unwrap();
    assert!(text(&edit.text).contains("\t</ruleset>\n\t<!-- wazuh-misp: managed block"));
    assert!(text(&edit.text).contains("\n\t<integration>\n\t\t<name>custom-misp</name>\n"));
    assert!(text(&edit.text).ends_with(
        "\t</integration>\n\t<!-- wazuh-misp: end of managed block -->\n</ossec_config>\n"
    ));
}

#[test]
fn single_line_file_stays_valid_and_round_trips() {
    let original = fixture("minimal.conf");
    assert!(!original.contains(&b'\n'));
    let edit = upsert(&original, &golden_block()).unwrap();
    let out = text(&edit.text);
    assert!(out.starts_with("<ossec_config><global><jsonout_output>yes</jsonout_output></global><alerts><log_alert_level>3</log_alert_level></alerts>\n  <!-- wazuh-misp: managed block"));
    assert!(out.ends_with("  <!-- wazuh-misp: end of managed block --></ossec_config>"));
    assert_eq!(remove(&edit.text).unwrap().text, original);
}

#[test]
fn closing_tag_after_content_on_its_line() {
    let original = fixture("shared-close.conf");
    let edit = upsert(&original, &golden_block()).unwrap();
    assert!(text(&edit.text).contains("  </localfile>\n  <!-- wazuh-misp: managed block"));
    assert!(
        text(&edit.text).ends_with("<!-- wazuh-misp: end of managed block --></ossec_config>\n")
    );
    assert_eq!(remove(&edit.text).unwrap().text, original);
}

// ---------------------------------------------------------------------------------------------
// Idempotence, updates, round trips

#[test]
fn upsert_twice_is_unchanged() {
    for name in VALID {
        let once = upsert(&fixture(&format!("{name}.conf")), &golden_block()).unwrap();
        let twice = upsert(&once.text, &golden_block()).unwrap();
        assert_eq!(twice.outcome, Outcome::Unchanged, "{name}");
        assert_eq!(twice.text, once.text, "{name}");
        assert!(twice.notices.is_empty(), "{name}");
    }
}

#[test]
fn add_then_remove_restores_every_clean_fixture() {
    for name in CLEAN {
        let original = fixture(&format!("{name}.conf"));
        for block in [golden_block(), small_block()] {
            let added = upsert(&original, &block).unwrap();
            let removed = remove(&added.text).unwrap();
            assert_eq!(removed.outcome, Outcome::Removed, "{name}");
            assert!(removed.text == original, "{name}:\n{}", text(&removed.text));
        }
    }
}

#[test]
fn list_lines_and_the_block_come_and_go_in_any_order_byte_for_byte() {
    use wazuh_misp::wazuh::ossec_conf::lists::{declared_lists, remove_lists, upsert_lists};
    let ours: Vec<String> = ["ip", "domain", "url", "md5", "sha1", "sha256"]
        .iter()
        .map(|k| format!("etc/lists/wazuh-misp/misp-{k}"))
        .collect();
    let mut covered = 0;
    for name in CLEAN {
        let original = fixture(&format!("{name}.conf"));
        let Ok(with_lists) = upsert_lists(&original, &ours) else {
            continue; // a fixture without a <ruleset>
        };
        covered += 1;
        assert_eq!(with_lists.outcome, Outcome::Added, "{name}");
        assert_eq!(
            declared_lists(&with_lists.text).as_deref(),
            Some(&ours[..]),
            "{name}"
        );
        validate(&with_lists.text).unwrap();
        // Lists, then the block; remove the lists first, then the block.
        let both = upsert(&with_lists.text, &golden_block()).unwrap();
        let no_lists = remove_lists(&both.text).unwrap();
        assert_eq!(no_lists.outcome, Outcome::Removed, "{name}");
        let none = remove(&no_lists.text).unwrap();
        assert!(none.text == original, "{name}:\n{}", text(&none.text));
        // The block, then the lists; remove the block first.
        let block = upsert(&original, &small_block()).unwrap();
        let both = upsert_lists(&block.text, &ours).unwrap();
        let no_block = remove(&both.text).unwrap();
        assert_eq!(
            declared_lists(&no_block.text).as_deref(),
            Some(&ours[..]),
            "{name}"
        );
        assert!(
            remove_lists(&no_block.text).unwrap().text == original,
            "{name}"
        );
    }
    // stock and tabs; CRLF and several roots are in the unit tests of ossec_conf::lists.
    assert!(covered >= 2, "only {covered} fixtures have a <ruleset>");
}

/// Native matching's block: the runtime-only sources, then our CDB rules' alerts, then the wodle.
fn native_block() -> IntegrationBlock {
    IntegrationBlock {
        filters: Filters {
            level: Some(3),
            groups: strings(&["sysmon_event1", "sysmon_event_22"]),
            rule_ids: Vec::new(),
        },
        native_hits: Some(Filters {
            level: None,
            groups: strings(&["misp_native"]),
            rule_ids: Vec::new(),
        }),
        timeout: Some(10),
        retries: None,
        schedule: Some(Schedule {
            command: "/var/ossec/integrations/custom-misp --scheduled-sync".into(),
            interval_s: 3600,
            timeout_s: 1200,
        }),
    }
}

#[test]
fn native_matchings_second_integration_reads_back_switches_and_goes() {
    for name in CLEAN {
        let original = fixture(&format!("{name}.conf"));
        let native = upsert(&original, &native_block()).unwrap();
        assert_eq!(native.outcome, Outcome::Added, "{name}");
        let names = |t: &[u8]| count(t, "<name>custom-misp</name>");
        assert_eq!(names(&native.text), names(&original) + 2, "{name}");
        assert!(
            find(&native.text, "<group>misp_native</group>")
                < find(&native.text, "<wodle name=\"command\">"),
            "{name}: the wodle comes last"
        );
        assert_eq!(
            inspect(&native.text).unwrap().managed,
            Some(ManagedState::Intact(native_block())),
            "{name}"
        );
        validate(&native.text).unwrap();
        assert_eq!(
            upsert(&native.text, &native_block()).unwrap().outcome,
            Outcome::Unchanged
        );
        // Switching native matching off gives the one-block file, and removing gives the original.
        let single = IntegrationBlock {
            native_hits: None,
            ..native_block()
        };
        let off = upsert(&native.text, &single).unwrap();
        assert_eq!(off.outcome, Outcome::Updated, "{name}");
        assert_eq!(off.text, upsert(&original, &single).unwrap().text, "{name}");
        assert!(remove(&native.text).unwrap().text == original, "{name}");
        // A hand edit of the second block is a hand edit of the managed block.
        let edited = replace_once(
            &native.text,
            "<group>misp_native</group>",
            "<group>misp_x</group>",
        );
        assert!(matches!(
            inspect(&edited).unwrap().managed,
            Some(ManagedState::HandEdited)
        ));
    }
}

#[test]
fn remove_without_a_block_is_absent_and_changes_nothing() {
    for name in CLEAN {
        let original = fixture(&format!("{name}.conf"));
        let edit = remove(&original).unwrap();
        assert_eq!(edit.outcome, Outcome::Absent);
        assert_eq!(edit.text, original);
    }
}

#[test]
fn different_filters_update_in_place() {
    for name in CLEAN {
        let original = fixture(&format!("{name}.conf"));
        let first = upsert(&original, &golden_block()).unwrap();
        let second = upsert(&first.text, &small_block()).unwrap();
        assert_eq!(second.outcome, Outcome::Updated, "{name}");
        let at = find(&first.text, "<!-- wazuh-misp: managed block");
        assert_eq!(
            at,
            find(&second.text, "<!-- wazuh-misp: managed block"),
            "{name}"
        );
        assert_eq!(first.text[..at], second.text[..at], "{name}");
        let end = "<!-- wazuh-misp: end of managed block -->";
        let tail1 = &first.text[find(&first.text, end)..];
        let tail2 = &second.text[find(&second.text, end)..];
        assert_eq!(tail1, tail2, "{name}");
        assert_eq!(
            inspect(&second.text).unwrap().managed,
            Some(ManagedState::Intact(small_block()))
        );
        // Same as writing the new block from scratch, and it still removes cleanly.
        assert_eq!(second.text, upsert(&original, &small_block()).unwrap().text);
        assert_eq!(remove(&second.text).unwrap().text, original, "{name}");
    }
}

#[test]
fn block_lines_follow_integratord_order_and_omit_unset_filters() {
    let only_ids = IntegrationBlock {
        filters: Filters {
            level: None,
            groups: Vec::new(),
            rule_ids: strings(&["100100", "110000"]),
        },
        timeout: None,
        retries: Some(2),
        native_hits: None,
        schedule: None,
    };
    let edit = upsert(&fixture("tabs.conf"), &only_ids).unwrap();
    let out = text(&edit.text);
    assert!(out.contains(
        "\t<integration>\n\t\t<name>custom-misp</name>\n\t\t<rule_id>100100,110000</rule_id>\n\t\t<alert_format>json</alert_format>\n\t\t<retries>2</retries>\n\t</integration>\n"
    ), "{out}");
    assert!(!out.contains("api_key") && !out.contains("hook_url"));
    assert_eq!(
        inspect(&edit.text).unwrap().managed,
        Some(ManagedState::Intact(only_ids))
    );
}

#[test]
fn invalid_values_are_refused() {
    let original = fixture("stock.conf");
    let mut bad = Vec::new();
    for group in ["a,b", "a b", "<x>", "", "é"] {
        let mut b = small_block();
        b.filters.groups = vec![group.to_string()];
        bad.push(b);
    }
    for id in ["abc", "", "1234567", "1,2", "-1"] {
        let mut b = small_block();
        b.filters.rule_ids = vec![id.to_string()];
        bad.push(b);
    }
    let mut b = small_block();
    b.filters.level = Some(17);
    bad.push(b);
    for block in bad {
        let err = upsert(&original, &block).unwrap_err();
        assert!(
            matches!(err, ConfError::InvalidValue { .. }),
            "{block:?}: {err}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Refusals

#[test]
fn broken_files_are_refused_with_line_and_column() {
    let cases = [
        ("broken-prolog.conf", "line 1, column 1: an XML declaration"),
        ("broken-raw-lt.conf", "line 8, column 69: a bare '<'"),
        (
            "broken-mismatch.conf",
            "line 8, column 3: </alert> does not close <alerts>, which was opened on line 6",
        ),
    ];
    for (name, message) in cases {
        let original = fixture(name);
        let err = upsert(&original, &golden_block()).unwrap_err();
        assert!(matches!(err, ConfError::Xml(_)), "{name}: {err:?}");
        assert!(err.to_string().contains(message), "{name}: {err}");
        assert_eq!(remove(&original).unwrap_err(), err);
        assert_eq!(inspect(&original).unwrap_err(), err);
        assert_eq!(validate(&original).unwrap_err(), err);
    }
}

#[test]
fn dialect_refusals_name_the_place() {
    let cases: &[(&str, &str)] = &[
        (
            "<ossec_config>\n  <a><![CDATA[x]]></a>\n</ossec_config>",
            "line 2, column 6: a CDATA",
        ),
        (
            "<!DOCTYPE ossec>\n<ossec_config/>",
            "line 1, column 1: a `<!DOCTYPE",
        ),
        (
            "<ossec_config>\n<!-- open\n</ossec_config>\n",
            "line 2, column 1: this comment is never closed",
        ),
        (
            "<ossec_config>\n  <global>\n</ossec_config>",
            "does not close <global>",
        ),
        (
            "<ossec_config>\n  <global>\n",
            "line 2, column 3: <global> is never closed",
        ),
        (
            "<ossec_config>\n  <a>x</a >\n</ossec_config>",
            "line 2, column 7: </a > does not close <a>",
        ),
        (
            "<ossec_config>\n  <?php x ?>\n</ossec_config>",
            "line 2, column 3: a processing instruction",
        ),
        (
            "</ossec_config>",
            "line 1, column 1: </ossec_config> closes an element that was never opened",
        ),
    ];
    for (src, message) in cases {
        let err = validate(src.as_bytes()).unwrap_err();
        assert!(err.to_string().contains(message), "{src:?}: {err}");
    }
    let long = format!("<ossec_config><a>{}</a></ossec_config>", "x".repeat(20480));
    let err = validate(long.as_bytes()).unwrap_err();
    assert!(err.to_string().contains("at most 20479 bytes"), "{err}");
    let fits = format!("<ossec_config><a>{}</a></ossec_config>", "x".repeat(20479));
    validate(fits.as_bytes()).unwrap();
}

#[test]
fn only_ossec_config_roots() {
    let err = upsert(
        b"<ossec_config/>\n<agent_config>\n</agent_config>\n",
        &small_block(),
    )
    .unwrap_err();
    assert!(
        err.to_string().starts_with(
            "line 2, column 1: the top-level element <agent_config> is not <ossec_config>"
        ),
        "{err}"
    );
    let err = validate(b"<wazuh_config>\n</wazuh_config>\n").unwrap_err();
    assert!(
        matches!(err, ConfError::Wazuh5 { line: 1, column: 1 }),
        "{err}"
    );
    assert_eq!(
        validate(b"<!-- nothing -->\n").unwrap_err(),
        ConfError::NoOssecConfig
    );
    assert_eq!(validate(b"").unwrap_err(), ConfError::NoOssecConfig);
    assert_eq!(
        upsert(b"<ossec_config/>\n", &small_block()).unwrap_err(),
        ConfError::NoPlaceForBlock
    );
}

#[test]
fn what_wazuh_accepts_is_accepted() {
    let src = "\u{feff}<!-- head -->\r\n<ossec_config>\t<!-- c --><global x='1' y=\"2\"><jsonout_output>yes</jsonout_output><email_to>a&amp;b > c &</email_to><ignore/></global>\n</ossec_config><!-- between -->\n<ossec_config\n  ><sca><enabled>yes</enabled></sca></ossec_config>\n<!-- tail -->";
    validate(src.as_bytes()).unwrap();
    let doc = xml::parse(src.as_bytes()).unwrap();
    let global = doc.roots().next().unwrap().child("global").unwrap();
    assert_eq!(global.child("email_to").unwrap().text(), b"a&amp;b > c &");
    assert_eq!(global.attribute("x"), Some(&b"1"[..]));
    let edit = upsert(src.as_bytes(), &small_block()).unwrap();
    assert_eq!(remove(&edit.text).unwrap().text, src.as_bytes());
}

// ---------------------------------------------------------------------------------------------
// Hand edits

fn replace_once(haystack: &[u8], from: &str, to: &str) -> Vec<u8> {
    let s = text(haystack);
    assert!(s.contains(from), "{from:?}");
    s.replacen(from, to, 1).into_bytes()
}

#[test]
fn a_hand_edited_block_is_left_alone() {
    let original = fixture("stock.conf");
    let managed = upsert(&original, &golden_block()).unwrap().text;
    let edits = [
        replace_once(&managed, "<level>5</level>", "<level>6</level>"),
        replace_once(
            &managed,
            "<alert_format>json</alert_format>",
            "<alert_format>json</alert_format>\n    <api_key>x</api_key>",
        ),
        replace_once(&managed, "<!-- wazuh-misp: end of managed block -->", ""),
        replace_once(
            &managed,
            "\n  <integration>\n    <name>custom-misp",
            "\n  <!-- mine -->\n  <integration>\n    <name>custom-misp",
        ),
        replace_once(&managed, "checksum ", "checksum 0"),
    ];
    for edited in edits {
        assert_eq!(
            inspect(&edited).unwrap().managed,
            Some(ManagedState::HandEdited)
        );
        for edit in [
            upsert(&edited, &golden_block()).unwrap(),
            upsert(&edited, &small_block()).unwrap(),
            remove(&edited).unwrap(),
        ] {
            assert_eq!(edit.outcome, Outcome::KeptHandEdited);
            assert_eq!(edit.text, edited);
            assert_eq!(edit.notices.len(), 1, "{:?}", edit.notices);
            assert!(
                edit.notices[0].contains("changed by hand"),
                "{}",
                edit.notices[0]
            );
            assert!(
                edit.notices[0].contains("wazuh-misp setup"),
                "{}",
                edit.notices[0]
            );
        }
    }
}

#[test]
fn reindenting_or_converting_line_endings_is_not_an_edit() {
    let managed = upsert(&fixture("stock.conf"), &golden_block())
        .unwrap()
        .text;
    let reindented = text(&managed)
        .replace("\n    <", "\n\t\t<")
        .replace("\n  <", "\n\t<")
        .into_bytes();
    assert_eq!(
        inspect(&reindented).unwrap().managed,
        Some(ManagedState::Intact(golden_block()))
    );
    let crlf = text(&managed).replace('\n', "\r\n").into_bytes();
    let edit = upsert(&crlf, &golden_block()).unwrap();
    assert_eq!(edit.outcome, Outcome::Unchanged);
    let updated = upsert(&crlf, &small_block()).unwrap();
    assert_eq!(updated.outcome, Outcome::Updated);
    assert!(text(&updated.text).contains(
        "\r\n  <integration>\r\n    <name>custom-misp</name>\r\n    <level>7</level>\r\n"
    ));
}

// ---------------------------------------------------------------------------------------------
// Hand-written custom-misp blocks

fn guide_filters() -> Filters {
    Filters {
        level: Some(7),
        groups: strings(&[
            "sysmon_event1",
            "sysmon_event3",
            "sysmon_event6",
            "sysmon_event7",
            "sysmon_event_15",
            "sysmon_event_22",
            "syscheck",
        ]),
        rule_ids: strings(&["100100", "110000"]),
    }
}

#[test]
fn the_old_guides_block_is_recognised() {
    let original = fixture("legacy.conf");
    let found = inspect(&original).unwrap();
    assert_eq!(found.managed, None);
    assert_eq!(found.legacy, vec![guide_filters()]);
    assert_eq!(found.other_integrations, strings(&["virustotal"]));
}

#[test]
fn the_old_guides_block_is_replaced_in_place() {
    let original = fixture("legacy.conf");
    let edit = upsert(&original, &golden_block()).unwrap();
    assert_eq!(
        edit.outcome,
        Outcome::ReplacedLegacy {
            legacy_filters: guide_filters()
        }
    );
    assert_eq!(edit.notices.len(), 1);
    let notice = &edit.notices[0];
    assert!(notice.contains("line 12"), "{notice}");
    assert!(
        notice.contains("level 7; groups sysmon_event1,sysmon_event3"),
        "{notice}"
    );
    assert!(notice.contains("rule ids 100100,110000"), "{notice}");
    assert!(
        notice.contains("<hook_url>, <api_key> were not carried over"),
        "{notice}"
    );
    // Same place: right after the comment that introduced it; virustotal untouched.
    let at = find(&original, "  <integration>\n    <name>custom-misp");
    assert_eq!(edit.text[..at], original[..at]);
    assert_eq!(find(&edit.text, "  <!-- wazuh-misp: managed block"), at);
    let vt = find(&original, "  <integration>\n    <name>virustotal");
    assert!(edit.text.ends_with(&original[vt - 1..]));
    assert!(!text(&edit.text).contains("YOUR_MISP_API_KEY"));
    let after = inspect(&edit.text).unwrap();
    assert_eq!(after.managed, Some(ManagedState::Intact(golden_block())));
    assert!(after.legacy.is_empty());
    assert_eq!(
        upsert(&edit.text, &golden_block()).unwrap().outcome,
        Outcome::Unchanged
    );
}

#[test]
fn repeated_filters_merge_as_integratord_does_and_extra_blocks_go() {
    let original = fixture("legacy-twice.conf");
    let first = Filters {
        level: Some(5),
        groups: strings(&["sysmon_event3", "sysmon_event_22"]),
        rule_ids: strings(&["100100", "110000", "110001"]),
    };
    let second = Filters {
        level: None,
        groups: strings(&["web"]),
        rule_ids: Vec::new(),
    };
    assert_eq!(
        inspect(&original).unwrap().legacy,
        vec![first.clone(), second]
    );
    let edit = upsert(&original, &small_block()).unwrap();
    assert_eq!(
        edit.outcome,
        Outcome::ReplacedLegacy {
            legacy_filters: first
        }
    );
    assert_eq!(edit.notices.len(), 2, "{:?}", edit.notices);
    assert!(
        edit.notices[1].contains("line 24") && edit.notices[1].contains("groups web"),
        "{:?}",
        edit.notices
    );
    assert!(
        text(&edit.text).ends_with("</ossec_config>\n\n<ossec_config>\n</ossec_config>\n"),
        "{}",
        text(&edit.text)
    );
    assert_eq!(count(&edit.text, "<integration>"), 1);
    let after = inspect(&edit.text).unwrap();
    assert_eq!(after.managed, Some(ManagedState::Intact(small_block())));
    assert!(after.legacy.is_empty());
}

#[test]
fn a_hand_written_block_next_to_ours_is_removed_by_upsert_but_not_by_remove() {
    let managed = upsert(&fixture("stock.conf"), &golden_block())
        .unwrap()
        .text;
    let extra =
        "  <integration>\n    <name>custom-misp</name>\n    <group>web</group>\n  </integration>\n";
    let with_extra = replace_once(
        &managed,
        "  <command>\n    <name>disable-account",
        &format!("{extra}  <command>\n    <name>disable-account"),
    );
    let found = inspect(&with_extra).unwrap();
    assert_eq!(found.managed, Some(ManagedState::Intact(golden_block())));
    assert_eq!(found.legacy.len(), 1);
    let kept = remove(&with_extra).unwrap();
    assert_eq!(kept.outcome, Outcome::Removed);
    assert!(text(&kept.text).contains(extra));
    assert!(
        kept.notices[0].contains("left in place"),
        "{:?}",
        kept.notices
    );
    let edit = upsert(&with_extra, &golden_block()).unwrap();
    assert_eq!(edit.outcome, Outcome::Updated);
    assert_eq!(edit.text, managed);
    assert!(
        edit.notices[0].contains("removed another hand-written custom-misp"),
        "{:?}",
        edit.notices
    );
}

#[test]
fn comments_mentioning_integrations_are_not_blocks() {
    let original = fixture("comments.conf");
    let found = inspect(&original).unwrap();
    assert_eq!(found.managed, None);
    assert!(found.legacy.is_empty());
    assert!(found.other_integrations.is_empty());
    let edit = upsert(&original, &small_block()).unwrap();
    assert_eq!(edit.outcome, Outcome::Added);
    assert!(text(&edit.text).contains(
        "  <!-- last section: <integration><name>custom-misp</name></integration> -->\n  <!-- wazuh-misp: managed block"
    ));
}

#[test]
fn other_integrations_are_never_touched() {
    let original = fixture("integrations.conf");
    let found = inspect(&original).unwrap();
    assert_eq!(
        found.other_integrations,
        strings(&["virustotal", "custom-slack", "custom-misp2"])
    );
    assert!(found.legacy.is_empty());
    for edit in [
        upsert(&original, &golden_block()).unwrap(),
        upsert(
            &upsert(&original, &golden_block()).unwrap().text,
            &small_block(),
        )
        .unwrap(),
    ] {
        let at = find(&edit.text, "\n  <!-- wazuh-misp: managed block");
        assert_eq!(edit.text[..at], original[..at]);
        assert_eq!(count(&edit.text, "<name>custom-misp2</name>"), 1);
        assert_eq!(
            inspect(&edit.text).unwrap().other_integrations,
            found.other_integrations
        );
    }
}

// ---------------------------------------------------------------------------------------------
// inspect()

#[test]
fn inspect_reads_the_settings_that_matter() {
    let stock = inspect(&fixture("stock.conf")).unwrap();
    assert_eq!(stock.managed, None);
    assert_eq!(stock.cluster, ClusterRole::Disabled);
    assert!(stock.jsonout_output);
    assert_eq!(stock.log_alert_level, 3);

    let worker = inspect(&fixture("integrations.conf")).unwrap();
    assert_eq!(worker.cluster, ClusterRole::Worker);
    assert_eq!(worker.log_alert_level, 5);

    let cases: &[(&str, ClusterRole, bool, u8)] = &[
        ("<ossec_config/>", ClusterRole::Disabled, true, DEFAULT_LOG_ALERT_LEVEL),
        ("<ossec_config><cluster><name>w</name></cluster></ossec_config>", ClusterRole::Master, true, DEFAULT_LOG_ALERT_LEVEL),
        ("<ossec_config><cluster><node_type>client</node_type><disabled>no</disabled></cluster></ossec_config>", ClusterRole::Worker, true, DEFAULT_LOG_ALERT_LEVEL),
        ("<ossec_config><cluster><node_type>master</node_type><disabled> yes </disabled></cluster><global><jsonout_output>no</jsonout_output></global></ossec_config>", ClusterRole::Disabled, false, DEFAULT_LOG_ALERT_LEVEL),
        ("<ossec_config><alerts><log_alert_level>3</log_alert_level></alerts></ossec_config><ossec_config><alerts><log_alert_level>9</log_alert_level></alerts><global><jsonout_output>yes</jsonout_output></global></ossec_config>", ClusterRole::Disabled, true, 9),
    ];
    for (src, cluster, jsonout, level) in cases {
        let found = inspect(src.as_bytes()).unwrap();
        assert_eq!(
            (found.cluster, found.jsonout_output, found.log_alert_level),
            (*cluster, *jsonout, *level),
            "{src}"
        );
    }
    // The packaged file sets 3; analysisd's own default when <log_alert_level> is absent is 1.
    assert_eq!(DEFAULT_LOG_ALERT_LEVEL, 1);
}

#[test]
fn a_hand_written_level_that_integratord_refuses_is_an_error() {
    let src = "<ossec_config>\n  <integration>\n    <name>custom-misp</name>\n    <level>high</level>\n  </integration>\n</ossec_config>\n";
    let err = inspect(src.as_bytes()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("line 4, column 5: <level> of the custom-misp integration is \"high\""),
        "{err}"
    );
    assert!(upsert(src.as_bytes(), &small_block()).is_err());
}

#[test]
fn markers_contain_no_double_dash() {
    let edit = upsert(&fixture("stock.conf"), &golden_block()).unwrap();
    let out = text(&edit.text);
    for line in out.lines().filter(|l| l.contains("wazuh-misp:")) {
        let body = line
            .trim()
            .trim_start_matches("<!--")
            .trim_end_matches("-->");
        assert!(!body.contains("--"), "{line}");
    }
    assert!(out.contains(START_MARKER) && out.contains(END_MARKER));
}

// ---------------------------------------------------------------------------------------------
// Property tests

#[derive(Debug, Clone)]
struct Style {
    nl: &'static str,
    unit: &'static str,
    bom: bool,
    /// Spaces or tabs at the end of some lines.
    trailing: &'static str,
}

#[derive(Debug, Clone)]
enum Item {
    Section(usize),
    Comment(usize),
    Integration(usize),
    /// A hand-written custom-misp block (`<integration> ` with a space, to find it).
    Legacy(Filters),
    Blank,
}

#[derive(Debug, Clone)]
struct Root {
    items: Vec<Item>,
    /// `</ossec_config>` right after the last item, on its line.
    close_on_last_line: bool,
    open_attr: bool,
}

#[derive(Debug, Clone)]
struct Spec {
    style: Style,
    roots: Vec<Root>,
    head_comment: Option<usize>,
    between: Vec<usize>,
    final_newline: bool,
}

/// Sections: `head|child=text§child=text`, a nested child as `parent^child=text`, `name/` an
/// empty tag.
const SECTIONS: &[&str] = &[
    "global|jsonout_output=yes§alerts_log=yes§email_to=soc&amp;ops@example.org",
    "alerts|log_alert_level=3§email_alert_level=12",
    "logging|log_format=plain",
    "remote|connection=secure§port=1514§protocol=tcp",
    "rootcheck|disabled=no§frequency=43200§rootkit_files=etc/rootcheck/rootkit_files.txt",
    "wodle name=\"syscollector\"|disabled=no§interval=1h§synchronization^max_eps=10",
    "wodle name='osquery'|disabled=yes§log_path=/var/log/osquery/osqueryd.results.log",
    "sca|enabled=yes§scan_on_start=yes§interval=12h",
    "vulnerability-detection|enabled=yes§feed-update-interval=60m",
    "syscheck|disabled=no§directories check_all=\"yes\"=/etc,/usr/bin§ignore type='sregex'=.log$|.swp$§synchronization^enabled=yes",
    "command|name=firewall-drop§executable=firewall-drop§timeout_allowed=yes",
    "localfile|log_format=full_command§command=ps aux | grep -v grep > /dev/null && echo ok§frequency=360",
    "localfile|log_format=syslog§location=/var/log/auth.log",
    "ruleset|decoder_dir=ruleset/decoders§rule_dir=ruleset/rules§rule_dir=etc/rules",
    "auth|disabled=no§port=1515§ciphers=HIGH:!ADH:!EXP:!MD5",
    "cluster|name=wazuh§node_type=master§key=§nodes^node=NODE_IP§disabled=yes",
    "active-response/",
];
const COMMENTS: &[&str] = &[
    "<!-- Log analysis -->",
    "<!-- <integration><name>custom-misp</name></integration> was here -->",
    "<!--\n  <active-response>\n    options here\n  </active-response>\n  -->",
    "<!-- custom-misp -->",
    "<!---->",
];
const INTEGRATIONS: &[&str] = &[
    "virustotal",
    "custom-foo",
    "custom-misp2",
    "slack",
    "pagerduty",
];

fn render_section(spec: &str, indent: &str, unit: &str, nl: &str, out: &mut String) {
    let (head, body) = spec.split_once('|').unwrap_or((spec, ""));
    if let Some(name) = head.strip_suffix('/') {
        out.push_str(&format!("{indent}<{name}/>"));
        return;
    }
    let name = head.split(' ').next().unwrap();
    out.push_str(&format!("{indent}<{head}>"));
    for child in body.split('§').filter(|c| !c.is_empty()) {
        out.push_str(nl);
        let inner = format!("{indent}{unit}");
        if let Some((parent, rest)) = child.split_once('^') {
            out.push_str(&format!("{inner}<{parent}>{nl}"));
            let (k, v) = rest.split_once('=').unwrap();
            out.push_str(&format!(
                "{inner}{unit}<{k}>{v}</{k}>{nl}{inner}</{parent}>"
            ));
        } else {
            let (k, v) = child
                .rsplit_once('=')
                .unwrap_or_else(|| panic!("{spec}: {child}"));
            let tag = k.split(' ').next().unwrap();
            out.push_str(&format!("{inner}<{k}>{v}</{tag}>"));
        }
    }
    out.push_str(&format!("{nl}{indent}</{name}>"));
}

fn render_doc(spec: &Spec) -> Vec<u8> {
    let Style {
        nl,
        unit,
        bom,
        trailing,
    } = spec.style.clone();
    let mut out = String::new();
    if bom {
        out.push('\u{feff}');
    }
    if let Some(c) = spec.head_comment {
        out.push_str(&COMMENTS[c].replace('\n', nl));
        out.push_str(nl);
    }
    for (r, root) in spec.roots.iter().enumerate() {
        if r > 0 {
            out.push_str(nl);
            if let Some(&c) = spec.between.get(r - 1) {
                out.push_str(&COMMENTS[c % COMMENTS.len()].replace('\n', nl));
                out.push_str(nl);
            }
        }
        out.push_str(if root.open_attr {
            "<ossec_config x=\"1\">"
        } else {
            "<ossec_config>"
        });
        for item in &root.items {
            out.push_str(trailing);
            out.push_str(nl);
            match item {
                Item::Section(s) => render_section(SECTIONS[*s], unit, unit, nl, &mut out),
                Item::Comment(c) => {
                    out.push_str(unit);
                    out.push_str(&COMMENTS[*c].replace('\n', nl));
                }
                Item::Integration(i) => render_section(
                    &format!(
                        "integration|name={}§group=web§alert_format=json",
                        INTEGRATIONS[*i]
                    ),
                    unit,
                    unit,
                    nl,
                    &mut out,
                ),
                Item::Legacy(f) => {
                    let inner = format!("{nl}{unit}{unit}");
                    out.push_str(&format!(
                        "{unit}<integration> {inner}<name>custom-misp</name>"
                    ));
                    for id in &f.rule_ids {
                        out.push_str(&format!("{inner}<rule_id>{id}</rule_id>"));
                    }
                    if !f.groups.is_empty() {
                        out.push_str(&format!("{inner}<group>{}</group>", f.groups.join(",")));
                    }
                    if let Some(level) = f.level {
                        out.push_str(&format!("{inner}<level>{level}</level>"));
                    }
                    out.push_str(&format!(
                        "{inner}<api_key>k</api_key>{nl}{unit}</integration>"
                    ));
                }
                Item::Blank => {}
            }
        }
        if !root.close_on_last_line || root.items.is_empty() {
            out.push_str(nl);
        }
        out.push_str("</ossec_config>");
    }
    if spec.final_newline {
        out.push_str(nl);
    }
    out.into_bytes()
}

fn item() -> impl Strategy<Value = Item> {
    prop_oneof![
        4 => (0..SECTIONS.len()).prop_map(Item::Section),
        1 => (0..COMMENTS.len()).prop_map(Item::Comment),
        1 => (0..INTEGRATIONS.len()).prop_map(Item::Integration),
        2 => Just(Item::Blank),
    ]
}

fn spec() -> impl Strategy<Value = Spec> {
    let style = (
        prop_oneof![Just("\n"), Just("\r\n")],
        prop_oneof![Just("  "), Just("    "), Just("\t")],
        any::<bool>(),
        prop_oneof![4 => Just(""), 1 => Just(" "), 1 => Just("\t ")],
    )
        .prop_map(|(nl, unit, bom, trailing)| Style {
            nl,
            unit,
            bom,
            trailing,
        });
    let root = (
        prop::collection::vec(item(), 0..10),
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(items, close_on_last_line, open_attr)| Root {
            items,
            close_on_last_line,
            open_attr,
        });
    (
        style,
        prop::collection::vec(root, 1..=3),
        prop::option::of(0..COMMENTS.len()),
        prop::collection::vec(0..COMMENTS.len(), 0..3),
        any::<bool>(),
    )
        .prop_map(
            |(style, roots, head_comment, between, final_newline)| Spec {
                style,
                roots,
                head_comment,
                between,
                final_newline,
            },
        )
}

fn block() -> impl Strategy<Value = IntegrationBlock> {
    let groups = prop::sample::subsequence(
        vec![
            "ids",
            "web",
            "sysmon_event3",
            "authentication_failed",
            "attack",
            "syscheck.x-1",
        ],
        0..4,
    );
    let ids = prop::collection::vec(1u32..=999_999, 0..3);
    (
        prop::option::of(0u8..=16),
        groups,
        ids,
        prop::option::of(1u32..60),
        prop::option::of(0u32..10),
        prop::option::of((1u64..100_000, 1u64..10_000)),
    )
        .prop_map(
            |(level, groups, ids, timeout, retries, schedule)| IntegrationBlock {
                filters: Filters {
                    level,
                    groups: groups.into_iter().map(String::from).collect(),
                    rule_ids: ids.iter().map(u32::to_string).collect(),
                },
                timeout,
                retries,
                native_hits: None,
                schedule: schedule.map(|(interval_s, timeout_s)| Schedule {
                    command: "/var/ossec/integrations/custom-misp --scheduled-sync".into(),
                    interval_s,
                    timeout_s,
                }),
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn generated_files_round_trip(spec in spec(), a in block(), b in block()) {
        let original = render_doc(&spec);
        validate(&original).map_err(|e| TestCaseError::fail(format!("{e}\n{}", text(&original))))?;
        let added = upsert(&original, &a).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&added.outcome, &Outcome::Added);
        xml::parse(&added.text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let found = inspect(&added.text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(found.managed, Some(ManagedState::Intact(a.clone())));
        prop_assert!(found.legacy.is_empty());
        prop_assert_eq!(count(&added.text, START_MARKER), 1);
        prop_assert_eq!(count(&added.text, END_MARKER), 1);
        prop_assert_eq!(found.other_integrations, inspect(&original).unwrap().other_integrations);
        prop_assert_eq!(spec.style.bom, added.text.starts_with(xml::BOM));
        if spec.style.nl == "\r\n" {
            let lone = added.text.iter().enumerate().filter(|&(i, &c)| c == b'\n' && (i == 0 || added.text[i - 1] != b'\r')).count();
            prop_assert_eq!(lone, 0);
        }

        let removed = remove(&added.text).unwrap();
        prop_assert_eq!(&removed.outcome, &Outcome::Removed);
        prop_assert!(removed.text == original, "remove(upsert(x)) != x:\n{}", text(&added.text));

        let again = upsert(&added.text, &a).unwrap();
        prop_assert_eq!(&again.outcome, &Outcome::Unchanged);
        prop_assert!(again.text == added.text);

        let updated = upsert(&added.text, &b).unwrap();
        prop_assert_eq!(&updated.outcome, if a == b { &Outcome::Unchanged } else { &Outcome::Updated });
        prop_assert!(updated.text == upsert(&original, &b).unwrap().text);
        prop_assert!(remove(&updated.text).unwrap().text == original);
    }

    #[test]
    fn generated_hand_written_blocks_are_taken_over(
        spec in spec(),
        legacy in block(),
        a in block(),
        root in any::<prop::sample::Index>(),
        slot in any::<prop::sample::Index>(),
    ) {
        let mut spec = spec;
        let r = root.index(spec.roots.len());
        let items = &mut spec.roots[r].items;
        items.insert(slot.index(items.len() + 1), Item::Legacy(legacy.filters.clone()));
        let original = render_doc(&spec);
        let mut expected = legacy.filters.clone();
        let mut seen = Vec::new();
        expected.rule_ids.retain(|id| {
            let new = !seen.contains(id);
            seen.push(id.clone());
            new
        });
        let found = inspect(&original).unwrap();
        prop_assert_eq!(found.legacy.len(), 1);
        prop_assert_eq!(&found.legacy[0], &expected);

        let edit = upsert(&original, &a).unwrap();
        prop_assert_eq!(&edit.outcome, &Outcome::ReplacedLegacy { legacy_filters: expected });
        // Only the hand-written element's bytes changed.
        let begin = find(&original, "<integration>\u{20}");
        let end = begin + find(&original[begin..], "</integration>") + "</integration>".len();
        prop_assert!(edit.text.starts_with(&original[..begin]));
        prop_assert!(edit.text.ends_with(&original[end..]));
        let after = inspect(&edit.text).unwrap();
        prop_assert_eq!(after.managed, Some(ManagedState::Intact(a.clone())));
        prop_assert!(after.legacy.is_empty());
        prop_assert_eq!(after.other_integrations, found.other_integrations);
        prop_assert_eq!(count(&edit.text, "<api_key>k</api_key>"), 0);
        prop_assert_eq!(upsert(&edit.text, &a).unwrap().outcome, Outcome::Unchanged);
    }

    #[test]
    fn scanner_never_panics_and_refusals_have_positions(bytes in prop::collection::vec(prop_oneof![
        Just(b'<'), Just(b'>'), Just(b'/'), Just(b'!'), Just(b'-'), Just(b'a'), Just(b'b'),
        Just(b' '), Just(b'\n'), Just(b'"'), Just(b'='), Just(b'\\'), Just(b'?'), any::<u8>()
    ], 0..200)) {
        match xml::parse(&bytes) {
            Ok(doc) => {
                for root in doc.roots() {
                    let span = root.span();
                    prop_assert!(span.end <= bytes.len() && bytes[span.start] == b'<');
                }
            }
            Err(e) => {
                prop_assert!(e.line >= 1 && e.column >= 1 && e.offset <= bytes.len());
            }
        }
        let _ = inspect(&bytes);
        let _ = upsert(&bytes, &small_block());
    }
}
