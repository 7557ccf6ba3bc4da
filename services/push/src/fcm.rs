//! FCM HTTP v1 delivery (PROTOCOL.md section 9). The server authenticates with a Google service
//! account: an RS256-signed JWT is exchanged at the account's `token_uri` for an OAuth2 access
//! token (kept until shortly before it expires, fetched by one caller at a time), which
//! authorises `POST {base}/v1/projects/{project}/messages:send`. The message is data-only: the
//! notice's fields as strings, never message text.
//!
//! The base URL and the token URI are the operator's configuration, so they may be http and
//! local (a test fake); device tokens are opaque and only ever sent in the JSON body.

use std::time::{Duration, Instant};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use bytes::Bytes;
use http_body_util::Full;
use ring::{
    rand::SystemRandom,
    signature::{RSA_PKCS1_SHA256, RsaKeyPair},
};
use rustls::pki_types::{PrivatePkcs8KeyDer, pem::PemObject};
use serde_json::{Value, json};

use crate::{
    deliver::{Answer, Deliverer, DeliveryError, Reply, host_header},
    endpoint::{Endpoint, EndpointGuard},
};

pub const DEFAULT_BASE_URL: &str = "https://fcm.googleapis.com";
const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// Access tokens are replaced this long before Google says they expire.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);

/// Where FCM is reached, and as whom.
pub struct Fcm {
    client_email: String,
    key_id: String,
    key: RsaKeyPair,
    token_endpoint: Endpoint,
    send_endpoint: Endpoint,
    http: Deliverer,
    access: tokio::sync::Mutex<Access>,
}

/// The access token held, or when fetching one last failed.
#[derive(Default)]
struct Access {
    token: Option<(String, Instant)>,
    failed: Option<(Instant, String)>,
}

/// After a failed token fetch, pushes fail at once for this long instead of each trying again.
const FETCH_BACKOFF: Duration = Duration::from_secs(5);

fn field<'a>(account: &'a Value, name: &str) -> Result<&'a str, String> {
    account[name]
        .as_str()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| format!("the service account has no {name}"))
}

impl Fcm {
    /// From a service account's JSON key file (as the Firebase console downloads it).
    pub fn from_service_account(json: &[u8], base_url: &str) -> Result<Self, String> {
        let account: Value =
            serde_json::from_slice(json).map_err(|e| format!("service account JSON: {e}"))?;
        let pem = field(&account, "private_key")?;
        let der = PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes())
            .map_err(|e| format!("service account private_key: {e}"))?;
        let key = RsaKeyPair::from_pkcs8(der.secret_pkcs8_der())
            .map_err(|e| format!("service account private_key is not an RSA key: {e}"))?;
        let token_uri = field(&account, "token_uri")?;
        let project_id = field(&account, "project_id")?;
        let send_url = format!(
            "{}/v1/projects/{project_id}/messages:send",
            base_url.trim_end_matches('/')
        );
        // Configuration is trusted: its hosts may be http or local.
        let host_of = |url: &str| {
            url.parse::<http::Uri>()
                .ok()
                .and_then(|u| {
                    u.host()
                        .map(|h| h.trim_matches(['[', ']']).to_ascii_lowercase())
                })
                .ok_or_else(|| format!("{url} is not an http(s) URL"))
        };
        let guard = EndpointGuard::new(&[host_of(token_uri)?, host_of(&send_url)?]);
        let token_endpoint = guard
            .parse(token_uri)
            .map_err(|e| format!("token_uri {token_uri}: {e}"))?;
        let send_endpoint = guard
            .parse(&send_url)
            .map_err(|e| format!("FCM base URL {base_url}: {e}"))?;
        Ok(Self {
            client_email: field(&account, "client_email")?.to_owned(),
            key_id: account["private_key_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            key,
            token_endpoint,
            send_endpoint,
            http: Deliverer::new(guard),
            access: tokio::sync::Mutex::new(Access::default()),
        })
    }

    /// The signed JWT that asks for an access token (RFC 7523).
    fn assertion(&self, now_secs: u64) -> Result<String, DeliveryError> {
        let mut header = json!({ "alg": "RS256", "typ": "JWT" });
        if !self.key_id.is_empty() {
            header["kid"] = json!(self.key_id);
        }
        let claims = json!({
            "iss": self.client_email,
            "scope": SCOPE,
            "aud": self.token_endpoint.url,
            "iat": now_secs,
            "exp": now_secs + 3600,
        });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| DeliveryError::Fcm("cannot sign the token request".into()))?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }

    /// A valid access token, fetched when none is held or it is about to expire (one fetch at a
    /// time; a failure is remembered briefly so senders do not queue up behind a dead endpoint).
    async fn access_token(&self) -> Result<String, DeliveryError> {
        let mut access = self.access.lock().await;
        if let Some((token, until)) = access.token.as_ref()
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        if let Some((at, why)) = access.failed.as_ref()
            && at.elapsed() < FETCH_BACKOFF
        {
            return Err(DeliveryError::Fcm(why.clone()));
        }
        match self.fetch_token().await {
            Ok((token, until)) => {
                access.token = Some((token.clone(), until));
                access.failed = None;
                Ok(token)
            }
            Err(err) => {
                access.failed = Some((Instant::now(), err.to_string()));
                Err(err)
            }
        }
    }

    async fn fetch_token(&self) -> Result<(String, Instant), DeliveryError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let form = format!(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={}",
            self.assertion(now)?
        );
        let reply = self
            .post(
                &self.token_endpoint,
                "application/x-www-form-urlencoded",
                None,
                form.into(),
            )
            .await?;
        let answer: Value = serde_json::from_slice(&reply.body).unwrap_or_default();
        let (Some(token), 200) = (answer["access_token"].as_str(), reply.status) else {
            return Err(DeliveryError::Fcm(format!(
                "the token endpoint refused the service account ({}): {}",
                reply.status,
                answer["error_description"]
                    .as_str()
                    .or(answer["error"].as_str())
                    .unwrap_or("no reason given")
            )));
        };
        let lifetime = Duration::from_secs(answer["expires_in"].as_u64().unwrap_or(3600));
        Ok((
            token.to_owned(),
            Instant::now() + lifetime.saturating_sub(TOKEN_MARGIN),
        ))
    }

    async fn post(
        &self,
        endpoint: &Endpoint,
        content_type: &str,
        bearer: Option<&str>,
        body: Bytes,
    ) -> Result<Reply, DeliveryError> {
        let mut request = http::Request::post(endpoint.path.as_str())
            .header(http::header::HOST, host_header(endpoint))
            .header(http::header::CONTENT_TYPE, content_type);
        if let Some(token) = bearer {
            request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request
            .body(Full::new(body))
            .map_err(|e| DeliveryError::Fcm(e.to_string()))?;
        self.http.post(endpoint, request).await
    }

    /// Sends the notice to one registration token.
    pub async fn send(
        &self,
        device_token: &str,
        notice: &[u8],
        ttl_secs: u32,
    ) -> Result<Answer, DeliveryError> {
        let access = self.access_token().await?;
        let body = message(device_token, notice, ttl_secs);
        let reply = self
            .post(
                &self.send_endpoint,
                "application/json",
                Some(&access),
                body.into(),
            )
            .await?;
        let answer = classify(&reply);
        if matches!(answer, Answer::Later { status: 401, .. }) {
            // The access token was revoked or expired early: fetch a new one next time, unless
            // another sender already did.
            let mut held = self.access.lock().await;
            if held.token.as_ref().is_some_and(|(t, _)| *t == access) {
                held.token = None;
            }
        }
        Ok(answer)
    }
}

/// The FCM v1 message: data only (every value a string, as FCM requires), high priority so
/// the device wakes, and the push's TTL.
fn message(device_token: &str, notice: &[u8], ttl_secs: u32) -> String {
    let fields: Value = serde_json::from_slice(notice).unwrap_or_default();
    let data: serde_json::Map<String, Value> = fields
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), Value::String(text))
        })
        .collect();
    json!({
        "message": {
            "token": device_token,
            "data": data,
            "android": { "priority": "HIGH", "ttl": format!("{ttl_secs}s") },
        }
    })
    .to_string()
}

/// FCM's answer as a push outcome: UNREGISTERED, SENDER_ID_MISMATCH and a rejected token
/// mean the token is gone (only those: a bare 404 from a proxy must not wipe tokens); our own
/// expired credentials (401), 429 and 5xx are tried again.
fn classify(reply: &Reply) -> Answer {
    let error: Value = serde_json::from_slice(&reply.body).unwrap_or_default();
    let details = error["error"]["details"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let code_is = |wanted: &str| details.iter().any(|d| d["errorCode"] == wanted);
    let bad_token = details.iter().any(|d| {
        d["fieldViolations"]
            .as_array()
            .is_some_and(|v| v.iter().any(|f| f["field"] == "message.token"))
    });
    match reply.status {
        200..=299 => Answer::Delivered(reply.status),
        404 if code_is("UNREGISTERED") => Answer::Gone(404),
        403 if code_is("SENDER_ID_MISMATCH") => Answer::Gone(403),
        400 if bad_token => Answer::Gone(400),
        // A broken APNs or Web Push credential in the Firebase project: not ours to retry.
        401 if code_is("THIRD_PARTY_AUTH_ERROR") => Answer::Refused(401),
        401 | 429 | 500..=599 => Answer::Later {
            status: reply.status,
            retry_after: reply.retry_after,
        },
        other => {
            tracing::warn!(status = other, answer = %String::from_utf8_lossy(&reply.body), "FCM refused a push");
            Answer::Refused(other)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status,
            retry_after: None,
            body: Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn fcm_errors_map_to_outcomes() {
        let unregistered = r#"{"error":{"code":404,"status":"NOT_FOUND","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}"#;
        assert_eq!(classify(&reply(404, unregistered)), Answer::Gone(404));
        // A 404 that is not FCM's UNREGISTERED (a proxy, a wrong base URL) keeps the token.
        assert_eq!(classify(&reply(404, "not found")), Answer::Refused(404));
        let apns = r#"{"error":{"details":[{"errorCode":"THIRD_PARTY_AUTH_ERROR"}]}}"#;
        assert_eq!(classify(&reply(401, apns)), Answer::Refused(401));
        let mismatch = r#"{"error":{"details":[{"errorCode":"SENDER_ID_MISMATCH"}]}}"#;
        assert_eq!(classify(&reply(403, mismatch)), Answer::Gone(403));
        let bad_token = r#"{"error":{"status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"message.token","description":"Invalid registration token"}]}]}}"#;
        assert_eq!(classify(&reply(400, bad_token)), Answer::Gone(400));
        assert_eq!(classify(&reply(400, "{}")), Answer::Refused(400));
        assert!(matches!(
            classify(&reply(503, "")),
            Answer::Later { status: 503, .. }
        ));
        assert!(matches!(
            classify(&reply(401, "")),
            Answer::Later { status: 401, .. }
        ));
    }

    #[test]
    fn the_message_is_data_only_with_string_values() {
        let notice = br#"{"message_id":"m","sent_at":7,"kind":"MENTION"}"#;
        let message: Value = serde_json::from_str(&message("tok", notice, 600)).expect("json");
        assert_eq!(message["message"]["token"], "tok");
        assert_eq!(message["message"]["data"]["sent_at"], "7");
        assert_eq!(message["message"]["data"]["message_id"], "m");
        assert_eq!(message["message"]["android"]["ttl"], "600s");
        assert!(message["message"]["notification"].is_null());
    }
}
