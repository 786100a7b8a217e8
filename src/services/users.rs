//! Creating users and keeping their unique keys unique.
use entity::user;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    QuerySelect, Set, SqlErr,
};

use crate::{
    clock,
    domain::{Email, PasswordPolicy, Username, fold, parse_name, password::PersonalInfo},
    error::{Error, FieldErrors, Result},
};

pub const USERNAME_TAKEN: &str = "A user with that username already exists.";
pub const EMAIL_TAKEN: &str = "A user with that email already exists.";

/// The identity fields of a new account, parsed: `None` where a value was
/// refused (its messages are in the caller's `FieldErrors`).
pub struct Identity {
    pub username: Option<Username>,
    pub email: Option<Email>,
    pub first_name: String,
    pub last_name: String,
}

/// Parses what every new account has (register, createUser): username,
/// email, names and, when given, the password against the policy. Every
/// problem is added to `errors`, under the field that carried it.
pub fn parse_identity(
    username: &str,
    email: &str,
    first_name: Option<&str>,
    last_name: Option<&str>,
    password: Option<&str>,
    policy: PasswordPolicy,
    errors: &mut FieldErrors,
) -> Identity {
    let parsed_username = Username::parse(username)
        .map_err(|m| errors.extend("username", m))
        .ok();
    let parsed_email = Email::parse(email)
        .map_err(|m| errors.extend("email", m))
        .ok();
    let first_name = parse_name(first_name)
        .map_err(|m| errors.extend("firstName", m))
        .unwrap_or_default();
    let last_name = parse_name(last_name)
        .map_err(|m| errors.extend("lastName", m))
        .unwrap_or_default();
    if let Some(password) = password {
        let info = PersonalInfo {
            username: username.trim(),
            email: email.trim(),
            first_name: &first_name,
            last_name: &last_name,
        };
        errors.extend("password", policy.check(password, info));
    }
    Identity {
        username: parsed_username,
        email: parsed_email,
        first_name,
        last_name,
    }
}

/// A user about to be created, its values already validated.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: Username,
    pub email: Email,
    pub first_name: String,
    pub last_name: String,
    pub phone_number: Option<String>,
    pub password_hash: Option<String>,
    pub is_active: bool,
    pub is_staff: bool,
    pub is_superuser: bool,
    pub division_id: Option<i64>,
}

/// The users whose username folds to `username` or whose email folds to
/// `email` (at most two: both keys are unique).
pub async fn with_username_or_email(
    db: &impl ConnectionTrait,
    username: &str,
    email: &str,
) -> Result<Vec<user::Model>> {
    Ok(user::Entity::find()
        .filter(
            Condition::any()
                .add(user::Column::UsernameFolded.eq(username))
                .add(user::Column::EmailFolded.eq(email)),
        )
        .all(db)
        .await?)
}

/// Which of `username` and `email` another user (not `except`) already has,
/// as `CONFLICT` field messages. The unique indexes remain the last word.
pub async fn taken_fields(
    db: &impl ConnectionTrait,
    username: Option<&Username>,
    email: Option<&Email>,
    except: Option<i64>,
) -> Result<FieldErrors> {
    let username_key = username.map(Username::folded);
    let email_key = email.map(Email::folded);
    let mut any = Condition::any();
    if let Some(key) = &username_key {
        any = any.add(user::Column::UsernameFolded.eq(key.as_str()));
    }
    if let Some(key) = &email_key {
        any = any.add(user::Column::EmailFolded.eq(key.as_str()));
    }
    let mut query = user::Entity::find()
        .select_only()
        .columns([user::Column::UsernameFolded, user::Column::EmailFolded])
        .filter(any);
    if let Some(id) = except {
        query = query.filter(user::Column::Id.ne(id));
    }
    let clashes: Vec<(String, String)> = query.into_tuple().all(db).await?;
    let mut errors = FieldErrors::new();
    if clashes
        .iter()
        .any(|(u, _)| Some(u) == username_key.as_ref())
    {
        errors.add("username", USERNAME_TAKEN);
    }
    if clashes.iter().any(|(_, e)| Some(e) == email_key.as_ref()) {
        errors.add("email", EMAIL_TAKEN);
    }
    Ok(errors)
}

/// Turns a unique violation of the users table into `CONFLICT`.
pub fn conflict_from(error: DbErr) -> Error {
    match error.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(message)) => {
            let mut fields = FieldErrors::new();
            if message.contains("username_folded") {
                fields.add("username", USERNAME_TAKEN);
            }
            if message.contains("email_folded") {
                fields.add("email", EMAIL_TAKEN);
            }
            if fields.is_empty() {
                Error::from(error)
            } else {
                Error::Conflict(fields)
            }
        }
        _ => Error::from(error),
    }
}

/// Inserts a user. Both unique keys are checked first so that every clash
/// is reported at once; a racing insert is still caught by the database.
pub async fn create(db: &impl ConnectionTrait, new: NewUser) -> Result<user::Model> {
    let taken = taken_fields(db, Some(&new.username), Some(&new.email), None).await?;
    if !taken.is_empty() {
        return Err(Error::Conflict(taken));
    }
    let row = user::ActiveModel {
        username_folded: Set(new.username.folded()),
        username: Set(new.username.as_str().to_owned()),
        email_folded: Set(new.email.folded()),
        email: Set(new.email.as_str().to_owned()),
        first_name_folded: Set(fold(&new.first_name)),
        first_name: Set(new.first_name),
        last_name_folded: Set(fold(&new.last_name)),
        last_name: Set(new.last_name),
        phone_number: Set(new.phone_number),
        password_hash: Set(new.password_hash),
        is_active: Set(new.is_active),
        is_staff: Set(new.is_staff),
        is_superuser: Set(new.is_superuser),
        date_joined: Set(clock::now()),
        last_login: Set(None),
        division_id: Set(new.division_id),
        token_version: Set(0),
        ..Default::default()
    };
    row.insert(db).await.map_err(conflict_from)
}

/// Whether the database holds no user at all (a first start); a database
/// that cannot answer is not said to be empty.
pub async fn none_yet(db: &impl ConnectionTrait) -> bool {
    let first = user::Entity::find()
        .select_only()
        .column(user::Column::Id)
        .limit(1)
        .into_tuple::<i64>()
        .one(db)
        .await;
    matches!(first, Ok(None))
}
