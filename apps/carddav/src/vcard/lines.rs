//! Splitting card text into logical (unfolded) content lines, remembering where each came from.

use std::borrow::Cow;

use super::parse::header_is_quoted_printable;
use super::CardError;

/// One logical content line.
#[derive(Debug, Clone)]
pub(crate) struct RawLine<'a> {
    /// Byte offset of its first physical line.
    pub start: usize,
    /// Byte offset just after its last physical line (line terminator included).
    pub end: usize,
    /// 1-based number of its first physical line.
    pub line_no: usize,
    /// The unfolded content, without line terminators.
    pub content: Cow<'a, str>,
}

struct Builder<'a> {
    line: RawLine<'a>,
    /// Whether the header (before the first unquoted ':') says QUOTED-PRINTABLE; `None` until
    /// the header is complete.
    qp: Option<bool>,
}

impl<'a> Builder<'a> {
    fn push(&mut self, more: &str, end: usize, max: Option<usize>) -> Result<(), CardError> {
        if let Some(max) = max {
            if self.line.content.len() + more.len() > max {
                return Err(CardError::TooLarge);
            }
        }
        self.line.content.to_mut().push_str(more);
        self.line.end = end;
        Ok(())
    }

    /// A vCard 2.1-style soft line break: a quoted-printable value whose physical line ends in
    /// `=` continues on the next line, which does not start with whitespace.
    fn is_qp_soft_break(&mut self, next: &str) -> bool {
        if !self.line.content.ends_with('=') || next.eq_ignore_ascii_case("END:VCARD") {
            return false;
        }
        if self.qp.is_none() && colon_index(&self.line.content).is_some() {
            // Decided as `parse_line` decides it: a mere mention of QUOTED-PRINTABLE in another
            // parameter must not turn a fold (RFC 6350 §3.2) whose line ends in `=` into a soft
            // break, which would drop the `=` and keep the fold's space.
            self.qp = Some(header_is_quoted_printable(&self.line.content));
        }
        self.qp == Some(true)
    }
}

/// The index of the ':' that separates a content line's header from its value.
pub(crate) fn colon_index(content: &str) -> Option<usize> {
    let mut quoted = false;
    for (i, b) in content.bytes().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b':' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

/// The line terminator a text mostly uses: CRLF unless its first line ends with a bare LF.
pub(crate) fn line_ending(text: &str) -> &'static str {
    match text.find('\n') {
        Some(i) if i == 0 || text.as_bytes()[i - 1] != b'\r' => "\n",
        _ => "\r\n",
    }
}

/// Splits `text` into logical lines. Physical lines end in LF or CRLF; a line starting with a
/// space or tab continues the previous one (that one whitespace character is removed); blank
/// lines are skipped; a leading byte-order mark is ignored. With `max_line`, a logical line
/// longer than that is [`CardError::TooLarge`]. Linear in the length of `text`.
pub(crate) fn logical_lines(
    text: &str,
    max_line: Option<usize>,
) -> Result<Vec<RawLine<'_>>, CardError> {
    let mut pos = if text.starts_with('\u{feff}') { 3 } else { 0 };
    let mut out: Vec<RawLine<'_>> = Vec::new();
    let mut cur: Option<Builder<'_>> = None;
    for (idx, phys) in text[pos..].split_inclusive('\n').enumerate() {
        let start = pos;
        pos += phys.len();
        let body = phys.strip_suffix('\n').unwrap_or(phys);
        let body = body.strip_suffix('\r').unwrap_or(body);
        if body.is_empty() {
            continue;
        }
        if let Some(b) = cur.as_mut() {
            if b.is_qp_soft_break(body) {
                let content = b.line.content.to_mut();
                content.pop();
                b.push(body, pos, max_line)?;
                continue;
            }
            if body.starts_with([' ', '\t']) {
                b.push(&body[1..], pos, max_line)?;
                continue;
            }
        }
        if let Some(b) = cur.take() {
            out.push(b.line);
        }
        if let Some(max) = max_line {
            if body.len() > max {
                return Err(CardError::TooLarge);
            }
        }
        cur = Some(Builder {
            line: RawLine {
                start,
                end: pos,
                line_no: idx + 1,
                content: Cow::Borrowed(body),
            },
            qp: None,
        });
    }
    if let Some(b) = cur {
        out.push(b.line);
    }
    Ok(out)
}

/// Repairs a card whose folds split a multi-byte UTF-8 character (some exporters fold after
/// 75 octets without looking at characters, which RFC 6350 §3.2 forbids: "multi-octet
/// characters MUST remain contiguous"). Folds — a line break followed by one space or tab — are
/// removed at the byte level and every logical line is folded again on character boundaries
/// with the card's own line ending. `None` if the unfolded bytes are still not UTF-8; a card
/// that is already valid UTF-8 never needs this.
pub(crate) fn refold_octet_folds(bytes: &[u8]) -> Option<String> {
    let mut unfolded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let brk = match (bytes[i], bytes.get(i + 1)) {
            (b'\r', Some(b'\n')) => 2,
            (b'\n', _) => 1,
            _ => 0,
        };
        if brk > 0 && matches!(bytes.get(i + brk), Some(b' ' | b'\t')) {
            i += brk + 1;
            continue;
        }
        unfolded.push(bytes[i]);
        i += 1;
    }
    let text = String::from_utf8(unfolded).ok()?;
    let eol = line_ending(&text);
    let mut out = String::with_capacity(text.len() + text.len() / 24);
    for line in text.split_inclusive('\n') {
        let body = line.strip_suffix('\n').unwrap_or(line);
        let body = body.strip_suffix('\r').unwrap_or(body);
        super::write::fold_into(&mut out, body, eol);
        if line.ends_with('\n') {
            out.push_str(eol);
        }
    }
    Some(out)
}
