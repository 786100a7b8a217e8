//! Domain values, parsed once at the edge so the rest of the code cannot hold
//! an invalid one.
pub mod email;
pub mod event;
pub mod password;
pub mod permission;
pub mod retry_schedule;
pub mod username;
pub mod webhook_url;

pub use email::Email;
pub use event::EventType;
pub use password::PasswordPolicy;
pub use permission::{Permission, Permissions};
pub use retry_schedule::RetrySchedule;
pub use username::Username;
pub use webhook_url::WebhookUrl;

/// Full Unicode case folding, the key of every case-insensitive comparison.
/// Done in Rust so that SQLite and PostgreSQL agree on it.
pub fn fold(value: &str) -> String {
    caseless::default_case_fold_str(value)
}

/// The message for a required text left empty.
pub const BLANK: &str = "This field may not be blank.";

/// The longest remote id accepted.
pub const REMOTE_ID_MAX_LENGTH: usize = 255;

/// An external system's id for a user: at most 255 characters, no control
/// characters, trimmed. Empty means none.
pub fn parse_remote_id(value: &str) -> Result<Option<String>, Vec<String>> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let mut problems = Vec::new();
    if value.chars().count() > REMOTE_ID_MAX_LENGTH {
        problems.push(format!(
            "Ensure this field has no more than {REMOTE_ID_MAX_LENGTH} characters."
        ));
    }
    if value.chars().any(char::is_control) {
        problems.push("Enter an id without control characters.".to_owned());
    }
    match problems.is_empty() {
        true => Ok(Some(value.to_owned())),
        false => Err(problems),
    }
}

/// The longest phone number accepted.
pub const PHONE_MAX_LENGTH: usize = 32;
pub const INVALID_PHONE: &str = "Enter a valid phone number.";

/// A phone number: digits with optional `+`, spaces, `-`, `.`, `(` and `)`,
/// at most 32 characters, trimmed. Empty means none.
pub fn parse_phone(value: &str) -> Result<Option<String>, Vec<String>> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let allowed = value
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '.' | '(' | ')'));
    let mut problems = Vec::new();
    if value.chars().count() > PHONE_MAX_LENGTH {
        problems.push(format!(
            "Ensure this field has no more than {PHONE_MAX_LENGTH} characters."
        ));
    }
    if !allowed || !value.chars().any(|c| c.is_ascii_digit()) {
        problems.push(INVALID_PHONE.to_owned());
    }
    if problems.is_empty() {
        Ok(Some(value.to_owned()))
    } else {
        Err(problems)
    }
}

/// A group or division name: 1–150 characters, trimmed.
pub fn parse_title(value: &str) -> Result<String, Vec<String>> {
    let value = value.trim();
    if value.is_empty() {
        return Err(vec![BLANK.to_owned()]);
    }
    if value.chars().count() > NAME_MAX_LENGTH {
        return Err(vec![format!(
            "Ensure this field has no more than {NAME_MAX_LENGTH} characters."
        )]);
    }
    Ok(value.to_owned())
}

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
