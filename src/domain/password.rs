//! The password policy, used by every path that sets a password.
//!
//! Rules (every failed one is reported): at least `min_length` characters
//! (configurable, default 8), at most 1024, not entirely numeric, not a
//! commonly used password, and not too similar to the username, email or
//! names. "Commonly used" means the whole password is one entry of zxcvbn's
//! list of the 30,000 most common passwords (case, reversal and l33t
//! spellings included), or zxcvbn rates it guessable in under 1,000 tries.
//! The similarity rule is Django's: a quick similarity ratio of at least 0.7
//! against the attribute or any of its word-separated parts.
use std::collections::HashMap;

use zxcvbn::{Score, matching::patterns::MatchPattern};

pub const MAX_LENGTH: usize = 1024;
pub const TOO_COMMON: &str = "This password is too common.";
pub const ENTIRELY_NUMERIC: &str = "This password is entirely numeric.";
const MAX_SIMILARITY: f64 = 0.7;
/// Longer passwords are not looked up: no list entry is this long, and
/// zxcvbn's cost grows with the length.
const COMMON_CHECK_MAX_LENGTH: usize = 64;

/// What a password is compared with for similarity, each with the name
/// used in the message ("The password is too similar to the {name}.").
#[derive(Debug, Default, Clone, Copy)]
pub struct PersonalInfo<'a> {
    pub username: &'a str,
    pub email: &'a str,
    pub first_name: &'a str,
    pub last_name: &'a str,
}

#[derive(Debug, Clone, Copy)]
pub struct PasswordPolicy {
    pub min_length: usize,
}

impl PasswordPolicy {
    pub fn new(min_length: usize) -> Self {
        Self { min_length }
    }

    /// Every rule `password` breaks, as messages; empty when it is fine.
    pub fn check(&self, password: &str, info: PersonalInfo<'_>) -> Vec<String> {
        if password.is_empty() {
            return vec![super::BLANK.to_owned()];
        }
        let length = password.chars().count();
        let mut problems = Vec::new();
        if length < self.min_length {
            let unit = if self.min_length == 1 {
                "character"
            } else {
                "characters"
            };
            problems.push(format!(
                "This password is too short. It must contain at least {} {unit}.",
                self.min_length
            ));
        }
        if length > MAX_LENGTH {
            problems.push(format!(
                "This password is too long. It must contain at most {MAX_LENGTH} characters."
            ));
        }
        if let Some(name) = similar_attribute(password, info) {
            problems.push(format!("The password is too similar to the {name}."));
        }
        if length <= COMMON_CHECK_MAX_LENGTH && is_common(password) {
            problems.push(TOO_COMMON.to_owned());
        }
        if password.chars().all(|c| c.is_ascii_digit()) {
            problems.push(ENTIRELY_NUMERIC.to_owned());
        }
        problems
    }
}

fn is_common(password: &str) -> bool {
    let entropy = zxcvbn::zxcvbn(password, &[]);
    let last = password.chars().count().saturating_sub(1);
    let whole_list_entry = entropy.sequence().iter().any(|m| {
        m.i == 0
            && m.j == last
            && matches!(&m.pattern, MatchPattern::Dictionary(d)
                // zxcvbn does not export its dictionary type; its default
                // is the list of common passwords.
                if d.dictionary_name == Default::default())
    });
    whole_list_entry || entropy.score() == Score::Zero
}

fn similar_attribute(password: &str, info: PersonalInfo<'_>) -> Option<&'static str> {
    let password = password.to_lowercase();
    [
        ("username", info.username),
        ("email address", info.email),
        ("first name", info.first_name),
        ("last name", info.last_name),
    ]
    .into_iter()
    .find(|(_, value)| is_too_similar(&password, &value.to_lowercase()))
    .map(|(name, _)| name)
}

fn is_too_similar(password: &str, value: &str) -> bool {
    if value.is_empty() {
        return false;
    }
    value
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .chain(std::iter::once(value))
        .filter(|part| !exceeds_length_ratio(password, part))
        .any(|part| quick_ratio(password, part) >= MAX_SIMILARITY)
}

/// A much longer password cannot be "similar" to a short part (Django's
/// `exceeds_maximum_length_ratio`).
fn exceeds_length_ratio(password: &str, part: &str) -> bool {
    let password_len = password.chars().count() as f64;
    let part_len = part.chars().count() as f64;
    password_len >= 10.0 * part_len && part_len < MAX_SIMILARITY / 2.0 * password_len
}

/// Python's `SequenceMatcher.quick_ratio`: twice the characters the two
/// strings share (as multisets) over their total length.
fn quick_ratio(a: &str, b: &str) -> f64 {
    let total = a.chars().count() + b.chars().count();
    if total == 0 {
        return 1.0;
    }
    let mut available: HashMap<char, usize> = HashMap::new();
    for c in b.chars() {
        *available.entry(c).or_default() += 1;
    }
    let shared = a
        .chars()
        .filter(|c| match available.get_mut(c) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        })
        .count();
    2.0 * shared as f64 / total as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(password: &str) -> Vec<String> {
        PasswordPolicy::new(8).check(password, PersonalInfo::default())
    }

    #[test]
    fn accepts_a_strong_password() {
        assert!(check("correct horse battery staple").is_empty());
        assert!(check("Vq7#pL2m!xZ").is_empty());
    }

    #[test]
    fn refuses_common_passwords_in_any_case() {
        for password in ["password", "PASSWORD", "iloveyou", "qwertyuiop", "p@ssw0rd"] {
            assert_eq!(check(password), vec![TOO_COMMON.to_owned()], "{password}");
        }
    }

    #[test]
    fn reports_every_rule_at_once() {
        assert_eq!(
            check("1234"),
            vec![
                "This password is too short. It must contain at least 8 characters.".to_owned(),
                TOO_COMMON.to_owned(),
                ENTIRELY_NUMERIC.to_owned(),
            ]
        );
        assert_eq!(check(""), vec!["This field may not be blank.".to_owned()]);
        let long = "xQ3#".repeat(300);
        assert_eq!(
            check(&long),
            vec!["This password is too long. It must contain at most 1024 characters.".to_owned()]
        );
    }

    #[test]
    fn refuses_numeric_passwords() {
        assert!(check("83749102938475").contains(&ENTIRELY_NUMERIC.to_owned()));
    }

    #[test]
    fn refuses_passwords_like_personal_info() {
        let info = PersonalInfo {
            username: "margaretha",
            email: "m.vonstein@example.com",
            first_name: "Margaretha",
            last_name: "von Stein",
        };
        let policy = PasswordPolicy::new(8);
        assert_eq!(
            policy.check("Margaretha1", info),
            vec!["The password is too similar to the username.".to_owned()]
        );
        assert_eq!(
            policy.check("vonstein-example", info),
            vec!["The password is too similar to the email address.".to_owned()]
        );
        assert!(policy.check("Vq7#pL2m!xZ", info).is_empty());
    }

    #[test]
    fn quick_ratio_matches_python() {
        assert!((quick_ratio("abcd", "bcde") - 0.75).abs() < 1e-9);
        assert!((quick_ratio("abc", "xyz")).abs() < 1e-9);
    }
}
