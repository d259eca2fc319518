//! Native matching's lists: the mirror's indicators as Wazuh CDB lists, one per kind, for
//! analysisd to match in-process (`cdb` owns the text format). Groundwork: the lists are built
//! here, and `wazuh::ossec_conf::lists` declares them in ossec.conf; no rules use them yet and
//! nothing writes them on a sync (native matching is not switched on anywhere).

pub mod cdb;

use crate::ioc::IocKind;
use crate::mirror::Mirror;
use crate::settings::Loaded;
use std::collections::BTreeMap;

/// The value every key carries: rules cannot print a list's value, so it only has to be short.
pub const LIST_VALUE: &str = "misp";

/// The list file of a kind, in our folder under `etc/lists/`.
pub fn list_name(kind: IocKind) -> String {
    format!("misp-{}", kind.as_str())
}

/// Every matching key the mirror holds, per kind, sorted and de-duplicated: exactly the keys
/// online mode could match (`mirror::policy::admitted_keys`), one line each.
pub fn keys_by_kind(mirror: &Mirror, loaded: &Loaded) -> BTreeMap<IocKind, Vec<String>> {
    let mut out: BTreeMap<IocKind, Vec<String>> = BTreeMap::new();
    for r in mirror.records() {
        let Some(a) = mirror.attribute(&r) else {
            continue;
        };
        for (kind, key) in crate::mirror::policy::admitted_keys(loaded, &a).unwrap_or_default() {
            out.entry(kind).or_default().push(key);
        }
    }
    for keys in out.values_mut() {
        keys.sort_unstable();
        keys.dedup();
    }
    out
}
