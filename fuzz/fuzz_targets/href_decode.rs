//! Path decoding: the gateway's `parse_gateway_path` / `decode_segment` (host) and the CardDAV
//! app's `normalize_href` / `percent_decode` (hrefs clients send in REPORT bodies and headers).
//!
//! Invariants: decoding never panics; a gateway path keeps the organization and installation
//! as written and yields exactly one decoded segment per non-empty raw segment (an encoded `/`
//! stays inside its segment), never `.`, `..`, empty or with a NUL, and only from a segment that
//! decodes on its own; a normalized href is relative to the installation base, has no `.`/`..`
//! or empty interior segment and no segment holding a `/`, and is the same whether the client
//! wrote an absolute path or a full URL.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portico_carddav::dav::{normalize_href, percent_decode};
use portico_host::gateway::{decode_segment, parse_gateway_path};

const BASE: &str = "/api/apps/org-1/inst-1/";

fuzz_target!(|data: &[u8]| {
    let Ok(tail) = std::str::from_utf8(data) else {
        return;
    };

    // The gateway, below a fixed installation.
    let raw = format!("{BASE}{tail}");
    if let Ok(p) = parse_gateway_path(&raw) {
        assert_eq!(p.org, "org-1");
        assert_eq!(p.installation, "inst-1");
        let raw_segments: Vec<&str> = tail.split('/').filter(|s| !s.is_empty()).collect();
        assert_eq!(p.segments.len(), raw_segments.len(), "{raw:?}");
        for (seg, raw_seg) in p.segments.iter().zip(&raw_segments) {
            assert!(seg != "." && seg != ".." && !seg.is_empty() && !seg.contains('\0'));
            assert_eq!(decode_segment(raw_seg).as_ref(), Some(seg));
            // A literal `/` inside a segment can only come from `%2F`.
            if seg.contains('/') {
                assert!(raw_seg.to_ascii_lowercase().contains("%2f"));
            }
        }
    }
    // Anything in front of the organization is not a gateway path.
    assert!(parse_gateway_path(tail).is_err() || tail.starts_with("/api/apps/"));
    if let Some(seg) = decode_segment(tail) {
        if !tail.contains('%') {
            assert_eq!(seg, tail);
        }
    }

    // CardDAV hrefs, as an absolute path and as a full URL.
    let decoded = percent_decode(tail);
    if !tail.contains('%') {
        assert_eq!(decoded.as_deref(), Some(tail));
    }
    let as_path = normalize_href(&raw, BASE);
    let as_url = normalize_href(&format!("https://dav.example:8443{raw}"), BASE);
    assert_eq!(as_path, as_url, "{raw:?}");
    if let Some(rel) = &as_path {
        assert!(!rel.starts_with('/'), "{raw:?} -> {rel:?}");
        let segments: Vec<&str> = rel.split('/').collect();
        let (_last, interior) = segments.split_last().unwrap_or((&"", &[]));
        for s in &segments {
            assert!(*s != "." && *s != "..", "{raw:?} -> {rel:?}");
        }
        assert!(interior.iter().all(|s| !s.is_empty()), "{raw:?} -> {rel:?}");
    }
    // Whatever the client writes as an href, resolving it never leaves the base.
    if let Some(rel) = normalize_href(tail, BASE) {
        let full = format!("{BASE}{rel}");
        assert!(full.starts_with(BASE));
        assert!(
            !rel.split('/').any(|s| s == ".." || s == "."),
            "{tail:?} -> {rel:?}"
        );
    }
});
