//! The data the double serves: [`Event`], [`Attribute`], [`Tag`], the [`Dataset`] that holds
//! them, the realistic seed dataset ([`Dataset::seed`]) and the [`seed`] constants naming its
//! values.
//!
//! The types mirror MISP's database rows (numbers as numbers here; the wire format with ids
//! and timestamps as JSON strings is produced by the API layer).

/// A MISP tag, attached to an event or an attribute.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tag {
    /// Tag id (serialised as a string).
    pub id: u64,
    /// Tag name, e.g. `tlp:white` or `misp-galaxy:threat-actor="TA542"`.
    pub name: String,
    /// Display colour, `#rrggbb`.
    pub colour: String,
}

impl Tag {
    /// A tag with the given id, name and colour.
    pub fn new(id: u64, name: &str, colour: &str) -> Tag {
        Tag {
            id,
            name: name.to_string(),
            colour: colour.to_string(),
        }
    }

    /// Whether MISP would flag this tag as a galaxy cluster tag (`misp-galaxy:` prefix).
    pub fn is_galaxy(&self) -> bool {
        self.name.starts_with("misp-galaxy:")
    }
}

/// A MISP event: the fields restSearch exposes inside an attribute's `Event`, plus what
/// `/events/index` lists (`timestamp`, `sighting_timestamp`, `orgc_uuid`, `protected`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Event id.
    pub id: u64,
    /// Event UUID.
    pub uuid: String,
    /// Event title ("info").
    pub info: String,
    /// Whether the event is published (`published` filter of restSearch).
    pub published: bool,
    /// Owner organisation id.
    pub org_id: u64,
    /// Creator organisation id.
    pub orgc_id: u64,
    /// Distribution level (0..=4).
    pub distribution: u8,
    /// Unix time of the last publication (0 when never published).
    pub publish_timestamp: u64,
    /// Event-level tags (returned with `"inherited": 1` when `includeEventTags` is set).
    pub tags: Vec<Tag>,
    /// Unix time of the last change of the event or of any of its attributes (MISP's
    /// `Event.timestamp`; publishing does not change it).
    pub timestamp: u64,
    /// Unix time of the last sighting publication (0 when none).
    pub sighting_timestamp: u64,
    /// UUID of the creator organisation (`orgc_uuid` in `/events/index` minimal answers); see
    /// [`org_uuid`]. Not updated when `orgc_id` is changed by hand.
    pub orgc_uuid: String,
    /// Protected (signed) event: `/events/index` never lists it (the double has no instance
    /// signing key), restSearch still returns its attributes.
    pub protected: bool,
}

impl Event {
    /// A published, unprotected event of organisation 1 with a deterministic UUID derived from
    /// `id`, `publish_timestamp` 1735725600 and `timestamp` 1735725600 (2025-01-01 10:00 UTC).
    pub fn new(id: u64, info: &str) -> Event {
        Event {
            id,
            uuid: pseudo_uuid(0xE7E7, id),
            info: info.to_string(),
            published: true,
            org_id: 1,
            orgc_id: 1,
            distribution: 1,
            publish_timestamp: 1_735_725_600,
            tags: Vec::new(),
            timestamp: 1_735_725_600,
            sighting_timestamp: 0,
            orgc_uuid: org_uuid(1),
            protected: false,
        }
    }
}

/// UUID of the organisation with this id, as the double reports it: organisation 1 (the
/// `ORGNAME` admin organisation of `/users/view/me`) has
/// `5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9`, the others a deterministic UUID derived from the id.
pub fn org_uuid(org_id: u64) -> String {
    if org_id == 1 {
        ORG1_UUID.to_string()
    } else {
        pseudo_uuid(0x06C0, org_id)
    }
}

/// Name of the organisation with this id (`Org`/`Orgc` in `/events/index`): `ORGNAME` for 1,
/// `Organisation <id>` otherwise.
pub fn org_name(org_id: u64) -> String {
    if org_id == 1 {
        "ORGNAME".to_string()
    } else {
        format!("Organisation {org_id}")
    }
}

/// UUID of organisation 1 (also in the `/users/view/me` answer).
pub(crate) const ORG1_UUID: &str = "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9";

/// A MISP attribute (an indicator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// Attribute id.
    pub id: u64,
    /// Id of the event it belongs to.
    pub event_id: u64,
    /// Attribute UUID.
    pub uuid: String,
    /// MISP attribute type (`"type"` on the wire), e.g. `ip-dst|port`.
    pub kind: String,
    /// MISP category, e.g. `Network activity`.
    pub category: String,
    /// Value; composite types hold both halves separated by `|`.
    pub value: String,
    /// The IDS flag.
    pub to_ids: bool,
    /// Soft-deleted (excluded by restSearch unless `deleted` asks for it).
    pub deleted: bool,
    /// Free-text comment.
    pub comment: String,
    /// Attribute-level tags.
    pub tags: Vec<Tag>,
    /// Unix time of the last change.
    pub timestamp: u64,
}

impl Attribute {
    /// An attribute with `to_ids` set, not deleted, no tags, a category guessed from the type
    /// (see [`default_category`]) and a deterministic UUID derived from `id`.
    pub fn new(id: u64, event_id: u64, kind: &str, value: &str) -> Attribute {
        Attribute {
            id,
            event_id,
            uuid: pseudo_uuid(0xA77A, id),
            kind: kind.to_string(),
            category: default_category(kind).to_string(),
            value: value.to_string(),
            to_ids: true,
            deleted: false,
            comment: String::new(),
            tags: Vec::new(),
            timestamp: 1_735_725_000,
        }
    }

    /// Whether MISP stores this type as two halves (`value1|value2`).
    pub fn is_composite(&self) -> bool {
        self.kind.contains('|') || self.kind == "malware-sample"
    }

    /// MISP's `value1` and `value2` columns: the halves of a composite value, or the whole
    /// value and `""`.
    pub fn halves(&self) -> (&str, &str) {
        if self.is_composite() {
            if let Some((a, b)) = self.value.split_once('|') {
                return (a, b);
            }
        }
        (self.value.as_str(), "")
    }
}

/// The MISP category MISP proposes by default for a type (a best effort used by
/// [`Attribute::new`]).
pub fn default_category(kind: &str) -> &'static str {
    match kind {
        "ip-src" | "ip-dst" | "ip-src|port" | "ip-dst|port" | "domain" | "domain|ip"
        | "hostname" | "hostname|port" | "url" | "uri" | "user-agent" | "AS" => "Network activity",
        "md5" | "sha1" | "sha256" | "sha512" | "filename" | "filename|md5" | "filename|sha1"
        | "filename|sha256" | "malware-sample" | "ssdeep" | "imphash" => "Payload delivery",
        "email-src" | "email-dst" | "email-subject" => "Payload delivery",
        _ => "Other",
    }
}

/// Everything the double serves. Order does not matter: searches sort by attribute id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dataset {
    /// Events.
    pub events: Vec<Event>,
    /// Attributes; each should reference an existing event (attributes of unknown events are
    /// never returned, like MISP's inner join).
    pub attributes: Vec<Attribute>,
}

impl Dataset {
    /// No events, no attributes.
    pub fn empty() -> Dataset {
        Dataset::default()
    }

    /// Inserts an event, replacing any event with the same id.
    pub fn upsert_event(&mut self, event: Event) {
        match self.events.iter_mut().find(|e| e.id == event.id) {
            Some(slot) => *slot = event,
            None => self.events.push(event),
        }
    }

    /// Inserts an attribute, replacing any attribute with the same id.
    pub fn upsert_attribute(&mut self, attr: Attribute) {
        match self.attributes.iter_mut().find(|a| a.id == attr.id) {
            Some(slot) => *slot = attr,
            None => self.attributes.push(attr),
        }
    }

    /// The event with this id.
    pub fn event(&self, id: u64) -> Option<&Event> {
        self.events.iter().find(|e| e.id == id)
    }

    /// The attribute with this id.
    pub fn attribute(&self, id: u64) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.id == id)
    }

    /// The realistic seed dataset documented in the crate docs (4 events, 15 attributes).
    pub fn seed() -> Dataset {
        use seed::*;
        let tlp_white = Tag::new(1, "tlp:white", "#ffffff");
        let tlp_green = Tag::new(2, "tlp:green", "#339900");
        let ta542 = Tag::new(3, "misp-galaxy:threat-actor=\"TA542\"", "#0088cc");
        let osint = Tag::new(4, "type:OSINT", "#004646");
        let recon = Tag::new(5, "kill-chain:Reconnaissance", "#ff9900");

        let events = vec![
            Event {
                id: EVENT_EMOTET,
                uuid: "5f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c01".into(),
                info: "Emotet C2 infrastructure".into(),
                published: true,
                org_id: 1,
                orgc_id: 1,
                distribution: 1,
                publish_timestamp: 1_735_725_600,
                tags: vec![tlp_white, ta542],
                timestamp: 1_735_725_190,
                sighting_timestamp: 0,
                orgc_uuid: org_uuid(1),
                protected: false,
            },
            Event {
                id: EVENT_PHISHING,
                uuid: "6a2c3d4e-5f60-4b7c-9d8e-0f1a2b3c4d02".into(),
                info: "Phishing campaign against finance".into(),
                published: true,
                org_id: 1,
                orgc_id: 2,
                distribution: 1,
                publish_timestamp: 1_736_330_400,
                tags: vec![tlp_green],
                timestamp: 1_736_330_200,
                sighting_timestamp: 0,
                orgc_uuid: org_uuid(2),
                protected: false,
            },
            Event {
                id: EVENT_DRAFT,
                uuid: "7b3d4e5f-6071-4c8d-ae9f-1a2b3c4d5e03".into(),
                info: "Unpublished draft".into(),
                published: false,
                org_id: 1,
                orgc_id: 1,
                distribution: 0,
                publish_timestamp: 0,
                tags: Vec::new(),
                timestamp: 1_738_000_000,
                sighting_timestamp: 0,
                orgc_uuid: org_uuid(1),
                protected: false,
            },
            Event {
                id: EVENT_SSH_BRUTE_FORCE,
                uuid: "8c4e5f60-7182-4d9e-bf0a-2b3c4d5e6f04".into(),
                info: "SSH brute force sources".into(),
                published: true,
                org_id: 1,
                orgc_id: 3,
                distribution: 3,
                publish_timestamp: 1_737_540_000,
                tags: vec![osint],
                timestamp: 1_737_539_600,
                sighting_timestamp: 0,
                orgc_uuid: org_uuid(3),
                protected: false,
            },
        ];

        #[allow(clippy::too_many_arguments)]
        fn attr(
            id: u64,
            event_id: u64,
            kind: &str,
            category: &str,
            value: &str,
            to_ids: bool,
            comment: &str,
            timestamp: u64,
        ) -> Attribute {
            Attribute {
                id,
                event_id,
                uuid: pseudo_uuid(0xA77A, id),
                kind: kind.into(),
                category: category.into(),
                value: value.into(),
                to_ids,
                deleted: false,
                comment: comment.into(),
                tags: Vec::new(),
                timestamp,
            }
        }
        const NET: &str = "Network activity";
        const PAY: &str = "Payload delivery";
        let mut brute = attr(
            1,
            EVENT_SSH_BRUTE_FORCE,
            "ip-src",
            NET,
            BRUTE_FORCE_IP,
            true,
            "Tor exit node brute forcing SSH",
            1_737_539_000,
        );
        brute.tags = vec![recon];
        let mut deleted = attr(
            15,
            EVENT_SSH_BRUTE_FORCE,
            "ip-src",
            NET,
            DELETED_IP,
            true,
            "Scanner, removed after review",
            1_737_539_600,
        );
        deleted.deleted = true;
        let attributes = vec![
            brute,
            attr(
                2,
                EVENT_EMOTET,
                "ip-dst",
                NET,
                C2_IP,
                true,
                "Emotet epoch 5 C2",
                1_735_725_100,
            ),
            attr(
                3,
                EVENT_EMOTET,
                "ip-dst|port",
                NET,
                C2_IP_PORT,
                true,
                "C2 over HTTPS",
                1_735_725_110,
            ),
            attr(
                4,
                EVENT_EMOTET,
                "domain|ip",
                NET,
                DOMAIN_IP,
                true,
                "Fake update server",
                1_735_725_120,
            ),
            attr(
                5,
                EVENT_EMOTET,
                "domain",
                NET,
                MALWARE_DOMAIN,
                true,
                "Payload hosting",
                1_735_725_130,
            ),
            attr(
                6,
                EVENT_PHISHING,
                "hostname",
                NET,
                PHISHING_HOSTNAME,
                true,
                "Credential harvesting page",
                1_736_330_100,
            ),
            attr(
                7,
                EVENT_EMOTET,
                "url",
                PAY,
                MALWARE_URL,
                true,
                "",
                1_735_725_140,
            ),
            attr(
                8,
                EVENT_EMOTET,
                "md5",
                PAY,
                EICAR_MD5,
                true,
                "EICAR test file",
                1_735_725_150,
            ),
            attr(
                9,
                EVENT_EMOTET,
                "sha1",
                PAY,
                EICAR_SHA1,
                true,
                "EICAR test file",
                1_735_725_160,
            ),
            attr(
                10,
                EVENT_EMOTET,
                "sha256",
                PAY,
                EICAR_SHA256,
                true,
                "EICAR test file",
                1_735_725_170,
            ),
            attr(
                11,
                EVENT_PHISHING,
                "filename|sha256",
                PAY,
                INVOICE_FILENAME_SHA256,
                true,
                "Attachment of the phishing mail",
                1_736_330_200,
            ),
            attr(
                12,
                EVENT_EMOTET,
                "ip-dst",
                NET,
                C2_IPV6,
                true,
                "IPv6 C2",
                1_735_725_180,
            ),
            attr(
                13,
                EVENT_DRAFT,
                "domain",
                NET,
                UNPUBLISHED_DOMAIN,
                true,
                "Not yet vetted",
                1_738_000_000,
            ),
            attr(
                14,
                EVENT_EMOTET,
                "ip-dst",
                NET,
                NON_IDS_IP,
                false,
                "Sinkhole, not for detection",
                1_735_725_190,
            ),
            deleted,
        ];
        Dataset { events, attributes }
    }
}

/// Values, ids and counts of the seed dataset ([`Dataset::seed`]), for tests that use them by
/// value.
pub mod seed {
    /// Event 1, published, tags `tlp:white` and `misp-galaxy:threat-actor="TA542"`.
    pub const EVENT_EMOTET: u64 = 1;
    /// Event 2, published, tag `tlp:green`.
    pub const EVENT_PHISHING: u64 = 2;
    /// Event 3, NOT published.
    pub const EVENT_DRAFT: u64 = 3;
    /// Event 4, published, tag `type:OSINT`.
    pub const EVENT_SSH_BRUTE_FORCE: u64 = 4;

    /// Attribute 1: `ip-src`, event 4, to_ids, attribute tag `kill-chain:Reconnaissance`.
    pub const BRUTE_FORCE_IP: &str = "185.220.101.47";
    /// Attribute 2: `ip-dst`, event 1, to_ids.
    pub const C2_IP: &str = "45.155.205.233";
    /// Attribute 3: `ip-dst|port`, event 1 (full composite value).
    pub const C2_IP_PORT: &str = "91.219.236.166|443";
    /// First half of [`C2_IP_PORT`]: searching it finds attribute 3.
    pub const C2_IP_PORT_IP: &str = "91.219.236.166";
    /// Attribute 4: `domain|ip`, event 1 (full composite value).
    pub const DOMAIN_IP: &str = "bad-update.net|104.21.33.10";
    /// Domain half of [`DOMAIN_IP`].
    pub const DOMAIN_IP_DOMAIN: &str = "bad-update.net";
    /// IP half of [`DOMAIN_IP`].
    pub const DOMAIN_IP_IP: &str = "104.21.33.10";
    /// Attribute 5: `domain`, event 1.
    pub const MALWARE_DOMAIN: &str = "malware-drop.ru";
    /// Attribute 6: `hostname`, event 2.
    pub const PHISHING_HOSTNAME: &str = "login.micr0soft-secure.com";
    /// Attribute 7: `url`, event 1.
    pub const MALWARE_URL: &str = "http://malware-drop.ru/payload.exe";
    /// Attribute 8: `md5` of the EICAR test file, event 1.
    pub const EICAR_MD5: &str = "44d88612fea8a8f36de82e1278abb02f";
    /// Attribute 9: `sha1` of the EICAR test file, event 1.
    pub const EICAR_SHA1: &str = "3395856ce81f2b7382dee72602f798b642f14140";
    /// Attribute 10: `sha256` of the EICAR test file, event 1.
    pub const EICAR_SHA256: &str =
        "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f";
    /// Attribute 11: `filename|sha256`, event 2 (full composite value).
    pub const INVOICE_FILENAME_SHA256: &str =
        "invoice.pdf.exe|e3b98c0d9e0f1e3c4a8b2a6f1b7c3d5e9f0a1b2c3d4e5f60718293a4b5c6d7e8";
    /// Filename half of [`INVOICE_FILENAME_SHA256`].
    pub const INVOICE_FILENAME: &str = "invoice.pdf.exe";
    /// Hash half of [`INVOICE_FILENAME_SHA256`]: searching it finds attribute 11.
    pub const INVOICE_SHA256: &str =
        "e3b98c0d9e0f1e3c4a8b2a6f1b7c3d5e9f0a1b2c3d4e5f60718293a4b5c6d7e8";
    /// Attribute 12: `ip-dst` (IPv6, compressed form), event 1.
    pub const C2_IPV6: &str = "2a0d:5600:24::abcd";
    /// Attribute 13: `domain` in the UNPUBLISHED event 3.
    pub const UNPUBLISHED_DOMAIN: &str = "phish-kit.top";
    /// Attribute 14: `ip-dst`, event 1, `to_ids` false.
    pub const NON_IDS_IP: &str = "193.42.33.14";
    /// Attribute 15: `ip-src`, event 4, soft-deleted.
    pub const DELETED_IP: &str = "89.248.165.2";

    /// Number of events in the seed.
    pub const EVENT_COUNT: usize = 4;
    /// Number of attributes in the seed, deleted one included.
    pub const ATTRIBUTE_COUNT: usize = 15;
    /// Attributes a search with no filter returns (the deleted one is excluded).
    pub const LIVE_ATTRIBUTE_COUNT: usize = 14;
}

/// A deterministic, random-looking version-4 UUID for `(namespace, id)`.
pub(crate) fn pseudo_uuid(namespace: u64, id: u64) -> String {
    fn splitmix(mut x: u64) -> u64 {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^ (x >> 31)
    }
    let a = splitmix(namespace.wrapping_mul(0x1000_0000_0000_0001) ^ id);
    let b = splitmix(a ^ 0x5555_5555_5555_5555);
    format!(
        "{:08x}-{:04x}-4{:03x}-{:x}{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0x0fff,
        8 + ((b >> 62) & 0x3),
        (b >> 48) & 0x0fff,
        b & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_counts_match_constants() {
        let d = Dataset::seed();
        assert_eq!(d.events.len(), seed::EVENT_COUNT);
        assert_eq!(d.attributes.len(), seed::ATTRIBUTE_COUNT);
        let live = d.attributes.iter().filter(|a| !a.deleted).count();
        assert_eq!(live, seed::LIVE_ATTRIBUTE_COUNT);
        for a in &d.attributes {
            assert!(d.event(a.event_id).is_some(), "attribute {} orphan", a.id);
        }
    }

    #[test]
    fn pseudo_uuid_shape() {
        let u = pseudo_uuid(1, 2);
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(u, pseudo_uuid(1, 3));
    }

    #[test]
    fn halves() {
        let a = Attribute::new(1, 1, "ip-dst|port", "1.2.3.4|443");
        assert_eq!(a.halves(), ("1.2.3.4", "443"));
        let b = Attribute::new(2, 1, "url", "http://x/a|b");
        assert_eq!(b.halves(), ("http://x/a|b", ""));
    }
}
