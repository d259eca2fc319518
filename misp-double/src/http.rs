//! HTTP/1.1 wire format, without I/O: finding and parsing a request head, deciding body
//! framing and keep-alive, the public [`RecordedRequest`], and serialising a [`Response`].
//!
//! Everything here works on byte slices and never panics on malformed input.

/// Largest accepted request head (request line and headers, blank line included).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// One request as the double received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// Method as sent (`GET`, `POST`, ...).
    pub method: String,
    /// Path without the query string, as sent (not percent-decoded).
    pub path: String,
    /// Query string without the `?` (empty when none).
    pub query: String,
    /// Headers in order; names lowercased, values trimmed.
    pub headers: Vec<(String, String)>,
    /// Body bytes (empty when none, or when the request was rejected before reading it).
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON, if it is valid JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The body as UTF-8 text (lossy).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Whether the client asked to close the connection after this request (HTTP/1.1
    /// `Connection: close`) or did not ask to keep it (HTTP/1.0 without `keep-alive`).
    pub(crate) fn wants_close(&self, http10: bool) -> bool {
        let has = |token: &str| {
            self.headers
                .iter()
                .filter(|(k, _)| k == "connection")
                .flat_map(|(_, v)| v.split(','))
                .any(|t| t.trim().eq_ignore_ascii_case(token))
        };
        if http10 {
            !has("keep-alive")
        } else {
            has("close")
        }
    }
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    pub request: RecordedRequest,
    pub http10: bool,
}

/// Index just past the blank line ending the head, searching from `from` (bytes before it
/// were already searched). Accepts CRLF and bare LF line endings.
pub(crate) fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    let start = from.saturating_sub(3);
    let mut i = start;
    while i < buf.len() {
        if buf[i] == b'\n' {
            if buf.get(i + 1) == Some(&b'\n') {
                return Some(i + 2);
            }
            if buf.get(i + 1) == Some(&b'\r') && buf.get(i + 2) == Some(&b'\n') {
                return Some(i + 3);
            }
        }
        i += 1;
    }
    None
}

/// Number of leading empty lines (CRLF or LF) that RFC 9112 says to ignore before a request.
pub(crate) fn leading_blank_lines(buf: &[u8]) -> usize {
    let mut i = 0;
    loop {
        if buf[i..].starts_with(b"\r\n") {
            i += 2;
        } else if buf[i..].starts_with(b"\n") {
            i += 1;
        } else {
            return i;
        }
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Parses a request head (request line and header lines, terminator included or not).
pub(crate) fn parse_head(head: &[u8]) -> Result<Head, &'static str> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let request_line = lines.next().ok_or("empty request")?;
    let mut parts = request_line.split(' ');
    let (method, target, version) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v), None) => (m, t, v),
        _ => return Err("malformed request line"),
    };
    if method.is_empty() || !method.bytes().all(is_tchar) {
        return Err("malformed method");
    }
    let http10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ => return Err("unsupported HTTP version"),
    };
    let (path, query) = split_target(target)?;
    let mut headers = Vec::new();
    for line in lines {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            return Err("obsolete line folding");
        }
        let (name, value) = line.split_once(':').ok_or("header without colon")?;
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return Err("malformed header name");
        }
        headers.push((
            name.to_ascii_lowercase(),
            value.trim_matches([' ', '\t']).to_string(),
        ));
    }
    Ok(Head {
        request: RecordedRequest {
            method: method.to_string(),
            path,
            query,
            headers,
            body: Vec::new(),
        },
        http10,
    })
}

/// Splits a request target into path and query; absolute-form targets lose scheme and
/// authority.
fn split_target(target: &str) -> Result<(String, String), &'static str> {
    let origin = if target.starts_with('/') || target == "*" {
        target
    } else if let Some(rest) = target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))
    {
        match rest.find(['/', '?']) {
            Some(i) => &rest[i..],
            None => "/",
        }
    } else {
        return Err("malformed request target");
    };
    if origin.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err("malformed request target");
    }
    let (path, query) = match origin.split_once('?') {
        Some((p, q)) => (p, q),
        None => (origin, ""),
    };
    let path = if path.is_empty() { "/" } else { path };
    Ok((path.to_string(), query.to_string()))
}

/// Why a request cannot be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reject {
    /// 400: malformed.
    BadRequest,
    /// 411: chunked (or any transfer coding) instead of Content-Length.
    LengthRequired,
    /// 413: body over [`MAX_BODY_BYTES`].
    TooLarge,
    /// 431: head over [`MAX_HEAD_BYTES`].
    HeadTooLarge,
}

impl Reject {
    pub(crate) fn status(self) -> u16 {
        match self {
            Reject::BadRequest => 400,
            Reject::LengthRequired => 411,
            Reject::TooLarge => 413,
            Reject::HeadTooLarge => 431,
        }
    }
}

/// The body length announced by the headers (0 when none).
pub(crate) fn body_length(req: &RecordedRequest) -> Result<usize, Reject> {
    if let Some(te) = req.header("transfer-encoding") {
        if !te.eq_ignore_ascii_case("identity") {
            return Err(Reject::LengthRequired);
        }
    }
    let mut length: Option<u64> = None;
    for (_, v) in req.headers.iter().filter(|(k, _)| k == "content-length") {
        for item in v.split(',') {
            let item = item.trim();
            if item.is_empty() || !item.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Reject::BadRequest);
            }
            // Over u64 means over the limit anyway.
            let n = item.parse::<u64>().unwrap_or(u64::MAX);
            match length {
                Some(prev) if prev != n => return Err(Reject::BadRequest),
                _ => length = Some(n),
            }
        }
    }
    match length {
        None => Ok(0),
        Some(n) if n > MAX_BODY_BYTES as u64 => Err(Reject::TooLarge),
        Some(n) => Ok(n as usize),
    }
}

/// The reason phrase for a status code.
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

/// An answer to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    pub status: u16,
    /// Headers other than `Content-Length` and `Connection`, which are added when sending.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub(crate) fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".to_string(), content_type.to_string())],
            body: body.into(),
        }
    }

    pub(crate) fn json(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response::new(status, "application/json", body)
    }

    pub(crate) fn html(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response::new(status, "text/html; charset=UTF-8", body)
    }

    pub(crate) fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// The status line and headers, announcing `content_length` bytes of body.
    pub(crate) fn head_bytes(&self, content_length: usize, close: bool, http10: bool) -> Vec<u8> {
        let mut out = String::with_capacity(160);
        out.push_str("HTTP/1.1 ");
        out.push_str(&self.status.to_string());
        out.push(' ');
        out.push_str(reason(self.status));
        out.push_str("\r\n");
        for (k, v) in &self.headers {
            push_header(&mut out, k, v);
        }
        push_header(&mut out, "Content-Length", &content_length.to_string());
        if close {
            push_header(&mut out, "Connection", "close");
        } else if http10 {
            push_header(&mut out, "Connection", "keep-alive");
        }
        out.push_str("\r\n");
        out.into_bytes()
    }

    /// Head and body in one buffer (one write); no body bytes for `HEAD`.
    pub(crate) fn to_bytes(&self, close: bool, http10: bool, head_only: bool) -> Vec<u8> {
        let mut out = self.head_bytes(self.body.len(), close, http10);
        if !head_only {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

/// Appends one header line, dropping CR/LF from name and value so that caller-supplied text
/// cannot break the framing.
fn push_header(out: &mut String, name: &str, value: &str) {
    out.extend(name.chars().filter(|c| !matches!(c, '\r' | '\n' | ':')));
    out.push_str(": ");
    out.extend(value.chars().filter(|c| !matches!(c, '\r' | '\n')));
    out.push_str("\r\n");
}

/// Decodes `%XX` escapes (and `+` as space when `plus_space`), lossily as UTF-8.
pub(crate) fn percent_decode(s: &str, plus_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' && i + 2 < bytes.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(if plus_space && b == b'+' { b' ' } else { b });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_end_crlf_and_lf() {
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\nxx", 0), Some(18));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\n\nxx", 0), Some(16));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nA: b\r\n", 0), None);
        let buf = b"GET / HTTP/1.1\r\nA: b\r\n\r\n";
        assert_eq!(find_head_end(buf, 22), Some(buf.len()));
    }

    #[test]
    fn parse_basic() {
        let h = parse_head(
            b"POST /attributes/restSearch?x=1 HTTP/1.1\r\nHost: a\r\nAuthorization:  KEY \r\n\r\n",
        )
        .unwrap();
        assert_eq!(h.request.method, "POST");
        assert_eq!(h.request.path, "/attributes/restSearch");
        assert_eq!(h.request.query, "x=1");
        assert_eq!(h.request.header("AUTHORIZATION"), Some("KEY"));
        assert!(!h.http10);
        let h = parse_head(b"GET http://127.0.0.1:9/a/b HTTP/1.0\r\n\r\n").unwrap();
        assert_eq!(h.request.path, "/a/b");
        assert!(h.http10);
    }

    #[test]
    fn parse_rejects_garbage() {
        for bad in [
            &b"GARBAGE\r\n\r\n"[..],
            b"GET / HTTP/2.0\r\n\r\n",
            b"GET  / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nNoColon\r\n\r\n",
            b"GET / HTTP/1.1\r\n folded\r\n\r\n",
            b"G(T / HTTP/1.1\r\n\r\n",
            b"GET x HTTP/1.1\r\n\r\n",
            b"\xff\xfe\x00 / HTTP/1.1\r\n\r\n",
            b"",
        ] {
            assert!(parse_head(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn framing() {
        let req = |hs: &[(&str, &str)]| RecordedRequest {
            method: "POST".into(),
            path: "/".into(),
            query: String::new(),
            headers: hs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: Vec::new(),
        };
        assert_eq!(body_length(&req(&[])), Ok(0));
        assert_eq!(body_length(&req(&[("content-length", "12")])), Ok(12));
        assert_eq!(
            body_length(&req(&[("content-length", "12"), ("content-length", "13")])),
            Err(Reject::BadRequest)
        );
        assert_eq!(
            body_length(&req(&[("content-length", "-1")])),
            Err(Reject::BadRequest)
        );
        assert_eq!(
            body_length(&req(&[("content-length", "99999999999999999999999")])),
            Err(Reject::TooLarge)
        );
        assert_eq!(
            body_length(&req(&[("transfer-encoding", "chunked")])),
            Err(Reject::LengthRequired)
        );
    }

    #[test]
    fn keep_alive_rules() {
        let mut r = parse_head(b"GET / HTTP/1.1\r\n\r\n").unwrap().request;
        assert!(!r.wants_close(false));
        assert!(r.wants_close(true));
        r.headers
            .push(("connection".into(), "Keep-Alive, Upgrade".into()));
        assert!(!r.wants_close(true));
        r.headers.push(("connection".into(), "close".into()));
        assert!(r.wants_close(false));
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let alphabet = b"GET POST / HTTP/1.1\r\n:%?&=ab\xff\x00\t ,Content-Length: 12chunked";
        for round in 0..20_000 {
            let len = (round % 90) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    alphabet[(x % alphabet.len() as u64) as usize]
                })
                .collect();
            let _ = find_head_end(&bytes, (x % 7) as usize);
            let _ = leading_blank_lines(&bytes);
            if let Ok(h) = parse_head(&bytes) {
                let _ = body_length(&h.request);
                let _ = h.request.wants_close(h.http10);
            }
            let _ = percent_decode(&String::from_utf8_lossy(&bytes), true);
        }
    }

    #[test]
    fn percent() {
        assert_eq!(percent_decode("a%2Fb%zz+c%", false), "a/b%zz+c%");
        assert_eq!(percent_decode("a+b%3d", true), "a b=");
        assert_eq!(percent_decode("%4", true), "%4");
    }

    #[test]
    fn response_head_sanitised() {
        let r = Response::new(200, "text/plain\r\nX-Evil: 1", "hi");
        let bytes = r.to_bytes(true, false, false);
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(text.contains("Content-Type: text/plainX-Evil: 1\r\n"));
        assert!(text.contains("Content-Length: 2\r\nConnection: close\r\n\r\nhi"));
    }
}
