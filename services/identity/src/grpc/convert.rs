//! Domain types to protobuf.

use mzchat_platform::Origin;
use mzchat_proto::{common, identity as pb};
use prost_types::Timestamp;

use crate::domain::account::{Account, AccountKind, Device, Verification};

pub fn timestamp_ms(ms: i64) -> Option<Timestamp> {
    Some(Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    })
}

pub fn timestamp_s(seconds: i64) -> Option<Timestamp> {
    Some(Timestamp { seconds, nanos: 0 })
}

/// The profile as clients see it: a local avatar file becomes an absolute assets URL.
pub fn profile(account: &Account, assets_origin: &Origin) -> common::Profile {
    let p = &account.profile;
    let avatar_url = if !p.avatar_file_id.is_empty() {
        format!("{assets_origin}/{}", p.avatar_file_id)
    } else {
        p.avatar_url.clone()
    };
    common::Profile {
        user_id: account.user_id.clone(),
        display_name: p.display_name.clone(),
        bio: p.bio.clone(),
        avatar_file_id: p.avatar_file_id.clone(),
        avatar_url,
        avatar_color: p.avatar_color,
        presence_preference: p.presence_preference,
    }
}

pub fn account(account: &Account, assets_origin: &Origin) -> pb::Account {
    pb::Account {
        user_id: account.user_id.clone(),
        home_server: account.home_server.clone(),
        kind: match account.kind {
            AccountKind::Local => pb::AccountKind::Local,
            AccountKind::Shadow => pb::AccountKind::Shadow,
        } as i32,
        verification: match account.verification {
            Verification::Pending => pb::Verification::Pending,
            Verification::Verified => pb::Verification::Verified,
            Verification::Rejected => pb::Verification::Rejected,
        } as i32,
        is_profile_synced: account.is_profile_synced,
        profile: Some(profile(account, assets_origin)),
        created_at: timestamp_ms(account.created_at),
    }
}

pub fn device(device: &Device) -> pb::Device {
    pb::Device {
        device_id: device.device_id.clone(),
        device_public_key: device.public_key.clone(),
        certificate_expires_at: timestamp_s(device.certificate_expires_at),
        first_seen_at: timestamp_ms(device.first_seen_at),
        last_seen_at: timestamp_ms(device.last_seen_at),
        revoked_at: device.revoked_at.and_then(timestamp_s),
    }
}
