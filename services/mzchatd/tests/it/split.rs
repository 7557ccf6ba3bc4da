//! Services in separate processes over PostgreSQL and NATS, as Kubernetes runs them.

use mzchat_client::{Client, KeyStore, LocalIdentity};
use mzchat_proto::guild::{
    CreateGuildRequest, ListGuildsRequest, guild_service_client::GuildServiceClient,
};
use tonic::Code;

use crate::daemon::{Daemon, Nats, free_port, unique};

fn database_url() -> String {
    std::env::var("MZCHAT_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_and_guild_run_as_separate_processes() {
    let nats = Nats::start();
    let data = std::env::temp_dir().join(unique("mzchatd-split-"));
    let schema_prefix = format!("{}_", unique("s"));
    let (nats_url, db_url) = (nats.url(), database_url());
    let shared = [
        "--database-url",
        db_url.as_str(),
        "--database-schema-prefix",
        schema_prefix.as_str(),
        "--nats-url",
        nats_url.as_str(),
        "--internal-token",
        "split-test-internal-token",
    ];
    let guild_port = free_port();
    let identity_port = free_port();
    let identity_url = format!("http://127.0.0.1:{identity_port}");
    // One homeserver, one public origin (in Kubernetes the route in front of both).
    let mut guild_flags = shared.to_vec();
    guild_flags.extend([
        "--migrate",
        "--identity-url",
        identity_url.as_str(),
        "--origin",
        identity_url.as_str(),
    ]);
    let guild = Daemon::start_mode("guild", guild_port, &data.join("guild"), &guild_flags);
    let guild_url = format!("http://127.0.0.1:{guild_port}");
    let mut identity_flags = shared.to_vec();
    identity_flags.extend([
        "--migrate",
        "--guild-internal-url",
        guild_url.as_str(),
        // No federation-sync runs here: nothing to verify inbound server calls with.
        "--federation-internal-url",
        "http://127.0.0.1:9",
    ]);
    let identity = Daemon::start_mode(
        "identity",
        identity_port,
        &data.join("identity"),
        &identity_flags,
    );

    let store = KeyStore::new(data.join("client"));
    store
        .save_identity(&LocalIdentity::generate(&identity.origin, "laptop").expect("keys"))
        .expect("save");
    let client = Client::open(store).expect("client");
    client
        .login(&identity.origin, None, "")
        .await
        .expect("login through the identity process");
    client.whoami(&identity.origin).await.expect("whoami");

    // Each process serves only its own service.
    let on_identity = GuildServiceClient::new(client.channel(&identity.origin).expect("channel"))
        .list_guilds(ListGuildsRequest::default())
        .await
        .expect_err("identity does not serve guilds");
    assert_eq!(on_identity.code(), Code::Unimplemented);
    // The guild process verifies the identity process's tokens and asks it for fresh ones.
    let request = client
        .authed(
            &identity.origin,
            CreateGuildRequest {
                name: "split".into(),
                ..Default::default()
            },
        )
        .await
        .expect("token");
    let created = GuildServiceClient::new(client.channel(&guild.origin).expect("channel"))
        .create_guild(request)
        .await
        .expect("create a guild on the guild process")
        .into_inner();
    assert!(
        !created.access_token.is_empty(),
        "identity issued a token carrying the guild"
    );

    drop((identity, guild));
    use sea_orm::ConnectionTrait;
    let db = sea_orm::Database::connect(db_url).await.expect("postgres");
    for service in ["identity", "guild"] {
        db.execute_unprepared(&format!(
            "DROP SCHEMA IF EXISTS \"{schema_prefix}{service}\" CASCADE"
        ))
        .await
        .expect("drop schema");
    }
    std::fs::remove_dir_all(data).ok();
}

/// `mzchatd migrate --service guild` creates the guild schema and no other: with a database per
/// service (the operator's DatabasePerService), each database gets only its own tables.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_applies_only_the_services_named() {
    let prefix = format!("{}_", unique("m"));
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_mzchatd"))
        .args([
            "migrate",
            "--service",
            "guild",
            "--insecure-dev",
            "--database-url",
            &database_url(),
            "--database-schema-prefix",
            &prefix,
        ])
        .status()
        .expect("mzchatd runs");
    assert!(status.success(), "migrate exited with {status}");
    let db = sea_orm::Database::connect(database_url())
        .await
        .expect("database");
    use sea_orm::ConnectionTrait;
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            format!(
                "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE '{prefix}%' ORDER BY 1"
            ),
        ))
        .await
        .expect("schemas");
    let schemas: Vec<String> = rows
        .iter()
        .map(|row| row.try_get("", "schema_name").expect("name"))
        .collect();
    assert_eq!(schemas, [format!("{prefix}guild")]);
    db.execute_unprepared(&format!("DROP SCHEMA \"{prefix}guild\" CASCADE"))
        .await
        .expect("drop");
}
