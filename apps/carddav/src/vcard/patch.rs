//! Applying an admin edit to a stored card, touching only what changed.

use std::collections::{HashMap, HashSet, VecDeque};

use portico_sdk::{Customer, CustomerDraft, Timestamp};

use super::date::{customer_birthday, format_rev};
use super::lines::{line_ending, logical_lines, RawLine};
use super::parse::{email_of, parse_line, phone_of, split_unescaped, LineParts};
use super::write::{
    bday_line, categories_line, email_line, escape_text, header, member_line, name_parts,
    push_line, tel_line,
};
use super::{version_of, Property, VCardVersion};

/// What to write for one piece of the output.
#[derive(Debug, Clone)]
enum Emit {
    /// An existing logical line, byte for byte (its own folding and line break).
    Raw(usize),
    /// A new content line, to fold and end with the card's line break.
    New(String),
}

#[derive(Debug, Clone)]
enum Action {
    Keep,
    Drop,
    Replace(Vec<Emit>),
}

/// Emails or phones of a draft, primary first, without empty values or duplicates (the same
/// rule as [`Customer::all_emails`]).
fn dedup_chain<'a>(first: Option<&'a str>, rest: &'a [String]) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::with_capacity(rest.len() + 1);
    for v in first.into_iter().chain(rest.iter().map(String::as_str)) {
        if !v.is_empty() && !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

struct Patcher<'s, 'l> {
    stored: &'s str,
    lines: &'l [RawLine<'s>],
    parsed: Vec<Option<LineParts>>,
    actions: Vec<Action>,
    /// New lines for properties the card did not have, written before `END:VCARD`.
    append: Vec<String>,
    version: VCardVersion,
    /// Groups of removed properties (their `X-ABLabel` companions may go too).
    removed_groups: Vec<String>,
}

impl Patcher<'_, '_> {
    fn prop(&self, i: usize) -> Option<&Property> {
        self.parsed[i].as_ref().map(|p| &p.prop)
    }

    fn indices(&self, name: &str) -> Vec<usize> {
        (0..self.lines.len())
            .filter(|&i| self.prop(i).is_some_and(|p| p.name == name))
            .collect()
    }

    /// The line `i` with its header kept as written and a new value.
    fn with_value(&self, i: usize, value: &str) -> String {
        match &self.parsed[i] {
            // The header still says QUOTED-PRINTABLE; write it again without the encoding.
            Some(p) if p.qp => format!("{}:{value}", header(&p.prop)),
            Some(p) => format!("{}{value}", &self.lines[i].content[..=p.colon]),
            None => value.to_string(),
        }
    }

    fn drop_line(&mut self, i: usize) {
        self.actions[i] = Action::Drop;
        if let Some(g) = self.prop(i).and_then(|p| p.group.clone()) {
            self.removed_groups.push(g);
        }
    }

    /// Replaces the first `name` property with `new` (or removes it when `None`), removes the
    /// others, or appends `new` when the card has none.
    fn set_single(&mut self, name: &str, new: Option<String>) {
        let idx = self.indices(name);
        match (idx.first(), new) {
            (Some(&first), Some(line)) => {
                self.actions[first] = Action::Replace(vec![Emit::New(line)]);
            }
            (Some(&first), None) => self.drop_line(first),
            (None, Some(line)) => self.append.push(line),
            (None, None) => {}
        }
        for &i in idx.iter().skip(1) {
            self.drop_line(i);
        }
    }

    /// Rewrites the `name` properties to hold `values` in order, at the position of the first
    /// one. A line whose value is kept is moved there byte for byte (parameters, group and all).
    fn set_list(
        &mut self,
        name: &str,
        values: &[&str],
        project: fn(&Property) -> Option<String>,
        make: fn(&str, bool, VCardVersion) -> String,
    ) {
        let idx = self.indices(name);
        let current: Vec<Option<String>> = idx
            .iter()
            .map(|&i| self.prop(i).and_then(project))
            .collect();
        // Lines by value, each value's lines in card order, so reuse is linear.
        let mut by_value: HashMap<&str, VecDeque<usize>> = HashMap::new();
        for (j, value) in current.iter().enumerate() {
            if let Some(value) = value {
                by_value.entry(value.as_str()).or_default().push_back(j);
            }
        }
        let mut used = vec![false; idx.len()];
        let mut block = Vec::with_capacity(values.len());
        for (k, v) in values.iter().enumerate() {
            let reuse = by_value.get_mut(v).and_then(VecDeque::pop_front);
            match reuse {
                Some(j) => {
                    used[j] = true;
                    block.push(Emit::Raw(idx[j]));
                }
                None => block.push(Emit::New(make(v, k == 0, self.version))),
            }
        }
        for (j, &i) in idx.iter().enumerate() {
            if !used[j] {
                self.drop_line(i);
            } else {
                self.actions[i] = Action::Drop;
            }
        }
        match idx.first() {
            Some(&first) => self.actions[first] = Action::Replace(block),
            None => self
                .append
                .extend(block.into_iter().filter_map(|e| match e {
                    Emit::New(s) => Some(s),
                    Emit::Raw(_) => None,
                })),
        }
    }

    /// Removes `X-` properties (such as Apple's `X-ABLabel`) left alone in the group of a
    /// removed property.
    fn drop_orphaned_labels(&mut self) {
        if self.removed_groups.is_empty() {
            return;
        }
        let removed: HashSet<String> = std::mem::take(&mut self.removed_groups)
            .into_iter()
            .collect();
        let mut moved = vec![false; self.lines.len()];
        for action in &self.actions {
            if let Action::Replace(block) = action {
                for e in block {
                    if let Emit::Raw(j) = e {
                        moved[*j] = true;
                    }
                }
            }
        }
        let mut members: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, parts) in self.parsed.iter().enumerate() {
            if let Some(g) = parts.as_ref().and_then(|p| p.prop.group.as_deref()) {
                if removed.contains(g) {
                    members.entry(g).or_default().push(i);
                }
            }
        }
        let mut orphans = Vec::new();
        for idx in members.values() {
            let alive = idx.iter().any(|&i| {
                let kept = moved[i] || !matches!(self.actions[i], Action::Drop);
                kept && self.parsed[i]
                    .as_ref()
                    .is_some_and(|p| !p.prop.name.starts_with("X-"))
            });
            if !alive {
                orphans.extend_from_slice(idx);
            }
        }
        for i in orphans {
            self.actions[i] = Action::Drop;
        }
    }

    fn emit_raw(&self, out: &mut String, i: usize, eol: &str) {
        let l = &self.lines[i];
        let raw = &self.stored[l.start..l.end];
        out.push_str(raw);
        if !raw.ends_with('\n') {
            out.push_str(eol);
        }
    }

    fn finish(self) -> String {
        let eol = line_ending(self.stored);
        let mut out = String::with_capacity(self.stored.len() + 256);
        let end_line = (0..self.lines.len()).rev().find(|&i| {
            self.prop(i)
                .is_some_and(|p| p.name == "END" && p.value.trim().eq_ignore_ascii_case("VCARD"))
        });
        let mut cursor = 0;
        for (i, line) in self.lines.iter().enumerate() {
            out.push_str(&self.stored[cursor..line.start]);
            cursor = line.end;
            if Some(i) == end_line {
                for new in &self.append {
                    push_line(&mut out, new, eol);
                }
            }
            match &self.actions[i] {
                Action::Keep => out.push_str(&self.stored[line.start..line.end]),
                Action::Drop => {}
                Action::Replace(block) => {
                    for e in block {
                        match e {
                            Emit::Raw(j) => self.emit_raw(&mut out, *j, eol),
                            Emit::New(s) => push_line(&mut out, s, eol),
                        }
                    }
                }
            }
        }
        out.push_str(&self.stored[cursor..]);
        if end_line.is_none() && !self.append.is_empty() {
            if !out.is_empty() && !out.ends_with('\n') {
                out.push_str(eol);
            }
            for new in &self.append {
                push_line(&mut out, new, eol);
            }
        }
        out
    }
}

/// Patches a stored card after an admin edit.
///
/// For each modelled field that differs between `before` and `after`, the matching properties
/// are rewritten in place — at the position of the first one; further ones are removed; a
/// property the card lacks is added before `END:VCARD`:
/// - `FN` (name): the value changes, the header (group, parameters) stays as written.
/// - `N` (given/family, or the name when both are absent): the first two components change,
///   the others (additional names, prefixes, suffixes) stay.
/// - `EMAIL` / `TEL` (the primary + known lists): one line per value in order. An existing line
///   whose value is kept is moved there byte for byte (group, parameters, folding); new lines
///   are written as [`super::render`] writes them (the first one marked preferred).
/// - `BDAY`: rewritten in the card's version format (group kept), or removed.
/// - `NOTE`: the value changes (header kept), or the property is removed.
///
/// `REV`, when present, is set to `rev`. A removed grouped property takes with it the `X-`
/// properties left alone in its group (Apple's `itemN.X-ABLabel`). Every other line is kept
/// byte for byte, including blank lines, folding and the card's line breaks (new lines use
/// the card's own: CRLF, or LF for a card written with bare LF). The output has the version
/// of the stored card. `stored` should be a card [`super::parse`] accepted; for anything else
/// the result is unspecified (but this never panics).
pub fn patch(stored: &str, before: &Customer, after: &CustomerDraft, rev: Timestamp) -> String {
    let version = version_of(stored);
    let Ok(lines) = logical_lines(stored, None) else {
        return stored.to_string();
    };
    let parsed: Vec<Option<LineParts>> =
        lines.iter().map(|l| parse_line(&l.content).ok()).collect();
    let mut p = Patcher {
        stored,
        lines: &lines,
        parsed,
        actions: vec![Action::Keep; lines.len()],
        append: Vec::new(),
        version,
        removed_groups: Vec::new(),
    };

    if before.name != after.name {
        let value = escape_text(&after.name);
        let line = p
            .indices("FN")
            .first()
            .map(|&i| p.with_value(i, &value))
            .unwrap_or_else(|| format!("FN:{value}"));
        p.set_single("FN", Some(line));
    }

    let n_before = name_parts(
        &before.name,
        before.given_name.as_deref(),
        before.family_name.as_deref(),
    );
    let n_after = name_parts(
        &after.name,
        after.given_name.as_deref(),
        after.family_name.as_deref(),
    );
    if n_before != n_after {
        let (family, given) = n_after;
        let line = match p.indices("N").first() {
            Some(&i) => {
                let old = p.prop(i).map(|pr| pr.value.clone()).unwrap_or_default();
                let mut comps: Vec<String> = split_unescaped(&old, b';')
                    .into_iter()
                    .map(str::to_string)
                    .collect();
                comps.resize(comps.len().max(5), String::new());
                comps[0] = escape_text(&family);
                comps[1] = escape_text(&given);
                p.with_value(i, &comps.join(";"))
            }
            None => format!("N:{};{};;;", escape_text(&family), escape_text(&given)),
        };
        p.set_single("N", Some(line));
    }

    let emails_after = dedup_chain(after.email.as_deref(), &after.known_emails);
    if before.all_emails() != emails_after {
        p.set_list("EMAIL", &emails_after, email_of, email_line);
    }
    let phones_after = dedup_chain(after.phone.as_deref(), &after.known_phones);
    if before.all_phones() != phones_after {
        p.set_list("TEL", &phones_after, phone_of, tel_line);
    }

    if before.birthday != after.birthday {
        let group = p
            .indices("BDAY")
            .first()
            .and_then(|&i| p.prop(i).and_then(|pr| pr.group.clone()));
        let line = after
            .birthday
            .as_deref()
            .and_then(customer_birthday)
            .and_then(|d| bday_line(group.as_deref(), d, version));
        p.set_single("BDAY", line);
    }

    if before.note != after.note {
        let value = after
            .note
            .as_deref()
            .map(escape_text)
            .filter(|v| !v.is_empty());
        let line = value.map(|v| match p.indices("NOTE").first() {
            Some(&i) => p.with_value(i, &v),
            None => format!("NOTE:{v}"),
        });
        p.set_single("NOTE", line);
    }

    if before.tags != after.tags {
        // Tags travel as CATEGORIES (RFC 6350 §6.7.1): the first line's header is kept.
        let line = categories_line(&after.tags).map(|l| match p.indices("CATEGORIES").first() {
            Some(&i) => p.with_value(i, &l["CATEGORIES:".len()..]),
            None => l,
        });
        p.set_single("CATEGORIES", line);
    }

    if let Some(&i) = p.indices("REV").first() {
        let line = p.with_value(i, &format_rev(rev, version));
        p.set_single("REV", Some(line));
    }

    p.drop_orphaned_labels();
    p.finish()
}

/// Is this property a group member line (`MEMBER` or Apple's `X-ADDRESSBOOKSERVER-MEMBER`)?
fn is_member_name(name: &str) -> bool {
    name == "MEMBER" || name == "X-ADDRESSBOOKSERVER-MEMBER"
}

/// The member UIDs a `MEMBER` / `X-ADDRESSBOOKSERVER-MEMBER` value names: the value without a
/// `urn:uuid:` prefix (any case); other URIs (`mailto:`, `sip:`, …) are returned as written.
pub fn member_uid(value: &str) -> String {
    let v = value.trim();
    match v.get(..9) {
        Some(p) if p.eq_ignore_ascii_case("urn:uuid:") => v[9..].to_string(),
        _ => v.to_string(),
    }
}

/// Sets the members of a stored group card to `members` (UIDs): member lines naming a UID
/// still wanted stay byte for byte where they are (the first one of each UID), the others are
/// removed, and missing members are added before `END:VCARD` in the card's own version form.
/// `REV`, when present, is set to `rev` if anything changed. Every other line is kept byte
/// for byte. Returns the text unchanged when the members already match.
pub fn patch_members(stored: &str, members: &[String], rev: Timestamp) -> String {
    let version = version_of(stored);
    let Ok(lines) = logical_lines(stored, None) else {
        return stored.to_string();
    };
    let parsed: Vec<Option<LineParts>> =
        lines.iter().map(|l| parse_line(&l.content).ok()).collect();
    let mut p = Patcher {
        stored,
        lines: &lines,
        parsed,
        actions: vec![Action::Keep; lines.len()],
        append: Vec::new(),
        version,
        removed_groups: Vec::new(),
    };
    let wanted: HashSet<&str> = members.iter().map(String::as_str).collect();
    let mut seen: HashSet<String> = HashSet::new();
    let mut changed = false;
    for i in 0..lines.len() {
        let Some(prop) = p.prop(i) else { continue };
        if !is_member_name(&prop.name) {
            continue;
        }
        let uid = member_uid(&prop.value);
        if wanted.contains(uid.as_str()) && seen.insert(uid) {
            continue;
        }
        p.drop_line(i);
        changed = true;
    }
    for m in members {
        if seen.insert(m.clone()) {
            p.append.push(member_line(m, version));
            changed = true;
        }
    }
    if !changed {
        return stored.to_string();
    }
    if let Some(&i) = p.indices("REV").first() {
        let line = p.with_value(i, &format_rev(rev, version));
        p.set_single("REV", Some(line));
    }
    p.finish()
}
