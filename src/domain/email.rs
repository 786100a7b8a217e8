//! Email addresses: a practical subset of RFC 5322 (dot-atom local part,
//! host name domain), at most 254 characters.
use super::{BLANK, fold};

pub const MAX_LENGTH: usize = 254;
pub const INVALID: &str = "Enter a valid email address.";

/// A valid email address, as given (surrounding whitespace removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(value: &str) -> Result<Self, Vec<String>> {
        let value = value.trim();
        if value.is_empty() {
            return Err(vec![BLANK.to_owned()]);
        }
        let mut problems = Vec::new();
        if value.chars().count() > MAX_LENGTH {
            problems.push(format!(
                "Ensure this field has no more than {MAX_LENGTH} characters."
            ));
        }
        if !is_valid_address(value) {
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

    /// The case-folded key under which the address is unique.
    pub fn folded(&self) -> String {
        fold(&self.0)
    }
}

fn is_valid_address(value: &str) -> bool {
    let Some((local, domain)) = value.rsplit_once('@') else {
        return false;
    };
    is_valid_local_part(local) && is_valid_domain(domain)
}

fn is_valid_local_part(local: &str) -> bool {
    const ATEXT_SYMBOLS: &str = "!#$%&'*+/=?^_`{|}~-";
    !local.is_empty()
        && local.len() <= 64
        && local.split('.').all(|atom| {
            !atom.is_empty()
                && atom
                    .chars()
                    .all(|c| c.is_alphanumeric() || ATEXT_SYMBOLS.contains(c))
        })
}

fn is_valid_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |label: &&str| {
        !label.is_empty()
            && label.chars().count() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_alphanumeric() || c == '-')
    };
    let Some(tld) = labels.last() else {
        return false;
    };
    // A single-label domain is only accepted for `localhost`, as Django does.
    (labels.len() >= 2 || domain.eq_ignore_ascii_case("localhost"))
        && labels.iter().all(label_ok)
        && !tld.chars().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_addresses() {
        for address in [
            "alice@example.com",
            "a.b+tag@sub.example.co.uk",
            "o'brien@example.org",
            "émile@exämple.fr",
            "root@localhost",
        ] {
            assert!(Email::parse(address).is_ok(), "{address}");
        }
    }

    #[test]
    fn refuses_malformed_addresses() {
        for address in [
            "plain",
            "@example.com",
            "a@",
            "a@b",
            "a..b@example.com",
            ".a@example.com",
            "a@-example.com",
            "a@example..com",
            "a b@example.com",
            "a@example.123",
            "a@@example.com",
        ] {
            assert_eq!(
                Email::parse(address),
                Err(vec![INVALID.to_owned()]),
                "{address}"
            );
        }
    }

    #[test]
    fn blank_and_too_long() {
        assert_eq!(Email::parse(" "), Err(vec![BLANK.to_owned()]));
        let label = "b".repeat(60);
        let long = format!("{}@{label}.{label}.{label}.example.com", "a".repeat(64));
        assert_eq!(
            Email::parse(&long),
            Err(vec![
                "Ensure this field has no more than 254 characters.".to_owned()
            ])
        );
    }
}
