//! The `addressbook-query` filter (RFC 6352 §10.5) and its evaluation.
//!
//! Parsing lives in [`crate::dav::parse_report`]; this module holds the plain types and the pure
//! matching: [`TextMatch::matches`] for one value, [`Filter::matches`] for a whole card seen
//! through the small [`FilterSubject`] trait (so this module needs no vCard types).

/// How several tests combine (the `test` attribute of `filter` and `prop-filter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FilterTest {
    /// At least one must match (the default, RFC 6352 §10.5 and §10.5.1).
    #[default]
    AnyOf,
    /// All must match.
    AllOf,
}

/// `card:filter` (RFC 6352 §10.5).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Filter {
    /// How the prop-filters combine.
    pub test: FilterTest,
    /// The prop-filters, in document order.
    pub prop_filters: Vec<PropFilter>,
}

/// `card:prop-filter` (RFC 6352 §10.5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropFilter {
    /// The vCard property name, upper-cased (vCard names are case-insensitive, RFC 6350 §3.3),
    /// e.g. `EMAIL`. A group prefix such as `item1.EMAIL` is kept as sent (upper-cased).
    pub name: String,
    /// How the text-matches and param-filters combine.
    pub test: FilterTest,
    /// `card:is-not-defined`: matches cards that do *not* have the property. When set, the
    /// other fields are empty.
    pub is_not_defined: bool,
    /// The text-matches on the property value.
    pub text_matches: Vec<TextMatch>,
    /// The param-filters.
    pub param_filters: Vec<ParamFilter>,
}

/// `card:param-filter` (RFC 6352 §10.5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamFilter {
    /// The parameter name, upper-cased (e.g. `TYPE`).
    pub name: String,
    /// `card:is-not-defined`: matches when the parameter is absent.
    pub is_not_defined: bool,
    /// A text-match on the parameter's values; `None` and not `is_not_defined` means "the
    /// parameter is present".
    pub text_match: Option<TextMatch>,
}

/// A collation (RFC 4790) for [`TextMatch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Collation {
    /// `i;unicode-casemap` (RFC 5051), the default (RFC 6352 §10.5.4).
    ///
    /// Approximated here by comparing strings after a per-character Unicode lower-case mapping
    /// (`char::to_lowercase`). This handles the cases clients exercise (`ÉLODIE` ~ `élodie`,
    /// `STRASSE` ~ `strasse`) but performs no normalisation: a precomposed `é` (U+00E9) does not
    /// match `e` + combining acute (U+0065 U+0301), and `ß` does not match `ss`.
    #[default]
    UnicodeCasemap,
    /// `i;ascii-casemap` (RFC 4790 §9.2): ASCII letters compare case-insensitively, every other
    /// octet exactly.
    AsciiCasemap,
    /// `i;octet` (RFC 4790 §9.3): exact octet comparison.
    Octet,
}

impl Collation {
    /// Recognises a collation identifier (exact, as registered). `None` if unknown: answer with
    /// `card:supported-collation` (RFC 6352 §8.3).
    pub fn from_name(name: &str) -> Option<Collation> {
        match name {
            "i;unicode-casemap" => Some(Collation::UnicodeCasemap),
            "i;ascii-casemap" => Some(Collation::AsciiCasemap),
            "i;octet" => Some(Collation::Octet),
            _ => None,
        }
    }

    /// The registered identifier.
    pub fn name(self) -> &'static str {
        match self {
            Collation::UnicodeCasemap => "i;unicode-casemap",
            Collation::AsciiCasemap => "i;ascii-casemap",
            Collation::Octet => "i;octet",
        }
    }

    /// Every supported collation (for `card:supported-collation-set`).
    pub const ALL: [Collation; 3] = [
        Collation::AsciiCasemap,
        Collation::UnicodeCasemap,
        Collation::Octet,
    ];

    fn fold(self, s: &str) -> String {
        match self {
            Collation::UnicodeCasemap => s.chars().flat_map(char::to_lowercase).collect(),
            Collation::AsciiCasemap => s.to_ascii_lowercase(),
            Collation::Octet => s.to_owned(),
        }
    }
}

/// The `match-type` of a [`TextMatch`] (RFC 6352 §10.5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MatchType {
    /// The whole value equals the text.
    Equals,
    /// The text occurs anywhere in the value (the default).
    #[default]
    Contains,
    /// The value starts with the text.
    StartsWith,
    /// The value ends with the text.
    EndsWith,
}

impl MatchType {
    /// Recognises a `match-type` attribute value.
    pub fn from_name(name: &str) -> Option<MatchType> {
        match name {
            "equals" => Some(MatchType::Equals),
            "contains" => Some(MatchType::Contains),
            "starts-with" => Some(MatchType::StartsWith),
            "ends-with" => Some(MatchType::EndsWith),
            _ => None,
        }
    }
}

/// `card:text-match` (RFC 6352 §10.5.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextMatch {
    /// The text to look for, as sent (not trimmed).
    pub text: String,
    /// How characters compare.
    pub collation: Collation,
    /// Where the text must occur.
    pub match_type: MatchType,
    /// `negate-condition="yes"`: the result is inverted.
    pub negate: bool,
}

impl TextMatch {
    /// A text-match with the defaults: `i;unicode-casemap`, `contains`, not negated.
    pub fn new(text: impl Into<String>) -> Self {
        TextMatch {
            text: text.into(),
            collation: Collation::default(),
            match_type: MatchType::default(),
            negate: false,
        }
    }

    /// Does `value` match? Folds both sides with the collation, applies the match type, then
    /// `negate`. An empty text matches every value (it is contained in, starts and ends every
    /// string) except under `equals`.
    pub fn matches(&self, value: &str) -> bool {
        let hay = self.collation.fold(value);
        let needle = self.collation.fold(&self.text);
        let hit = match self.match_type {
            MatchType::Equals => hay == needle,
            MatchType::Contains => hay.contains(&needle),
            MatchType::StartsWith => hay.starts_with(&needle),
            MatchType::EndsWith => hay.ends_with(&needle),
        };
        hit != self.negate
    }
}

/// One instance of a vCard property, as a filter sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FilterProperty {
    /// The property value as text (unescaped, as the vCard module decodes it; for structured
    /// values such as `N` or `ADR` the components joined with `;` is fine).
    pub value: String,
    /// Parameters, one entry per value, names upper-cased: `TYPE=work,pref` gives
    /// `("TYPE", "work")` and `("TYPE", "pref")`.
    pub params: Vec<(String, String)>,
}

/// A card as the filter sees it: implemented by the glue over the vCard type.
pub trait FilterSubject {
    /// Every instance of the property `name` (upper-case, e.g. `EMAIL`), in any order; empty if
    /// the card has none.
    fn properties(&self, name: &str) -> Vec<FilterProperty>;
}

impl Filter {
    /// Does the card match (RFC 6352 §10.5)? An empty filter matches every card.
    pub fn matches(&self, card: &dyn FilterSubject) -> bool {
        if self.prop_filters.is_empty() {
            return true;
        }
        let mut results = self.prop_filters.iter().map(|pf| pf.matches(card));
        match self.test {
            FilterTest::AnyOf => results.any(|r| r),
            FilterTest::AllOf => results.all(|r| r),
        }
    }
}

impl PropFilter {
    /// Does the card match this prop-filter (RFC 6352 §10.5.1)?
    ///
    /// - `is-not-defined`: the card has no such property;
    /// - no text-match and no param-filter: the card has the property;
    /// - otherwise: some *single instance* of the property satisfies the text-matches and
    ///   param-filters combined by `test`. Evaluating per instance means
    ///   `EMAIL;TYPE=work` + `contains "acme"` requires a work address at acme, not any work
    ///   address plus any acme address.
    pub fn matches(&self, card: &dyn FilterSubject) -> bool {
        let instances = card.properties(&self.name);
        if self.is_not_defined {
            return instances.is_empty();
        }
        if self.text_matches.is_empty() && self.param_filters.is_empty() {
            return !instances.is_empty();
        }
        instances.iter().any(|prop| {
            let mut results = self
                .text_matches
                .iter()
                .map(|tm| tm.matches(&prop.value))
                .chain(self.param_filters.iter().map(|pf| pf.matches(prop)));
            match self.test {
                FilterTest::AnyOf => results.any(|r| r),
                FilterTest::AllOf => results.all(|r| r),
            }
        })
    }
}

impl ParamFilter {
    /// Does this property instance match the param-filter (RFC 6352 §10.5.2)? With a
    /// text-match, *some* value of the parameter must match (so a negated text-match means
    /// "some value does not contain…"); a property without the parameter never matches a
    /// text-match, negated or not.
    pub fn matches(&self, prop: &FilterProperty) -> bool {
        let mut values = prop
            .params
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(&self.name))
            .map(|(_, v)| v.as_str())
            .peekable();
        let present = values.peek().is_some();
        if self.is_not_defined {
            return !present;
        }
        match &self.text_match {
            None => present,
            Some(tm) => values.any(|v| tm.matches(v)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tm(text: &str, collation: Collation, match_type: MatchType, negate: bool) -> TextMatch {
        TextMatch {
            text: text.into(),
            collation,
            match_type,
            negate,
        }
    }

    #[test]
    fn text_match_table() {
        use Collation::*;
        use MatchType::*;
        // (text, collation, match type, value, expected without negation)
        let table: &[(&str, Collation, MatchType, &str, bool)] = &[
            ("élo", UnicodeCasemap, Contains, "ÉLODIE", true),
            ("ÉLO", UnicodeCasemap, StartsWith, "élodie", true),
            ("DIE", UnicodeCasemap, EndsWith, "Élodie", true),
            ("élodie", UnicodeCasemap, Equals, "ÉLODIE", true),
            ("élodie", UnicodeCasemap, Equals, "ÉLODIE ", false),
            ("straße", UnicodeCasemap, Contains, "STRASSE", false),
            ("ΣΊΣΥΦΟΣ", UnicodeCasemap, Equals, "σίσυφοσ", true),
            ("élo", AsciiCasemap, Contains, "ÉLODIE", false),
            ("élo", AsciiCasemap, Contains, "éLODIE", true),
            ("SMITH", AsciiCasemap, Contains, "john smith", true),
            ("john", AsciiCasemap, StartsWith, "JOHN smith", true),
            ("smith", AsciiCasemap, EndsWith, "John SMITH", true),
            ("john smith", AsciiCasemap, Equals, "John Smith", true),
            ("john", AsciiCasemap, Equals, "John Smith", false),
            ("Smith", Octet, Contains, "John Smith", true),
            ("smith", Octet, Contains, "John Smith", false),
            ("John", Octet, StartsWith, "John Smith", true),
            ("Smith", Octet, EndsWith, "John Smith", true),
            ("John Smith", Octet, Equals, "John Smith", true),
            ("", UnicodeCasemap, Contains, "anything", true),
            ("", UnicodeCasemap, StartsWith, "", true),
            ("", UnicodeCasemap, Equals, "x", false),
            ("x", UnicodeCasemap, Contains, "", false),
            ("smith", UnicodeCasemap, StartsWith, "John Smith", false),
            ("john", UnicodeCasemap, EndsWith, "John Smith", false),
            (
                "@example.com",
                UnicodeCasemap,
                EndsWith,
                "j@EXAMPLE.com",
                true,
            ),
        ];
        for &(text, collation, match_type, value, expected) in table {
            for negate in [false, true] {
                assert_eq!(
                    tm(text, collation, match_type, negate).matches(value),
                    expected != negate,
                    "{text:?} {collation:?} {match_type:?} negate={negate} on {value:?}"
                );
            }
        }
    }

    #[test]
    fn defaults() {
        let t = TextMatch::new("x");
        assert_eq!(t.collation, Collation::UnicodeCasemap);
        assert_eq!(t.match_type, MatchType::Contains);
        assert!(!t.negate);
        assert_eq!(FilterTest::default(), FilterTest::AnyOf);
        for c in Collation::ALL {
            assert_eq!(Collation::from_name(c.name()), Some(c));
        }
        assert_eq!(Collation::from_name("i;unicode-CASEMAP"), None);
    }

    /// One property: (NAME, value, params).
    type Prop = (
        &'static str,
        &'static str,
        Vec<(&'static str, &'static str)>,
    );

    /// A card as a list of properties.
    struct Card(Vec<Prop>);

    impl FilterSubject for Card {
        fn properties(&self, name: &str) -> Vec<FilterProperty> {
            self.0
                .iter()
                .filter(|(n, _, _)| *n == name)
                .map(|(_, v, p)| FilterProperty {
                    value: (*v).into(),
                    params: p.iter().map(|(a, b)| ((*a).into(), (*b).into())).collect(),
                })
                .collect()
        }
    }

    fn card() -> Card {
        Card(vec![
            ("FN", "Élodie Martin", vec![]),
            ("EMAIL", "elodie@home.example", vec![("TYPE", "home")]),
            (
                "EMAIL",
                "e.martin@acme.example",
                vec![("TYPE", "work"), ("TYPE", "pref")],
            ),
        ])
    }

    fn pf(name: &str) -> PropFilter {
        PropFilter {
            name: name.into(),
            test: FilterTest::AnyOf,
            is_not_defined: false,
            text_matches: vec![],
            param_filters: vec![],
        }
    }

    #[test]
    fn prop_filters() {
        let c = card();
        assert!(pf("FN").matches(&c));
        assert!(!pf("TEL").matches(&c));
        assert!(PropFilter {
            is_not_defined: true,
            ..pf("TEL")
        }
        .matches(&c));
        assert!(!PropFilter {
            is_not_defined: true,
            ..pf("FN")
        }
        .matches(&c));

        let fn_elo = PropFilter {
            text_matches: vec![TextMatch::new("élo")],
            ..pf("FN")
        };
        assert!(fn_elo.matches(&c));

        // Per instance: a work address at acme exists…
        let work_acme = PropFilter {
            test: FilterTest::AllOf,
            text_matches: vec![TextMatch::new("acme")],
            param_filters: vec![ParamFilter {
                name: "TYPE".into(),
                is_not_defined: false,
                text_match: Some(tm(
                    "work",
                    Collation::AsciiCasemap,
                    MatchType::Equals,
                    false,
                )),
            }],
            ..pf("EMAIL")
        };
        assert!(work_acme.matches(&c));
        // …but no home address at acme.
        let home_acme = PropFilter {
            param_filters: vec![ParamFilter {
                name: "type".into(),
                is_not_defined: false,
                text_match: Some(TextMatch::new("home")),
            }],
            ..work_acme.clone()
        };
        assert!(!home_acme.matches(&c));
        // anyof: either condition on one instance.
        assert!(PropFilter {
            test: FilterTest::AnyOf,
            ..home_acme
        }
        .matches(&c));

        let no_type = PropFilter {
            param_filters: vec![ParamFilter {
                name: "TYPE".into(),
                is_not_defined: true,
                text_match: None,
            }],
            ..pf("EMAIL")
        };
        assert!(!no_type.matches(&c));
        let has_pref = PropFilter {
            param_filters: vec![ParamFilter {
                name: "TYPE".into(),
                is_not_defined: false,
                text_match: Some(tm(
                    "pref",
                    Collation::UnicodeCasemap,
                    MatchType::Equals,
                    false,
                )),
            }],
            ..pf("EMAIL")
        };
        assert!(has_pref.matches(&c));
    }

    #[test]
    fn filter_anyof_allof() {
        let c = card();
        let yes = PropFilter {
            text_matches: vec![TextMatch::new("martin")],
            ..pf("FN")
        };
        let no = pf("TEL");
        let any = Filter {
            test: FilterTest::AnyOf,
            prop_filters: vec![yes.clone(), no.clone()],
        };
        let all = Filter {
            test: FilterTest::AllOf,
            prop_filters: vec![yes, no],
        };
        assert!(any.matches(&c));
        assert!(!all.matches(&c));
        assert!(Filter::default().matches(&c));
    }
}
