//! What a user may do beyond their own account: a fixed set of permissions,
//! carried by groups. Staff hold every one.
use std::fmt;

/// One permission. Its name is how the schema and the database spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    /// Read every user's guarded fields, filter, order and search on them,
    /// and list `Group.users` and `Division.users`.
    ViewUserDetails,
    /// Create, update, activate, deactivate and delete users and set their
    /// passwords, when they hold no permission the actor lacks.
    ManageUsers,
    /// Add users to groups and remove them, for groups whose permissions
    /// the actor holds.
    ManageGroupMembers,
    /// Create, rename and delete groups and set their permissions, for
    /// groups whose permissions the actor holds.
    ManageGroups,
    /// Create, update, activate and deactivate divisions.
    ManageDivisions,
    /// Read the audit log.
    ViewAuditLog,
}

impl Permission {
    /// Every permission, in the schema's order.
    pub const ALL: [Permission; 6] = [
        Permission::ViewUserDetails,
        Permission::ManageUsers,
        Permission::ManageGroupMembers,
        Permission::ManageGroups,
        Permission::ManageDivisions,
        Permission::ViewAuditLog,
    ];

    /// The schema's (and the database's) name of the permission.
    pub fn name(self) -> &'static str {
        match self {
            Permission::ViewUserDetails => "VIEW_USER_DETAILS",
            Permission::ManageUsers => "MANAGE_USERS",
            Permission::ManageGroupMembers => "MANAGE_GROUP_MEMBERS",
            Permission::ManageGroups => "MANAGE_GROUPS",
            Permission::ManageDivisions => "MANAGE_DIVISIONS",
            Permission::ViewAuditLog => "VIEW_AUDIT_LOG",
        }
    }

    /// The permission of that name; none for a name this build does not
    /// know (a row written by a later version is ignored, not an error).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of permissions. It may also hold "a permission this build does
/// not know" (a name a later version wrote): only staff hold that, so a
/// group or user carrying one is beyond everyone else (checks fail closed
/// while versions are mixed).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Permissions(u32);

/// The bit of the permissions this build does not know.
const UNKNOWN: u32 = 1 << 31;

impl Permissions {
    pub const NONE: Permissions = Permissions(0);

    /// Every permission, the unknown ones included: what staff hold.
    pub fn all() -> Self {
        Permissions(Self::ALL_BITS.0 | UNKNOWN)
    }

    /// Adds the permission named `name`, or the mark of an unknown one.
    pub fn insert_name(&mut self, name: &str) {
        match Permission::from_name(name) {
            Some(permission) => self.insert(permission),
            None => self.0 |= UNKNOWN,
        }
    }

    /// This set without the unknown permissions: what a non-staff user
    /// holds of what their groups carry.
    pub fn known(self) -> Permissions {
        Permissions(self.0 & !UNKNOWN)
    }

    const ALL_BITS: Permissions = {
        let mut bits = 0;
        let mut i = 0;
        while i < Permission::ALL.len() {
            bits |= 1 << (Permission::ALL[i] as u32);
            i += 1;
        }
        Permissions(bits)
    };

    pub fn contains(self, permission: Permission) -> bool {
        self.0 & permission.bit() != 0
    }

    pub fn insert(&mut self, permission: Permission) {
        self.0 |= permission.bit();
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether every permission of `other` is in this set.
    pub fn covers(self, other: Permissions) -> bool {
        other.0 & !self.0 == 0
    }

    /// The permissions of this set that `other` lacks.
    pub fn without(self, other: Permissions) -> Permissions {
        Permissions(self.0 & !other.0)
    }

    pub fn union(self, other: Permissions) -> Permissions {
        Permissions(self.0 | other.0)
    }

    /// The permissions, in the schema's order.
    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL
            .into_iter()
            .filter(move |p| self.contains(*p))
    }

    /// The names of the permissions this build knows, in the schema's order.
    pub fn known_names(self) -> Vec<&'static str> {
        self.iter().map(Permission::name).collect()
    }

    /// The names, comma-separated, for messages.
    pub fn names(self) -> String {
        let mut names = self.known_names();
        if self.0 & UNKNOWN != 0 {
            names.push("a permission this version does not know");
        }
        names.join(", ")
    }
}

impl FromIterator<Permission> for Permissions {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        let mut set = Permissions::NONE;
        for permission in iter {
            set.insert(permission);
        }
        set
    }
}

impl fmt::Debug for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_none() {
        for permission in Permission::ALL {
            assert_eq!(Permission::from_name(permission.name()), Some(permission));
        }
        assert_eq!(Permission::from_name("MANAGE_EVERYTHING"), None);
        assert_eq!(Permission::from_name("manage_users"), None);
    }

    #[test]
    fn sets_cover_and_subtract() {
        let users: Permissions = [Permission::ManageUsers].into_iter().collect();
        let both: Permissions = [Permission::ManageUsers, Permission::ManageGroups]
            .into_iter()
            .collect();
        assert!(both.covers(users));
        assert!(!users.covers(both));
        assert!(users.covers(Permissions::NONE));
        assert_eq!(both.without(users).names(), "MANAGE_GROUPS");
        assert_eq!(Permissions::all().iter().count(), Permission::ALL.len());
        assert_eq!(users.union(both), both);
    }

    #[test]
    fn unknown_names_fail_closed() {
        let mut carried = Permissions::NONE;
        carried.insert_name("MANAGE_USERS");
        carried.insert_name("MANAGE_WIDGETS");
        let every_known: Permissions = Permission::ALL.into_iter().collect();
        assert!(!every_known.covers(carried));
        assert!(Permissions::all().covers(carried));
        assert_eq!(carried.known().names(), "MANAGE_USERS");
        assert_eq!(
            carried.without(every_known).names(),
            "a permission this version does not know"
        );
        assert_eq!(carried.iter().count(), 1);
    }
}
