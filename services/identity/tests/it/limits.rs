//! Login limits: per client address, and per user and device certificate.

use mzchat_client::ClientError;
use mzchat_platform::rate_limit::RateLimits;
use tonic::Code;

use crate::{
    both_backends,
    harness::{Backend, Shared, TestServer},
};

both_backends!(logins_are_limited_per_address_and_per_device);

fn refused_by(result: Result<impl std::fmt::Debug, ClientError>) -> String {
    match result.expect_err("refused") {
        ClientError::Rpc(status) => {
            assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
            status.message().to_owned()
        }
        other => panic!("not refused by the server: {other}"),
    }
}

async fn logins_are_limited_per_address_and_per_device(backend: Backend) {
    let server = TestServer::start_with(Shared::new(backend).await, |config| {
        config.server.rate_limits =
            RateLimits::from_settings(&["all=off", "ip.login=4/1m", "login=2/1m"]).expect("limits");
    })
    .await;
    let laptop = server.client(None);
    for _ in 0..2 {
        laptop.login(&server.origin, None, "").await.expect("login");
    }
    let third = refused_by(laptop.login(&server.origin, None, "").await);
    assert!(third.contains("rate limit login "), "{third}");
    // Another user from the same address has its own device bucket, until the address's
    // bucket (four calls, the refused one included) is spent.
    let phone = server.client(None);
    phone.login(&server.origin, None, "").await.expect("login");
    let over = refused_by(phone.login(&server.origin, None, "").await);
    assert!(over.contains("rate limit ip.login "), "{over}");
    server.finish().await;
}
