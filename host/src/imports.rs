//! Customer files the admin page imports: JSON lines, CSV with a header row, and `.vcf` files
//! with many cards. Parsing is all of a file before anything is written, so the caller can
//! refuse a file with any bad row as a whole (the admin API's import is all-or-nothing).
use portico_sdk::{CustomerDraft, CustomerId};
use std::collections::HashSet;

/// The most rows one file may hold.
pub const MAX_ROWS: usize = 100_000;

/// A file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One JSON customer draft per line.
    Jsonl,
    /// RFC 4180 CSV with a header row naming the columns.
    Csv,
    /// vCards (3.0 or 4.0), one after the other.
    Vcf,
}

/// A parsed file: drafts with their row (line) numbers, and the refused rows with the reason.
#[derive(Debug, Default)]
pub struct Parsed {
    /// Good rows.
    pub drafts: Vec<(usize, CustomerDraft)>,
    /// Bad rows: (row number, reason).
    pub errors: Vec<(usize, String)>,
}

/// The CSV columns understood (others are refused, so a typo does not silently drop data).
pub const CSV_COLUMNS: &[&str] = &[
    "id",
    "name",
    "given_name",
    "family_name",
    "email",
    "phone",
    "known_emails",
    "known_phones",
    "birthday",
    "note",
    "tags",
];

/// Parses a file of `format`; the whole file is read and every row checked (a well-formed
/// draft, a plausible birthday, ids unique within the file).
pub fn parse(format: Format, text: &str) -> Parsed {
    let mut p = match format {
        Format::Jsonl => jsonl(text),
        Format::Csv => csv_rows(text),
        Format::Vcf => match portico_carddav::vcf_file::drafts(text) {
            Ok(rows) => {
                let mut p = Parsed::default();
                for (n, r) in rows {
                    match r {
                        Ok(d) => p.drafts.push((n, d)),
                        Err(e) => p.errors.push((n, e)),
                    }
                }
                p
            }
            Err(e) => Parsed {
                drafts: Vec::new(),
                errors: vec![(1, e)],
            },
        },
    };
    if p.drafts.len() + p.errors.len() > MAX_ROWS {
        p.errors
            .push((0, format!("a file may hold at most {MAX_ROWS} rows")));
    }
    check(&mut p);
    p
}

fn check(p: &mut Parsed) {
    let mut seen: HashSet<CustomerId> = HashSet::new();
    let mut good = Vec::with_capacity(p.drafts.len());
    for (n, mut d) in std::mem::take(&mut p.drafts) {
        if let Err(why) = crate::store::normalize_draft(&mut d) {
            p.errors.push((n, why));
            continue;
        }
        if let Some(id) = &d.id {
            if !seen.insert(id.clone()) {
                p.errors
                    .push((n, format!("id '{id}' appears more than once in the file")));
                continue;
            }
        }
        good.push((n, d));
    }
    p.drafts = good;
    p.errors.sort_by_key(|(n, _)| *n);
}

fn jsonl(text: &str) -> Parsed {
    let mut p = Parsed::default();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match serde_json::from_str::<CustomerDraft>(line) {
            Ok(d) => p.drafts.push((i + 1, d)),
            Err(e) => p.errors.push((i + 1, format!("invalid JSON: {e}"))),
        }
    }
    if p.drafts.is_empty() && p.errors.is_empty() {
        p.errors.push((1, "the file holds no customer".into()));
    }
    p
}

fn list(v: &str) -> Vec<String> {
    v.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn opt(v: &str) -> Option<String> {
    let v = v.trim();
    (!v.is_empty()).then(|| v.to_owned())
}

fn csv_rows(text: &str) -> Parsed {
    let mut p = Parsed::default();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut r = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = match r.headers() {
        Ok(h) => h.iter().map(|c| c.trim().to_ascii_lowercase()).collect(),
        Err(e) => {
            p.errors.push((1, format!("unreadable header row: {e}")));
            return p;
        }
    };
    let unknown: Vec<&str> = headers
        .iter()
        .map(String::as_str)
        .filter(|h| !CSV_COLUMNS.contains(h))
        .collect();
    if !unknown.is_empty() || !headers.iter().any(|h| h == "name") {
        p.errors.push((
            1,
            format!(
                "the header row must name a 'name' column and only these: {}{}",
                CSV_COLUMNS.join(", "),
                if unknown.is_empty() {
                    String::new()
                } else {
                    format!(" (unknown: {})", unknown.join(", "))
                }
            ),
        ));
        return p;
    }
    for rec in r.records() {
        let rec = match rec {
            Ok(rec) => rec,
            Err(e) => {
                let line = e.position().map(|pos| pos.line() as usize).unwrap_or(0);
                p.errors.push((line, format!("unreadable row: {e}")));
                continue;
            }
        };
        let line = rec.position().map(|pos| pos.line() as usize).unwrap_or(0);
        let mut d = CustomerDraft::default();
        let mut bad = None;
        for (h, v) in headers.iter().zip(rec.iter()) {
            match h.as_str() {
                "id" => match opt(v).map(|s| CustomerId::parse(&s)) {
                    None => {}
                    Some(Ok(id)) => d.id = Some(id),
                    Some(Err(e)) => bad = Some(format!("invalid id: {e}")),
                },
                "name" => d.name = v.trim().to_owned(),
                "given_name" => d.given_name = opt(v),
                "family_name" => d.family_name = opt(v),
                "email" => d.email = opt(v),
                "phone" => d.phone = opt(v),
                "known_emails" => d.known_emails = list(v),
                "known_phones" => d.known_phones = list(v),
                "birthday" => d.birthday = opt(v),
                "note" => d.note = opt(v),
                "tags" => d.tags = list(v),
                _ => {}
            }
        }
        match bad {
            Some(why) => p.errors.push((line, why)),
            None => p.drafts.push((line, d)),
        }
    }
    if p.drafts.is_empty() && p.errors.is_empty() {
        p.errors.push((1, "the file holds no customer".into()));
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_with_header_quotes_and_a_bad_row() {
        let text = "name,email,known_phones,birthday,note\n\
                    Ann Lee,ann@example.com,+1 555;+1 556,1985-04-12,\"likes, commas\nand lines\"\n\
                    ,nobody@example.com,,,\n\
                    Bo,bo@example.com,,--02-29,\n\
                    Cy,,,1985-13-01,\n";
        let p = parse(Format::Csv, text);
        assert_eq!(p.drafts.len(), 2, "{:?}", p.errors);
        let ann = &p.drafts[0].1;
        assert_eq!(ann.known_phones, vec!["+1 555", "+1 556"]);
        assert_eq!(ann.note.as_deref(), Some("likes, commas\nand lines"));
        assert_eq!(p.drafts[1].1.birthday.as_deref(), Some("--02-29"));
        let lines: Vec<usize> = p.errors.iter().map(|(n, _)| *n).collect();
        assert_eq!(lines, vec![4, 6], "rows are numbered by line, header = 1");
        assert!(p.errors[0].1.contains("name"));
        assert!(p.errors[1].1.contains("birthday"));
    }

    #[test]
    fn csv_refuses_unknown_columns_and_ragged_rows() {
        let p = parse(Format::Csv, "name,emial\nAnn,a@x\n");
        assert!(p.drafts.is_empty());
        assert!(p.errors[0].1.contains("emial"));
        let p = parse(Format::Csv, "name,email\nAnn\n");
        assert_eq!(p.errors.len(), 1);
    }

    #[test]
    fn jsonl_duplicate_ids_and_empty_files() {
        let p = parse(
            Format::Jsonl,
            "{\"id\":\"a1\",\"name\":\"A\"}\n{\"id\":\"a1\",\"name\":\"B\"}\n{oops\n",
        );
        assert_eq!(p.drafts.len(), 1);
        assert_eq!(p.errors.len(), 2);
        assert!(p.errors[0].1.contains("more than once"));
        assert!(!parse(Format::Jsonl, "\n\n").errors.is_empty());
        assert!(!parse(Format::Csv, "name\n").errors.is_empty());
    }

    #[test]
    fn vcf_rows() {
        let p = parse(
            Format::Vcf,
            "BEGIN:VCARD\nVERSION:3.0\nFN:Ann\nEND:VCARD\nBEGIN:VCARD\nVERSION:3.0\nUID:x\nEND:VCARD\n",
        );
        assert_eq!(p.drafts.len(), 1);
        assert_eq!(p.errors.len(), 1);
        assert_eq!(p.errors[0].0, 5);
    }
}
