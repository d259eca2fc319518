//! Native matching's lists: the mirror's indicators as Wazuh CDB lists, one per kind, for
//! analysisd to match in-process (`cdb` owns the text format). The keys are built here;
//! `native::apply` writes and puts them in force after a sync, `wazuh::ossec_conf::lists`
//! declares them in ossec.conf, and `wazuh::native_rules` reads them in its rules.
//!
//! CDB lookups compare exact bytes (`OS_DBSeachKey`/`OS_DBSeachKeyAddress` in
//! `src/analysisd/lists_list.c`), so a key must be spelled as the decoded field spells it. IPv4
//! is written as a dotted quad (Windows logons that print `::ffff:a.b.c.d` stay with the
//! runtime, as in Wazuh's own lists), but IPv6 comes in three spellings: RFC 5952 compressed
//! (sshd, Windows), eight zero-padded groups (Suricata's `PrintInetIPv6`, ip6tables), and eight
//! unpadded groups (Sysmon): an IPv6 key is written in all three.

pub mod cdb;

use crate::ioc::IocKind;
use crate::mirror::Mirror;
use crate::settings::Loaded;
use std::collections::BTreeMap;
use std::net::Ipv6Addr;

/// The value every key carries: rules cannot print a list's value, so it only has to be short.
pub const LIST_VALUE: &str = "misp";

pub use crate::wazuh::native_rules::list_name;

/// Every matching key the mirror holds, per kind, sorted and de-duplicated: exactly the keys
/// online mode could match (`mirror::policy::admitted_keys`), one line each.
pub fn keys_by_kind(mirror: &Mirror, loaded: &Loaded) -> BTreeMap<IocKind, Vec<String>> {
    let mut out: BTreeMap<IocKind, Vec<String>> = BTreeMap::new();
    for r in mirror.records() {
        let Some(a) = mirror.attribute(&r) else {
            continue;
        };
        for (kind, key) in crate::mirror::policy::admitted_keys(loaded, &a).unwrap_or_default() {
            let keys = out.entry(kind).or_default();
            match key.parse::<Ipv6Addr>() {
                Ok(v6) if kind == IocKind::Ip => keys.extend(ipv6_spellings(v6)),
                _ => keys.push(key),
            }
        }
    }
    for keys in out.values_mut() {
        keys.sort_unstable();
        keys.dedup();
    }
    out
}

/// The spellings of an IPv6 address that decoders print, lowercase: RFC 5952 compressed, eight
/// zero-padded groups, eight unpadded groups (de-duplicated: `1:2:3:4:5:6:7:8` has two).
pub fn ipv6_spellings(addr: Ipv6Addr) -> Vec<String> {
    let groups = addr.segments();
    let full = groups.map(|g| format!("{g:04x}")).join(":");
    let unpadded = groups.map(|g| format!("{g:x}")).join(":");
    let mut out = vec![addr.to_string(), full, unpadded];
    out.dedup();
    if out.len() == 3 && out[0] == out[2] {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_is_listed_as_every_decoder_spells_it() {
        let a: Ipv6Addr = "2001:db8::1".parse().unwrap();
        assert_eq!(
            ipv6_spellings(a),
            [
                "2001:db8::1",
                "2001:0db8:0000:0000:0000:0000:0000:0001",
                "2001:db8:0:0:0:0:0:1"
            ]
        );
        let b: Ipv6Addr = "1:2:3:4:5:6:7:8".parse().unwrap();
        assert_eq!(
            ipv6_spellings(b),
            ["1:2:3:4:5:6:7:8", "0001:0002:0003:0004:0005:0006:0007:0008"]
        );
        let c: Ipv6Addr = "2A0D:5600:24::ABCD".parse().unwrap();
        assert!(ipv6_spellings(c)
            .iter()
            .all(|s| s == &s.to_ascii_lowercase()));
    }
}
