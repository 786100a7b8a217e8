//! Usernames: 1–150 Unicode letters, digits and `@ . + - _`.
use super::{BLANK, fold};

pub const MAX_LENGTH: usize = 150;
pub const INVALID: &str = "Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters.";

/// A valid username, as given (surrounding whitespace removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    /// Every rule the value breaks, as messages.
    pub fn parse(value: &str) -> Result<Self, Vec<String>> {
        let value = value.trim();
        let mut problems = Vec::new();
        if value.is_empty() {
            problems.push(BLANK.to_owned());
        }
        if value.chars().count() > MAX_LENGTH {
            problems.push(format!(
                "Ensure this field has no more than {MAX_LENGTH} characters."
            ));
        }
        if !value.chars().all(is_username_char) {
            problems.push(INVALID.to_owned());
        }
        if problems.is_empty() {
            Ok(Self(value.to_owned()))
        } else {
            Err(problems)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-folded key under which the username is unique.
    pub fn folded(&self) -> String {
        fold(&self.0)
    }
}

fn is_username_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '@' | '.' | '+' | '-' | '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_letters_digits_and_the_five_symbols() {
        for name in ["alice", "Émile_42", "a.b+c-d@e", "Ωμέγα", "x"] {
            assert_eq!(Username::parse(name).map(|u| u.0), Ok(name.to_owned()));
        }
    }

    #[test]
    fn reports_every_problem() {
        assert_eq!(Username::parse("  "), Err(vec![BLANK.to_owned()]));
        assert_eq!(Username::parse("a b"), Err(vec![INVALID.to_owned()]));
        let long = "a!".repeat(76);
        assert_eq!(
            Username::parse(&long),
            Err(vec![
                "Ensure this field has no more than 150 characters.".to_owned(),
                INVALID.to_owned()
            ])
        );
        assert!(Username::parse(&"a".repeat(150)).is_ok());
    }

    #[test]
    fn folds_for_uniqueness() {
        let a = Username::parse("Alice").ok();
        assert_eq!(a.map(|u| u.folded()), Some("alice".to_owned()));
    }
}
