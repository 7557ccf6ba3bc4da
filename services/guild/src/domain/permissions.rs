//! Permissions (PROTOCOL.md section 6): a member's permissions are the union of its roles'
//! bits; ADMINISTRATOR implies every bit; the owner passes every check. Role weights order who
//! may act on whom.

/// Bit values; the numbering is part of the protocol and never changes.
pub const ADMINISTRATOR: u64 = 1 << 0;
pub const MANAGE_GUILD: u64 = 1 << 1;
pub const MANAGE_CHANNELS: u64 = 1 << 2;
pub const MANAGE_ROLES: u64 = 1 << 3;
pub const CREATE_INVITE: u64 = 1 << 4;
pub const KICK_MEMBERS: u64 = 1 << 5;
pub const BAN_MEMBERS: u64 = 1 << 6;
pub const VIEW_CHANNELS: u64 = 1 << 7;
pub const SEND_MESSAGES: u64 = 1 << 8;
pub const READ_HISTORY: u64 = 1 << 9;
pub const MANAGE_MESSAGES: u64 = 1 << 10;
pub const ADD_REACTIONS: u64 = 1 << 11;
pub const ATTACH_FILES: u64 = 1 << 12;
pub const MENTION_EVERYONE: u64 = 1 << 13;

/// Every defined bit.
pub const ALL: u64 = (1 << 14) - 1;

/// What `@everyone` gets in a new guild.
pub const EVERYONE_DEFAULT: u64 =
    VIEW_CHANNELS | SEND_MESSAGES | READ_HISTORY | ADD_REACTIONS | ATTACH_FILES | CREATE_INVITE;

/// Weight of the `Admin` role a guild's creator receives.
pub const ADMIN_WEIGHT: u32 = 1000;

pub fn name(bit: u64) -> &'static str {
    match bit {
        ADMINISTRATOR => "ADMINISTRATOR",
        MANAGE_GUILD => "MANAGE_GUILD",
        MANAGE_CHANNELS => "MANAGE_CHANNELS",
        MANAGE_ROLES => "MANAGE_ROLES",
        CREATE_INVITE => "CREATE_INVITE",
        KICK_MEMBERS => "KICK_MEMBERS",
        BAN_MEMBERS => "BAN_MEMBERS",
        VIEW_CHANNELS => "VIEW_CHANNELS",
        SEND_MESSAGES => "SEND_MESSAGES",
        READ_HISTORY => "READ_HISTORY",
        MANAGE_MESSAGES => "MANAGE_MESSAGES",
        ADD_REACTIONS => "ADD_REACTIONS",
        ATTACH_FILES => "ATTACH_FILES",
        MENTION_EVERYONE => "MENTION_EVERYONE",
        _ => "UNKNOWN",
    }
}

/// A role as permission checks see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleGrant {
    pub permissions: u64,
    pub weight: u32,
}

/// What one member may do in one guild.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberPermissions {
    pub is_owner: bool,
    /// Union of the member's roles (`@everyone` included), ALL for administrators.
    pub bits: u64,
    /// Highest weight among the member's roles (0 with `@everyone` only).
    pub top_weight: u32,
}

impl MemberPermissions {
    pub fn resolve(is_owner: bool, roles: impl IntoIterator<Item = RoleGrant>) -> Self {
        let (mut bits, mut top_weight) = (0, 0);
        for role in roles {
            bits |= role.permissions;
            top_weight = top_weight.max(role.weight);
        }
        if is_owner || bits & ADMINISTRATOR != 0 {
            bits = ALL;
        }
        Self {
            is_owner,
            bits,
            top_weight,
        }
    }

    pub fn has(&self, bit: u64) -> bool {
        self.is_owner || self.bits & bit == bit
    }

    /// Whether this member may act on a member or role of `weight` (kick, ban, assign, edit):
    /// only on strictly lower weights, except the owner.
    pub fn outranks(&self, weight: u32) -> bool {
        self.is_owner || self.top_weight > weight
    }

    /// Whether this member may hand out `bits` (in a role it creates or edits): only bits it
    /// holds itself, so MANAGE_ROLES cannot mint an administrator.
    pub fn may_grant(&self, bits: u64) -> bool {
        self.is_owner || bits & !self.bits == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(permissions: u64, weight: u32) -> RoleGrant {
        RoleGrant {
            permissions,
            weight,
        }
    }

    #[test]
    fn permissions_are_the_union_of_roles() {
        let member =
            MemberPermissions::resolve(false, [role(EVERYONE_DEFAULT, 0), role(KICK_MEMBERS, 10)]);
        assert!(member.has(SEND_MESSAGES));
        assert!(member.has(KICK_MEMBERS));
        assert!(!member.has(BAN_MEMBERS));
        assert_eq!(member.top_weight, 10);
    }

    #[test]
    fn administrator_implies_every_bit_and_the_owner_bypasses_all() {
        let admin = MemberPermissions::resolve(false, [role(ADMINISTRATOR, 5)]);
        assert!(admin.has(BAN_MEMBERS | MANAGE_ROLES));
        assert!(!admin.outranks(5), "administrators still respect weights");
        let owner = MemberPermissions::resolve(true, [role(0, 0)]);
        assert!(owner.has(ALL));
        assert!(owner.outranks(u32::MAX));
        assert!(owner.may_grant(ALL));
    }

    #[test]
    fn nobody_acts_on_equal_or_higher_weights() {
        let moderator = MemberPermissions::resolve(false, [role(KICK_MEMBERS, 10)]);
        assert!(moderator.outranks(9));
        assert!(!moderator.outranks(10));
        assert!(!moderator.outranks(11));
    }

    #[test]
    fn only_held_bits_can_be_granted() {
        let manager = MemberPermissions::resolve(false, [role(MANAGE_ROLES | KICK_MEMBERS, 10)]);
        assert!(manager.may_grant(KICK_MEMBERS));
        assert!(!manager.may_grant(ADMINISTRATOR));
        assert!(!manager.may_grant(BAN_MEMBERS));
    }

    #[test]
    fn everyone_defaults_match_the_protocol() {
        assert_eq!(EVERYONE_DEFAULT, 0x1B90);
        assert_eq!(name(MENTION_EVERYONE), "MENTION_EVERYONE");
    }
}
