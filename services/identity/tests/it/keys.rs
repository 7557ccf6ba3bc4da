use mzchat_proto::identity::{
    GetServerInfoRequest, server_info_service_client::ServerInfoServiceClient,
};

use crate::{
    both_backends,
    harness::{Backend, TestServer},
};

both_backends!(server_info_publishes_keys_and_rotation_keeps_old_tokens_valid);

async fn server_info_publishes_keys_and_rotation_keeps_old_tokens_valid(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client(None);
    client.login(&server.origin, None, "").await.expect("login");
    let mut info = ServerInfoServiceClient::new(client.channel(&server.origin).expect("channel"));
    let before = info
        .get_server_info(GetServerInfoRequest {})
        .await
        .expect("info")
        .into_inner();
    assert_eq!(before.origin, server.origin);
    assert_eq!(before.server_keys.len(), 1);
    assert_eq!(before.session_keys.len(), 1);
    assert!(
        before.session_keys[0].valid_until.is_none(),
        "current key has no end"
    );
    assert_eq!(
        before.message_limits.expect("limits").max_content_chars,
        4000
    );

    // Rotation is due 90 days after creation: pretend that time has come.
    let later = mzchat_platform::db::now_millis() + 91 * 86_400_000;
    server
        .identity
        .app()
        .keys()
        .refresh(server.identity.database(), later)
        .await
        .expect("rotate");
    let after = info
        .get_server_info(GetServerInfoRequest {})
        .await
        .expect("info")
        .into_inner();
    assert_eq!(
        after.session_keys.len(),
        2,
        "old session key still published"
    );
    assert_eq!(after.server_keys.len(), 2);
    let old = after
        .session_keys
        .iter()
        .find(|k| k.key_id == before.session_keys[0].key_id)
        .expect("old key");
    assert!(old.valid_until.is_some(), "retired key has an end");
    // A token signed by the retired key still works.
    client
        .whoami(&server.origin)
        .await
        .expect("old token valid");
    client
        .refresh(&server.origin)
        .await
        .expect("refresh under new key");
    client
        .whoami(&server.origin)
        .await
        .expect("new token valid");
    server.finish().await;
}
