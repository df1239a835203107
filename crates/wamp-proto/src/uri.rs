//! WAMP URIs: validation and pattern matching.
//!
//! A URI is a string of `.`-separated *components*. Topics, procedures,
//! errors and realms are all URIs.
//!
//! # Component characters
//!
//! * [`UriRule::Loose`] (what the spec says every peer MUST enforce): a
//!   component may contain any character except `.`, `#` and whitespace.
//!   "Whitespace" is Rust's [`char::is_whitespace`] (the Unicode
//!   `White_Space` property), the closest equivalent of the `\s` in the
//!   spec's Python regexes.
//! * [`UriRule::Strict`] (what the spec says peers SHOULD use): a component
//!   consists of ASCII lower-case letters, digits and `_` only.
//!
//! # Which components may be empty
//!
//! | Kind | Rule | Examples |
//! |---|---|---|
//! | concrete URI, [`MatchPolicy::Exact`] pattern | no component is empty | `com.myapp.topic1` |
//! | [`MatchPolicy::Prefix`] pattern | only the **last** component may be empty | `com.myapp.`, `com.myapp.topic` |
//! | [`MatchPolicy::Wildcard`] pattern | any component may be empty | `com..topic`, `.a`, `a..`, `.` |
//!
//! The empty string is invalid in every case (the spec's regexes for
//! patterns would accept it, but an empty pattern is useless and almost
//! certainly a mistake). These are the Autobahn/Crossbar rules, which the
//! spec's regexes do not fully state: its "empty components allowed" regex
//! is used for wildcard patterns, and Autobahn/Crossbar's "last component
//! may be empty" variant for prefix patterns.
//!
//! # Matching
//!
//! * [`prefix_matches`]: plain string prefix, not component-wise, as in the
//!   spec's examples (`com.myapp.topic.emergency` matches
//!   `com.myapp.topic.emergency-low`).
//! * [`wildcard_matches`]: same number of components; an empty pattern
//!   component matches any component, the others must be equal.
//!
//! Reserved-prefix policy (`wamp.*` belongs to the protocol) is the router's
//! business and is not checked here.

use std::fmt;

/// Which characters URI components may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum UriRule {
    /// Components must not contain `.`, `#` or whitespace (the spec's MUST).
    #[default]
    Loose,
    /// Components consist of `[0-9a-z_]` only (the spec's SHOULD).
    Strict,
}

/// How a subscription or registration URI is matched against topics or
/// procedures (the `match` option of SUBSCRIBE and REGISTER).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MatchPolicy {
    /// The URI must be equal to the pattern (the default when no `match`
    /// option is given).
    #[default]
    Exact,
    /// The URI must start with the pattern (plain string prefix).
    Prefix,
    /// Component-wise match where empty pattern components match anything.
    Wildcard,
}

impl MatchPolicy {
    /// Parses the value of the `match` option: `"exact"`, `"prefix"` or
    /// `"wildcard"`. Anything else gives `None`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "exact" => Some(Self::Exact),
            "prefix" => Some(Self::Prefix),
            "wildcard" => Some(Self::Wildcard),
            _ => None,
        }
    }

    /// The wire name of the policy, as used in the `match` option.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exact => "exact",
            Self::Prefix => "prefix",
            Self::Wildcard => "wildcard",
        }
    }
}

impl fmt::Display for MatchPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether `c` may appear in a URI component under `rule`.
fn is_component_char(c: char, rule: UriRule) -> bool {
    match rule {
        UriRule::Loose => c != '.' && c != '#' && !c.is_whitespace(),
        UriRule::Strict => matches!(c, '0'..='9' | 'a'..='z' | '_'),
    }
}

/// Whether every character of `component` is allowed under `rule`
/// (an empty component passes).
fn component_chars_ok(component: &str, rule: UriRule) -> bool {
    component.chars().all(|c| is_component_char(c, rule))
}

/// Checks a concrete URI (topic, procedure, error, realm): non-empty,
/// `.`-separated components, none of them empty, each made of characters
/// allowed by `rule`.
pub fn is_valid_uri(uri: &str, rule: UriRule) -> bool {
    // Every CALL and PUBLISH is checked: one pass over the bytes for ASCII URIs,
    // the char-wise rule for the rest.
    if !uri.is_ascii() {
        return !uri.is_empty()
            && uri
                .split('.')
                .all(|c| !c.is_empty() && component_chars_ok(c, rule));
    }
    let mut component_empty = true;
    for &b in uri.as_bytes() {
        if b == b'.' {
            if component_empty {
                return false;
            }
            component_empty = true;
        } else if is_component_char(char::from(b), rule) {
            component_empty = false;
        } else {
            return false;
        }
    }
    !component_empty
}

/// Checks a subscription/registration URI for the given match policy.
///
/// * [`MatchPolicy::Exact`]: the same as [`is_valid_uri`].
/// * [`MatchPolicy::Prefix`]: like [`is_valid_uri`], except that the last
///   component may be empty (`com.myapp.` is valid, `com..myapp` is not).
/// * [`MatchPolicy::Wildcard`]: any component may be empty (`com..topic`,
///   `.a`, `a..`, `.` are valid).
///
/// The empty string is invalid for every policy.
pub fn is_valid_pattern(uri: &str, policy: MatchPolicy, rule: UriRule) -> bool {
    if uri.is_empty() {
        return false;
    }
    match policy {
        MatchPolicy::Exact => is_valid_uri(uri, rule),
        MatchPolicy::Prefix => {
            let (init, last) = match uri.rsplit_once('.') {
                Some((init, last)) => (Some(init), last),
                None => (None, uri),
            };
            component_chars_ok(last, rule) && init.is_none_or(|init| is_valid_uri(init, rule))
        }
        MatchPolicy::Wildcard => uri.split('.').all(|c| component_chars_ok(c, rule)),
    }
}

/// Whether `uri` matches the prefix pattern `prefix`: a plain string
/// prefix test, not a component-wise one. A URI equal to the prefix
/// matches.
pub fn prefix_matches(prefix: &str, uri: &str) -> bool {
    uri.starts_with(prefix)
}

/// Whether `uri` matches the wildcard pattern `pattern`: both have the same
/// number of `.`-separated components, and each non-empty pattern component
/// equals the URI component at the same position (empty pattern components
/// match any component).
pub fn wildcard_matches(pattern: &str, uri: &str) -> bool {
    let mut pat = pattern.split('.');
    let mut parts = uri.split('.');
    loop {
        match (pat.next(), parts.next()) {
            (None, None) => return true,
            (Some(p), Some(u)) => {
                if !p.is_empty() && p != u {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const RULES: [UriRule; 2] = [UriRule::Loose, UriRule::Strict];

    #[test]
    fn defaults() {
        assert_eq!(UriRule::default(), UriRule::Loose);
        assert_eq!(MatchPolicy::default(), MatchPolicy::Exact);
    }

    #[test]
    fn match_policy_names_round_trip() {
        for p in [
            MatchPolicy::Exact,
            MatchPolicy::Prefix,
            MatchPolicy::Wildcard,
        ] {
            assert_eq!(MatchPolicy::parse(p.as_str()), Some(p));
            assert_eq!(p.to_string(), p.as_str());
        }
        assert_eq!(MatchPolicy::parse("Exact"), None);
        assert_eq!(MatchPolicy::parse(""), None);
        assert_eq!(MatchPolicy::parse("regex"), None);
    }

    #[test]
    fn spec_example_uris_are_valid_under_both_rules() {
        for uri in [
            "com.myapp.mytopic1",
            "com.myapp.myprocedure1",
            "com.myapp.error1",
            "com.myapp.topic1",
            "wamp.error.not_authorized",
            "realm1",
            "a",
            "com.myapp.product_123",
        ] {
            for rule in RULES {
                assert!(is_valid_uri(uri, rule), "{uri} under {rule:?}");
                assert!(is_valid_pattern(uri, MatchPolicy::Exact, rule));
                assert!(is_valid_pattern(uri, MatchPolicy::Prefix, rule));
                assert!(is_valid_pattern(uri, MatchPolicy::Wildcard, rule));
            }
        }
    }

    #[test]
    fn loose_only_uris() {
        for uri in [
            "com.myapp.Topic1",
            "com.myapp.topic-1",
            "com.myapp.topic.emergency-low",
            "de.myapp.grüße",
            "com.myapp.a$b",
        ] {
            assert!(is_valid_uri(uri, UriRule::Loose), "{uri}");
            assert!(!is_valid_uri(uri, UriRule::Strict), "{uri}");
        }
    }

    #[test]
    fn invalid_concrete_uris() {
        for uri in [
            "",
            ".",
            "..",
            "com.myapp.",
            ".com.myapp",
            "com..myapp",
            "com.my app",
            "com.my\tapp",
            "com.my\u{a0}app",
            "com.myapp#1",
            "#",
            " ",
        ] {
            for rule in RULES {
                assert!(!is_valid_uri(uri, rule), "{uri:?} under {rule:?}");
                assert!(!is_valid_pattern(uri, MatchPolicy::Exact, rule));
            }
        }
    }

    #[test]
    fn prefix_patterns() {
        for uri in [
            "com.myapp.",
            "com.myapp",
            "com.",
            "com",
            "com.myapp.topic.emergency",
        ] {
            for rule in RULES {
                assert!(is_valid_pattern(uri, MatchPolicy::Prefix, rule), "{uri}");
            }
        }
        for uri in [
            "",
            ".",
            "..",
            ".com",
            "com..",
            "com..myapp",
            "com.my app.",
            "com.#.",
        ] {
            for rule in RULES {
                assert!(!is_valid_pattern(uri, MatchPolicy::Prefix, rule), "{uri:?}");
            }
        }
        assert!(is_valid_pattern(
            "com.MyApp.",
            MatchPolicy::Prefix,
            UriRule::Loose
        ));
        assert!(!is_valid_pattern(
            "com.MyApp.",
            MatchPolicy::Prefix,
            UriRule::Strict
        ));
        assert!(!is_valid_pattern(
            "com.myapp.X",
            MatchPolicy::Prefix,
            UriRule::Strict
        ));
    }

    #[test]
    fn wildcard_patterns() {
        for uri in [
            "com.myapp..userevent",
            "com..topic",
            ".a",
            "a..",
            ".",
            "..",
            "com.myapp.",
            "com.myapp.create_product",
        ] {
            for rule in RULES {
                assert!(
                    is_valid_pattern(uri, MatchPolicy::Wildcard, rule),
                    "{uri:?}"
                );
            }
        }
        for uri in ["", "com. .x", "com..#", "a b", "com..x\n"] {
            for rule in RULES {
                assert!(
                    !is_valid_pattern(uri, MatchPolicy::Wildcard, rule),
                    "{uri:?}"
                );
            }
        }
        assert!(is_valid_pattern(
            "Com..X",
            MatchPolicy::Wildcard,
            UriRule::Loose
        ));
        assert!(!is_valid_pattern(
            "Com..X",
            MatchPolicy::Wildcard,
            UriRule::Strict
        ));
    }

    #[test]
    fn spec_prefix_examples() {
        // From the spec's pattern-based subscription/registration sections.
        let p = "com.myapp.topic.emergency";
        assert!(prefix_matches(p, "com.myapp.topic.emergency.11"));
        assert!(prefix_matches(p, "com.myapp.topic.emergency-low"));
        assert!(prefix_matches(
            p,
            "com.myapp.topic.emergency.category.severe"
        ));
        assert!(prefix_matches(p, "com.myapp.topic.emergency"));
        assert!(!prefix_matches(p, "com.myapp.topic.emerge"));
        assert!(!prefix_matches(p, "com.myapp.topic"));

        let p = "com.myapp.myobject1";
        assert!(prefix_matches(p, "com.myapp.myobject1.myprocedure1"));
        assert!(prefix_matches(p, "com.myapp.myobject1-mysubobject1"));
        assert!(prefix_matches(
            p,
            "com.myapp.myobject1.mysubobject1.myprocedure1"
        ));
        assert!(prefix_matches(p, "com.myapp.myobject1"));
        assert!(!prefix_matches(p, "com.myapp.myobject2"));
        assert!(!prefix_matches(p, "com.myapp.myobject"));

        assert!(prefix_matches("com.myapp.", "com.myapp.x"));
        assert!(!prefix_matches("com.myapp.", "com.myapp"));
    }

    #[test]
    fn spec_wildcard_examples() {
        let p = "com.myapp..userevent";
        assert!(wildcard_matches(p, "com.myapp.foo.userevent"));
        assert!(wildcard_matches(p, "com.myapp.bar.userevent"));
        assert!(wildcard_matches(p, "com.myapp.a12.userevent"));
        assert!(!wildcard_matches(p, "com.myapp.foo.userevent.bar"));
        assert!(!wildcard_matches(p, "com.myapp.foo.user"));
        assert!(!wildcard_matches(p, "com.myapp2.foo.userevent"));

        let p = "com.myapp..myprocedure1";
        assert!(wildcard_matches(p, "com.myapp.myobject1.myprocedure1"));
        assert!(wildcard_matches(p, "com.myapp.myobject2.myprocedure1"));
        assert!(!wildcard_matches(
            p,
            "com.myapp.myobject1.myprocedure1.mysubprocedure1"
        ));
        assert!(!wildcard_matches(p, "com.myapp.myobject1.myprocedure2"));
        assert!(!wildcard_matches(p, "com.myapp2.myobject1.myprocedure1"));
    }

    #[test]
    fn wildcard_edge_cases() {
        assert!(wildcard_matches(".", "a.b"));
        assert!(!wildcard_matches(".", "a"));
        assert!(!wildcard_matches(".", "a.b.c"));
        assert!(wildcard_matches(".a", "x.a"));
        assert!(wildcard_matches("a..", "a.b.c"));
        assert!(!wildcard_matches("a..", "b.b.c"));
        assert!(wildcard_matches("a.b", "a.b"));
        assert!(!wildcard_matches("a.b", "a.bc"));
        assert!(wildcard_matches("", "anything"));
        assert!(!wildcard_matches("", "a.b"));
    }

    // ---- property tests against reference implementations ----
    //
    // The references are character-level automata hand-translated from the
    // spec's regexes:
    //   no empty components:   ^([^\s\.#]+\.)*([^\s\.#]+)$
    //   last may be empty:     ^([^\s\.#]+\.)*([^\s\.#]*)$
    //   empty allowed:         ^(([^\s\.#]+\.)|\.)*([^\s\.#]+)?$
    // (and the same with [0-9a-z_] for strict), plus our "non-empty" rule.

    fn ref_char_ok(c: char, rule: UriRule) -> bool {
        match rule {
            UriRule::Loose => !(c == '.' || c == '#' || c.is_whitespace()),
            UriRule::Strict => c.is_ascii_digit() || c.is_ascii_lowercase() || c == '_',
        }
    }

    /// Automaton for the concrete-URI regex. State `true`: just read a
    /// component character; `false`: at the start of a component.
    fn ref_valid_uri(uri: &str, rule: UriRule) -> bool {
        let mut in_component = false;
        for c in uri.chars() {
            if c == '.' {
                if !in_component {
                    return false;
                }
                in_component = false;
            } else if ref_char_ok(c, rule) {
                in_component = true;
            } else {
                return false;
            }
        }
        in_component
    }

    /// Automaton for the "last component may be empty" regex.
    fn ref_valid_prefix(uri: &str, rule: UriRule) -> bool {
        let mut in_component = false;
        for c in uri.chars() {
            if c == '.' {
                if !in_component {
                    return false;
                }
                in_component = false;
            } else if ref_char_ok(c, rule) {
                in_component = true;
            } else {
                return false;
            }
        }
        !uri.is_empty()
    }

    /// Automaton for the "empty components allowed" regex: dots anywhere.
    fn ref_valid_wildcard(uri: &str, rule: UriRule) -> bool {
        !uri.is_empty() && uri.chars().all(|c| c == '.' || ref_char_ok(c, rule))
    }

    /// Wildcard matching restated: blank out the URI components where the
    /// pattern has empty ones; the result must equal the pattern.
    fn ref_wildcard_matches(pattern: &str, uri: &str) -> bool {
        let p: Vec<&str> = pattern.split('.').collect();
        let u: Vec<&str> = uri.split('.').collect();
        if p.len() != u.len() {
            return false;
        }
        let masked: Vec<&str> = p
            .iter()
            .zip(&u)
            .map(|(pc, uc)| if pc.is_empty() { "" } else { *uc })
            .collect();
        masked.join(".") == pattern
    }

    fn rule_strategy() -> impl Strategy<Value = UriRule> {
        prop_oneof![Just(UriRule::Loose), Just(UriRule::Strict)]
    }

    /// Short strings over an alphabet that hits every character class.
    fn uri_like() -> impl Strategy<Value = String> {
        "[ab_0Z.#é \t\u{a0}-]{0,10}"
    }

    fn component() -> impl Strategy<Value = String> {
        "[abc]{1,2}"
    }

    proptest! {
        #[test]
        fn valid_uri_agrees_with_reference(uri in uri_like(), rule in rule_strategy()) {
            prop_assert_eq!(is_valid_uri(&uri, rule), ref_valid_uri(&uri, rule));
            prop_assert_eq!(
                is_valid_pattern(&uri, MatchPolicy::Exact, rule),
                ref_valid_uri(&uri, rule)
            );
        }

        #[test]
        fn valid_uri_agrees_on_arbitrary_strings(uri in any::<String>(), rule in rule_strategy()) {
            prop_assert_eq!(is_valid_uri(&uri, rule), ref_valid_uri(&uri, rule));
        }

        #[test]
        fn prefix_pattern_agrees_with_reference(uri in uri_like(), rule in rule_strategy()) {
            prop_assert_eq!(
                is_valid_pattern(&uri, MatchPolicy::Prefix, rule),
                ref_valid_prefix(&uri, rule)
            );
        }

        #[test]
        fn wildcard_pattern_agrees_with_reference(uri in uri_like(), rule in rule_strategy()) {
            prop_assert_eq!(
                is_valid_pattern(&uri, MatchPolicy::Wildcard, rule),
                ref_valid_wildcard(&uri, rule)
            );
        }

        #[test]
        fn wildcard_matches_agrees_on_arbitrary_pairs(p in "[ab.]{0,6}", u in "[ab.]{0,6}") {
            prop_assert_eq!(wildcard_matches(&p, &u), ref_wildcard_matches(&p, &u));
        }

        #[test]
        fn wildcard_matches_agrees_on_derived_patterns(
            parts in prop::collection::vec(component(), 1..5),
            blanks in prop::collection::vec(any::<bool>(), 5),
            extra in prop::option::of(component()),
            replace in prop::option::of((0usize..5, component())),
        ) {
            let uri = parts.join(".");
            let mut pat: Vec<String> = parts
                .iter()
                .zip(&blanks)
                .map(|(c, &b)| if b { String::new() } else { c.clone() })
                .collect();
            if let Some((i, c)) = replace {
                let i = i % pat.len();
                pat[i] = c;
            }
            if let Some(c) = extra {
                pat.push(c);
            }
            let pattern = pat.join(".");
            prop_assert_eq!(
                wildcard_matches(&pattern, &uri),
                ref_wildcard_matches(&pattern, &uri)
            );
        }

        #[test]
        fn blanked_patterns_always_match(
            parts in prop::collection::vec(component(), 1..6),
            blanks in prop::collection::vec(any::<bool>(), 6),
        ) {
            let uri = parts.join(".");
            let pattern = parts
                .iter()
                .zip(&blanks)
                .map(|(c, &b)| if b { "" } else { c.as_str() })
                .collect::<Vec<_>>()
                .join(".");
            prop_assert!(wildcard_matches(&pattern, &uri));
            // Only a one-component URI blanked out gives the (invalid) "".
            prop_assert_eq!(
                is_valid_pattern(&pattern, MatchPolicy::Wildcard, UriRule::Strict),
                !pattern.is_empty()
            );
        }
    }
}
