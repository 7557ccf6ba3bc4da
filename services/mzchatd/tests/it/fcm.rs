//! FCM HTTP v1 delivery against a local fake that checks requests the way Google does: the
//! OAuth2 token request must carry an RS256 JWT signed by the service account's key, and sends
//! must carry an access token it issued, to the project's `messages:send`, with a data-only
//! message of string values. An unknown registration token is answered UNREGISTERED (404).

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use mzchat_proto::push::{RegisterFcmTokenRequest, push_service_client::PushServiceClient};
use ring::signature::{KeyPair, RSA_PKCS1_2048_8192_SHA256, RsaKeyPair, UnparsedPublicKey};
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::{
    daemon::{Daemon, unique},
    federation::{guild_with_invite, user},
    push::read_request,
};

const PROJECT: &str = "mzchat-test";
const SERVICE_ACCOUNT: &str = include_str!("../fixtures/fcm-service-account.json");

/// What the fake saw.
#[derive(Default)]
struct Seen {
    token_requests: usize,
    issued: HashSet<String>,
    /// Registration tokens the fake knows (installed apps).
    installed: HashSet<String>,
    /// Accepted messages.
    messages: Vec<Value>,
    /// Registration tokens answered UNREGISTERED.
    unregistered: Vec<String>,
    /// Requests the fake refused, and why.
    refused: Vec<String>,
}

struct FakeFcm {
    url: String,
    seen: Arc<Mutex<Seen>>,
}

fn answer(status: u16, body: &str) -> String {
    format!(
        "HTTP/1.1 {status} Fake\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Checks the JWT bearer assertion as Google's token endpoint does.
fn check_assertion(assertion: &str, public_key: &[u8], token_uri: &str) -> Result<(), String> {
    let parts: Vec<&str> = assertion.split('.').collect();
    let [header, claims, signature] = parts[..] else {
        return Err("not a JWT".into());
    };
    let decode = |part: &str| -> Result<Value, String> {
        let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|e| e.to_string())?;
        serde_json::from_slice(&bytes).map_err(|e| e.to_string())
    };
    let (header, claims) = (decode(header)?, decode(claims)?);
    if header["alg"] != "RS256" || header["kid"] != "test-key-1" {
        return Err(format!("header {header}"));
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|e| e.to_string())?;
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public_key)
        .verify(
            &assertion.as_bytes()[..assertion.rfind('.').unwrap_or(0)],
            &signature,
        )
        .map_err(|_| "bad signature".to_string())?;
    let (iat, exp) = (
        claims["iat"].as_u64().unwrap_or(0),
        claims["exp"].as_u64().unwrap_or(0),
    );
    let now = mzchat_client::statements::unix_now() as u64;
    if claims["iss"] != "mzchat-push@mzchat-test.iam.gserviceaccount.com"
        || claims["scope"] != "https://www.googleapis.com/auth/firebase.messaging"
        || claims["aud"] != token_uri
        || exp <= iat
        || exp - iat > 3600
        || iat > now + 60
        || exp < now
    {
        return Err(format!("claims {claims}"));
    }
    Ok(())
}

fn handle(seen: &Mutex<Seen>, head: &str, body: &str, public_key: &[u8], base: &str) -> String {
    let mut seen = seen.lock().expect("lock");
    let request_line = head.lines().next().unwrap_or_default();
    if request_line.starts_with("POST /token ") {
        seen.token_requests += 1;
        let form: Vec<(&str, &str)> = body
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .collect();
        let grant = form.iter().find(|(k, _)| *k == "grant_type");
        let assertion = form.iter().find(|(k, _)| *k == "assertion");
        let checked = match (grant, assertion) {
            (
                Some((_, "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer")),
                Some((_, jwt)),
            ) => check_assertion(jwt, public_key, &format!("{base}/token")),
            _ => Err(format!("form {body}")),
        };
        if let Err(why) = checked {
            seen.refused.push(why);
            return answer(400, r#"{"error":"invalid_grant"}"#);
        }
        let token = format!("ya29.fake-{}", seen.token_requests);
        seen.issued.insert(token.clone());
        return answer(
            200,
            &format!(r#"{{"access_token":"{token}","expires_in":3599,"token_type":"Bearer"}}"#),
        );
    }
    let send = format!("POST /v1/projects/{PROJECT}/messages:send ");
    if !request_line.starts_with(&send) {
        seen.refused.push(request_line.to_owned());
        return answer(404, "{}");
    }
    let bearer = header(head, "authorization").and_then(|v| v.strip_prefix("Bearer "));
    if !bearer.is_some_and(|t| seen.issued.contains(t)) {
        seen.refused.push(format!("authorization {bearer:?}"));
        return answer(401, r#"{"error":{"code":401,"status":"UNAUTHENTICATED"}}"#);
    }
    let message: Value = serde_json::from_str(body).unwrap_or_default();
    let data_ok = message["message"]["data"]
        .as_object()
        .is_some_and(|d| d.values().all(Value::is_string));
    if header(head, "content-type") != Some("application/json") || !data_ok {
        seen.refused.push(format!("message {body}"));
        return answer(400, r#"{"error":{"code":400,"status":"INVALID_ARGUMENT"}}"#);
    }
    let token = message["message"]["token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if !seen.installed.contains(&token) {
        seen.unregistered.push(token);
        return answer(
            404,
            r#"{"error":{"code":404,"status":"NOT_FOUND","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}"#,
        );
    }
    seen.messages.push(message);
    answer(
        200,
        &format!(r#"{{"name":"projects/{PROJECT}/messages/1"}}"#),
    )
}

impl FakeFcm {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let account: Value = serde_json::from_str(SERVICE_ACCOUNT).expect("fixture");
        let pem = account["private_key"].as_str().expect("key");
        let der = pem_to_der(pem);
        let public_key = RsaKeyPair::from_pkcs8(&der)
            .expect("rsa key")
            .public_key()
            .as_ref()
            .to_vec();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (state, base) = (seen.clone(), url.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (state, base, public_key) = (state.clone(), base.clone(), public_key.clone());
                tokio::spawn(async move {
                    let Some((head, body)) = read_request(&mut stream).await else {
                        return;
                    };
                    let reply = handle(&state, &head, &body, &public_key, &base);
                    let _ = stream.write_all(reply.as_bytes()).await;
                });
            }
        });
        Self { url, seen }
    }

    /// The service account file, its token endpoint on this fake.
    fn credentials(&self, dir: &std::path::Path) -> std::path::PathBuf {
        std::fs::create_dir_all(dir).expect("dir");
        let path = dir.join("fcm.json");
        let json = SERVICE_ACCOUNT.replace("TOKEN_URI", &format!("{}/token", self.url));
        std::fs::write(&path, json).expect("write credentials");
        path
    }
}

/// The DER inside a PEM "PRIVATE KEY" block.
fn pem_to_der(pem: &str) -> Vec<u8> {
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("pem base64")
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(20), "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mentions_reach_fcm_devices_and_unregistered_tokens_are_forgotten() {
    let fcm = FakeFcm::start().await;
    let data = std::env::temp_dir().join(unique("mzchatd-fcm-"));
    let credentials = fcm.credentials(&data.join("secrets"));
    let credentials = credentials.to_str().expect("utf-8 path");
    let daemon = Daemon::start(
        &data.join("server"),
        &["--fcm-credentials", credentials, "--fcm-base-url", &fcm.url],
    );
    let origin = daemon.origin.clone();
    let alice = user(&origin, "laptop");
    let (guild_id, channel_id, link) = guild_with_invite(&alice, &origin).await;
    let bob = user(&origin, "phone");
    bob.join_invite(&link, None).await.expect("bob joins");
    let request = bob
        .authed(
            &origin,
            RegisterFcmTokenRequest {
                device_id: "phone".into(),
                token: "bob-phone-token".into(),
            },
        )
        .await
        .expect("token");
    PushServiceClient::new(bob.channel(&origin).expect("channel"))
        .register_fcm_token(request)
        .await
        .expect("bob's FCM token");
    fcm.seen
        .lock()
        .expect("lock")
        .installed
        .insert("bob-phone-token".into());

    let bob_id = bob.identity().user_id();
    let mention = |text: &'static str| {
        crate::federation::mention(
            &alice,
            &origin,
            &guild_id,
            &channel_id,
            bob_id.clone(),
            text,
        )
    };
    let first = mention("secret plans").await;
    let second = mention("more secrets").await;
    wait_for("both pushes reach FCM", || {
        fcm.seen.lock().expect("lock").messages.len() == 2
    })
    .await;
    {
        let seen = fcm.seen.lock().expect("lock");
        assert!(seen.refused.is_empty(), "{:?}", seen.refused);
        assert_eq!(seen.token_requests, 1, "the access token is reused");
        let ids: Vec<&str> = seen
            .messages
            .iter()
            .map(|m| m["message"]["data"]["message_id"].as_str().unwrap_or(""))
            .collect();
        assert!(ids.contains(&first.as_str()) && ids.contains(&second.as_str()));
        let message = &seen.messages[0]["message"];
        assert_eq!(message["token"], "bob-phone-token");
        assert_eq!(message["data"]["kind"], "MENTION");
        assert_eq!(message["data"]["guild_id"], guild_id.as_str());
        assert_eq!(message["android"]["priority"], "HIGH");
        assert!(message["notification"].is_null(), "data-only: {message}");
        assert!(
            !message.to_string().contains("secret"),
            "no text: {message}"
        );
    }

    // The app is uninstalled: FCM answers UNREGISTERED and the token is forgotten.
    fcm.seen.lock().expect("lock").installed.clear();
    mention("third").await;
    wait_for("FCM is told of the third push", || {
        fcm.seen.lock().expect("lock").unregistered.len() == 1
    })
    .await;
    let gone = r#"mzchat_push_delivery_attempts_total{outcome="gone"} 1"#;
    let start = Instant::now();
    loop {
        let metrics = crate::smoke::reqwest_like_get(daemon.admin_port, "/metrics").await;
        if metrics.contains(gone) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{metrics}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The token is gone from the server's registrations.
    use sea_orm::ConnectionTrait;
    let push_db = data.join("server").join("push.db");
    let db = sea_orm::Database::connect(format!("sqlite://{}?mode=ro", push_db.display()))
        .await
        .expect("push database");
    let tokens = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT count(*) AS n FROM fcm_tokens",
        ))
        .await
        .expect("query")
        .expect("a row")
        .try_get::<i64>("", "n")
        .expect("count");
    assert_eq!(tokens, 0, "the unregistered token is forgotten");
    assert_eq!(fcm.seen.lock().expect("lock").messages.len(), 2);
    db.close().await.ok();
    drop(daemon);
    std::fs::remove_dir_all(data).ok();
}
