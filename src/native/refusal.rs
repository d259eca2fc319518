//! The refusal key: what refused lists were judged against (the lists, and what analysisd reads
//! with them), so that the same lists are not reloaded again for the same answer, each reload
//! emptying every correlation counter, until one of them changes.

use crate::wazuh::detect::OSSEC_CONF;
use crate::wazuh::home;
use std::hash::Hasher;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What a refusal was judged on: the lists, and what analysisd reads with them or is (its
/// binary, ossec.conf, every file in the rules and decoders folders, the other lists' texts): a
/// fixed rule or an upgraded Wazuh is worth a new try. Never a file our own check or sync
/// writes (`.cdb`, our lists folder), or every sync would try again.
pub(super) fn refusal_key(home: &Path, lists: &str) -> String {
    let mut h = siphasher::sip128::SipHasher13::new();
    let mut add = |p: &Path| {
        if let Ok(m) = std::fs::symlink_metadata(p) {
            h.write(p.as_os_str().as_encoded_bytes());
            h.write_u64(m.size());
            h.write_i64(m.mtime());
            h.write_i64(m.mtime_nsec());
        }
    };
    add(&home.join("bin/wazuh-analysisd"));
    add(&home.join(OSSEC_CONF));
    let ours = home.join(home::LISTS_DIR);
    for dir in [
        "etc/rules",
        "etc/decoders",
        "ruleset/rules",
        "ruleset/decoders",
        "etc/lists",
    ] {
        let mut files = Vec::new();
        collect_files(&home.join(dir), &ours, &mut files);
        files.sort();
        files.iter().for_each(|f| add(f));
    }
    format!(
        "{lists} {:032x}",
        siphasher::sip128::Hasher128::finish128(&h).as_u128()
    )
}

/// Every file below `dir` but `.cdb` files and the folder `skip`, two levels deep at most (the
/// stock lists sit in `etc/lists/malicious-ioc/`).
fn collect_files(dir: &Path, skip: &Path, out: &mut Vec<PathBuf>) {
    fn walk(dir: &Path, skip: &Path, depth: u8, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() && depth > 0 && path != skip => {
                    walk(&path, skip, depth - 1, out)
                }
                Ok(t) if t.is_file() && path.extension().is_none_or(|e| e != "cdb") => {
                    out.push(path)
                }
                _ => {}
            }
        }
    }
    walk(dir, skip, 1, out);
}
