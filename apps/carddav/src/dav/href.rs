//! `DAV:href` values: encoding paths for output, decoding and normalising client hrefs.
//!
//! Inside this module and its callers, paths are kept **decoded** (as the host hands segments to
//! the app); they are percent-encoded exactly once, when written ([`encode_href`]).

use std::borrow::Cow;

/// Percent-encodes a decoded path (or URL) for a `DAV:href` (RFC 4918 §8.3, RFC 3986 §3.3).
///
/// Keeps the characters a path segment may carry literally — unreserved
/// (`A-Z a-z 0-9 - . _ ~`), sub-delims (`! $ & ' ( ) * + , ; =`), `:` and `@` — and `/` as the
/// segment separator; everything else, `%` included, is encoded as UTF-8 octets (`%20`, `%C3%A9`).
/// So the input must be decoded: `a%20b` comes out as `a%2520b`.
///
/// A full URL passes through unchanged as far as its scheme and authority use only these
/// characters (`http://host:8080/p` and `mailto:a@b` do); `?` and `#` are encoded.
pub fn encode_href(path: &str) -> Cow<'_, str> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    if path.bytes().all(is_path_char) {
        return Cow::Borrowed(path);
    }
    let mut out = String::with_capacity(path.len() + 16);
    for b in path.bytes() {
        if is_path_char(b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    Cow::Owned(out)
}

/// Bytes a path keeps as they are: unreserved, sub-delims, `:`, `@` and `/` (RFC 3986 §3.3).
const PATH_CHARS: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'@'
                    | b'/'
            );
        b += 1;
    }
    t
};

fn is_path_char(b: u8) -> bool {
    PATH_CHARS[usize::from(b)]
}

/// Decodes `%XX` escapes. `None` for a malformed escape (`%4`, `%zz`) or if the decoded octets
/// are not UTF-8. `+` stays `+` (it means space only in form data, never in a path).
pub fn percent_decode(s: &str) -> Option<String> {
    if !s.contains('%') {
        return Some(s.to_owned());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hi = bytes.get(i + 1).copied().and_then(hex_value)?;
            let lo = bytes.get(i + 2).copied().and_then(hex_value)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Turns an href a client sent (in a multiget, a `Destination`, …) into a decoded path relative
/// to the installation base, e.g. `"addressbook/customers/abc.vcf"`.
///
/// Accepts an absolute path (`/api/apps/o/i/addressbook/customers/abc.vcf`), a full URL with any
/// scheme and authority (`https://dav.example:8443/api/…`; RFC 4918 §8.3 allows both), and
/// percent-encoded forms of either (`abc%2Evcf`, `%C3%A9`). Query and fragment are dropped;
/// surrounding whitespace is ignored. `base_path` is the installation base as in
/// `AppRequest::base_path` (absolute, with or without the trailing `/`, encoded or not).
///
/// A trailing `/` is kept (`addressbook/customers/`); the base itself gives `""`.
///
/// `None` if the href is outside `base_path`, is relative (`abc.vcf` — it would be relative to the
/// request URI, which this function does not know; no client in practice sends one), has a `.`
/// or `..` segment (encoded or not), an empty segment (`a//b`), an encoded `/` inside a segment
/// (`%2F`), a malformed escape, or decodes to something that is not UTF-8.
pub fn normalize_href(href: &str, base_path: &str) -> Option<String> {
    HrefBase::new(base_path)?.normalize(href)
}

/// A base path decoded once, for normalizing many hrefs against it (a multiget names up to
/// 100,000): [`HrefBase::normalize`] is [`normalize_href`] with this base.
#[derive(Debug, Clone)]
pub struct HrefBase {
    /// The base path as given (trimmed), when it ends with `/`: an href starting with it
    /// textually starts with it segment by segment.
    raw: Option<String>,
    /// The decoded segments of the base, without a final empty one.
    segments: Vec<String>,
}

impl HrefBase {
    /// `None` if `base_path` itself is not an acceptable absolute path (then no href is inside).
    pub fn new(base_path: &str) -> Option<Self> {
        let trimmed = href_path(base_path.trim())?;
        let mut segments = decode_segments(trimmed)?;
        // Both start with "" (the leading slash); a trailing slash shows as a final "".
        if segments.len() > 1 && segments.last().is_some_and(String::is_empty) {
            segments.pop();
        }
        let raw =
            (trimmed.ends_with('/') && !trimmed.contains(['?', '#'])).then(|| trimmed.to_owned());
        Some(HrefBase { raw, segments })
    }

    /// The part of `href` inside this base, decoded (see [`normalize_href`]).
    pub fn normalize(&self, href: &str) -> Option<String> {
        let path = href_path(href.trim())?;
        // The common case: the client names a member with the exact spelling the server gave,
        // in segments of plain characters, so decoding would change nothing.
        if let Some(rest) = self.raw.as_deref().and_then(|raw| path.strip_prefix(raw)) {
            if is_plain_relative(rest) {
                return Some(rest.to_owned());
            }
        }
        self.normalize_path(path)
    }

    /// [`HrefBase::normalize`] of an href's path, decoding every segment.
    fn normalize_path(&self, path: &str) -> Option<String> {
        let path = path.split(['?', '#']).next().unwrap_or("");
        let segments = decode_segments(path)?;
        let base = &self.segments[..];
        if segments.len() < base.len() || segments[..base.len()] != *base {
            return None;
        }
        let rest = &segments[base.len()..];
        // Interior empty segments are refused; only a final one (trailing slash) is allowed.
        let interior = rest.split_last().map_or(&[][..], |(_, interior)| interior);
        if interior.iter().any(String::is_empty) {
            return None;
        }
        Some(rest.join("/"))
    }
}

/// Whether `rest` is a non-empty relative path that decoding and normalizing leave as it is:
/// segments of unreserved characters, none a dot segment, none empty but the last.
fn is_plain_relative(rest: &str) -> bool {
    let plain = |seg: &str| {
        seg != "."
            && seg != ".."
            && seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
    };
    let mut segments = rest.split('/');
    let last = segments.next_back();
    !rest.is_empty() && last.is_some_and(plain) && segments.all(|s| !s.is_empty() && plain(s))
}

/// The path part of an absolute path or a full URL (`scheme://authority/path`); `None` for a
/// relative reference. A URL with no path (`http://host`) gives `/`.
fn href_path(href: &str) -> Option<&str> {
    if href.starts_with('/') {
        // A network-path reference (`//host/path`, RFC 3986 §4.2) names a host, not a path.
        return if let Some(authority_and_path) = href.strip_prefix("//") {
            authority_and_path
                .find('/')
                .map(|i| &authority_and_path[i..])
                .or(Some("/"))
        } else {
            Some(href)
        };
    }
    let (scheme, rest) = href.split_once("://")?;
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return None;
    }
    Some(rest.find('/').map_or("/", |i| &rest[i..]))
}

/// Splits an absolute path at `/` and decodes each segment, refusing dot segments and encoded
/// slashes. The first element is always `""` (before the leading slash).
fn decode_segments(path: &str) -> Option<Vec<String>> {
    if !path.starts_with('/') {
        return None;
    }
    path.split('/')
        .map(|raw| {
            let seg = percent_decode(raw)?;
            if seg == "." || seg == ".." || seg.contains('/') {
                None
            } else {
                Some(seg)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "/api/apps/acme/4f0c/";

    #[test]
    fn encodes_only_what_must_be() {
        assert_eq!(
            encode_href("/api/apps/acme/4f0c/addressbook/"),
            "/api/apps/acme/4f0c/addressbook/"
        );
        assert_eq!(encode_href("/a b/é.vcf"), "/a%20b/%C3%A9.vcf");
        assert_eq!(encode_href("/x/100%"), "/x/100%25");
        assert_eq!(encode_href("/x/a?b#c\"<>"), "/x/a%3Fb%23c%22%3C%3E");
        assert_eq!(encode_href("/x/!$&'()*+,;=:@-._~"), "/x/!$&'()*+,;=:@-._~");
        assert_eq!(encode_href("mailto:a@example.com"), "mailto:a@example.com");
        assert_eq!(encode_href("https://h:8443/p q"), "https://h:8443/p%20q");
    }

    #[test]
    fn decode_round_trips_encode() {
        for s in ["/a b/é.vcf", "/x/100%", "/✓/\u{10ffff}", "/plain"] {
            assert_eq!(percent_decode(&encode_href(s)).as_deref(), Some(s));
        }
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%ff"), None);
        assert_eq!(percent_decode("a+b").as_deref(), Some("a+b"));
    }

    #[test]
    fn normalizes_client_hrefs() {
        let cases: &[(&str, Option<&str>)] = &[
            (
                "/api/apps/acme/4f0c/addressbook/customers/abc.vcf",
                Some("addressbook/customers/abc.vcf"),
            ),
            (
                "  /api/apps/acme/4f0c/addressbook/customers/abc.vcf\n",
                Some("addressbook/customers/abc.vcf"),
            ),
            (
                "https://dav.example.com/api/apps/acme/4f0c/addressbook/customers/abc.vcf",
                Some("addressbook/customers/abc.vcf"),
            ),
            (
                "http://127.0.0.1:8080/api/apps/acme/4f0c/addressbook/customers/abc.vcf?x=1#f",
                Some("addressbook/customers/abc.vcf"),
            ),
            (
                "//dav.example.com/api/apps/acme/4f0c/addressbook/customers/abc.vcf",
                Some("addressbook/customers/abc.vcf"),
            ),
            (
                "/api/apps/acme/4f0c/addressbook/customers/abc%2Evcf",
                Some("addressbook/customers/abc.vcf"),
            ),
            (
                "/api/apps/acme/4f0c/addressbook/customers/%C3%A9l%20o.vcf",
                Some("addressbook/customers/él o.vcf"),
            ),
            (
                "/api/%61pps/acme/4f0c/addressbook/customers/abc.vcf",
                Some("addressbook/customers/abc.vcf"),
            ),
            (
                "/api/apps/acme/4f0c/addressbook/customers/",
                Some("addressbook/customers/"),
            ),
            ("/api/apps/acme/4f0c/", Some("")),
            ("/api/apps/acme/4f0c", Some("")),
            ("https://h", None),
            ("/api/apps/acme/other/addressbook/customers/abc.vcf", None),
            ("/api/apps/acme/4f0cX/addressbook/", None),
            ("/api/apps/acme/4f0c/addressbook/../../x", None),
            ("/api/apps/acme/4f0c/addressbook/%2e%2e/x", None),
            ("/api/apps/acme/4f0c/./addressbook/", None),
            ("/api/apps/acme/4f0c/addressbook//abc.vcf", None),
            ("/api/apps/acme/4f0c/addressbook/a%2Fb.vcf", None),
            ("/api/apps/acme/4f0c/addressbook/%ff.vcf", None),
            ("/api/apps/acme/4f0c/addressbook/%zz.vcf", None),
            ("/api/apps/acme/4f0c/addressbook/customers/./x.vcf", None),
            ("/api/apps/acme/4f0c/addressbook/customers/..", None),
            ("/api/apps/acme/4f0c/addressbook/customers/.", None),
            (
                "/api/apps/acme/4f0c/addressbook/customers/a.vcf/",
                Some("addressbook/customers/a.vcf/"),
            ),
            (
                "/api/apps/acme/4f0c/addressbook/customers/a~b_c-d.vcf",
                Some("addressbook/customers/a~b_c-d.vcf"),
            ),
            ("/api/apps/acme/4f0c//addressbook/", None),
            ("abc.vcf", None),
            ("", None),
            ("javascript:alert(1)", None),
        ];
        for (href, want) in cases {
            assert_eq!(normalize_href(href, BASE).as_deref(), *want, "{href}");
        }
        // The base may be given without its trailing slash, or encoded.
        assert_eq!(
            normalize_href("/api/apps/acme/4f0c/addressbook/", "/api/apps/acme/4f0c").as_deref(),
            Some("addressbook/")
        );
        assert_eq!(
            normalize_href("/a%20b/x.vcf", "/a b/").as_deref(),
            Some("x.vcf")
        );
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Encoding then normalizing gives the decoded relative path back, for any segment
        /// text that is not a dot segment and has no `/`.
        #[test]
        fn encode_then_normalize(segs in proptest::collection::vec("[^/]{1,12}", 1..4)) {
            prop_assume!(segs.iter().all(|s| s != "." && s != ".."));
            let rel = segs.join("/");
            let path = format!("/base/{rel}");
            let href = encode_href(&path);
            prop_assert!(href.is_ascii());
            prop_assert_eq!(normalize_href(&href, "/base/"), Some(rel));
        }

        /// The fast path for plainly spelled hrefs agrees with decoding every segment.
        #[test]
        fn fast_path_agrees_with_decoding(rest in "[a-z0-9./_~%-]{0,24}") {
            let base = HrefBase::new("/api/apps/o/i/").expect("base");
            let href = format!("/api/apps/o/i/{rest}");
            prop_assert_eq!(base.normalize(&href), base.normalize_path(&href));
        }

        #[test]
        fn normalize_never_panics(href in any::<String>()) {
            let _ = normalize_href(&href, "/api/apps/o/i/");
        }
    }
}
