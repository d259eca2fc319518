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
//! - **`GET /servers/getVersion`, `GET /users/view/me`, `POST /sightings/add`,
//!   `/events/index`**: without
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
//!   the Sighting. Reason: No valid attributes found."}` (no `Sighting` key). Without a
//!   `timestamp`, `date_sighting` is the double's clock. With [`Options::read_only`] (a role
//!   without `perm_sighting`) getVersion says `"perm_sighting":false` and this answers `403`
//!   "You do not have permission to use this functionality.".
//! - **`/events/index`** (GET or POST; `Accept` and key as above, since MISP treats the
//!   index as an API request only then). The body is decoded like restSearch's (invalid JSON
//!   `405`, `{"request": {...}}` unwrapped) except that no body or `{}` is fine: no filter.
//!   `key:value` URL segments are named parameters (`/events/index/searchminimal:1`). Body
//!   keys are matched like MISP: `minimal`, `searchminimal`, `Minimal` are the same filter.
//!   - `minimal` (any value but null) keeps only events with at least one attribute that is
//!     not soft-deleted (MISP's `Event.attribute_count > 0`; event reports are not
//!     modelled); a PHP-non-empty `minimal` also selects the minimal shape.
//!   - `published`: `1`/`true`/`0`/`false` or a list; `2` or a list holding both 0 and 1
//!     means no filter (values are bound as a boolean column: PHP `!empty`).
//!   - `eventid`: a list or a `|`-separated string; each piece is an id, a UUID (36
//!     characters) or either prefixed with `!` (excluded). Ids and UUIDs are separate
//!     ANDed conditions, like MISP's SQL.
//!   - `timestamp` (`Event.timestamp >=`, or `[from, to]`), `publish_timestamp` /
//!     `publishtimestamp`: Unix times or `"7d"`-style deltas (the double's clock).
//!   - `limit` + `page` (1-based; `page` alone is ignored, no limit means every event);
//!     `sort` (`id`, `timestamp`, `date`, `publish_timestamp`, `sighting_timestamp`,
//!     `published`, `org_id`, `orgc_id`, `distribution`, `info`, `uuid`, `attribute_count`)
//!     with `direction` `asc|desc`, or `order` `"Event.<field> asc|desc"`; default id
//!     ascending. Other MISP index filters (`all`, `attribute`, `org`, `tags`, `eventinfo`,
//!     `value`, `datefrom`, ...) are accepted and ignored.
//!   - **Protected events are never listed** (MISP lists them only when signed with the
//!     instance's own key, which the double does not have), and they are dropped *after*
//!     counting and paging: `X-Result-Count` (always set) is the number of matching events,
//!     protected ones included, regardless of `limit`, and a page may be short although more
//!     pages follow.
//!
//!   Minimal answer: `200` JSON array, in id order, of
//!   `{"id":"12","timestamp":"1735725190","sighting_timestamp":"0","published":true,
//!   "uuid":"...","orgc_uuid":"..."}` (ids and timestamps strings, `published` a boolean).
//!   Full answer (no `minimal`): an array of MISP's event rows `{id, org_id, date, info,
//!   uuid, published (bool), analysis ("2"), attribute_count, orgc_id, timestamp,
//!   distribution, sharing_group_id ("0"), proposal_email_lock (false), locked (false),
//!   threat_level_id ("4"), publish_timestamp, sighting_timestamp, disable_correlation
//!   (false), extends_uuid (""), protected (bool), Org {id, name}, Orgc {id, name}, EventTag
//!   [{id, event_id, tag_id, local (false), relationship_type (""), Tag {id, name, colour,
//!   is_galaxy}}]}`; `date` is the UTC date of `timestamp`, organisation names come from
//!   [`org_name`], `EventTag` ids are synthetic, no `GalaxyCluster` (no galaxies loaded).
//!
//!   Checked in MISP 2.5.1's source (`app/Controller/EventsController.php`): `index()`
//!   (parameter harvesting: `search` prefix, lower-cased names, pagination keys),
//!   `__setIndexFilterConditions()` (the `published`, `eventid`, `timestamp`,
//!   `publish_timestamp` and `minimal` cases) and `__indexRestResponse()` (minimal fields
//!   `id, timestamp, sighting_timestamp, published, uuid` + `Orgc.uuid`; no limit = every
//!   event in 20,000-row chunks; `X-Result-Count` = count before removing protected events;
//!   protected events kept only if `CryptographicKey::protectedEventsByInstanceKey` lists
//!   them); `app/Model/MispAttribute.php` `afterSave()` and `editAttributePostProcessing()`
//!   (`attribute_count` counts non-deleted attributes only); the `events` table in
//!   `INSTALL/MYSQL.sql` (`published`/`protected` are `tinyint(1)`, which CakePHP returns as
//!   booleans; `int` columns come back as strings).
//! - **Anything else**: `404` `{"name":"Not Found","message":"Not Found","url":"<path>"}`.
//!   Action names are case-insensitive and a trailing `/` or `.json` is accepted, like CakePHP.
//!
//! # Changing the data like MISP does
//! [`MispDouble::add_event`], [`MispDouble::add_attribute`] and [`MispDouble::set_dataset`]
//! change the data as given, with no side effect. The other mutations do what MISP 2.5.1
//! does (checked on a real instance and in `app/Model/MispAttribute.php` `deleteAttribute()`
//! and `touch()`, `app/Model/Event.php` `unpublishEvent()` and `publish()`,
//! `app/Controller/AttributesController.php` `add()`, `edit()` and `editField()`,
//! `app/Controller/EventsController.php` `unpublish()` and `__toggleProtect()`); "now" is the
//! double's clock:
//!
//! | method | attribute | event |
//! |---|---|---|
//! | [`MispDouble::edit_attribute`] | your edit, `timestamp` = now | unpublished, `timestamp` = now |
//! | [`MispDouble::add_attribute_as_user`] | added (id 0 = next free id), `timestamp` = now | unpublished, `timestamp` = now |
//! | [`MispDouble::soft_delete_attribute`] | `deleted`, `timestamp` = now | unpublished, `timestamp` = now |
//! | [`MispDouble::edit_event`] | | your edit, unpublished, `timestamp` = now |
//! | [`MispDouble::publish_event`] | | published, `publish_timestamp` = now, `timestamp` unchanged (MISP saves only `published` and `publish_timestamp`) |
//! | [`MispDouble::unpublish_event`] | | unpublished, timestamps unchanged (`/events/unpublish` saves only `published`) |
//! | [`MispDouble::set_event_protected`] | | `protected` set, unpublished, `timestamp` = now |
//! | [`MispDouble::delete_event`] | all of the event's removed | removed (hard delete) |
//!
//! An unpublished event's attributes drop out of restSearch `published: 1` until it is
//! published again; an event whose attributes are all soft-deleted drops out of the minimal
//! index. The closures run under the dataset's write lock: they must not call the double.
//!
//! # Clock
//! [`MispDouble::set_clock`] freezes the double's time (`None`: real time again),
//! [`MispDouble::advance_clock`] moves it forward (freezing a real-time clock at now + the
//! step), [`MispDouble::now`] reads it. It stamps every mutation above, `date_sighting`
//! when a sighting has no `timestamp`, and resolves relative filters such as `"7d"`.
//!
//! # Performance
//! The double indexes its data (attributes in id order, events in id order, each event's
//! attributes) and keeps the index up to date through every write. Id-ordered restSearch
//! pages stop scanning once full; a restSearch whose `eventid` is a plain list of ids reads
//! only those events' attributes; the next page of the same query (or a retry of the same
//! page) resumes where the previous one stopped, until the data changes. Other orders and
//! filters scan everything. Measured on 2 cores, release build, over loopback, 1,000,000
//! generated attributes in 16,920 events: generation 0.9-1.3 s; the mirror policy paged by
//! 10,000 (87 pages, 864,513 attributes) 21-24 ms per page (a page 50 with no cursor 71 ms);
//! an `eventid` batch of 100 events 14-16 ms; `/events/index` minimal (16,660 events,
//! 3 MB) 31 ms, full (14 MB) 69 ms, minimal with a recent `timestamp` 1 ms. Rerun with
//! `cargo test -p misp-double --release --test mirror -- --ignored --nocapture`.
//!
//! # Generated instance ([`Dataset::generated`])
//! `Dataset::generated(n, seed)` builds exactly `n` attributes (ids 1..=n, in event order)
//! in as many events as needed, deterministically for a given seed, with timestamps from
//! [`GENERATED_EPOCH`] (2024-01-01) over about a year:
//! - event sizes: 50% 1-10 attributes, 35% 11-100, 15% 101-400, plus 0.5% empty events;
//!   about 59 attributes per event on average;
//! - types (per mille): ip-dst 190, ip-src 90 (8% of both IPv6, compressed; 1 in 10,000 a
//!   `10.x` private address on purpose, otherwise public /8s only), ip-dst|port 50, domain
//!   140, hostname 80, domain|ip 40, url 110, md5 70, sha1 50, sha256 90, filename|sha256
//!   40, text 25 (never `to_ids`), email-src 25; categories from [`default_category`];
//! - `to_ids` false for about 5% (text, 40% of email-src, 1.5% of the rest); 3%
//!   soft-deleted (their `timestamp` is the deletion time); 30% with a comment; 5% with an
//!   attribute tag (`kill-chain:`, `false-positive:`, `estimative-language:`);
//! - events: 90% with a TLP tag plus up to two of `type:OSINT`, galaxy, `osint:`,
//!   `admiralty-scale:`, `workflow:` tags; creator organisation 1 (60%) or 2-6; 5%
//!   unpublished (half never published, half edited after their last publication), 1%
//!   protected; `timestamp` = the latest of its attributes' timestamps (deletions included),
//!   `publish_timestamp` after it for published events;
//! - values are unique-ish and lower case where MISP normalises (hashes, hostnames,
//!   domains), except 0.5% that repeat one of the first values of their type, so a value
//!   can appear in several events.
//!
//! # Seed dataset ([`Dataset::seed`], constants in [`seed`])
//! Events (all owned by organisation 1, none protected, `sighting_timestamp` 0; `timestamp`
//! is the latest attribute timestamp; `orgc_uuid` is [`org_uuid`] of the creator):
//!
//! | id | info | creator org | published | publish_timestamp | timestamp | tags |
//! |----|------|-------------|-----------|-------------------|-----------|------|
//! | 1 | Emotet C2 infrastructure | 1 | yes | 1735725600 | 1735725190 | `tlp:white`, `misp-galaxy:threat-actor="TA542"` |
//! | 2 | Phishing campaign against finance | 2 | yes | 1736330400 | 1736330200 | `tlp:green` |
//! | 3 | Unpublished draft | 1 | **no** | 0 | 1738000000 | |
//! | 4 | SSH brute force sources | 3 | yes | 1737540000 | 1737539600 | `type:OSINT` |
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
mod events;
mod fault;
mod generate;
mod http;
mod json;
mod search;
mod server;
mod store;
mod tls;

pub use api::{
    AUTH_FAILED_MESSAGE, INVALID_JSON_MESSAGE, LOGIN_PAGE_HTML, MISP_VERSION, NO_FILTER_MESSAGE,
    PHP_TIMEOUT_HTML, SIGHTING_FAILED_MESSAGE,
};
pub use dataset::{default_category, org_name, org_uuid, seed, Attribute, Dataset, Event, Tag};
pub use fault::Fault;
pub use generate::GENERATED_EPOCH;
pub use http::{RecordedRequest, MAX_BODY_BYTES, MAX_HEAD_BYTES};
pub use server::{MispDouble, Options};
pub use tls::CA_COMMON_NAME;

/// The API key a double accepts by default (40 alphanumerics, like a real MISP key).
pub const DEFAULT_API_KEY: &str = "0123456789abcdefABCDEF0123456789abcdefAB";
