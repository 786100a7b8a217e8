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
