//! Which of analysisd's findings count against new lists: the warnings a hot reload brings that
//! the baseline `wazuh-analysisd -t` did not print (compared on the message: the two print
//! different prefixes), and those about native matching's own lists and rules, which count
//! whatever the baseline said.

use crate::settings::Loaded;
use crate::wazuh::service::CheckReport;
use crate::wazuh::{home, native_rules};
use std::collections::BTreeSet;

/// The reload's warnings that our baseline `-t` did not print. `-t` prints the program and the
/// level (`wazuh-analysisd: WARNING: …`), the reload's `data` the message alone
/// (`os_analysisd_string_log_msg`), so both are compared on the message.
pub fn new_warnings(base: u32, warnings: &[String], baseline: &CheckReport) -> Vec<String> {
    let known: BTreeSet<&str> = baseline.findings.iter().map(|f| message(f)).collect();
    warnings
        .iter()
        .filter(|w| !known.contains(message(w)))
        .chain(ours(base, warnings.iter()).filter(|w| known.contains(message(w))))
        .cloned()
        .collect()
}

/// A finding's message: after its level tag, when it has one.
fn message(text: &str) -> &str {
    let text = ["CRITICAL:", "ERROR:", "WARNING:", "INFO:"]
        .iter()
        .filter_map(|tag| text.find(tag).map(|at| at + tag.len()))
        .min()
        .map_or(text, |at| &text[at..])
        .trim();
    without_source_position(text)
}

/// In debug mode analysisd puts `file:line at function(): ` before the message
/// (`os_analysisd_string_log_msg`, `src/analysisd/logmsg.c`).
fn without_source_position(text: &str) -> &str {
    let Some((head, rest)) = text.split_once("(): ") else {
        return text;
    };
    let positioned = head.split_once(" at ").is_some_and(|(place, function)| {
        place.rsplit_once(':').is_some_and(|(file, line)| {
            !file.is_empty() && line.bytes().all(|b| b.is_ascii_digit()) && !line.is_empty()
        }) && !function.is_empty()
            && !function.contains(' ')
    });
    if positioned {
        rest.trim()
    } else {
        text
    }
}

/// The rule id base our rules were installed with.
pub(super) fn rule_base(loaded: &Loaded) -> u32 {
    loaded.settings.install.base()
}

/// Findings that name our lists, our rules file or one of our native rules as the rule the
/// finding is about (`Rule '117126' will be ignored`, `… option of rule '117135'`, `Rule ID
/// '117126' is duplicated`): whatever the baseline said, they mean native matching does not
/// match as it should. A rule of someone else's that merely points at one of ours is theirs.
pub(super) fn ours<'a>(
    base: u32,
    findings: impl Iterator<Item = &'a String>,
) -> impl Iterator<Item = &'a String> {
    let ids: Vec<(String, String)> = native_rules::native_rule_ids(base)
        .map(|id| (format!("rule '{id}'"), format!("rule id '{id}'")))
        .collect();
    findings.filter(move |f| {
        let lower = f.to_ascii_lowercase();
        f.contains(&format!("{}/", home::LISTS_DIR))
            || f.contains(native_rules::NATIVE_RULES_FILE)
            || ids
                .iter()
                .any(|(a, b)| lower.contains(a.as_str()) || lower.contains(b.as_str()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reload_warnings_compare_on_their_message() {
        let mut baseline = CheckReport::default();
        for f in [
            "wazuh-analysisd: WARNING: (7617): Signature ID '1' was not found.",
            "wazuh-analysisd: WARNING: Mitre Technique ID 'T0000' not found in database.",
            "wazuh-analysisd: WARNING: (7616): List 'etc/lists/wazuh-misp/misp-domain' could not be loaded. Rule '117164' will be ignored.",
            "wazuh-analysisd: WARNING: (7617): Signature ID '117123' was not found and will be ignored in the 'if_sid' option of rule '117135'.",
            "wazuh-analysisd: WARNING: (7617): Signature ID '5715' was not found and will be ignored in the 'if_sid' option of rule '100200'.",
        ] {
            baseline.findings.insert(f.into());
        }
        // As the reload's `data` has them: the message alone.
        let warnings: Vec<String> = [
            "(7617): Signature ID '1' was not found.",
            "Mitre Technique ID 'T0000' not found in database.",
            "(7616): List 'etc/lists/wazuh-misp/misp-ip' could not be loaded. Rule '117126' will be ignored.",
            "(7616): List 'etc/lists/wazuh-misp/misp-domain' could not be loaded. Rule '117164' will be ignored.",
            "(7617): Signature ID '117123' was not found and will be ignored in the 'if_sid' option of rule '117135'.",
            "(7617): Signature ID '5715' was not found and will be ignored in the 'if_sid' option of rule '100200'.",
        ]
        .map(String::from)
        .into();
        // New, and ours (a list, a rule id of our block) even though the baseline had them; a
        // known warning about someone else's rule stays known.
        assert_eq!(new_warnings(117100, &warnings, &baseline), warnings[2..5]);
        assert_eq!(message(" no tag here "), "no tag here");
        // analysisd in debug mode.
        assert_eq!(
            new_warnings(
                117100,
                &["rules.c:1479 at os_analysisd_check_mitre(): Mitre Technique ID 'T0000' not found in database.".to_string()],
                &baseline
            ),
            Vec::<String>::new()
        );
        assert_eq!(message("keep: a (b): c"), "keep: a (b): c");
    }
}
