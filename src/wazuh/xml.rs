//! Wazuh's XML dialect, as `src/shared/os_xml/os_xml.c` (`src/os_xml` up to 4.14) reads it: a
//! hand-written scanner that turns the bytes of ossec.conf (or a rules file) into a tree of
//! elements and comments with exact byte spans, accepting what Wazuh accepts and refusing, with a
//! line, a column and a reason an admin understands, what Wazuh refuses. It never re-serialises
//! anything: editors splice bytes at the spans it reports.
//!
//! Read against os_xml.c at v4.14.7 (same logic since 4.0). Facts that a general XML parser gets
//! wrong, mirrored here:
//! - A comment is `<!` up to the FIRST `!>` or `-->`: `<!-- a !> b -->` ends at `!>` and ` b -->`
//!   is text. `--` inside a comment is fine for Wazuh (not for XML); we never write it.
//! - `<![CDATA[…]]>` and `<!DOCTYPE …>` are not refused by Wazuh but read as comments, which
//!   silently swallow everything up to the next `-->` or `!>` (or end in "Comment not closed").
//!   Losing configuration silently is worse than an error: we refuse them, and any `<!` followed
//!   by an upper-case letter (`<!ENTITY`, `<!ELEMENT`, …) likewise.
//! - `<?xml …?>` fails in Wazuh as an element named `?xml` with a bad attribute closing (or one
//!   that is never closed); we refuse every `<?` with a clear message.
//! - Text outside elements is skipped unread: a UTF-8 BOM, stray words, anything but `<`.
//! - In text, `\<` is a literal `<` (the backslash stays in the value); an odd run of
//!   backslashes escapes, an even run does not. A backslash before a comment carries over it.
//! - Element text is never trimmed and entities are never decoded. For an element with children
//!   Wazuh's text is only what follows the last child; `Element::text` mirrors that.
//! - A run of text between two tags (comments not counted) of 20480 bytes (`XML_MAXSIZE`) or
//!   more is "String overflow": 20479 is the longest value Wazuh reads.
//! - A closing tag is compared byte for byte: `</name >` does not close `<name>`.
//! - Attributes: no space before `=` (`a ="1"` is "has no value"), spaces after it are fine,
//!   single or double quotes, `>` inside a value is an error, `<` is not; at most 49 attributes.
//! - Elements nest at most 1024 deep.
//!
//! Stricter than Wazuh on purpose (Wazuh would build elements with absurd names): an element
//! name must start with a letter, `_`, `:` or a non-ASCII byte and contain no `<`, `=` or quote
//! (so `a <b` or `x < 5` in text is reported as a raw `<`), `/` in a tag must be followed by `>`
//! (Wazuh leaves the `>` of `<x / >` in the parent's text), and names of attributes must be
//! non-empty.

use std::borrow::Cow;
use std::ops::Range;

/// The UTF-8 byte order mark some editors put at the start of a file.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";
/// `XML_MAXSIZE`: a name, an attribute value or a run of text must stay below this many bytes.
pub const MAX_TEXT_LEN: usize = 20480;
/// `_ReadElem`'s recursion limit.
pub const MAX_DEPTH: usize = 1024;
/// `_getattributes` recurses once per attribute followed by whitespace, up to depth 48.
const MAX_ATTRIBUTE_RUNS: usize = 49;

/// A half-open byte range `[start, end)` in the scanned bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }

    pub fn range(self) -> Range<usize> {
        self.start..self.end
    }

    pub fn len(self) -> usize {
        self.end.saturating_sub(self.start)
    }

    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    /// The bytes this span covers in `source` (empty if it does not fit).
    pub fn of(self, source: &[u8]) -> &[u8] {
        source.get(self.range()).unwrap_or(&[])
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub name: String,
    /// Raw bytes between the quotes, entities undecoded.
    pub value: Vec<u8>,
    /// From the first byte of the name to the closing quote, inclusive.
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    /// From `<!` to the end of its terminator (`-->` or `!>`).
    pub span: Span,
    /// The comment's text: between `<!--` and `-->` (or `<!` and `!>` for Wazuh's other form).
    pub body: Span,
}

impl Comment {
    pub fn body<'a>(&self, source: &'a [u8]) -> &'a [u8] {
        self.body.of(source)
    }
}

/// What an element or the document contains, in document order (text is not a node).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Element(Element),
    Comment(Comment),
}

impl Node {
    pub fn span(&self) -> Span {
        match self {
            Node::Element(e) => e.span(),
            Node::Comment(c) => c.span,
        }
    }

    pub fn as_element(&self) -> Option<&Element> {
        match self {
            Node::Element(e) => Some(e),
            Node::Comment(_) => None,
        }
    }

    pub fn as_comment(&self) -> Option<&Comment> {
        match self {
            Node::Comment(c) => Some(c),
            Node::Element(_) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    /// The name as written (lossy UTF-8 if it is not).
    pub name: String,
    /// `<name …>` or `<name …/>`.
    pub start_tag: Span,
    /// Between the start and end tags; empty, at `start_tag.end`, for `<name/>`.
    pub content: Span,
    /// `</name>`, or `None` for `<name/>`.
    pub end_tag: Option<Span>,
    pub attributes: Vec<Attribute>,
    /// Child elements and comments in document order.
    pub nodes: Vec<Node>,
    /// 1-based line and column of the `<` of the start tag.
    pub line: usize,
    pub column: usize,
    text: Vec<u8>,
}

impl Element {
    /// The whole element, from `<name` to `</name>` (or `/>`).
    pub fn span(&self) -> Span {
        Span::new(
            self.start_tag.start,
            self.end_tag.map_or(self.start_tag.end, |t| t.end),
        )
    }

    pub fn is_self_closing(&self) -> bool {
        self.end_tag.is_none()
    }

    pub fn children(&self) -> impl Iterator<Item = &Element> + '_ {
        self.nodes.iter().filter_map(Node::as_element)
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children().filter(move |e| e.name == name)
    }

    /// The first child with this name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children().find(|e| e.name == name)
    }

    /// The last child with this name: the one Wazuh's readers keep when an element repeats.
    pub fn last_child(&self, name: &str) -> Option<&Element> {
        self.children().filter(|e| e.name == name).last()
    }

    pub fn comments(&self) -> impl Iterator<Item = &Comment> + '_ {
        self.nodes.iter().filter_map(Node::as_comment)
    }

    /// The element's text as Wazuh stores it: raw bytes, comments left out, untrimmed; for an
    /// element with children, only the text after the last child.
    pub fn text(&self) -> &[u8] {
        &self.text
    }

    /// `text()` without surrounding whitespace, as (lossy) UTF-8.
    pub fn trimmed_text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(trim(&self.text))
    }

    pub fn attribute(&self, name: &str) -> Option<&[u8]> {
        self.attributes
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.value.as_slice())
    }
}

/// A scanned file: its top-level elements (the roots) and comments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// The file starts with a UTF-8 byte order mark.
    pub bom: bool,
    pub nodes: Vec<Node>,
}

impl Document {
    pub fn roots(&self) -> impl Iterator<Item = &Element> + '_ {
        self.nodes.iter().filter_map(Node::as_element)
    }

    pub fn comments(&self) -> impl Iterator<Item = &Comment> + '_ {
        self.nodes.iter().filter_map(Node::as_comment)
    }
}

/// Why Wazuh would not read a file, with where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {kind}")]
pub struct XmlError {
    pub line: usize,
    pub column: usize,
    pub offset: usize,
    pub kind: XmlErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlErrorKind {
    #[error(
        "an XML declaration `<?xml …?>` is not allowed: Wazuh cannot read a file that has one \
         (delete that line)"
    )]
    XmlDeclaration,
    #[error("a processing instruction `<?…?>` is not allowed in Wazuh configuration files")]
    ProcessingInstruction,
    #[error(
        "a CDATA section `<![CDATA[…]]>` is not allowed: Wazuh does not understand it (write the \
         value as plain text)"
    )]
    Cdata,
    #[error("a `<!DOCTYPE …>` declaration is not allowed in Wazuh configuration files")]
    Doctype,
    #[error("a `<!{0} …>` declaration is not allowed in Wazuh configuration files")]
    Declaration(String),
    #[error("this comment is never closed with `-->`")]
    UnclosedComment,
    #[error(
        "a bare '<' that does not start a tag: Wazuh reads every '<' as the start of a tag (in \
         a value, write it as '\\<')"
    )]
    RawLessThan,
    #[error("<{name}> is never closed (the file ends before </{name}>)")]
    Unclosed { name: String },
    #[error("</{found}> does not close <{expected}>, which was opened on line {opened_line}")]
    Mismatched {
        expected: String,
        found: String,
        opened_line: usize,
    },
    #[error("</{name}> closes an element that was never opened")]
    NotOpened { name: String },
    #[error(
        "the text inside <{name}> is too long: Wazuh reads at most 20479 bytes between two tags"
    )]
    TextTooLong { name: String },
    #[error("an element name or attribute is too long: Wazuh reads at most 20479 bytes")]
    NameTooLong,
    #[error("invalid character {0:?} in the element name")]
    InvalidName(char),
    #[error("the file ends in the middle of a tag")]
    EofInTag,
    #[error("'/' in a tag must be followed directly by '>'")]
    BadSelfClose,
    #[error("attribute '{0}' has no value (write name=\"value\", with no space before '=')")]
    AttributeWithoutValue(String),
    #[error("invalid attribute name {0:?}")]
    InvalidAttributeName(String),
    #[error("the value of attribute '{0}' must be in double or single quotes")]
    AttributeNotQuoted(String),
    #[error("the value of attribute '{0}' is not closed (or contains '>', which Wazuh refuses)")]
    AttributeNotClosed(String),
    #[error("attribute '{0}' must be followed by a space, '>' or '/>'")]
    BadAttributeClosing(String),
    #[error("attribute '{0}' is given twice")]
    DuplicateAttribute(String),
    #[error("too many attributes in one tag (Wazuh reads at most 49)")]
    TooManyAttributes,
    #[error("elements are nested more than 1024 deep")]
    TooDeep,
}

/// 1-based line and column (in characters; a BOM is not counted) of a byte offset.
pub fn line_column(bytes: &[u8], offset: usize) -> (usize, usize) {
    let offset = offset.min(bytes.len());
    let before = &bytes[..offset];
    let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
    let mut line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    if line_start == 0 && before.starts_with(BOM) {
        line_start = BOM.len();
    }
    let chars = before[line_start.min(offset)..]
        .iter()
        .filter(|&&b| (b & 0xC0) != 0x80)
        .count();
    (line, chars + 1)
}

/// C's `isspace` in the C locale, which os_xml uses.
pub fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// `bytes` without leading and trailing `is_space` bytes.
pub fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&b| !is_space(b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&b| !is_space(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// Scan `bytes` the way Wazuh's os_xml does.
pub fn parse(bytes: &[u8]) -> Result<Document, XmlError> {
    let mut scanner = Scanner {
        b: bytes,
        pos: 0,
        stack: Vec::new(),
        top: Vec::new(),
    };
    let bom = bytes.starts_with(BOM);
    if bom {
        scanner.pos = BOM.len();
    }
    scanner.run()?;
    Ok(Document {
        bom,
        nodes: scanner.top,
    })
}

/// An element whose end tag has not been seen yet.
struct Open {
    el: Element,
    name: Span,
    /// The current run of text (since the last tag), which becomes `text` at the end tag.
    run: Vec<u8>,
    /// os_xml's `prevv == -1`: an odd run of backslashes precedes.
    escaped: bool,
}

struct Scanner<'a> {
    b: &'a [u8],
    pos: usize,
    stack: Vec<Open>,
    top: Vec<Node>,
}

fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b':' || b >= 0x80
}

impl Scanner<'_> {
    fn err(&self, offset: usize, kind: XmlErrorKind) -> XmlError {
        let (line, column) = line_column(self.b, offset);
        XmlError {
            line,
            column,
            offset,
            kind,
        }
    }

    fn at(&self, i: usize) -> Option<u8> {
        self.b.get(i).copied()
    }

    fn lossy(&self, span: Span) -> String {
        String::from_utf8_lossy(span.of(self.b)).into_owned()
    }

    fn run(&mut self) -> Result<(), XmlError> {
        let mut top_escaped = false;
        loop {
            let Some(c) = self.at(self.pos) else {
                return match self.stack.last() {
                    Some(open) => Err(self.err(
                        open.el.start_tag.start,
                        XmlErrorKind::Unclosed {
                            name: open.el.name.clone(),
                        },
                    )),
                    None => Ok(()),
                };
            };
            if let Some(open) = self.stack.last() {
                // os_xml checks the length before looking at the byte it has just read.
                if open.run.len() >= MAX_TEXT_LEN {
                    return Err(self.err(
                        open.el.start_tag.start,
                        XmlErrorKind::TextTooLong {
                            name: open.el.name.clone(),
                        },
                    ));
                }
            }
            match c {
                b'<' => {
                    // Comments are recognised before the escape is looked at.
                    if self.at(self.pos + 1) == Some(b'!') {
                        let comment = self.comment()?;
                        self.pos = comment.span.end;
                        self.push_node(Node::Comment(comment));
                        continue;
                    }
                    let escaped = match self.stack.last_mut() {
                        Some(open) => std::mem::take(&mut open.escaped),
                        None => std::mem::take(&mut top_escaped),
                    };
                    if escaped {
                        if let Some(open) = self.stack.last_mut() {
                            open.run.push(b'<');
                        }
                        self.pos += 1;
                        continue;
                    }
                    match self.at(self.pos + 1) {
                        Some(b'/') => self.end_tag()?,
                        Some(b'?') => {
                            let kind = if self.b[self.pos..].starts_with(b"<?xml") {
                                XmlErrorKind::XmlDeclaration
                            } else {
                                XmlErrorKind::ProcessingInstruction
                            };
                            return Err(self.err(self.pos, kind));
                        }
                        Some(n) if is_name_start(n) => self.start_tag()?,
                        _ => return Err(self.err(self.pos, XmlErrorKind::RawLessThan)),
                    }
                }
                _ => {
                    let escaped = match self.stack.last_mut() {
                        Some(open) => {
                            open.run.push(c);
                            &mut open.escaped
                        }
                        None => &mut top_escaped,
                    };
                    *escaped = if c == b'\\' { !*escaped } else { false };
                    self.pos += 1;
                }
            }
        }
    }

    fn push_node(&mut self, node: Node) {
        match self.stack.last_mut() {
            Some(open) => open.el.nodes.push(node),
            None => self.top.push(node),
        }
    }

    /// `<!…` at `self.pos`.
    fn comment(&self) -> Result<Comment, XmlError> {
        let start = self.pos;
        let rest = &self.b[start..];
        if rest.starts_with(b"<![") {
            return Err(self.err(start, XmlErrorKind::Cdata));
        }
        if rest.len() >= 9 && rest[..9].eq_ignore_ascii_case(b"<!DOCTYPE") {
            return Err(self.err(start, XmlErrorKind::Doctype));
        }
        if rest.get(2).is_some_and(u8::is_ascii_uppercase) {
            let word: String = rest[2..]
                .iter()
                .take_while(|b| b.is_ascii_alphabetic())
                .map(|&b| b as char)
                .collect();
            return Err(self.err(start, XmlErrorKind::Declaration(word)));
        }
        let mut i = start + 2;
        let end = loop {
            match self.b.get(i..i + 2) {
                None => return Err(self.err(start, XmlErrorKind::UnclosedComment)),
                Some(b"!>") => break i + 2,
                Some(b"--") if self.at(i + 2) == Some(b'>') => break i + 3,
                Some(_) => i += 1,
            }
        };
        let dashes =
            rest.starts_with(b"<!--") && self.b[..end].ends_with(b"-->") && end >= start + 7;
        let body = if dashes {
            Span::new(start + 4, end - 3)
        } else {
            let term = if self.b[..end].ends_with(b"-->") {
                3
            } else {
                2
            };
            Span::new(start + 2, (end - term).max(start + 2))
        };
        Ok(Comment {
            span: Span::new(start, end),
            body,
        })
    }

    /// `<name…` at `self.pos`.
    fn start_tag(&mut self) -> Result<(), XmlError> {
        let start = self.pos;
        let name_start = start + 1;
        let mut i = name_start;
        loop {
            let Some(c) = self.at(i) else {
                return Err(self.err(start, XmlErrorKind::EofInTag));
            };
            if is_space(c) || c == b'>' || c == b'/' {
                break;
            }
            if matches!(c, b'<' | b'=' | b'"' | b'\'') {
                return Err(self.err(i, XmlErrorKind::InvalidName(c as char)));
            }
            i += 1;
            if i - name_start >= MAX_TEXT_LEN {
                return Err(self.err(start, XmlErrorKind::NameTooLong));
            }
        }
        let name_span = Span::new(name_start, i);
        let mut attributes: Vec<Attribute> = Vec::new();
        let mut self_closing = false;
        let mut runs = 1;
        loop {
            let Some(c) = self.at(i) else {
                return Err(self.err(start, XmlErrorKind::EofInTag));
            };
            if is_space(c) {
                i += 1;
                continue;
            }
            if c == b'>' {
                i += 1;
                break;
            }
            if c == b'/' {
                if self.at(i + 1) != Some(b'>') {
                    return Err(self.err(i, XmlErrorKind::BadSelfClose));
                }
                self_closing = true;
                i += 2;
                break;
            }
            // An attribute: name="value" or name='value'.
            let attr_start = i;
            while let Some(c) = self.at(i) {
                if c == b'=' {
                    break;
                }
                if is_space(c) || c == b'>' || c == b'/' {
                    let name = self.lossy(Span::new(attr_start, i));
                    return Err(self.err(attr_start, XmlErrorKind::AttributeWithoutValue(name)));
                }
                i += 1;
                if i - attr_start >= MAX_TEXT_LEN {
                    return Err(self.err(attr_start, XmlErrorKind::NameTooLong));
                }
            }
            if self.at(i).is_none() {
                return Err(self.err(start, XmlErrorKind::EofInTag));
            }
            let attr_name = Span::new(attr_start, i);
            let name = self.lossy(attr_name);
            let bad_name = attr_name.is_empty()
                || attr_name
                    .of(self.b)
                    .iter()
                    .any(|&b| matches!(b, b'<' | b'"' | b'\''));
            if bad_name {
                return Err(self.err(attr_start, XmlErrorKind::InvalidAttributeName(name)));
            }
            if attributes.iter().any(|a| a.name == name) {
                return Err(self.err(attr_start, XmlErrorKind::DuplicateAttribute(name)));
            }
            i += 1;
            while self.at(i).is_some_and(is_space) {
                i += 1;
            }
            let quote = match self.at(i) {
                Some(q @ (b'"' | b'\'')) => q,
                Some(_) => return Err(self.err(attr_start, XmlErrorKind::AttributeNotQuoted(name))),
                None => return Err(self.err(start, XmlErrorKind::EofInTag)),
            };
            i += 1;
            let value_start = i;
            loop {
                match self.at(i) {
                    None => return Err(self.err(start, XmlErrorKind::EofInTag)),
                    Some(c) if c == quote => break,
                    Some(b'>') => {
                        return Err(self.err(attr_start, XmlErrorKind::AttributeNotClosed(name)))
                    }
                    Some(_) => i += 1,
                }
                if i - value_start >= MAX_TEXT_LEN {
                    return Err(self.err(attr_start, XmlErrorKind::NameTooLong));
                }
            }
            let value = self.b[value_start..i].to_vec();
            i += 1;
            attributes.push(Attribute {
                name: name.clone(),
                value,
                span: Span::new(attr_start, i),
            });
            match self.at(i) {
                Some(c) if is_space(c) => {
                    runs += 1;
                    if runs > MAX_ATTRIBUTE_RUNS {
                        return Err(self.err(attr_start, XmlErrorKind::TooManyAttributes));
                    }
                }
                Some(b'>' | b'/') => {}
                Some(_) => {
                    return Err(self.err(attr_start, XmlErrorKind::BadAttributeClosing(name)))
                }
                None => return Err(self.err(start, XmlErrorKind::EofInTag)),
            }
        }
        let (line, column) = line_column(self.b, start);
        let start_tag = Span::new(start, i);
        let el = Element {
            name: self.lossy(name_span),
            start_tag,
            content: Span::new(i, i),
            end_tag: None,
            attributes,
            nodes: Vec::new(),
            line,
            column,
            text: Vec::new(),
        };
        self.pos = i;
        // The parent's text starts over after a child.
        if let Some(parent) = self.stack.last_mut() {
            parent.run.clear();
        }
        if self_closing {
            self.push_node(Node::Element(el));
        } else {
            if self.stack.len() >= MAX_DEPTH {
                return Err(self.err(start, XmlErrorKind::TooDeep));
            }
            self.stack.push(Open {
                el,
                name: name_span,
                run: Vec::new(),
                escaped: false,
            });
        }
        Ok(())
    }

    /// `</…` at `self.pos`.
    fn end_tag(&mut self) -> Result<(), XmlError> {
        let start = self.pos;
        let name_start = start + 2;
        let Some(len) = self.b[name_start.min(self.b.len())..]
            .iter()
            .position(|&c| c == b'>')
        else {
            return Err(self.err(start, XmlErrorKind::EofInTag));
        };
        let name_span = Span::new(name_start, name_start + len);
        let end = name_span.end + 1;
        let Some(open) = self.stack.last() else {
            let name = self.lossy(name_span);
            return Err(self.err(start, XmlErrorKind::NotOpened { name }));
        };
        if name_span.of(self.b) != open.name.of(self.b) {
            let kind = XmlErrorKind::Mismatched {
                expected: open.el.name.clone(),
                found: self.lossy(name_span),
                opened_line: open.el.line,
            };
            return Err(self.err(start, kind));
        }
        let Some(Open { mut el, run, .. }) = self.stack.pop() else {
            return Err(self.err(
                start,
                XmlErrorKind::NotOpened {
                    name: self.lossy(name_span),
                },
            ));
        };
        el.content = Span::new(el.start_tag.end, start);
        el.end_tag = Some(Span::new(start, end));
        el.text = run;
        self.pos = end;
        if let Some(parent) = self.stack.last_mut() {
            parent.run.clear();
        }
        self.push_node(Node::Element(el));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(src: &str) -> XmlErrorKind {
        parse(src.as_bytes()).unwrap_err().kind
    }

    #[test]
    fn spans_text_and_children() {
        let src = b"<!-- c --><a x='1' y=\"2\">\n  <b>v&amp;></b><c/>\n  tail </a><a/>";
        let doc = parse(src).unwrap();
        let roots: Vec<_> = doc.roots().collect();
        assert_eq!(roots.len(), 2);
        let a = roots[0];
        assert_eq!(a.name, "a");
        assert_eq!(a.start_tag.of(src), b"<a x='1' y=\"2\">");
        assert_eq!(a.end_tag.unwrap().of(src), b"</a>");
        assert_eq!(a.attribute("y"), Some(&b"2"[..]));
        let b = a.child("b").unwrap();
        assert_eq!(b.text(), b"v&amp;>");
        assert_eq!(b.content.of(src), b"v&amp;>");
        assert!(a.child("c").unwrap().is_self_closing());
        assert_eq!(a.text(), b"\n  tail ");
        assert_eq!(a.trimmed_text(), "tail");
        assert_eq!(doc.comments().next().unwrap().body(src), b" c ");
        assert!(roots[1].is_self_closing());
    }

    #[test]
    fn wazuh_comment_forms() {
        // A comment ends at the first `!>`: the rest is text.
        let doc = parse(b"<a><!-- x !> <b/> --></a>").unwrap();
        let a = doc.roots().next().unwrap();
        assert_eq!(a.children().count(), 1);
        assert_eq!(a.text(), b" -->");
        assert!(parse(b"<a><!-- x -- y --></a>").is_ok());
        assert!(parse(b"<a><!--></a>").is_ok());
    }

    #[test]
    fn backslash_escapes_a_less_than() {
        let doc = parse(b"<a>x \\<y</a>").unwrap();
        assert_eq!(doc.roots().next().unwrap().text(), b"x \\<y");
        assert_eq!(kind("<a>x \\\\< y</a>"), XmlErrorKind::RawLessThan);
    }

    #[test]
    fn refusals() {
        assert_eq!(
            kind("<?xml version=\"1.0\"?>\n<a/>"),
            XmlErrorKind::XmlDeclaration
        );
        assert_eq!(kind("<a><![CDATA[x]]></a>"), XmlErrorKind::Cdata);
        assert_eq!(kind("<!DOCTYPE a>\n<a/>"), XmlErrorKind::Doctype);
        assert_eq!(kind("<a>1 < 2</a>"), XmlErrorKind::RawLessThan);
        assert_eq!(kind("<a><!-- x </a>"), XmlErrorKind::UnclosedComment);
        assert!(matches!(kind("<a></a >"), XmlErrorKind::Mismatched { .. }));
        assert!(matches!(
            kind("<a><b></a>"),
            XmlErrorKind::Mismatched { .. }
        ));
        assert!(matches!(kind("<a>"), XmlErrorKind::Unclosed { .. }));
        assert!(matches!(kind("</a>"), XmlErrorKind::NotOpened { .. }));
        assert!(matches!(
            kind("<a x ='1'/>"),
            XmlErrorKind::AttributeWithoutValue(_)
        ));
        assert!(matches!(
            kind("<a x=1/>"),
            XmlErrorKind::AttributeNotQuoted(_)
        ));
        assert!(matches!(
            kind("<a x='>'/>"),
            XmlErrorKind::AttributeNotClosed(_)
        ));
        assert!(matches!(
            kind("<a x='1'y='2'/>"),
            XmlErrorKind::BadAttributeClosing(_)
        ));
        assert!(matches!(
            kind("<a x='1' x='2'/>"),
            XmlErrorKind::DuplicateAttribute(_)
        ));
    }

    #[test]
    fn text_limit_is_wazuhs() {
        let ok = format!("<a>{}</a>", "x".repeat(MAX_TEXT_LEN - 1));
        assert!(parse(ok.as_bytes()).is_ok());
        let long = format!("<a>{}</a>", "x".repeat(MAX_TEXT_LEN));
        assert!(matches!(kind(&long), XmlErrorKind::TextTooLong { .. }));
        // Comments do not count, children start a new run.
        let split = format!("<a>{0}<!--c-->{0}<b/>{0}</a>", "x".repeat(MAX_TEXT_LEN / 2));
        assert!(matches!(kind(&split), XmlErrorKind::TextTooLong { .. }));
        let runs = format!("<a>{0}<b/>{0}</a>", "x".repeat(MAX_TEXT_LEN - 1));
        assert!(parse(runs.as_bytes()).is_ok());
    }

    #[test]
    fn depth_limit() {
        let ok = format!("{}{}", "<a>".repeat(MAX_DEPTH), "</a>".repeat(MAX_DEPTH));
        assert!(parse(ok.as_bytes()).is_ok());
        let deep = format!(
            "{}{}",
            "<a>".repeat(MAX_DEPTH + 1),
            "</a>".repeat(MAX_DEPTH + 1)
        );
        assert_eq!(kind(&deep), XmlErrorKind::TooDeep);
    }

    #[test]
    fn positions_are_lines_and_characters() {
        let err = parse("\u{feff}<a>\n\té <".as_bytes()).unwrap_err();
        assert_eq!((err.line, err.column), (2, 4));
        let err = parse(b"\xEF\xBB\xBF<?xml?>").unwrap_err();
        assert_eq!((err.line, err.column), (1, 1));
        assert!(err
            .to_string()
            .starts_with("line 1, column 1: an XML declaration"));
    }

    #[test]
    fn top_level_text_and_bom_are_skipped() {
        let doc = parse(b"\xEF\xBB\xBFjunk\r\n<a/>\r\n").unwrap();
        assert!(doc.bom);
        assert_eq!(doc.roots().count(), 1);
    }
}
