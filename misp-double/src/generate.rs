//! [`Dataset::generated`]: a deterministic, realistic-looking MISP instance of any size for
//! mirror tests and benchmarks.

use crate::dataset::{default_category, org_uuid, pseudo_uuid, Attribute, Dataset, Event, Tag};

/// Unix time the generated instance starts at (2024-01-01 00:00 UTC); every generated
/// timestamp lies between this and about a year later.
pub const GENERATED_EPOCH: u64 = 1_704_067_200;

/// SplitMix64: small, fast, good enough, and the same on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    /// True with probability `per_mille / 1000`.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// Attribute types and their weight (per mille).
const TYPES: [(&str, u64); 13] = [
    ("ip-dst", 190),
    ("ip-src", 90),
    ("ip-dst|port", 50),
    ("domain", 140),
    ("hostname", 80),
    ("domain|ip", 40),
    ("url", 110),
    ("md5", 70),
    ("sha1", 50),
    ("sha256", 90),
    ("filename|sha256", 40),
    ("text", 25),
    ("email-src", 25),
];

/// First octets of public IPv4 /8s that hold no special-purpose range.
const PUBLIC_V4: [u8; 40] = [
    2, 5, 23, 31, 37, 41, 45, 46, 62, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 91, 92,
    93, 94, 95, 103, 104, 109, 141, 146, 151, 176, 178, 185, 188, 193, 194, 212,
];
const SYLLABLES: [&str; 24] = [
    "sec", "log", "upd", "cloud", "mail", "drop", "net", "srv", "cdn", "pay", "bank", "micro",
    "soft", "data", "web", "api", "auth", "box", "hub", "zone", "track", "office", "docs", "sync",
];
const TLDS: [&str; 14] = [
    "com", "net", "org", "ru", "top", "xyz", "info", "biz", "cc", "io", "su", "online", "site",
    "shop",
];
const SUBDOMAINS: [&str; 10] = [
    "www", "mail", "login", "cdn", "update", "api", "portal", "secure", "static", "dl",
];
const URL_PATHS: [&str; 8] = [
    "payload.exe",
    "gate.php",
    "wp-content/plugins/wp-conf/loader.php",
    "download",
    "invoice.zip",
    "login.html",
    "api/v1/beacon",
    "s/doc.lnk",
];
const FILE_NAMES: [&str; 8] = [
    "invoice", "payment", "scan", "document", "update", "setup", "report", "order",
];
const FILE_EXTS: [&str; 8] = ["exe", "dll", "pdf.exe", "doc", "xlsm", "zip", "js", "lnk"];
const PORTS: [u16; 8] = [443, 80, 8080, 4444, 8443, 53, 1337, 3389];
const COMMENTS: [&str; 10] = [
    "C2 server",
    "Payload download",
    "Seen in sandbox run",
    "From partner feed",
    "Phishing landing page",
    "Beacon interval 60s",
    "Dropper",
    "Scanner",
    "Exfiltration endpoint",
    "Reported by CERT",
];
const FAMILIES: [&str; 12] = [
    "Emotet",
    "QakBot",
    "Cobalt Strike",
    "AsyncRAT",
    "Lumma Stealer",
    "RedLine",
    "IcedID",
    "Mirai",
    "SocGholish",
    "AgentTesla",
    "DarkGate",
    "Remcos",
];
const THEMES: [&str; 8] = [
    "C2 infrastructure",
    "phishing campaign",
    "malspam wave",
    "botnet nodes",
    "payload hosting",
    "scanning activity",
    "OSINT feed",
    "incident report",
];

fn tag_table() -> Vec<Tag> {
    [
        (1, "tlp:white", "#ffffff"),
        (2, "tlp:green", "#339900"),
        (3, "tlp:amber", "#ffc000"),
        (4, "type:OSINT", "#004646"),
        (5, "misp-galaxy:threat-actor=\"TA542\"", "#0088cc"),
        (6, "misp-galaxy:threat-actor=\"APT28\"", "#0088cc"),
        (7, "misp-galaxy:malpedia=\"Emotet\"", "#0088cc"),
        (8, "osint:source-type=\"blog-post\"", "#00223b"),
        (9, "admiralty-scale:source-reliability=\"b\"", "#22681c"),
        (10, "workflow:state=\"complete\"", "#339900"),
        (11, "kill-chain:Command and Control", "#ff9900"),
        (12, "kill-chain:Delivery", "#ff9900"),
        (13, "false-positive:risk=\"low\"", "#00ff00"),
        (
            14,
            "estimative-language:likelihood-probability=\"very-likely\"",
            "#2d7eb8",
        ),
    ]
    .into_iter()
    .map(|(id, name, colour)| Tag::new(id, name, colour))
    .collect()
}

fn base36(mut n: u64, width: usize) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = vec![b'0'; width];
    for slot in out.iter_mut().rev() {
        *slot = DIGITS[(n % 36) as usize];
        n /= 36;
    }
    String::from_utf8(out).unwrap_or_default()
}

fn hex(rng: &mut Rng, chars: usize) -> String {
    let mut s = String::with_capacity(chars + 16);
    while s.len() < chars {
        s.push_str(&format!("{:016x}", rng.next()));
    }
    s.truncate(chars);
    s
}

struct Gen {
    rng: Rng,
    /// Values that later attributes reuse (a few values appear in several events).
    popular: Vec<Vec<String>>,
}

impl Gen {
    fn ipv4(&mut self) -> String {
        let r = self.rng.next();
        if r % 10_000 == 0 {
            // A private address listed by mistake, as happens in real feeds.
            return format!(
                "10.{}.{}.{}",
                (r >> 16) & 0xff,
                (r >> 24) & 0xff,
                1 + (r >> 32) % 254
            );
        }
        let first = PUBLIC_V4[((r >> 8) % PUBLIC_V4.len() as u64) as usize];
        format!(
            "{first}.{}.{}.{}",
            (r >> 16) & 0xff,
            (r >> 24) & 0xff,
            1 + (r >> 32) % 254
        )
    }

    fn ip(&mut self) -> String {
        if self.rng.chance(80) {
            let g = |r: &mut Rng| 1 + r.below(0xfffe);
            let (a, b, c) = (g(&mut self.rng), g(&mut self.rng), g(&mut self.rng));
            format!("2a0{}:{a:x}:{b:x}::{c:x}", self.rng.below(10))
        } else {
            self.ipv4()
        }
    }

    fn domain(&mut self) -> String {
        let a = self.rng.pick(&SYLLABLES);
        let b = self.rng.pick(&SYLLABLES);
        let tld = self.rng.pick(&TLDS);
        let tag = base36(self.rng.next(), 5);
        format!("{a}{b}-{tag}.{tld}")
    }

    fn hostname(&mut self) -> String {
        let sub = self.rng.pick(&SUBDOMAINS);
        format!("{sub}.{}", self.domain())
    }

    fn value(&mut self, kind: &str) -> String {
        match kind {
            "ip-dst" | "ip-src" => self.ip(),
            "ip-dst|port" => {
                let port = self.rng.pick(&PORTS);
                format!("{}|{port}", self.ipv4())
            }
            "domain" => self.domain(),
            "hostname" => self.hostname(),
            "domain|ip" => format!("{}|{}", self.domain(), self.ipv4()),
            "url" => {
                let scheme = if self.rng.chance(600) {
                    "https"
                } else {
                    "http"
                };
                let host = match self.rng.below(3) {
                    0 => self.domain(),
                    1 => self.hostname(),
                    _ => self.ipv4(),
                };
                let path = self.rng.pick(&URL_PATHS);
                format!("{scheme}://{host}/{path}?id={}", base36(self.rng.next(), 6))
            }
            "md5" => hex(&mut self.rng, 32),
            "sha1" => hex(&mut self.rng, 40),
            "sha256" => hex(&mut self.rng, 64),
            "filename|sha256" => {
                let name = self.rng.pick(&FILE_NAMES);
                let ext = self.rng.pick(&FILE_EXTS);
                let n = self.rng.below(10_000);
                format!("{name}_{n}.{ext}|{}", hex(&mut self.rng, 64))
            }
            "email-src" => {
                let user = self
                    .rng
                    .pick(&["billing", "hr", "noreply", "support", "ceo"]);
                format!("{user}.{}@{}", base36(self.rng.next(), 4), self.domain())
            }
            _ => format!(
                "Observed in campaign {}",
                base36(self.rng.next(), 6).to_uppercase()
            ),
        }
    }
}

impl Dataset {
    /// A deterministic generated instance with exactly `attributes` attributes (same `seed`,
    /// same dataset), ids from 1 and in event order. See the crate documentation ("Generated
    /// instance") for the mix; in short: events of 1 to 400 attributes (plus a few empty
    /// ones), ip-src/ip-dst (8% IPv6, 1 in 10,000 a private IPv4), ip-dst|port, domain,
    /// hostname, domain|ip, url, md5, sha1, sha256, filename|sha256, text and email-src;
    /// about 5% `to_ids` false, 3% soft-deleted, 5% of the events unpublished and 1%
    /// protected; event and attribute tags, comments; about 0.5% of the values repeat a value
    /// used elsewhere. Values are lower case (except `text`), like MISP stores them.
    pub fn generated(attributes: usize, seed: u64) -> Dataset {
        let mut rng = Rng(seed ^ 0x6D69_7370_2D64_626C);
        let tags = tag_table();
        let mut g = Gen {
            rng: Rng(rng.next()),
            popular: vec![Vec::new(); TYPES.len()],
        };
        let uuid_ns = seed.wrapping_mul(0x1_0000_0001);
        let mut events: Vec<Event> = Vec::with_capacity(attributes / 50 + 8);
        let mut attrs: Vec<Attribute> = Vec::with_capacity(attributes);
        let mut clock = GENERATED_EPOCH;
        let mut event_id = 0u64;
        while attrs.len() < attributes {
            event_id += 1;
            clock += rng.range(60, 1800);
            let size = if rng.chance(5) {
                0
            } else {
                match rng.below(100) {
                    0..=49 => rng.range(1, 10),
                    50..=84 => rng.range(11, 100),
                    _ => rng.range(101, 400),
                }
            };
            let size = (size as usize).min(attributes - attrs.len());
            let family = rng.pick(&FAMILIES);
            let theme = rng.pick(&THEMES);
            let orgc_id = if rng.chance(600) { 1 } else { rng.range(2, 6) };
            let mut event = Event::new(event_id, &format!("{family} {theme} #{event_id}"));
            event.uuid = pseudo_uuid(0xE7E7 ^ uuid_ns, event_id);
            event.orgc_id = orgc_id;
            event.orgc_uuid = org_uuid(orgc_id);
            event.distribution = *rng.pick(&[0u8, 1, 1, 2, 3, 3]);
            if rng.chance(900) {
                event.tags.push(tags[rng.below(3) as usize].clone());
            }
            for _ in 0..rng.below(3) {
                let t = &tags[3 + rng.below(7) as usize];
                if !event.tags.iter().any(|x| x.id == t.id) {
                    event.tags.push(t.clone());
                }
            }
            event.protected = rng.chance(10);
            let created = clock;
            let mut last = created;
            for _ in 0..size {
                let id = attrs.len() as u64 + 1;
                let mut w = rng.below(1000);
                let mut k = 0;
                while w >= TYPES[k].1 {
                    w -= TYPES[k].1;
                    k += 1;
                }
                let kind = TYPES[k].0;
                let value = if rng.chance(5) && !g.popular[k].is_empty() {
                    let pool = &g.popular[k];
                    pool[rng.below(pool.len() as u64) as usize].clone()
                } else {
                    let v = g.value(kind);
                    if g.popular[k].len() < 32 {
                        g.popular[k].push(v.clone());
                    }
                    v
                };
                last += rng.below(20);
                let mut a = Attribute::new(id, event_id, kind, &value);
                a.uuid = pseudo_uuid(0xA77A ^ uuid_ns, id);
                a.category = default_category(kind).to_string();
                a.to_ids = match kind {
                    "text" => false,
                    "email-src" => !rng.chance(400),
                    _ => !rng.chance(15),
                };
                a.timestamp = last;
                if rng.chance(300) {
                    a.comment = (*rng.pick(&COMMENTS)).to_string();
                }
                if rng.chance(50) {
                    a.tags.push(tags[10 + rng.below(4) as usize].clone());
                }
                if rng.chance(30) {
                    // Deleted later on; the event was republished afterwards (or not).
                    a.deleted = true;
                    a.timestamp = last + rng.range(3600, 86_400);
                }
                attrs.push(a);
            }
            let changed = attrs[attrs.len() - size..]
                .iter()
                .map(|a| a.timestamp)
                .max()
                .unwrap_or(created)
                .max(created);
            event.timestamp = changed;
            event.publish_timestamp = changed + rng.range(60, 7200);
            if rng.chance(50) {
                event.published = false;
                // Never published, or edited after its last publication.
                event.publish_timestamp = if rng.chance(500) {
                    0
                } else {
                    created
                        .saturating_sub(rng.range(0, 600))
                        .max(GENERATED_EPOCH)
                };
            }
            clock = clock.max(last);
            events.push(event);
        }
        Dataset {
            events,
            attributes: attrs,
        }
    }
}
