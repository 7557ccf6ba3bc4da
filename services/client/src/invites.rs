//! Joining a guild by invite link, on whichever server hosts it (PROTOCOL.md section 5). With no
//! session on that server yet, the join carries the login credentials, so one call onboards the
//! user there (optimistic join: the host checks the chain of trust itself and never waits for
//! the user's home server).

use mzchat_proto::{
    common::ProfileHint,
    guild::{
        JoinInviteLogin, JoinInviteRequest, JoinInviteResponse,
        guild_service_client::GuildServiceClient,
    },
};

use crate::{Client, ClientError, StoredSession, transport::normalize_origin};

/// The host origin and token of an invite link
/// (`https://<host>[:port]/channels/<guild>/<channel>?token=<token>`).
pub fn parse_link(link: &str) -> Result<(String, String), String> {
    let error = || {
        format!("{link} is not an invite link (https://host/channels/<guild>/<channel>?token=...)")
    };
    let (before, token) = link.split_once("?token=").ok_or_else(error)?;
    let scheme_end = before.find("://").ok_or_else(error)? + 3;
    let path_start = before[scheme_end..]
        .find('/')
        .map(|i| i + scheme_end)
        .ok_or_else(error)?;
    if !before[path_start..].starts_with("/channels/") || token.is_empty() {
        return Err(error());
    }
    Ok((normalize_origin(&before[..path_start]), token.to_owned()))
}

impl Client {
    /// Joins the guild of `link` on its host and keeps the session there.
    pub async fn join_invite(
        &self,
        link: &str,
        profile_hint: Option<ProfileHint>,
    ) -> Result<(String, JoinInviteResponse), ClientError> {
        let (host, token) = parse_link(link).map_err(ClientError::Local)?;
        let mut guilds = GuildServiceClient::new(self.channel(&host)?);
        let joined = if self.session(&host).is_some() {
            let request = self
                .authed(&host, JoinInviteRequest { token, login: None })
                .await?;
            guilds.join_invite(request).await?.into_inner()
        } else {
            let login = self.login_request(&host, profile_hint, "")?;
            let request = JoinInviteRequest {
                token,
                login: Some(JoinInviteLogin {
                    user_id: login.user_id,
                    certificate: login.certificate,
                    proof: login.proof,
                    profile_hint: login.profile_hint,
                }),
            };
            let joined = guilds.join_invite(request).await?.into_inner();
            self.keep_session(
                &host,
                StoredSession {
                    access_token: joined.access_token.clone(),
                    access_expires_at: joined.access_token_expires_at.map_or(0, |t| t.seconds),
                    refresh_token: joined.refresh_token.clone(),
                },
            )?;
            joined
        };
        let expires = joined.access_token_expires_at.map_or(0, |t| t.seconds);
        self.adopt_access_token(&host, &joined.access_token, expires)?;
        Ok((host, joined))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invite_links_parse_to_host_and_token() {
        let (host, token) =
            parse_link("https://Chat.Example.org/channels/g/c?token=AbC123xyz0").expect("link");
        assert_eq!(host, "https://chat.example.org");
        assert_eq!(token, "AbC123xyz0");
        for bad in [
            "https://x/y?token=a",
            "nonsense",
            "https://x/channels/g/c?token=",
        ] {
            assert!(parse_link(bad).is_err(), "{bad}");
        }
    }
}
