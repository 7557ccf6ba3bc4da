//! Identity commands: keys, login, account, devices, profile.

use mzchat_client::{KeyStore, LocalIdentity};
use mzchat_proto::{
    common::ProfileHint,
    identity::{
        ListDevicesRequest, UpdateProfileRequest, identity_service_client::IdentityServiceClient,
    },
};

use super::{CliResult, call, open};

pub fn keygen(store: &KeyStore, origin: &str, device_id: &str, force: bool) -> CliResult {
    if store.has_identity() && !force {
        return Err(format!(
            "an identity already exists in {}; use --force to replace it",
            store.dir().display()
        )
        .into());
    }
    let identity = LocalIdentity::generate(origin, device_id)?;
    store.save_identity(&identity)?;
    println!("user id:     {}", identity.user_id());
    println!("device:      {}", identity.device_id);
    println!("home server: {}", identity.home_server);
    println!("keys saved in {}", store.dir().display());
    Ok(())
}

pub async fn login(
    store: KeyStore,
    origin: &str,
    name: Option<String>,
    registration_token: &str,
) -> CliResult {
    let client = open(store)?;
    let hint = name.map(|display_name| ProfileHint {
        display_name,
        ..Default::default()
    });
    let response = client.login(origin, hint, registration_token).await?;
    let account = response.account.unwrap_or_default();
    println!("logged in to {origin} as {}", account.user_id);
    print_account(&account);
    Ok(())
}

pub async fn whoami(store: KeyStore, origin: &str) -> CliResult {
    print_account(&open(store)?.whoami(origin).await?);
    Ok(())
}

pub async fn server_info(store: KeyStore, origin: &str) -> CliResult {
    let info = open(store)?.server_info(origin).await?;
    println!("origin:        {}", info.origin);
    println!("version:       {}", info.software_version);
    println!("assets origin: {}", info.assets_origin);
    for key in info.server_keys.iter().chain(&info.session_keys) {
        println!("key:           {}", key.key_id);
    }
    Ok(())
}

pub async fn devices(store: KeyStore, origin: &str) -> CliResult {
    let client = open(store)?;
    let devices = call!(
        client,
        origin,
        IdentityServiceClient,
        list_devices,
        ListDevicesRequest {}
    )
    .devices;
    for device in devices {
        let state = if device.revoked_at.is_some() {
            "revoked"
        } else {
            "active"
        };
        println!("{:<24} {state}", device.device_id);
    }
    Ok(())
}

pub async fn revoke(store: KeyStore, origin: &str, device_id: &str) -> CliResult {
    open(store)?.revoke_device(origin, device_id).await?;
    println!("revoked {device_id} on {origin}");
    Ok(())
}

pub async fn profile(
    store: KeyStore,
    origin: &str,
    name: Option<String>,
    bio: Option<String>,
) -> CliResult {
    let client = open(store)?;
    let change = UpdateProfileRequest {
        display_name: name,
        bio,
        ..Default::default()
    };
    let profile = call!(
        client,
        origin,
        IdentityServiceClient,
        update_profile,
        change
    )
    .profile
    .unwrap_or_default();
    println!("display name: {}", profile.display_name);
    println!("bio:          {}", profile.bio);
    Ok(())
}

fn print_account(account: &mzchat_proto::identity::Account) {
    let profile = account.profile.clone().unwrap_or_default();
    let kind = match account.kind {
        1 => "local",
        2 => "shadow",
        _ => "unknown",
    };
    println!("user id:      {}", account.user_id);
    println!("home server:  {}", account.home_server);
    println!("account:      {kind}");
    println!("display name: {}", profile.display_name);
}
