//! `.vcf` files holding many cards, as contact apps export them: split for import into customer
//! drafts, and written for export from the stored (or rendered) cards.
use crate::vcard::{self, VCardVersion};
use crate::write::project;
use portico_sdk::{Customer, CustomerDraft};
use std::borrow::Cow;

/// The most cards one file may hold.
pub const MAX_CARDS: usize = 100_000;

/// The cards of a `.vcf` file as customer drafts, each with the 1-based line its
/// `BEGIN:VCARD` is on, or the reason it was refused. Text outside the blocks is refused too
/// (with the line it is on). A card without a `UID` is accepted (exporters often omit it: the
/// customer gets its own). Returns `Err` for a file with no card at all or too many.
#[allow(clippy::type_complexity)]
pub fn drafts(text: &str) -> Result<Vec<(usize, Result<CustomerDraft, String>)>, String> {
    let mut out = Vec::new();
    let mut block: Option<(usize, String)> = None;
    for (i, raw) in text.split('\n').enumerate() {
        let n = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let upper = line.trim_end().to_ascii_uppercase();
        match &mut block {
            None if upper == "BEGIN:VCARD" => block = Some((n, format!("{line}\r\n"))),
            None if line.trim().is_empty() => {}
            None => out.push((
                n,
                Err("text outside a BEGIN:VCARD … END:VCARD block".into()),
            )),
            Some((_, buf)) => {
                buf.push_str(line);
                buf.push_str("\r\n");
                if upper == "END:VCARD" {
                    if let Some((start, card)) = block.take() {
                        out.push((start, draft_of(&card)));
                    }
                    if out.len() > MAX_CARDS {
                        return Err(format!("a file may hold at most {MAX_CARDS} cards"));
                    }
                }
            }
        }
    }
    if let Some((start, _)) = block {
        out.push((start, Err("the card has no END:VCARD".into())));
    }
    if out.is_empty() {
        return Err("the file holds no vCard".into());
    }
    Ok(out)
}

fn has_uid(card: &str) -> bool {
    card.split("\r\n").any(|l| {
        let u = l.get(..4).map(|p| p.to_ascii_uppercase());
        matches!(u.as_deref(), Some("UID:") | Some("UID;"))
    })
}

fn draft_of(card: &str) -> Result<CustomerDraft, String> {
    let text: Cow<'_, str> = if has_uid(card) {
        Cow::Borrowed(card)
    } else {
        // Only to satisfy the parser; the customer gets a fresh id and card UID.
        let end = card.len() - "END:VCARD\r\n".len();
        Cow::Owned(format!("{}UID:import\r\n{}", &card[..end], &card[end..]))
    };
    let parsed = vcard::parse(text.as_bytes()).map_err(|e| e.to_string())?;
    Ok(project(&parsed, None))
}

/// A customer's card for export: the stored card byte for byte, else one rendered as vCard 3.0.
/// `media` holds the bytes of the card's media pieces ([`portico_sdk::StoredCard::media`], in
/// order, as the store returned them): they are put back, and a piece that is missing (a
/// damaged record) is left out, so the export still carries the rest of the card.
pub fn card_text<'a>(c: &'a Customer, media: &[Option<String>]) -> Cow<'a, str> {
    match &c.card {
        Some(card) if card.media.is_empty() => Cow::Borrowed(card.text.as_str()),
        Some(card) => {
            let pieces = card
                .media
                .iter()
                .zip(media)
                .filter_map(|(m, p)| p.as_deref().map(|p| (m.offset as usize, p)));
            match vcard::media::reassemble(&card.text, pieces) {
                Some(t) => Cow::Owned(t),
                None => Cow::Borrowed(card.text.as_str()),
            }
        }
        None => Cow::Owned(vcard::render(c, c.id.as_str(), None, VCardVersion::V3)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_cards_and_reports_bad_ones_by_line() {
        let file = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:a\r\nFN:Ann Lee\r\nEMAIL:ann@example.com\r\nEND:VCARD\r\n\
                    BEGIN:VCARD\nVERSION:4.0\nFN:No Uid\nEND:VCARD\n\
                    BEGIN:VCARD\r\nVERSION:2.1\r\nFN:Old\r\nEND:VCARD\r\n\
                    junk\r\n";
        let got = drafts(file).unwrap();
        assert_eq!(got.len(), 4);
        assert_eq!(got[0].0, 1);
        let ann = got[0].1.as_ref().unwrap();
        assert_eq!(ann.name, "Ann Lee");
        assert_eq!(ann.email.as_deref(), Some("ann@example.com"));
        assert_eq!(got[1].1.as_ref().unwrap().name, "No Uid");
        assert_eq!(got[2].0, 11);
        assert!(got[2].1.as_ref().unwrap_err().contains("2.1"));
        assert_eq!(got[3].0, 15);
        assert!(got[3].1.is_err());
    }

    #[test]
    fn refuses_empty_and_unterminated_files() {
        assert!(drafts("").is_err());
        let got = drafts("BEGIN:VCARD\nVERSION:3.0\nFN:x\n").unwrap();
        assert!(got[0].1.is_err());
    }
}
