//! A tiny JSON writer that keeps key order (MISP's field order) without serde_json's
//! `preserve_order` feature: string escaping and an object builder appending to a `String`.

/// Appends `s` as a JSON string literal (quotes included).
pub(crate) fn push_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Builds one JSON object, keys in insertion order.
pub(crate) struct Obj<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> Obj<'a> {
    /// Opens an object at the end of `out`.
    pub(crate) fn new(out: &'a mut String) -> Obj<'a> {
        out.push('{');
        Obj { out, first: true }
    }

    fn key(&mut self, key: &str) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        push_str(self.out, key);
        self.out.push(':');
    }

    /// `"key":"value"`.
    pub(crate) fn str(&mut self, key: &str, value: &str) -> &mut Self {
        self.key(key);
        push_str(self.out, value);
        self
    }

    /// `"key":"123"` (MISP sends ids and timestamps as strings).
    pub(crate) fn num_str(&mut self, key: &str, value: u64) -> &mut Self {
        self.key(key);
        self.out.push('"');
        self.out.push_str(&value.to_string());
        self.out.push('"');
        self
    }

    /// `"key":<raw JSON>` (caller guarantees `raw` is valid JSON).
    pub(crate) fn raw(&mut self, key: &str, raw: &str) -> &mut Self {
        self.key(key);
        self.out.push_str(raw);
        self
    }

    /// `"key":true|false`.
    pub(crate) fn bool(&mut self, key: &str, value: bool) -> &mut Self {
        self.raw(key, if value { "true" } else { "false" })
    }

    /// `"key":` followed by whatever `f` writes (one JSON value).
    pub(crate) fn with(&mut self, key: &str, f: impl FnOnce(&mut String)) -> &mut Self {
        self.key(key);
        f(self.out);
        self
    }

    /// Closes the object.
    pub(crate) fn end(&mut self) {
        self.out.push('}');
    }
}

/// `{"name":msg,"message":msg,"url":url}`: MISP's (CakePHP's) JSON error body.
pub(crate) fn error_body(message: &str, url: &str) -> String {
    let mut out = String::with_capacity(message.len() * 2 + url.len() + 40);
    Obj::new(&mut out)
        .str("name", message)
        .str("message", message)
        .str("url", url)
        .end();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_roundtrips() {
        let nasty = "a\"b\\c\nd\u{1}e\u{2028}é/";
        let mut lit = String::new();
        push_str(&mut lit, nasty);
        let back: String = serde_json::from_str(&lit).unwrap();
        assert_eq!(back, nasty);
    }

    #[test]
    fn object_order() {
        let mut s = String::new();
        Obj::new(&mut s)
            .num_str("id", 7)
            .bool("to_ids", true)
            .raw("first_seen", "null")
            .with("Tag", |o| o.push_str("[]"))
            .end();
        assert_eq!(s, r#"{"id":"7","to_ids":true,"first_seen":null,"Tag":[]}"#);
        let v: serde_json::Value = serde_json::from_str(&error_body("x", "/p")).unwrap();
        assert_eq!(v["url"], "/p");
    }
}
