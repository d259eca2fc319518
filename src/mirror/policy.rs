//! What a mirror answers for: one MISP, seen by one key (another user or organisation sees other
//! events), under one policy (filters, kinds, allowlists). Sync writes this fingerprint into the
//! mirror and the runtime refuses a mirror whose fingerprint differs, so a change of MISP, key or
//! policy can never serve old answers; sync rebuilds the mirror in full instead.

use crate::ioc::{self, IocKind};
use crate::misp::search::{self, Attribute};
use crate::settings::Loaded;
use std::hash::Hasher;

pub fn fingerprint(loaded: &Loaded) -> String {
    let s = &loaded.settings;
    let l = &s.lookup;
    let mut key =
        siphasher::sip::SipHasher24::new_with_keys(0x6d69_7272_6f72_6b65, 0x0079_2069_6420_7631);
    key.write(loaded.api_key.expose().as_bytes());
    let kinds: Vec<&str> = s.mirror_kinds().iter().map(|k| k.as_str()).collect();
    format!(
        "{} key={:016x} to_ids={} published={} warninglist={} kinds={} allowlist={}",
        loaded.misp_url,
        key.finish(),
        l.to_ids,
        l.published,
        l.enforce_warninglist,
        kinds.join(","),
        serde_json::to_string(&s.allowlist).unwrap_or_default()
    )
}

/// The kinds a mirror built for `loaded` holds.
pub fn kinds(loaded: &Loaded) -> Vec<IocKind> {
    loaded.settings.mirror_kinds()
}

/// The keys under which online mode could match this attribute (the mirror's kinds, neither
/// excluded nor allowlisted), or `None` when it could never match: such attributes are not kept.
pub fn admitted_keys(loaded: &Loaded, a: &Attribute) -> Option<Vec<(IocKind, String)>> {
    let s = &loaded.settings;
    if a.deleted || (s.lookup.to_ids && !a.to_ids) {
        return None;
    }
    let kinds = s.mirror_kinds();
    let keys: Vec<(IocKind, String)> = search::attribute_keys(a)
        .into_iter()
        .filter(|(kind, key)| {
            kinds.contains(kind)
                && ioc::exclusion(*kind, key, &s.allowlist.cidrs, &s.allowlist.domains).is_none()
        })
        .collect();
    (!keys.is_empty()).then_some(keys)
}
