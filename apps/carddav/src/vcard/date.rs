//! Dates (BDAY, ANNIVERSARY) and timestamps (REV) in their 3.0 and 4.0 spellings.

use portico_sdk::Timestamp;

use super::VCardVersion;

/// A date with any part possibly missing (vCard 4.0 allows `--MMDD`, `---DD`, `YYYY-MM`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Date {
    pub year: Option<u32>,
    pub month: Option<u32>,
    pub day: Option<u32>,
}

/// Apple's marker year for "no year" in 3.0 cards (`X-APPLE-OMIT-YEAR=1604`).
pub(crate) const OMIT_YEAR: u32 = 1604;

fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn is_leap(y: u32) -> bool {
    (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400)
}

fn days_in_month(year: Option<u32>, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 => match year {
            Some(y) if !is_leap(y) => 28,
            _ => 29,
        },
        _ => 0,
    }
}

/// Splits a date or date-time value at `T` and reads the date part in basic or extended form:
/// `YYYYMMDD`, `YYYY-MM-DD`, `--MMDD`, `--MM-DD`, `YYYY-MM`, `YYYY`, `--MM`, `---DD`. Returns
/// the date and the raw time part (after `T`), if any.
pub(crate) fn parse_date_time(s: &str) -> Option<(Date, Option<&str>)> {
    let (date, time) = match s.find(['T', 't']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let d = |y: Option<u32>, m: Option<u32>, day: Option<u32>| Date {
        year: y,
        month: m,
        day,
    };
    if !date.is_ascii() {
        return None;
    }
    let b = date.as_bytes();
    let parsed = match (date.len(), b.first()) {
        (10, _) if b[4] == b'-' && b[7] == b'-' => d(
            Some(digits(&date[..4])?),
            Some(digits(&date[5..7])?),
            Some(digits(&date[8..])?),
        ),
        (8, _) => d(
            Some(digits(&date[..4])?),
            Some(digits(&date[4..6])?),
            Some(digits(&date[6..])?),
        ),
        (7, Some(b'-')) if date.starts_with("--") && b[4] == b'-' => {
            d(None, Some(digits(&date[2..4])?), Some(digits(&date[5..])?))
        }
        (7, _) if b[4] == b'-' => d(Some(digits(&date[..4])?), Some(digits(&date[5..])?), None),
        (6, _) if date.starts_with("--") => {
            d(None, Some(digits(&date[2..4])?), Some(digits(&date[4..])?))
        }
        (5, _) if date.starts_with("---") => d(None, None, Some(digits(&date[3..])?)),
        (4, _) if date.starts_with("--") => d(None, Some(digits(&date[2..])?), None),
        (4, _) => d(Some(digits(date)?), None, None),
        _ => return None,
    };
    let month_ok = parsed.month.is_none_or(|m| (1..=12).contains(&m));
    let day_ok = match (parsed.month, parsed.day) {
        (Some(m), Some(day)) => day >= 1 && day <= days_in_month(parsed.year, m),
        (None, Some(day)) => (1..=31).contains(&day),
        _ => true,
    };
    (month_ok && day_ok && parsed.year.is_none_or(|y| y <= 9999)).then_some((parsed, time))
}

impl Date {
    /// `YYYY-MM-DD` or `--MM-DD` (the customer record's form); `None` without month and day.
    pub(crate) fn customer_form(self) -> Option<String> {
        let (m, d) = (self.month?, self.day?);
        Some(match self.year {
            Some(y) => format!("{y:04}-{m:02}-{d:02}"),
            None => format!("--{m:02}-{d:02}"),
        })
    }

    /// The value for a 3.0 date property and whether it needs `X-APPLE-OMIT-YEAR=1604`:
    /// `YYYY-MM-DD`, or `1604-MM-DD` for a day without a year. `None` without month and day.
    pub(crate) fn v3_value(self) -> Option<(String, bool)> {
        let (m, d) = (self.month?, self.day?);
        Some(match self.year {
            Some(y) => (format!("{y:04}-{m:02}-{d:02}"), false),
            None => (format!("{OMIT_YEAR:04}-{m:02}-{d:02}"), true),
        })
    }

    /// The value for a 4.0 date property: `YYYYMMDD`, `--MMDD`, `YYYY-MM`, `YYYY`, `--MM` or
    /// `---DD`.
    pub(crate) fn v4_value(self) -> Option<String> {
        Some(match (self.year, self.month, self.day) {
            (Some(y), Some(m), Some(d)) => format!("{y:04}{m:02}{d:02}"),
            (None, Some(m), Some(d)) => format!("--{m:02}{d:02}"),
            (Some(y), Some(m), None) => format!("{y:04}-{m:02}"),
            (Some(y), None, None) => format!("{y:04}"),
            (None, Some(m), None) => format!("--{m:02}"),
            (None, None, Some(d)) => format!("---{d:02}"),
            _ => return None,
        })
    }
}

/// Reads a customer birthday (`YYYY-MM-DD` or `--MM-DD`; basic forms tolerated).
pub(crate) fn customer_birthday(s: &str) -> Option<Date> {
    match parse_date_time(s.trim())? {
        (d, None) if d.month.is_some() && d.day.is_some() => Some(d),
        _ => None,
    }
}

/// A time of day (`HHMMSS`, `HH:MM:SS`, optional fraction and zone) in basic form
/// (`HHMMSSZ`, `-0500`), as vCard 4.0 writes it. `None` when it does not look like a time.
pub(crate) fn time_basic(t: &str) -> Option<String> {
    let ok = t
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b':' | b'Z' | b'z' | b'+' | b'-' | b'.' | b','));
    ok.then(|| t.replace(':', "").replace('z', "Z"))
}

/// A time of day in extended form (`HH:MM:SSZ`, `-05:00`), as vCard 3.0 exporters write it.
pub(crate) fn time_extended(t: &str) -> Option<String> {
    let basic = time_basic(t)?;
    let zone_at = basic.find(['Z', '+', '-']).unwrap_or(basic.len());
    let (clock, zone) = basic.split_at(zone_at);
    let (hms, frac) = match clock.find(['.', ',']) {
        Some(i) => clock.split_at(i),
        None => (clock, ""),
    };
    if hms.len() % 2 != 0 || hms.len() > 6 {
        return None;
    }
    let mut out = String::with_capacity(basic.len() + 4);
    push_pairs(&mut out, hms);
    out.push_str(frac);
    if let Some(offset) = zone.strip_prefix(['+', '-']) {
        if offset.len() % 2 != 0 || offset.len() > 4 {
            return None;
        }
        out.push_str(&zone[..1]);
        push_pairs(&mut out, offset);
    } else {
        out.push_str(zone);
    }
    Some(out)
}

fn push_pairs(out: &mut String, digits: &str) {
    for (i, pair) in digits.as_bytes().chunks(2).enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.extend(pair.iter().map(|&b| b as char));
    }
}

/// Converts a date or date-time value to the target version's spelling. Returns the new value
/// and, for 3.0, whether `X-APPLE-OMIT-YEAR=1604` is needed. `None` when the value cannot be
/// written in the target version (e.g. a 4.0 year-only date in 3.0).
pub(crate) fn convert_date_value(
    value: &str,
    omit_year: Option<u32>,
    to: VCardVersion,
) -> Option<(String, bool)> {
    let (mut d, time) = parse_date_time(value.trim())?;
    // The marker year without its parameter is still the marker (see `birthday_of`).
    if d.year.is_some() && (d.year == omit_year || d.year == Some(OMIT_YEAR)) {
        d.year = None;
    }
    match to {
        VCardVersion::V4 => {
            let date = d.v4_value()?;
            Some(match time {
                Some(t) => (format!("{date}T{}", time_basic(t)?), false),
                None => (date, false),
            })
        }
        VCardVersion::V3 => {
            let (date, omit) = d.v3_value()?;
            Some(match time {
                Some(t) => (format!("{date}T{}", time_extended(t)?), omit),
                None => (date, omit),
            })
        }
    }
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Shift the epoch to 0000-03-01 so leap days fall at the end of each 400-year era.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A UTC timestamp for `REV`: `2026-01-05T10:00:00Z` (3.0) or `20260105T100000Z` (4.0).
/// Years outside 0000–9999 are clamped.
pub(crate) fn format_rev(ts: Timestamp, version: VCardVersion) -> String {
    const MIN: i64 = -62_167_219_200; // 0000-01-01T00:00:00Z
    const MAX: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    let secs = ts.as_secs().clamp(MIN, MAX);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let (h, mi, s) = (sod / 3600, (sod / 60) % 60, sod % 60);
    match version {
        VCardVersion::V3 => format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z"),
        VCardVersion::V4 => format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z"),
    }
}

/// Converts a `REV` value between the extended (3.0 habit) and basic (4.0) forms; `None` when
/// it is not a date or date-time.
pub(crate) fn convert_rev(value: &str, to: VCardVersion) -> Option<String> {
    convert_date_value(value, None, to).map(|(v, _)| v)
}
