//! A faithful MISP REST API test double, served on loopback (`127.0.0.1`, ephemeral port)
//! over plain HTTP or HTTPS, for `wazuh-misp`'s integration tests, demo and benchmarks.
//!
//! This file owns the crate documentation (behaviour contract and seed table), the module
//! layout and the public re-exports.
//!
//! ```
//! use misp_double::{MispDouble, DEFAULT_API_KEY, seed};
//! use std::io::{Read, Write};
//!
//! let misp = MispDouble::http();
//! let body = format!(r#"{{"value":["{}"],"type":["ip-src","ip-dst"],"to_ids":1}}"#, seed::BRUTE_FORCE_IP);
//! let mut s = std::net::TcpStream::connect(misp.addr()).unwrap();
//! write!(s, "POST /attributes/restSearch HTTP/1.1\r\nHost: x\r\nAuthorization: {DEFAULT_API_KEY}\r\n\
//!            Accept: application/json\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
//!            Connection: close\r\n\r\n{body}", body.len()).unwrap();
//! let mut answer = String::new();
//! s.read_to_string(&mut answer).unwrap();
//! assert!(answer.starts_with("HTTP/1.1 200 OK"));
//! assert!(answer.contains("X-Result-Count: 1"));
//! assert_eq!(misp.request_count("/attributes/restSearch"), 1);
//! ```
//!
//! # Server
//! - [`MispDouble::start`] binds `127.0.0.1:0` and serves each connection on its own thread,
//!   with HTTP/1.1 keep-alive (unless the client sends `Connection: close`; HTTP/1.0 needs
//!   `Connection: keep-alive`), answers always framed with `Content-Length`, pipelining
//!   tolerated. Request bodies need `Content-Length`: any `Transfer-Encoding` gets `411`; a head
//!   over 64 KiB gets `431`, a body over 16 MiB `413`, a malformed head `400` (these close the
//!   connection). Malformed input never panics.
//! - HTTPS ([`Options::tls`]): a fresh CA "misp-double test CA" signs a server certificate for
//!   IP `127.0.0.1` and DNS `localhost` (rcgen, ECDSA P-256); rustls with the ring provider.
//!   Clients must trust [`MispDouble::ca_pem`] (or [`MispDouble::write_ca_file`]).
//! - Every request is recorded ([`MispDouble::requests`]); [`MispDouble::set_fault`] injects
//!   failures ([`Fault`]). Dropping the double closes every connection, hung ones included,
//!   within about 200 ms.
//!
//! # MISP behaviour emulated
//! - **Key**: `Authorization: <key>` or `X-MISP-AUTH: <key>` must equal [`Options::api_key`];
//!   otherwise `403` `{"name":"Authentication failed. Please make sure ...","message":"...",
//!   "url":"<path>"}`.
//! - **`GET /servers/getVersion`, `GET /users/view/me`, `POST /sightings/add`**: without
//!   `Accept: application/json` exactly (or a `.json` path extension) they answer `302`
//!   `Location: /users/login` with an HTML body, whatever the key; `GET /users/login` is the
//!   HTML login page. With it and a valid key: getVersion reports `2.5.22`, `perm_sighting`
//!   true, `perm_sync` false; view/me returns `User` (admin@admin.test), `Role` (admin),
//!   `UserSetting: []` and `Organisation` (ORGNAME).
//! - **`/attributes/restSearch`** (valid key required). The body is read the way
//!   CakePHP/MISP reads it:
//!   - `Content-Type: application/json`: decoded; invalid JSON (or a JSON scalar) is `405`;
//!     an empty body or `{}` is `400` ("Either specify the search terms in the url, or POST a
//!     json with the filter parameters."); `{"request": {...}}` is unwrapped; unknown keys are
//!     ignored, so an object with no known filter searches everything.
//!   - `application/x-www-form-urlencoded` (curl's default): parsed as a PHP form, so a JSON
//!     text sent this way becomes one unknown key and **the search runs with no filter at all**
//!     (everything but soft-deleted attributes is returned).
//!   - any other or no `Content-Type`: MISP ignores the body, has no data at all and answers
//!     `400` as above.
//!   - URL parameters also work: `/attributes/restSearch/value:1.2.3.4/type:ip-dst` (named)
//!     or `/attributes/restSearch/json/<value>/<type>/<category>` (positional).
//!
//!   Filters (MISP's `convert_filters`: a string, `"a&&!b"`, a list, or
//!   `{"OR":[..],"NOT":[..],"AND":[..]}`; a PHP-empty value such as `[]`, `""` or `"0"` means
//!   no filter):
//!   - `value`: exact match, case-insensitive, trailing spaces ignored (MySQL), against each
//!     half of a composite value (`ip-dst|port` "91.219.236.166|443" matches "91.219.236.166"
//!     and "443") and the whole value. A value starting or ending with `%` is a `LIKE` pattern
//!     (`%` any run, `_` one character, `\` escapes).
//!   - `type`, `category`, `uuid` (attribute or event), `eventid`, `tags` (attribute or event
//!     tags): same matching.
//!   - `to_ids`, `published` (the event's flag): `1/0/true/false/"1"/"0"` or a list such as
//!     `[0,1]`; absent means no filter. `deleted`: default excludes soft-deleted attributes,
//!     `1` only deleted ones, `[0,1]` both.
//!   - `publish_timestamp` / `last` (event) and `attribute_timestamp` / `timestamp`
//!     (attribute): a Unix time (`>=`), `"7d"`/`"12h"`/`"30m"`/`"10s"` ago, or `[from, to]`.
//!   - `limit` + `page` (1-based); `order` `"Attribute.<id|timestamp|value|type|category|
//!     event_id> <asc|desc>"`, default id ascending.
//!   - `includeEventUuid` adds `event_uuid`; `includeEventTags` appends the event's tags to
//!     `Tag` with `"inherited":1`. `enforceWarninglist` is accepted (no warninglist is
//!     enabled, as on a fresh MISP). `returnFormat` other than `json` answers
//!     `{"response":{"Attribute":[]}}`.
//!
//!   Answer: `200` `{"response":{"Attribute":[...]}}` with `Content-Type: application/json`,
//!   `X-Result-Count: <returned>` and `X-Skipped-Elements-Count: 0`. Each attribute, in MISP's
//!   order: `id, event_id, object_id ("0"), object_relation (null), category, type,
//!   to_ids (bool), uuid, timestamp, distribution ("5"), sharing_group_id ("0"), comment,
//!   deleted (bool), disable_correlation (false), first_seen (null), last_seen (null), value,
//!   [event_uuid], Event {org_id, distribution, publish_timestamp, id, info, orgc_id, uuid},
//!   [Tag]`; ids and timestamps are JSON strings; `Tag` is present only when non-empty, each
//!   `{"id","name","colour","numerical_value":null,"is_galaxy","local":false[,"inherited":1]}`.
//! - **`POST /sightings/add`** (`Accept` and key as above): `values` (or `value`, or `id`)
//!   are matched like restSearch values against non-deleted attributes, narrowed by an
//!   optional `filters` object (`type`, `to_ids`, ...). A match gives `200`
//!   `{"Sighting":{"id","attribute_id","event_id","org_id","date_sighting","uuid","source",
//!   "type","attribute_uuid"}}`; no values or no match gives `200` `{"message":"Could not add
//!   the Sighting. Reason: No valid attributes found."}` (no `Sighting` key).
//! - **Anything else**: `404` `{"name":"Not Found","message":"Not Found","url":"<path>"}`.
//!   Action names are case-insensitive and a trailing `/` or `.json` is accepted, like CakePHP.
//!
//! # Seed dataset ([`Dataset::seed`], constants in [`seed`])
//! Events (all of organisation 1):
//!
//! | id | info | published | publish_timestamp | tags |
//! |----|------|-----------|-------------------|------|
//! | 1 | Emotet C2 infrastructure | yes | 1735725600 | `tlp:white`, `misp-galaxy:threat-actor="TA542"` |
//! | 2 | Phishing campaign against finance | yes | 1736330400 | `tlp:green` |
//! | 3 | Unpublished draft | **no** | 0 | |
//! | 4 | SSH brute force sources | yes | 1737540000 | `type:OSINT` |
//!
//! Attributes:
//!
//! | id | event | type | category | value | to_ids | notes |
//! |----|-------|------|----------|-------|--------|-------|
//! | 1 | 4 | ip-src | Network activity | `185.220.101.47` | yes | tag `kill-chain:Reconnaissance` ([`seed::BRUTE_FORCE_IP`]) |
//! | 2 | 1 | ip-dst | Network activity | `45.155.205.233` | yes | [`seed::C2_IP`] |
//! | 3 | 1 | ip-dst\|port | Network activity | `91.219.236.166\|443` | yes | [`seed::C2_IP_PORT`] |
//! | 4 | 1 | domain\|ip | Network activity | `bad-update.net\|104.21.33.10` | yes | [`seed::DOMAIN_IP`] |
//! | 5 | 1 | domain | Network activity | `malware-drop.ru` | yes | [`seed::MALWARE_DOMAIN`] |
//! | 6 | 2 | hostname | Network activity | `login.micr0soft-secure.com` | yes | [`seed::PHISHING_HOSTNAME`] |
//! | 7 | 1 | url | Payload delivery | `http://malware-drop.ru/payload.exe` | yes | [`seed::MALWARE_URL`] |
//! | 8 | 1 | md5 | Payload delivery | `44d88612fea8a8f36de82e1278abb02f` | yes | EICAR ([`seed::EICAR_MD5`]) |
//! | 9 | 1 | sha1 | Payload delivery | `3395856ce81f2b7382dee72602f798b642f14140` | yes | EICAR ([`seed::EICAR_SHA1`]) |
//! | 10 | 1 | sha256 | Payload delivery | `275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f` | yes | EICAR ([`seed::EICAR_SHA256`]) |
//! | 11 | 2 | filename\|sha256 | Payload delivery | `invoice.pdf.exe\|e3b98c0d9e0f1e3c4a8b2a6f1b7c3d5e9f0a1b2c3d4e5f60718293a4b5c6d7e8` | yes | [`seed::INVOICE_FILENAME_SHA256`] |
//! | 12 | 1 | ip-dst | Network activity | `2a0d:5600:24::abcd` | yes | IPv6 ([`seed::C2_IPV6`]) |
//! | 13 | 3 | domain | Network activity | `phish-kit.top` | yes | unpublished event ([`seed::UNPUBLISHED_DOMAIN`]) |
//! | 14 | 1 | ip-dst | Network activity | `193.42.33.14` | **no** | [`seed::NON_IDS_IP`] |
//! | 15 | 4 | ip-src | Network activity | `89.248.165.2` | yes | **soft-deleted** ([`seed::DELETED_IP`]) |
//!
//! A search with no filter returns attributes 1-14 ([`seed::LIVE_ATTRIBUTE_COUNT`]).
//!
//! # Faults
//! See [`Fault`]: slow answers, hangs (before or after the headers), trickled bodies, canned
//! statuses, HTML pages, huge bodies, TCP resets, redirect loops, rate limiting and
//! fail-the-first-N.

#![warn(missing_docs)]

mod api;
mod dataset;
mod fault;
mod http;
mod json;
mod search;
mod server;
mod tls;

pub use api::{
    AUTH_FAILED_MESSAGE, INVALID_JSON_MESSAGE, LOGIN_PAGE_HTML, MISP_VERSION, NO_FILTER_MESSAGE,
    PHP_TIMEOUT_HTML, SIGHTING_FAILED_MESSAGE,
};
pub use dataset::{default_category, seed, Attribute, Dataset, Event, Tag};
pub use fault::Fault;
pub use http::{RecordedRequest, MAX_BODY_BYTES, MAX_HEAD_BYTES};
pub use server::{MispDouble, Options};
pub use tls::CA_COMMON_NAME;

/// The API key a double accepts by default (40 alphanumerics, like a real MISP key).
pub const DEFAULT_API_KEY: &str = "0123456789abcdefABCDEF0123456789abcdefAB";
