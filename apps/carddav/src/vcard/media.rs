//! Photos kept apart from the card text (issue 10, "Photos").
//!
//! A card a client PUTs may carry its photo inline: vCard 3.0 `PHOTO;ENCODING=b;TYPE=JPEG:…`
//! (RFC 2426 §3.1.4, also `ENCODING=BASE64` from older writers), vCard 4.0
//! `PHOTO:data:image/jpeg;base64,…` (RFC 6350 §6.2.4 with an RFC 2397 `data:` URI), or a
//! reference `PHOTO;VALUE=uri:https://…`. `LOGO` (RFC 2426 §3.5.3, RFC 6350 §6.6.3) has the same
//! forms and the same typical size, so it is treated exactly like `PHOTO`; `SOUND` and `KEY`
//! stay in the text (rare, and counted against the text limit).
//!
//! [`split`] cuts every `PHOTO`/`LOGO` content line of at least [`SPLIT_MIN`] bytes out of the
//! text, byte for byte (the property name, its parameters, its folded continuation lines and its
//! line break), and remembers where it was: the store keeps the rest of the card as the record's
//! text and the pieces apart, so listings never load them. [`reassemble`] inserts them back, and
//! the result is exactly the bytes the client sent (and so has the ETag computed over them).
//! Shorter lines (URI references, tiny icons) stay in the text: they cost nothing to list.
//!
//! Limits (RFC 6352 §6.3.2.1 `max-resource-size`): the card without its photo and logo lines
//! may have [`MAX_TEXT_BYTES`] (the same 1 MiB as before photos were split), the photo and logo
//! lines together [`MAX_MEDIA_BYTES`]; the server advertises the sum, [`MAX_RESOURCE_BYTES`].
use super::lines::{colon_index, logical_lines};
use super::{CardError, MAX_CARD_BYTES};

/// The properties whose large values are stored apart from the text.
pub const MEDIA_PROPERTIES: [&str; 2] = ["PHOTO", "LOGO"];
/// Media content lines shorter than this (raw bytes, folding included) stay in the text.
pub const SPLIT_MIN: usize = 1024;
/// The most bytes a card may have without its `PHOTO`/`LOGO` lines (1 MiB).
pub const MAX_TEXT_BYTES: usize = MAX_CARD_BYTES;
/// The most bytes a card's `PHOTO`/`LOGO` content lines may have together (3 MiB of base64: a
/// JPEG of about 2.2 MB, well above what phones store for a contact — iOS and Android keep
/// contact photos at or below roughly 1 MB).
pub const MAX_MEDIA_BYTES: usize = 3 << 20;
/// The largest card accepted, advertised as `max-resource-size` (RFC 6352 §6.2.3).
pub const MAX_RESOURCE_BYTES: usize = MAX_TEXT_BYTES + MAX_MEDIA_BYTES;

/// A card with its large media lines cut out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitCard {
    /// The card without the pieces.
    pub text: String,
    /// (offset in `text`, piece), in text order: each piece goes back at its offset.
    pub pieces: Vec<(usize, String)>,
}

/// Whether a content line's name (after an optional `group.`) is a media property.
fn is_media_line(content: &str) -> bool {
    let end = content.find([';', ':']).unwrap_or(content.len());
    let name = &content[..end];
    let name = name.rsplit('.').next().unwrap_or(name);
    MEDIA_PROPERTIES
        .iter()
        .any(|m| name.eq_ignore_ascii_case(m))
}

/// Cuts the large `PHOTO`/`LOGO` content lines out of `card`. Refuses a card over the limits
/// with [`CardError::TooLarge`]: text (everything but media lines) above [`MAX_TEXT_BYTES`] or
/// media lines above [`MAX_MEDIA_BYTES`]. A media line without a `:` is left in the text, so
/// the card's validation reports it. Linear in the card's size.
pub fn split(card: &str) -> Result<SplitCard, CardError> {
    if card.len() > MAX_RESOURCE_BYTES {
        return Err(CardError::TooLarge);
    }
    let lines = logical_lines(card, None)?;
    let mut media_bytes = 0usize;
    let mut cut: Vec<(usize, usize)> = Vec::new();
    for l in &lines {
        if !is_media_line(&l.content) || colon_index(&l.content).is_none() {
            continue;
        }
        let len = l.end - l.start;
        media_bytes += len;
        if len >= SPLIT_MIN {
            cut.push((l.start, l.end));
        }
    }
    if media_bytes > MAX_MEDIA_BYTES || card.len() - media_bytes > MAX_TEXT_BYTES {
        return Err(CardError::TooLarge);
    }
    let mut text =
        String::with_capacity(card.len() - cut.iter().map(|(s, e)| e - s).sum::<usize>());
    let mut pieces = Vec::with_capacity(cut.len());
    let mut pos = 0;
    for (start, end) in cut {
        text.push_str(&card[pos..start]);
        pieces.push((text.len(), card[start..end].to_owned()));
        pos = end;
    }
    text.push_str(&card[pos..]);
    Ok(SplitCard { text, pieces })
}

/// Puts pieces back into `text` at their offsets (ascending; equal offsets keep list order).
/// `None` if an offset is out of order, past the end or not on a character boundary (a damaged
/// record).
pub fn reassemble<'a>(
    text: &str,
    pieces: impl IntoIterator<Item = (usize, &'a str)>,
) -> Option<String> {
    let pieces: Vec<(usize, &str)> = pieces.into_iter().collect();
    let extra: usize = pieces.iter().map(|(_, p)| p.len()).sum();
    let mut out = String::with_capacity(text.len() + extra);
    let mut pos = 0;
    for (offset, piece) in pieces {
        if offset < pos || !text.is_char_boundary(offset) {
            return None;
        }
        out.push_str(text.get(pos..offset)?);
        out.push_str(piece);
        pos = offset;
    }
    out.push_str(text.get(pos..)?);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(n: usize) -> String {
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        (0..n).map(|i| alphabet[i * 7 % 64] as char).collect()
    }

    /// Folds `line` at 75 octets with CRLF + space (RFC 6350 §3.2).
    fn folded(line: &str) -> String {
        let mut out = String::new();
        for (i, chunk) in line.as_bytes().chunks(74).enumerate() {
            if i > 0 {
                out.push_str("\r\n ");
            }
            out.push_str(std::str::from_utf8(chunk).unwrap_or(""));
        }
        out.push_str("\r\n");
        out
    }

    fn round_trip(card: &str) -> SplitCard {
        let s = split(card).expect("splits");
        let back = reassemble(&s.text, s.pieces.iter().map(|(o, p)| (*o, p.as_str())));
        assert_eq!(
            back.as_deref(),
            Some(card),
            "reassembly gives the exact bytes"
        );
        s
    }

    #[test]
    fn v3_inline_base64_folded() {
        let photo = folded(&format!("PHOTO;ENCODING=b;TYPE=JPEG:{}", b64(4000)));
        let card = format!(
            "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:a\r\nFN:A\r\n{photo}NOTE:after\r\nEND:VCARD\r\n"
        );
        let s = round_trip(&card);
        assert_eq!(s.pieces.len(), 1);
        assert_eq!(s.pieces[0].1, photo);
        assert_eq!(
            s.text,
            "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:a\r\nFN:A\r\nNOTE:after\r\nEND:VCARD\r\n"
        );
        assert!(
            super::super::parse(s.text.as_bytes()).is_ok(),
            "the rest is a valid card"
        );
    }

    #[test]
    fn v3_encoding_base64_lf_and_group() {
        let photo = format!("item1.photo;encoding=BASE64;type=png:{}\n", b64(2000));
        let card = format!("BEGIN:VCARD\nVERSION:3.0\nUID:a\nFN:A\n{photo}END:VCARD\n");
        let s = round_trip(&card);
        assert_eq!(s.pieces, vec![(35, photo)]);
    }

    #[test]
    fn v4_data_uri() {
        let photo = folded(&format!("PHOTO:data:image/jpeg;base64,{}", b64(3000)));
        let card = format!("BEGIN:VCARD\r\nVERSION:4.0\r\nUID:a\r\nFN:A\r\n{photo}END:VCARD\r\n");
        let s = round_trip(&card);
        assert_eq!(s.pieces.len(), 1);
        assert!(!s.text.contains("PHOTO"));
    }

    #[test]
    fn uri_reference_stays_in_the_text() {
        let card = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:a\r\nFN:A\r\n\
                    PHOTO;VALUE=uri:https://example.com/a.jpg\r\nEND:VCARD\r\n";
        let s = round_trip(card);
        assert!(s.pieces.is_empty());
        assert_eq!(s.text, card);
    }

    #[test]
    fn several_photos_and_logos_keep_their_order() {
        let p1 = folded(&format!("PHOTO;ENCODING=b;TYPE=JPEG:{}", b64(1500)));
        let p2 = folded(&format!("PHOTO;ENCODING=b;TYPE=PNG:{}", b64(1600)));
        let logo = folded(&format!("LOGO;ENCODING=b;TYPE=GIF:{}", b64(1700)));
        let card =
            format!("BEGIN:VCARD\r\nVERSION:3.0\r\n{p1}{p2}UID:a\r\n{logo}FN:A\r\nEND:VCARD\r\n");
        let s = round_trip(&card);
        assert_eq!(s.pieces.len(), 3);
        assert_eq!(
            s.pieces[0].0, s.pieces[1].0,
            "adjacent pieces share an offset"
        );
        assert_eq!(s.pieces[1].1, p2);
        assert_eq!(s.pieces[2].1, logo);
        assert_eq!(
            s.text,
            "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:a\r\nFN:A\r\nEND:VCARD\r\n"
        );
    }

    #[test]
    fn multibyte_text_around_photos() {
        let photo = folded(&format!("PHOTO:data:image/png;base64,{}", b64(1200)));
        let card = format!(
            "BEGIN:VCARD\r\nVERSION:4.0\r\nUID:é\r\nFN:李 👩‍👩‍👧\r\n{photo}NOTE:שלום\r\nEND:VCARD\r\n"
        );
        round_trip(&card);
    }

    #[test]
    fn limits() {
        let big_photo = format!("PHOTO;ENCODING=b:{}\r\n", b64(MAX_MEDIA_BYTES));
        let card =
            format!("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:a\r\nFN:A\r\n{big_photo}END:VCARD\r\n");
        assert_eq!(split(&card), Err(CardError::TooLarge));
        let ok_photo = format!("PHOTO;ENCODING=b:{}\r\n", b64(MAX_MEDIA_BYTES - 100));
        let card =
            format!("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:a\r\nFN:A\r\n{ok_photo}END:VCARD\r\n");
        assert!(split(&card).is_ok(), "photos up to the photo limit");
        let note = format!("NOTE:{}\r\n", "x".repeat(MAX_TEXT_BYTES));
        let card = format!("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:a\r\nFN:A\r\n{note}END:VCARD\r\n");
        assert_eq!(
            split(&card),
            Err(CardError::TooLarge),
            "text has its own limit"
        );
    }

    #[test]
    fn damaged_offsets_are_refused() {
        assert_eq!(reassemble("abc", [(4, "x")]), None);
        assert_eq!(reassemble("abc", [(2, "x"), (1, "y")]), None);
        assert_eq!(reassemble("é", [(1, "x")]), None);
        assert_eq!(reassemble("abc", [(3, "x")]).as_deref(), Some("abcx"));
    }
}
