//! Sessions per origin: log in with a fresh certificate and proof, keep the tokens (in a private
//! file), refresh the access token before it expires.

use std::{collections::BTreeMap, sync::Mutex};

use mzchat_proto::{
    common::ProfileHint,
    identity::{
        Account, GetAccountRequest, GetServerInfoRequest, GetServerInfoResponse, LoginRequest,
        LoginResponse, RefreshSessionRequest, RevokeDeviceRequest,
        identity_service_client::IdentityServiceClient,
        server_info_service_client::ServerInfoServiceClient,
        session_service_client::SessionServiceClient,
    },
};
use serde::{Deserialize, Serialize};
use tonic::{Request, transport::Channel};

use crate::{
    keys::{KeyStore, LocalIdentity},
    statements,
    transport::{Transports, normalize_origin},
};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Local(String),
    #[error("server said {}: {}", .0.code(), .0.message())]
    Rpc(#[from] tonic::Status),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSession {
    pub access_token: String,
    /// Seconds since the epoch.
    pub access_expires_at: i64,
    pub refresh_token: String,
}

const SESSIONS_FILE: &str = "sessions.json";
/// Refresh when the access token has less than this left.
const REFRESH_MARGIN_SECS: i64 = 60;

pub struct Client {
    store: KeyStore,
    identity: LocalIdentity,
    transports: Transports,
    sessions: Mutex<BTreeMap<String, StoredSession>>,
}

impl Client {
    /// Opens the identity in `store` (created by `mzchat keygen`).
    pub fn open(store: KeyStore) -> Result<Self, ClientError> {
        let identity = store.load_identity()?;
        let sessions = store
            .read(SESSIONS_FILE)
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        Ok(Self {
            store,
            identity,
            transports: Transports::new(),
            sessions: Mutex::new(sessions),
        })
    }

    pub fn identity(&self) -> &LocalIdentity {
        &self.identity
    }

    pub fn transports(&self) -> &Transports {
        &self.transports
    }

    /// Where this client keeps its keys and state.
    pub fn store(&self) -> &KeyStore {
        &self.store
    }

    pub fn channel(&self, origin: &str) -> Result<Channel, ClientError> {
        self.transports.channel(origin)
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, StoredSession>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn keep_session(
        &self,
        origin: &str,
        session: StoredSession,
    ) -> Result<(), ClientError> {
        let snapshot = {
            let mut sessions = self.sessions();
            sessions.insert(normalize_origin(origin), session);
            serde_json::to_vec_pretty(&*sessions).map_err(|e| ClientError::Local(e.to_string()))?
        };
        self.store.write_private(SESSIONS_FILE, &snapshot)
    }

    pub fn session(&self, origin: &str) -> Option<StoredSession> {
        self.sessions().get(&normalize_origin(origin)).cloned()
    }

    /// A login request for `origin`: a fresh certificate and a one-time proof addressed to it.
    pub fn login_request(
        &self,
        origin: &str,
        profile_hint: Option<ProfileHint>,
        registration_token: &str,
    ) -> Result<LoginRequest, ClientError> {
        let now = statements::unix_now();
        let proof = statements::login_proof(&self.identity, &normalize_origin(origin), now)
            .map_err(|e| ClientError::Local(format!("random source: {e}")))?;
        Ok(LoginRequest {
            user_id: self.identity.user_id(),
            certificate: Some(statements::device_certificate(&self.identity, now)),
            proof: Some(proof),
            profile_hint,
            migration_proof: None,
            registration_token: registration_token.to_owned(),
        })
    }

    /// Logs in to `origin` with a new certificate and a proof addressed to it.
    pub async fn login(
        &self,
        origin: &str,
        profile_hint: Option<ProfileHint>,
        registration_token: &str,
    ) -> Result<LoginResponse, ClientError> {
        let origin = normalize_origin(origin);
        let request = self.login_request(&origin, profile_hint, registration_token)?;
        self.send_login(&origin, request).await
    }

    /// Moves the user's home to `new_home` (PROTOCOL.md section 8): logs in there with a
    /// migration proof naming the old servers in `targets`, then keeps `new_home` as the home
    /// server of the keys on disk, so later certificates name it.
    pub async fn migrate(
        &mut self,
        new_home: &str,
        targets: &[String],
        registration_token: &str,
    ) -> Result<LoginResponse, ClientError> {
        let new_home = normalize_origin(new_home);
        let mut request = self.login_request(&new_home, None, registration_token)?;
        request.migration_proof = Some(statements::migration_proof(
            &self.identity,
            &new_home,
            targets,
            statements::unix_now(),
        ));
        let response = self.send_login(&new_home, request).await?;
        self.identity.home_server = new_home;
        self.store.save_identity(&self.identity)?;
        Ok(response)
    }

    async fn send_login(
        &self,
        origin: &str,
        request: mzchat_proto::identity::LoginRequest,
    ) -> Result<LoginResponse, ClientError> {
        let origin = origin.to_owned();
        let response = SessionServiceClient::new(self.channel(&origin)?)
            .login(request)
            .await?
            .into_inner();
        let session = response
            .session
            .as_ref()
            .ok_or_else(|| ClientError::Local("server returned no session".into()))?;
        self.keep_session(
            &origin,
            StoredSession {
                access_token: session.access_token.clone(),
                access_expires_at: session
                    .access_token_expires_at
                    .map(|t| t.seconds)
                    .unwrap_or(0),
                refresh_token: session.refresh_token.clone(),
            },
        )?;
        Ok(response)
    }

    /// Keeps a newer access token a server handed out (CreateGuild, JoinInvite) for later calls.
    pub fn adopt_access_token(
        &self,
        origin: &str,
        access_token: &str,
        expires_at: i64,
    ) -> Result<(), ClientError> {
        let mut session = self
            .session(origin)
            .ok_or_else(|| ClientError::Local(format!("not logged in to {origin}")))?;
        if access_token.is_empty() {
            return Ok(());
        }
        session.access_token = access_token.to_owned();
        session.access_expires_at = expires_at;
        self.keep_session(origin, session)
    }

    /// A valid access token for `origin`, refreshed first if it is about to expire.
    pub async fn access_token(&self, origin: &str) -> Result<String, ClientError> {
        let stored = self.session(origin).ok_or_else(|| {
            ClientError::Local(format!(
                "not logged in to {origin}; run `mzchat --server {origin} login`"
            ))
        })?;
        if stored.access_expires_at - statements::unix_now() > REFRESH_MARGIN_SECS {
            return Ok(stored.access_token);
        }
        self.refresh(origin).await
    }

    /// Exchanges the refresh token for new tokens.
    pub async fn refresh(&self, origin: &str) -> Result<String, ClientError> {
        let stored = self
            .session(origin)
            .ok_or_else(|| ClientError::Local(format!("not logged in to {origin}")))?;
        let session = SessionServiceClient::new(self.channel(origin)?)
            .refresh_session(RefreshSessionRequest {
                refresh_token: stored.refresh_token,
            })
            .await?
            .into_inner()
            .session
            .ok_or_else(|| ClientError::Local("server returned no session".into()))?;
        self.keep_session(
            origin,
            StoredSession {
                access_token: session.access_token.clone(),
                access_expires_at: session
                    .access_token_expires_at
                    .map(|t| t.seconds)
                    .unwrap_or(0),
                refresh_token: session.refresh_token,
            },
        )?;
        Ok(session.access_token)
    }

    /// `message` with the session's bearer token for `origin`.
    pub async fn authed<T>(&self, origin: &str, message: T) -> Result<Request<T>, ClientError> {
        let token = self.access_token(origin).await?;
        let mut request = Request::new(message);
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| ClientError::Local("access token is not valid metadata".into()))?;
        request.metadata_mut().insert("authorization", value);
        Ok(request)
    }

    pub async fn whoami(&self, origin: &str) -> Result<Account, ClientError> {
        let request = self.authed(origin, GetAccountRequest {}).await?;
        IdentityServiceClient::new(self.channel(origin)?)
            .get_account(request)
            .await?
            .into_inner()
            .account
            .ok_or_else(|| ClientError::Local("server returned no account".into()))
    }

    pub async fn server_info(&self, origin: &str) -> Result<GetServerInfoResponse, ClientError> {
        Ok(ServerInfoServiceClient::new(self.channel(origin)?)
            .get_server_info(GetServerInfoRequest {})
            .await?
            .into_inner())
    }

    /// Revokes one of this user's devices on `origin` with a root-key statement.
    pub async fn revoke_device(&self, origin: &str, device_id: &str) -> Result<(), ClientError> {
        let revocation =
            statements::device_revocation(&self.identity, device_id, statements::unix_now());
        IdentityServiceClient::new(self.channel(origin)?)
            .revoke_device(RevokeDeviceRequest {
                user_id: self.identity.user_id(),
                revocation: Some(revocation),
            })
            .await?;
        Ok(())
    }
}
