//! Guild memberships for token claims, read from the guild service's internal API at the moment
//! a token is issued (identity never keeps a copy, so a refreshed token is always current).

use std::collections::BTreeMap;

use mzchat_platform::grpc::InternalAuth;
use mzchat_proto::guild::{
    ListMembershipsRequest, guild_internal_service_client::GuildInternalServiceClient,
};
use tonic::transport::Channel;

use crate::domain::{IdentityError, Result};

/// Roles and permission versions per guild, as JWT claims carry them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuildClaims {
    pub guild_roles: BTreeMap<String, Vec<String>>,
    pub permission_versions: BTreeMap<String, u64>,
}

#[derive(Clone)]
pub struct Memberships {
    client: GuildInternalServiceClient<Channel>,
    auth: InternalAuth,
}

impl Memberships {
    /// A lazily connecting client of the guild service at `url`.
    pub fn new(url: &str, auth: InternalAuth) -> Result<Self> {
        let channel = tonic::transport::Endpoint::from_shared(url.to_owned())
            .map_err(|e| IdentityError::Internal(format!("guild internal url {url}: {e}")))?
            .connect_timeout(std::time::Duration::from_secs(5))
            .timeout(std::time::Duration::from_secs(10))
            .connect_lazy();
        Ok(Self {
            client: GuildInternalServiceClient::new(channel),
            auth,
        })
    }

    pub async fn for_user(&self, user_id: &str) -> Result<GuildClaims> {
        let mut request = tonic::Request::new(ListMembershipsRequest {
            user_id: user_id.to_owned(),
        });
        self.auth.attach(&mut request);
        match self.client.clone().list_memberships(request).await {
            Ok(response) => {
                let mut claims = GuildClaims::default();
                for membership in response.into_inner().memberships {
                    claims
                        .permission_versions
                        .insert(membership.guild_id.clone(), membership.permission_version);
                    claims
                        .guild_roles
                        .insert(membership.guild_id, membership.role_ids);
                }
                Ok(claims)
            }
            // The guild service of this build does not serve memberships yet: no guilds.
            Err(status) if status.code() == tonic::Code::Unimplemented => {
                Ok(GuildClaims::default())
            }
            Err(status) => {
                tracing::warn!(code = ?status.code(), message = status.message(), "guild memberships unavailable");
                Err(IdentityError::Unavailable(
                    "guild memberships cannot be read right now; try again shortly".into(),
                ))
            }
        }
    }
}
