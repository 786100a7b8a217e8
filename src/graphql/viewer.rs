//! Who is asking: put into each request's data by the HTTP layer.
use std::sync::Arc;

use entity::user;

#[derive(Debug, Clone)]
pub enum Viewer {
    Anonymous,
    User(Arc<user::Model>),
}

impl Viewer {
    pub fn user(&self) -> Option<&user::Model> {
        match self {
            Viewer::Anonymous => None,
            Viewer::User(user) => Some(user),
        }
    }

    /// Staff are users with `is_staff` or `is_superuser`.
    pub fn is_staff(&self) -> bool {
        self.user().is_some_and(|u| u.is_staff || u.is_superuser)
    }

    /// Whether the viewer is the user `id` or staff.
    pub fn is_self_or_staff(&self, id: i64) -> bool {
        self.user().is_some_and(|u| u.id == id) || self.is_staff()
    }
}
