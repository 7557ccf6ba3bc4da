//! Who may call each RPC. Every method of every service in the proto descriptors must be
//! listed: the sweep fails on a method it finds no rule for, so a new RPC is never exposed
//! without someone deciding who may call it.

/// Who may call a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: no credential is needed (a bad one is ignored or refused, never a crash).
    Anyone,
    /// A valid access token of this server.
    User,
    /// A valid access token of a member of the guild named in the request.
    Member,
    /// Other services of this homeserver, with the internal credential.
    Internal,
    /// Other homeservers, with a signed server call.
    Server,
}

use Access::*;

pub const RULES: &[(&str, Access)] = &[
    // identity
    ("mzchat.identity.v1.ServerInfoService/GetServerInfo", Anyone),
    (
        "mzchat.identity.v1.ServerKeyInternalService/SignServerCall",
        Internal,
    ),
    (
        "mzchat.identity.v1.ServerKeyInternalService/CheckDelegation",
        Internal,
    ),
    ("mzchat.identity.v1.SessionService/Login", Anyone),
    ("mzchat.identity.v1.SessionService/RefreshSession", Anyone),
    ("mzchat.identity.v1.SessionService/Logout", Anyone),
    (
        "mzchat.identity.v1.SessionInternalService/IssueSession",
        Internal,
    ),
    ("mzchat.identity.v1.IdentityService/GetAccount", User),
    ("mzchat.identity.v1.IdentityService/GetProfile", User),
    ("mzchat.identity.v1.IdentityService/UpdateProfile", User),
    ("mzchat.identity.v1.IdentityService/SetProfileSync", User),
    (
        "mzchat.identity.v1.IdentityService/SetPresencePreference",
        User,
    ),
    ("mzchat.identity.v1.IdentityService/GetGuildOrder", User),
    ("mzchat.identity.v1.IdentityService/SetGuildOrder", User),
    ("mzchat.identity.v1.IdentityService/ListDevices", User),
    // Authenticated by the signed revocation itself: a lost device's session is gone too.
    ("mzchat.identity.v1.IdentityService/RevokeDevice", Anyone),
    (
        "mzchat.identity.v1.IdentityService/ListBanNotifications",
        User,
    ),
    ("mzchat.identity.v1.IdentityService/CreateSyncMailbox", User),
    // The joining device has no session yet: it proves itself with the mailbox secret.
    ("mzchat.identity.v1.IdentityService/SyncMailbox", Anyone),
    // federation
    (
        "mzchat.federation.v1.FederationAdminService/ListDeadLetters",
        Internal,
    ),
    (
        "mzchat.federation.v1.FederationAdminService/RetryDeadLetter",
        Internal,
    ),
    (
        "mzchat.federation.v1.FederationAdminService/ListDestinations",
        Internal,
    ),
    (
        "mzchat.federation.v1.IdentityFederationService/VerifyUser",
        Server,
    ),
    (
        "mzchat.federation.v1.IdentityFederationService/UpdateHomeServer",
        Server,
    ),
    (
        "mzchat.federation.v1.IdentityFederationService/PropagateBan",
        Server,
    ),
    (
        "mzchat.federation.v1.PushFederationService/PushNotification",
        Server,
    ),
    (
        "mzchat.federation.v1.FederationInternalService/GetServerKeys",
        Internal,
    ),
    // media
    ("mzchat.media.v1.MediaService/StartUpload", User),
    ("mzchat.media.v1.MediaService/UploadChunk", User),
    ("mzchat.media.v1.MediaService/CompleteUpload", User),
    ("mzchat.media.v1.MediaService/AbortUpload", User),
    ("mzchat.media.v1.MediaService/GetUpload", User),
    ("mzchat.media.v1.MediaService/GetFile", User),
    ("mzchat.media.v1.MediaService/DeleteFile", User),
    ("mzchat.media.v1.MediaInternalService/GetFileInfo", Internal),
    // guild
    ("mzchat.guild.v1.GuildService/CreateGuild", User),
    ("mzchat.guild.v1.GuildService/GetGuild", Member),
    ("mzchat.guild.v1.GuildService/UpdateGuild", Member),
    ("mzchat.guild.v1.GuildService/DeleteGuild", Member),
    ("mzchat.guild.v1.GuildService/ListGuilds", User),
    ("mzchat.guild.v1.GuildService/CreateChannel", Member),
    ("mzchat.guild.v1.GuildService/UpdateChannel", Member),
    ("mzchat.guild.v1.GuildService/DeleteChannel", Member),
    ("mzchat.guild.v1.GuildService/ListChannels", Member),
    ("mzchat.guild.v1.GuildService/CreateRole", Member),
    ("mzchat.guild.v1.GuildService/UpdateRole", Member),
    ("mzchat.guild.v1.GuildService/DeleteRole", Member),
    ("mzchat.guild.v1.GuildService/ListRoles", Member),
    ("mzchat.guild.v1.GuildService/AssignRole", Member),
    ("mzchat.guild.v1.GuildService/UnassignRole", Member),
    ("mzchat.guild.v1.GuildService/ListMembers", Member),
    ("mzchat.guild.v1.GuildService/GetMember", Member),
    ("mzchat.guild.v1.GuildService/KickMember", Member),
    ("mzchat.guild.v1.GuildService/LeaveGuild", Member),
    ("mzchat.guild.v1.GuildService/BanMember", Member),
    ("mzchat.guild.v1.GuildService/UnbanMember", Member),
    ("mzchat.guild.v1.GuildService/ListBans", Member),
    ("mzchat.guild.v1.GuildService/CreateInvite", Member),
    ("mzchat.guild.v1.GuildService/ListInvites", Member),
    ("mzchat.guild.v1.GuildService/RevokeInvite", Member),
    // An invite is the way in for people without an account here yet.
    ("mzchat.guild.v1.GuildService/PreviewInvite", Anyone),
    // A session, or a login in the request.
    ("mzchat.guild.v1.GuildService/JoinInvite", User),
    // Every guild the caller is a member of: nothing to name.
    ("mzchat.guild.v1.EventService/SubscribeEvents", User),
    (
        "mzchat.guild.v1.GuildInternalService/ListMemberships",
        Internal,
    ),
    (
        "mzchat.guild.v1.GuildInternalService/ListPushTargets",
        Internal,
    ),
    ("mzchat.guild.v1.MessageService/SendMessage", Member),
    ("mzchat.guild.v1.MessageService/EditMessage", Member),
    ("mzchat.guild.v1.MessageService/DeleteMessage", Member),
    ("mzchat.guild.v1.MessageService/GetMessage", Member),
    ("mzchat.guild.v1.MessageService/ListMessages", Member),
    ("mzchat.guild.v1.MessageService/PinMessage", Member),
    ("mzchat.guild.v1.MessageService/UnpinMessage", Member),
    ("mzchat.guild.v1.MessageService/ListPins", Member),
    ("mzchat.guild.v1.MessageService/AddReaction", Member),
    ("mzchat.guild.v1.MessageService/RemoveReaction", Member),
    ("mzchat.guild.v1.MessageService/ListReactions", Member),
    ("mzchat.guild.v1.MessageService/SendTyping", Member),
    // push
    ("mzchat.push.v1.PushService/RegisterDistributor", User),
    ("mzchat.push.v1.PushService/UnregisterDistributor", User),
    ("mzchat.push.v1.PushService/ListDistributors", User),
    ("mzchat.push.v1.PushService/RegisterFcmToken", User),
    ("mzchat.push.v1.PushService/UnregisterFcmToken", User),
];

pub fn access(path: &str) -> Option<Access> {
    RULES.iter().find(|(p, _)| *p == path).map(|(_, a)| *a)
}
