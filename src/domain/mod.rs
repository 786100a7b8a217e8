//! Domain values, parsed once at the edge so the rest of the code cannot hold
//! an invalid one.
pub mod email;
pub mod password;
pub mod username;

pub use email::Email;
pub use password::PasswordPolicy;
pub use username::Username;

/// Full Unicode case folding, the key of every case-insensitive comparison.
/// Done in Rust so that SQLite and PostgreSQL agree on it.
pub fn fold(value: &str) -> String {
    caseless::default_case_fold_str(value)
}

/// The message for a required text left empty.
pub const BLANK: &str = "This field may not be blank.";

/// Longest first or last name.
pub const NAME_MAX_LENGTH: usize = 150;

/// A first or last name: optional, at most 150 characters, trimmed.
pub fn parse_name(value: Option<&str>) -> Result<String, Vec<String>> {
    let value = value.unwrap_or_default().trim();
    if value.chars().count() > NAME_MAX_LENGTH {
        return Err(vec![format!(
            "Ensure this field has no more than {NAME_MAX_LENGTH} characters."
        )]);
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::fold;

    #[test]
    fn fold_is_full_unicode_case_folding() {
        assert_eq!(fold("ÉMILE"), "émile");
        assert_eq!(fold("Straße"), "strasse");
        assert_eq!(fold("ΣΊΣΥΦΟΣ"), fold("σίσυφος"));
    }
}
