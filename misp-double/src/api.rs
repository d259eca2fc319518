//! MISP's REST behaviour for one request: routing, the `Accept`/key checks, request-body
//! decoding as MISP/CakePHP does it, the endpoints (`/servers/getVersion`, `/users/view/me`,
//! `/attributes/restSearch`, `/sightings/add`, `/users/login`; `/events/index` is in
//! `events.rs`), the double's clock, MISP's exact JSON shapes and
//! error bodies, and the canned pages used by faults.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use crate::dataset::{pseudo_uuid, Attribute, Event, Tag};
use crate::events;
use crate::http::{percent_decode, RecordedRequest, Response};
use crate::json::{self, Obj};
use crate::search::{self, convert_filters, Query};
use crate::store::Store;

/// MISP's message for a missing, malformed or unknown key.
pub const AUTH_FAILED_MESSAGE: &str = "Authentication failed. Please make sure you pass the API key of an API enabled user along in the Authorization header.";
/// MISP's message for a body sent as `application/json` that is not JSON (HTTP 405).
pub const INVALID_JSON_MESSAGE: &str = "Invalid JSON input. Make sure that the JSON input is a correctly formatted JSON string. This request has been blocked to avoid an unfiltered request.";
/// MISP's message for a POST whose body gave it no data at all (HTTP 400).
pub const NO_FILTER_MESSAGE: &str =
    "Either specify the search terms in the url, or POST a json with the filter parameters.";
/// MISP's answer when a sighting matches no attribute (HTTP 200).
pub const SIGHTING_FAILED_MESSAGE: &str =
    "Could not add the Sighting. Reason: No valid attributes found.";
/// The version `/servers/getVersion` reports.
pub const MISP_VERSION: &str = "2.5.22";

const GET_VERSION_BODY: &str = r#"{"version":"2.5.22","pyMISP_recommended_version":"2.5.22","perm_sync":false,"perm_sighting":true,"perm_galaxy_editor":false,"request_encoding":["gzip","br"],"filter_sightings":true}"#;

const VIEW_ME_BODY: &str = concat!(
    r#"{"User":{"id":"1","password":"*****","org_id":"1","server_id":"0","email":"admin@admin.test","#,
    r#""autoalert":false,"invited_by":"0","gpgkey":null,"certif_public":"","nids_sid":"4000000","#,
    r#""termsaccepted":false,"newsread":"0","role_id":"1","change_pw":false,"contactalert":false,"#,
    r#""disabled":false,"expiration":null,"current_login":"1735689600","last_login":"1735603200","#,
    r#""last_api_access":"1735689600","force_logout":false,"date_created":"1704067200","#,
    r#""date_modified":"1735689600","last_pw_change":"1704067200","sub":null,"#,
    r#""external_auth_required":false,"external_auth_key":"","notification_daily":false,"#,
    r#""notification_weekly":false,"notification_monthly":false,"totp":null,"hotp_counter":null},"#,
    r#""Role":{"id":"1","name":"admin","created":"2024-01-01 00:00:00","modified":"2024-01-01 00:00:00","#,
    r#""perm_add":true,"perm_modify":true,"perm_modify_org":true,"perm_publish":true,"#,
    r#""perm_delegate":true,"perm_sync":false,"perm_admin":true,"perm_audit":true,"perm_auth":true,"#,
    r#""perm_site_admin":true,"perm_regexp_access":true,"perm_tagger":true,"perm_template":true,"#,
    r#""perm_sharing_group":true,"perm_tag_editor":true,"perm_sighting":true,"#,
    r#""perm_object_template":true,"default_role":false,"memory_limit":"","max_execution_time":"","#,
    r#""restricted_to_site_admin":false,"perm_publish_zmq":true,"perm_publish_kafka":true,"#,
    r#""perm_decaying":true,"enforce_rate_limit":false,"rate_limit_count":"0","#,
    r#""perm_galaxy_editor":false,"perm_warninglist":true,"perm_view_feed_correlations":true,"#,
    r#""perm_analyst_data":true,"perm_skip_otp":false,"perm_server_sign":false,"#,
    r#""perm_sync_internal":false,"perm_sync_authoritative":false,"permission":"3","#,
    r#""permission_description":"publish"},"UserSetting":[],"#,
    r#""Organisation":{"id":"1","name":"ORGNAME","date_created":"2024-01-01 00:00:00","#,
    r#""date_modified":"2024-01-01 00:00:00","description":"Automatically generated admin organisation","#,
    r#""type":"ADMIN","nationality":"","sector":"","created_by":"0","#,
    r#""uuid":"5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9","contacts":null,"local":true,"#,
    r#""restricted_to_domain":[],"landingpage":null}}"#
);

/// The HTML MISP's login page starts like (served by `GET /users/login` and `Fault::Html`).
pub const LOGIN_PAGE_HTML: &str = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Users - MISP</title>\n<link rel=\"stylesheet\" href=\"/css/bootstrap.css\">\n<link rel=\"stylesheet\" href=\"/css/main.css\">\n</head>\n<body>\n<div id=\"container\">\n<div class=\"login-form\">\n<h2>Login</h2>\n<form action=\"/users/login\" id=\"UserLoginForm\" method=\"post\" accept-charset=\"utf-8\">\n<input type=\"hidden\" name=\"_method\" value=\"POST\">\n<input type=\"hidden\" name=\"data[_Token][key]\" value=\"3f1c0a9e8b7d6c5e4f3a2b1c0d9e8f7a6b5c4d3e\">\n<label for=\"UserEmail\">Email</label><input name=\"data[User][email]\" autocomplete=\"off\" type=\"email\" id=\"UserEmail\" required>\n<label for=\"UserPassword\">Password</label><input name=\"data[User][password]\" autocomplete=\"off\" type=\"password\" id=\"UserPassword\" required>\n<button type=\"submit\" class=\"btn btn-primary\">Login</button>\n</form>\n</div>\n</div>\n</body>\n</html>\n";

/// Body of the `302` to the login page.
const REDIRECT_HTML: &str = "<!DOCTYPE html>\n<html><head><title>302 Found</title></head><body>\n<h1>Found</h1>\n<p>The document has moved <a href=\"/users/login\">here</a>.</p>\n</body></html>\n";

/// A PHP "maximum execution time" fatal error page (served by `Fault::ServerErrorHtml`).
pub const PHP_TIMEOUT_HTML: &str = "<br />\n<b>Fatal error</b>:  Maximum execution time of 300 seconds exceeded in <b>/var/www/MISP/app/Lib/cakephp/lib/Cake/Model/Datasource/DboSource.php</b> on line <b>469</b><br />\n<!DOCTYPE html>\n<html><head><title>MISP: Internal Server Error</title></head>\n<body><h2>An Internal Error Has Occurred.</h2>\n<p class=\"error\"><strong>Error: </strong>An Internal Error Has Occurred.</p>\n</body></html>\n";

/// The dataset and identity behind the API.
#[derive(Debug)]
pub(crate) struct Backend {
    pub api_key: String,
    /// See `Options::read_only`.
    pub read_only: bool,
    pub store: RwLock<Store>,
    pub next_sighting_id: AtomicU64,
    /// A frozen clock (`MispDouble::set_clock`); `None` is real time.
    pub clock: Mutex<Option<u64>>,
}

pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `403` with MISP's authentication failure body.
pub(crate) fn auth_failed(path: &str) -> Response {
    Response::json(403, json::error_body(AUTH_FAILED_MESSAGE, path))
}

/// `404` with CakePHP's JSON body.
pub(crate) fn not_found(path: &str) -> Response {
    Response::json(404, json::error_body("Not Found", path))
}

/// `302` to the login page, what MISP answers to a non-API request.
pub(crate) fn redirect_to_login() -> Response {
    Response::html(302, REDIRECT_HTML).with_header("Location", "/users/login")
}

/// `500` JSON, as sent for `Fault::FailFirst`.
pub(crate) fn internal_error(path: &str) -> Response {
    Response::json(500, json::error_body("Internal error", path))
}

/// `429` as MISP's RateLimitComponent sends it.
pub(crate) fn rate_limited(path: &str, reset_secs: u64) -> Response {
    Response::json(429, json::error_body("Rate limit exceeded.", path))
        .with_header("X-Rate-Limit-Limit", "100")
        .with_header("X-Rate-Limit-Remaining", "0")
        .with_header("X-Rate-Limit-Reset", &reset_secs.to_string())
}

impl Backend {
    /// The double's current Unix time: the frozen clock if set, else real time.
    pub(crate) fn now(&self) -> u64 {
        self.clock
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .unwrap_or_else(now)
    }

    pub(crate) fn read_store(&self) -> std::sync::RwLockReadGuard<'_, Store> {
        self.store.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn write_store(&self) -> std::sync::RwLockWriteGuard<'_, Store> {
        self.store.write().unwrap_or_else(|e| e.into_inner())
    }

    fn authorized(&self, req: &RecordedRequest) -> bool {
        ["authorization", "x-misp-auth"]
            .iter()
            .any(|h| req.header(h) == Some(self.api_key.as_str()))
    }

    /// The normal MISP answer to one request.
    pub(crate) fn handle(&self, req: &RecordedRequest) -> Response {
        let mut segs: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
        // CakePHP's `.json` extension: forces a JSON (API) request.
        let mut json_ext = false;
        if let Some(last) = segs.last_mut() {
            let cut = last.len().saturating_sub(5);
            // `get` rather than indexing: the path may hold multi-byte characters.
            if cut > 0
                && last
                    .get(cut..)
                    .is_some_and(|ext| ext.eq_ignore_ascii_case(".json"))
            {
                *last = &last[..cut];
                json_ext = true;
            }
        }
        let accept_json = json_ext || req.header("accept") == Some("application/json");
        let lower: Vec<String> = segs
            .iter()
            .take(2)
            .map(|s| s.to_ascii_lowercase())
            .collect();
        let route = (
            lower.first().map(String::as_str).unwrap_or(""),
            lower.get(1).map(String::as_str).unwrap_or(""),
        );
        let rest = segs.get(2..).unwrap_or(&[]);
        match route {
            ("servers", "getversion") if rest.is_empty() => self.api_only(req, accept_json, || {
                if self.read_only {
                    Response::json(
                        200,
                        GET_VERSION_BODY
                            .replace("\"perm_sighting\":true", "\"perm_sighting\":false"),
                    )
                } else {
                    Response::json(200, GET_VERSION_BODY)
                }
            }),
            ("users", "view") if rest.len() == 1 && rest[0].eq_ignore_ascii_case("me") => {
                self.api_only(req, accept_json, || Response::json(200, VIEW_ME_BODY))
            }
            ("users", "login") if rest.is_empty() => Response::html(200, LOGIN_PAGE_HTML),
            ("sightings", "add") if rest.len() <= 1 => {
                self.api_only(req, accept_json, || self.sightings_add(req))
            }
            ("events", "index") => self.api_only(req, accept_json, || self.events_index(req, rest)),
            ("attributes", "restsearch") => {
                if !self.authorized(req) {
                    return auth_failed(&req.path);
                }
                self.rest_search(req, rest)
            }
            _ => not_found(&req.path),
        }
    }

    /// Endpoints that only check the key for API requests (`Accept: application/json`);
    /// anything else is sent to the login page.
    fn api_only(
        &self,
        req: &RecordedRequest,
        accept_json: bool,
        ok: impl FnOnce() -> Response,
    ) -> Response {
        if !accept_json {
            redirect_to_login()
        } else if !self.authorized(req) {
            auth_failed(&req.path)
        } else {
            ok()
        }
    }

    fn rest_search(&self, req: &RecordedRequest, rest: &[&str]) -> Response {
        let mut params = match request_data(req) {
            Ok(p) => p,
            Err(resp) => return resp,
        };
        // URL parameters: named `key:value` segments, or positional
        // returnFormat/value/type/category as in MISP's restSearch signature.
        const POSITIONAL: [&str; 4] = ["returnFormat", "value", "type", "category"];
        let mut pos = 0;
        for seg in rest {
            let seg = percent_decode(seg, false);
            if let Some((k, v)) = seg.split_once(':') {
                params.insert(k.to_string(), Value::String(v.to_string()));
            } else {
                if let Some(key) = POSITIONAL.get(pos) {
                    let skip =
                        ["null", "0", "false", ""].contains(&seg.to_ascii_lowercase().as_str());
                    if !skip {
                        params.insert((*key).to_string(), Value::String(seg.replace(';', ":")));
                    }
                }
                pos += 1;
            }
        }
        let query = Query::from_params(&params, self.now());
        if !query.json {
            // Only JSON is emulated; other formats get an empty JSON answer.
            return search_response(String::from(r#"{"response":{"Attribute":[]}}"#), 0);
        }
        let st = self.read_store();
        let hits = search::run(&st, &query);
        let mut out = String::with_capacity(64 + hits.len() * 700);
        out.push_str(r#"{"response":{"Attribute":["#);
        for (i, (a, e)) in hits.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_attribute(&mut out, a, e, &query);
        }
        out.push_str("]}}");
        search_response(out, hits.len())
    }

    /// `/events/index` (GET or POST). The body is decoded like restSearch's, but no data at all
    /// is fine (every event); `key:value` URL segments are named parameters.
    fn events_index(&self, req: &RecordedRequest, rest: &[&str]) -> Response {
        let data = match body_data(req) {
            Ok(d) => unwrap_request(d),
            Err(resp) => return resp,
        };
        let named: Vec<(String, String)> = rest
            .iter()
            .filter_map(|seg| {
                let seg = percent_decode(seg, false);
                seg.split_once(':')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect();
        let now = self.now();
        events::index(&self.read_store(), &data, &named, now)
    }

    fn sightings_add(&self, req: &RecordedRequest) -> Response {
        if self.read_only {
            return Response::json(
                403,
                json::error_body(
                    "You do not have permission to use this functionality.",
                    &req.path,
                ),
            );
        }
        if !req.method.eq_ignore_ascii_case("POST") {
            return Response::json(
                405,
                json::error_body(
                    "This action can only be reached via POST requests.",
                    &req.path,
                ),
            );
        }
        let data = match request_data(req) {
            Ok(d) => d,
            Err(resp) => return resp,
        };
        let mut values: Vec<Value> = match data.get("values") {
            Some(Value::Array(a)) => a.clone(),
            Some(v) if !search::php_empty(v) => vec![v.clone()],
            _ => Vec::new(),
        };
        if let Some(v) = data.get("value").filter(|v| !search::php_empty(v)) {
            values.push(v.clone());
        }
        let id_filter = data.get("id").filter(|v| !search::php_empty(v)).cloned();
        if values.is_empty() && id_filter.is_none() {
            return Response::json(200, sighting_failed());
        }
        let mut filters = match data.get("filters") {
            Some(Value::Object(m)) => m.clone(),
            _ => Map::new(),
        };
        if !values.is_empty() {
            filters.insert("value".into(), Value::Array(values));
        }
        let query = Query::from_params(&filters, self.now());
        let id_set = id_filter.as_ref().and_then(convert_filters);
        let st = self.read_store();
        let hits: Vec<(&Attribute, &Event)> = search::run(&st, &query)
            .into_iter()
            .filter(|(a, _)| {
                id_set
                    .as_ref()
                    .is_none_or(|s| s.matches(&[a.id.to_string().as_str(), a.uuid.as_str()]))
            })
            .collect();
        let Some((a, _)) = hits.last() else {
            return Response::json(200, sighting_failed());
        };
        let first_id = self
            .next_sighting_id
            .fetch_add(hits.len() as u64, Ordering::Relaxed);
        let id = first_id + hits.len() as u64 - 1;
        let timestamp = data
            .get("timestamp")
            .and_then(|v| match v {
                Value::Number(n) => n.as_u64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            })
            .unwrap_or_else(|| self.now());
        let source = data.get("source").and_then(Value::as_str).unwrap_or("");
        let kind = match data.get("type") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => "0".to_string(),
        };
        let mut out = String::with_capacity(320);
        out.push_str(r#"{"Sighting":"#);
        Obj::new(&mut out)
            .num_str("id", id)
            .num_str("attribute_id", a.id)
            .num_str("event_id", a.event_id)
            .num_str("org_id", 1)
            .num_str("date_sighting", timestamp)
            .str("uuid", &pseudo_uuid(0x5167, id))
            .str("source", source)
            .str("type", &kind)
            .str("attribute_uuid", &a.uuid)
            .end();
        out.push('}');
        Response::json(200, out)
    }
}

fn sighting_failed() -> String {
    let mut out = String::new();
    Obj::new(&mut out)
        .str("message", SIGHTING_FAILED_MESSAGE)
        .end();
    out
}

fn search_response(body: String, count: usize) -> Response {
    Response::json(200, body)
        .with_header("X-Result-Count", &count.to_string())
        .with_header("X-Skipped-Elements-Count", "0")
}

/// The media type of the request (lowercase, parameters dropped).
fn media_type(req: &RecordedRequest) -> String {
    req.header("content-type")
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// What CakePHP puts in `$this->request->data` for a POST, then MISP's
/// `_harvestParameters` checks: JSON bodies are decoded (invalid -> 405), urlencoded forms are
/// parsed (so a JSON text sent as a form yields only unknown keys: an unfiltered search), any
/// other content type leaves no data, and no data at all is a 400. `{"request": {...}}` is
/// unwrapped. Non-POST requests carry no body data.
fn request_data(req: &RecordedRequest) -> Result<Map<String, Value>, Response> {
    if !req.method.eq_ignore_ascii_case("POST") {
        return Ok(Map::new());
    }
    let data = body_data(req)?;
    if data.is_empty() {
        return Err(Response::json(
            400,
            json::error_body(NO_FILTER_MESSAGE, &req.path),
        ));
    }
    Ok(unwrap_request(data))
}

/// `{"request": {...}}` is unwrapped, as MISP does.
fn unwrap_request(data: Map<String, Value>) -> Map<String, Value> {
    match data.get("request") {
        Some(Value::Object(inner)) => inner.clone(),
        _ => data,
    }
}

/// What CakePHP puts in `$this->request->data` (empty when there is none): JSON bodies are
/// decoded (invalid -> 405), urlencoded forms parsed, other content types ignored.
fn body_data(req: &RecordedRequest) -> Result<Map<String, Value>, Response> {
    if !req.method.eq_ignore_ascii_case("POST") {
        return Ok(Map::new());
    }
    let media = media_type(req);
    let data = if media == "application/json" {
        if req.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Map::new());
        }
        match serde_json::from_slice::<Value>(&req.body) {
            Ok(Value::Object(m)) => m,
            // A non-empty JSON list is a PHP array with integer keys: no known parameter.
            Ok(Value::Array(a)) if !a.is_empty() => {
                let mut m = Map::new();
                for (i, v) in a.into_iter().enumerate() {
                    m.insert(i.to_string(), v);
                }
                m
            }
            Ok(Value::Array(_)) => Map::new(),
            _ => {
                return Err(Response::json(
                    405,
                    json::error_body(INVALID_JSON_MESSAGE, &req.path),
                ))
            }
        }
    } else if media == "application/x-www-form-urlencoded" {
        parse_form(&req.body)
    } else if media == "multipart/form-data" && !req.body.is_empty() {
        // Not decoded: treated as form fields MISP does not know.
        let mut m = Map::new();
        m.insert("_multipart".into(), Value::Bool(true));
        m
    } else {
        Map::new()
    };
    Ok(data)
}

/// `application/x-www-form-urlencoded` as PHP fills `$_POST` (`k[]` collects a list; `.` and
/// space in names become `_`).
fn parse_form(body: &[u8]) -> Map<String, Value> {
    let text = String::from_utf8_lossy(body);
    let mut m = Map::new();
    for pair in text.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = percent_decode(k, true).replace(['.', ' '], "_");
        if k.is_empty() {
            continue;
        }
        let v = Value::String(percent_decode(v, true));
        if let Some(list_key) = k.strip_suffix("[]") {
            let entry = m
                .entry(list_key.to_string())
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(a) = entry {
                a.push(v);
            }
        } else {
            m.insert(k, v);
        }
    }
    m
}

fn write_tag(out: &mut String, t: &Tag, inherited: bool) {
    let mut o = Obj::new(out);
    o.num_str("id", t.id)
        .str("name", &t.name)
        .str("colour", &t.colour)
        .raw("numerical_value", "null")
        .bool("is_galaxy", t.is_galaxy())
        .bool("local", false);
    if inherited {
        o.raw("inherited", "1");
    }
    o.end();
}

/// One attribute in restSearch's JSON shape, MISP's field order.
pub(crate) fn write_attribute(out: &mut String, a: &Attribute, e: &Event, q: &Query) {
    let mut tags: Vec<(&Tag, bool)> = a.tags.iter().map(|t| (t, false)).collect();
    if q.include_event_tags {
        for t in &e.tags {
            if !a.tags.iter().any(|own| own.name == t.name) {
                tags.push((t, true));
            }
        }
    }
    let mut o = Obj::new(out);
    o.num_str("id", a.id)
        .num_str("event_id", a.event_id)
        .str("object_id", "0")
        .raw("object_relation", "null")
        .str("category", &a.category)
        .str("type", &a.kind)
        .bool("to_ids", a.to_ids)
        .str("uuid", &a.uuid)
        .num_str("timestamp", a.timestamp)
        .str("distribution", "5")
        .str("sharing_group_id", "0")
        .str("comment", &a.comment)
        .bool("deleted", a.deleted)
        .bool("disable_correlation", false)
        .raw("first_seen", "null")
        .raw("last_seen", "null")
        .str("value", &a.value);
    if q.include_event_uuid {
        o.str("event_uuid", &e.uuid);
    }
    o.with("Event", |out| {
        Obj::new(out)
            .num_str("org_id", e.org_id)
            .num_str("distribution", u64::from(e.distribution))
            .num_str("publish_timestamp", e.publish_timestamp)
            .num_str("id", e.id)
            .str("info", &e.info)
            .num_str("orgc_id", e.orgc_id)
            .str("uuid", &e.uuid)
            .end();
    });
    if !tags.is_empty() {
        o.with("Tag", |out| {
            out.push('[');
            for (i, (t, inherited)) in tags.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_tag(out, t, *inherited);
            }
            out.push(']');
        });
    }
    o.end();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend() -> Backend {
        Backend {
            api_key: crate::DEFAULT_API_KEY.into(),
            read_only: false,
            store: RwLock::new(Store::new(crate::Dataset::seed())),
            next_sighting_id: AtomicU64::new(1),
            clock: Mutex::new(None),
        }
    }

    fn req(method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> RecordedRequest {
        RecordedRequest {
            method: method.into(),
            path: path.into(),
            query: String::new(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn api(method: &str, path: &str, body: &str) -> Response {
        backend().handle(&req(
            method,
            path,
            &[
                ("Authorization", crate::DEFAULT_API_KEY),
                ("Accept", "application/json"),
                ("Content-Type", "application/json"),
            ],
            body,
        ))
    }

    #[test]
    fn static_bodies_are_valid_json() {
        for body in [GET_VERSION_BODY, VIEW_ME_BODY] {
            let v: Value = serde_json::from_str(body).unwrap();
            assert!(v.is_object());
        }
    }

    #[test]
    fn json_extension_counts_as_api_request() {
        let b = backend();
        let r = b.handle(&req(
            "GET",
            "/servers/getVersion.json",
            &[("Authorization", crate::DEFAULT_API_KEY)],
            "",
        ));
        assert_eq!(r.status, 200);
    }

    /// Deterministic xorshift, enough to shake the parsers.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[(self.next() % items.len() as u64) as usize]
        }
    }

    fn random_value(rng: &mut Rng, depth: u32) -> Value {
        const WORDS: &[&str] = &[
            "",
            "0",
            "1",
            "true",
            "false",
            "!",
            "%",
            "%%",
            "\\",
            "_",
            "&&",
            "!%drop%",
            "only",
            "185.220.101.47",
            "ip-dst|port",
            "7d",
            "-3",
            "1e999",
            "é",
            "Attribute.id desc",
        ];
        match rng.next() % if depth > 3 { 4 } else { 7 } {
            0 => Value::Null,
            1 => Value::Bool(rng.next() & 1 == 0),
            2 => serde_json::json!((rng.next() % 5) as i64 - 2),
            3 => Value::String(rng.pick(WORDS).to_string()),
            4 => serde_json::json!(-1.5e300),
            5 => Value::Array(
                (0..rng.next() % 4)
                    .map(|_| random_value(rng, depth + 1))
                    .collect(),
            ),
            _ => {
                let mut m = Map::new();
                for _ in 0..rng.next() % 4 {
                    let k = rng.pick(&["OR", "NOT", "AND", "x", "value"]).to_string();
                    m.insert(k, random_value(rng, depth + 1));
                }
                Value::Object(m)
            }
        }
    }

    #[test]
    fn random_parameters_never_panic() {
        const KEYS: &[&str] = &[
            "value",
            "type",
            "category",
            "uuid",
            "eventid",
            "tags",
            "to_ids",
            "published",
            "deleted",
            "publish_timestamp",
            "last",
            "timestamp",
            "attribute_timestamp",
            "limit",
            "page",
            "order",
            "includeEventUuid",
            "includeEventTags",
            "returnFormat",
            "request",
            "values",
            "filters",
            "id",
            "source",
            "minimal",
            "searchminimal",
            "sort",
            "direction",
            "publishtimestamp",
        ];
        let b = backend();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..3000 {
            let mut m = Map::new();
            for _ in 0..rng.next() % 6 {
                let k = rng.pick(KEYS).to_string();
                m.insert(k, random_value(&mut rng, 0));
            }
            let body = Value::Object(m).to_string();
            for path in ["/attributes/restSearch", "/sightings/add", "/events/index"] {
                let r = api("POST", path, &body);
                assert!(
                    matches!(r.status, 200 | 400 | 405),
                    "{path} {body} -> {}",
                    r.status
                );
                assert!(serde_json::from_slice::<Value>(&r.body).is_ok());
            }
            let _ = b.handle(&req(
                "POST",
                "/attributes/restSearch",
                &[
                    ("Authorization", crate::DEFAULT_API_KEY),
                    ("Content-Type", "application/x-www-form-urlencoded"),
                ],
                &body,
            ));
        }
    }

    #[test]
    fn multibyte_paths_do_not_panic() {
        let b = backend();
        for path in [
            "/servers/getVersioné",
            "/é",
            "/aé.json",
            "/éééé",
            "/attributes/restSearch/é:é",
        ] {
            let _ = b.handle(&req("GET", path, &[("Accept", "application/json")], ""));
        }
    }

    #[test]
    fn named_url_params() {
        let r = api("GET", "/attributes/restSearch/value:185.220.101.47", "");
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["response"]["Attribute"].as_array().unwrap().len(), 1);
        let r = api("GET", "/attributes/restSearch/json/45.155.205.233", "");
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["response"]["Attribute"][0]["value"], "45.155.205.233");
    }

    #[test]
    fn empty_json_object_is_400_and_wrapped_request_works() {
        assert_eq!(api("POST", "/attributes/restSearch", "{}").status, 400);
        assert_eq!(api("POST", "/attributes/restSearch", "  ").status, 400);
        assert_eq!(api("POST", "/attributes/restSearch", "7").status, 405);
        let r = api(
            "POST",
            "/attributes/restSearch",
            r#"{"request":{"value":"malware-drop.ru","type":"domain"}}"#,
        );
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["response"]["Attribute"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn form_parsing() {
        let m = parse_form(b"value=1.2.3.4&type[]=ip-src&type[]=ip-dst&a.b=c+d");
        assert_eq!(m["value"], "1.2.3.4");
        assert_eq!(m["type"], serde_json::json!(["ip-src", "ip-dst"]));
        assert_eq!(m["a_b"], "c d");
    }

    #[test]
    fn sightings() {
        let ok = api(
            "POST",
            "/sightings/add",
            r#"{"values":["185.220.101.47"],"source":"wazuh","type":"0","timestamp":1700000000}"#,
        );
        let v: Value = serde_json::from_slice(&ok.body).unwrap();
        assert_eq!(v["Sighting"]["attribute_id"], "1");
        assert_eq!(v["Sighting"]["date_sighting"], "1700000000");
        let none = api("POST", "/sightings/add", r#"{"values":["198.51.100.1"]}"#);
        let v: Value = serde_json::from_slice(&none.body).unwrap();
        assert!(v.get("Sighting").is_none());
        assert_eq!(v["message"], SIGHTING_FAILED_MESSAGE);
        let empty = api("POST", "/sightings/add", r#"{"values":[]}"#);
        let v: Value = serde_json::from_slice(&empty.body).unwrap();
        assert!(v["message"].as_str().unwrap().starts_with("Could not add"));
    }
}
