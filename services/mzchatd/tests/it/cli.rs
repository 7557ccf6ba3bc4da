//! The `mzchat` command-line client against a real `mzchatd all`: what a new user does first.

use std::{path::PathBuf, process::Command};

use crate::daemon::{Daemon, unique};

/// The `mzchat` binary beside `mzchatd`, built first if this run did not build it.
fn mzchat_binary() -> PathBuf {
    let mzchatd = PathBuf::from(env!("CARGO_BIN_EXE_mzchatd"));
    let path = mzchatd.with_file_name("mzchat");
    if !path.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "mzchat-client", "--bin", "mzchat"])
            .status()
            .expect("run cargo");
        assert!(status.success(), "building the mzchat CLI failed");
    }
    path
}

fn mzchat(home: &std::path::Path, origin: &str, args: &[&str]) -> (bool, String) {
    let output = Command::new(mzchat_binary())
        .args(["--server", origin])
        .args(args)
        .env("MZCHAT_HOME", home)
        .output()
        .expect("run mzchat");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keygen_login_and_whoami_work_against_a_fresh_homeserver() {
    let data = std::env::temp_dir().join(unique("mzchatd-cli-"));
    let daemon = Daemon::start(&data, &[]);
    let home = data.join("home");

    let (ok, out) = mzchat(&home, &daemon.origin, &["keygen"]);
    assert!(ok, "{out}");
    let user_id = out
        .lines()
        .find_map(|l| l.strip_prefix("user id:"))
        .map(str::trim)
        .expect("keygen prints the user id")
        .to_owned();
    let (ok, out) = mzchat(&home, &daemon.origin, &["keygen"]);
    assert!(
        !ok && out.contains("--force"),
        "keygen refuses to overwrite: {out}"
    );

    let (ok, out) = mzchat(&home, &daemon.origin, &["login", "--name", "Ada"]);
    assert!(ok, "{out}");
    assert!(out.contains(&user_id) && out.contains("local"), "{out}");
    let (ok, out) = mzchat(&home, &daemon.origin, &["whoami"]);
    assert!(ok && out.contains("display name: Ada"), "{out}");
    let (ok, out) = mzchat(&home, &daemon.origin, &["devices"]);
    assert!(ok && out.contains("cli") && out.contains("active"), "{out}");

    #[cfg(unix)]
    for file in ["identity.json", "sessions.json"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(home.join(file))
            .expect(file)
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file} is private");
    }
    drop(daemon);
    std::fs::remove_dir_all(data).ok();
}

/// Starts `mzchat tail` in the background, writing to a file.
fn tail(home: &std::path::Path, origin: &str, out: &std::path::Path) -> std::process::Child {
    Command::new(mzchat_binary())
        .args(["--server", origin, "tail"])
        .env("MZCHAT_HOME", home)
        .stdout(std::fs::File::create(out).expect("tail output"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run mzchat tail")
}

/// Waits until `file` contains `needle`.
fn wait_for(file: &std::path::Path, needle: &str) -> bool {
    for _ in 0..100 {
        if std::fs::read_to_string(file)
            .unwrap_or_default()
            .contains(needle)
        {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_chat_with_the_cli_alone() {
    let data = std::env::temp_dir().join(unique("mzchatd-chat-"));
    let daemon = Daemon::start(&data, &[]);
    let origin = daemon.origin.clone();
    let (ada, grace) = (data.join("ada"), data.join("grace"));
    for (home, name) in [(&ada, "Ada"), (&grace, "Grace")] {
        assert!(mzchat(home, &origin, &["keygen"]).0);
        let (ok, out) = mzchat(home, &origin, &["login", "--name", name]);
        assert!(ok, "{out}");
    }
    let (ok, out) = mzchat(&ada, &origin, &["guild", "create", "Engines"]);
    assert!(ok, "{out}");
    let guild = out
        .rsplit_once('(')
        .map(|(_, id)| id.trim().trim_end_matches(')').to_owned())
        .expect("guild id");
    let (ok, link) = mzchat(&ada, &origin, &["guild", "invite", &guild]);
    assert!(ok && link.contains("/channels/"), "{link}");
    let (ok, out) = mzchat(&grace, &origin, &["guild", "join", link.trim()]);
    assert!(ok && out.contains("joined Engines"), "{out}");
    let (ok, channels) = mzchat(&grace, &origin, &["channel", "list", &guild]);
    assert!(ok && channels.contains("#general"), "{channels}");
    let channel = channels
        .split_whitespace()
        .next()
        .expect("channel id")
        .to_owned();

    let (ada_tail, grace_tail) = (data.join("ada-tail.txt"), data.join("grace-tail.txt"));
    let mut tails = [
        tail(&ada, &origin, &ada_tail),
        tail(&grace, &origin, &grace_tail),
    ];
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;

    let (ok, message) = mzchat(&ada, &origin, &["send", &guild, &channel, "hello", "Grace"]);
    assert!(ok, "{message}");
    let message = message.trim().to_owned();
    assert!(
        wait_for(&grace_tail, "hello Grace"),
        "Grace sees Ada's message live"
    );
    let (ok, out) = mzchat(
        &grace,
        &origin,
        &["react", &guild, &channel, &message, "🎉"],
    );
    assert!(ok, "{out}");
    assert!(
        wait_for(&ada_tail, "reacted 🎉"),
        "Ada sees Grace's reaction live"
    );
    let (ok, out) = mzchat(&ada, &origin, &["pin", &guild, &channel, &message]);
    assert!(ok, "{out}");
    assert!(wait_for(&grace_tail, "pinned"), "Grace sees the pin live");
    let (ok, history) = mzchat(&grace, &origin, &["history", &guild, &channel]);
    assert!(
        ok && history.contains("hello Grace [pinned]") && history.contains("🎉 1"),
        "{history}"
    );
    // Files: uploaded on their own, or attached as a message is sent.
    let notes = data.join("notes.txt");
    std::fs::write(&notes, "minutes of the meeting\n").expect("write notes");
    let notes = notes.to_str().expect("utf-8 path");
    let (ok, out) = mzchat(&ada, &origin, &["upload", notes]);
    assert!(ok, "{out}");
    assert!(
        out.lines().any(|l| l.contains(".txt\ttext/plain\thttp://")),
        "prints file id, type and URL: {out}"
    );
    let (ok, out) = mzchat(
        &ada,
        &origin,
        &["send", &guild, &channel, "--attach", notes, "minutes"],
    );
    assert!(ok, "{out}");
    let (ok, history) = mzchat(&grace, &origin, &["history", &guild, &channel]);
    assert!(
        ok && history.contains("attached: notes.txt (text/plain, 23 bytes)"),
        "{history}"
    );
    for tail in &mut tails {
        tail.kill().ok();
        tail.wait().ok();
    }
    drop(daemon);
    std::fs::remove_dir_all(data).ok();
}

/// A user homed on A joins a guild on B by its invite link and talks there, with the CLI only:
/// the client routes each call to the server that hosts the guild.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_joins_and_uses_a_guild_on_another_server() {
    let data = std::env::temp_dir().join(unique("mzchatd-cli-fed-"));
    let a = Daemon::start(&data.join("a"), &[]);
    let b = Daemon::start(&data.join("b"), &[]);
    let (ada, grace) = (data.join("ada"), data.join("grace"));
    assert!(mzchat(&ada, &b.origin, &["keygen"]).0);
    assert!(mzchat(&ada, &b.origin, &["login", "--name", "Ada"]).0);
    assert!(mzchat(&grace, &a.origin, &["keygen"]).0);
    assert!(mzchat(&grace, &a.origin, &["login", "--name", "Grace"]).0);
    let (ok, out) = mzchat(&ada, &b.origin, &["guild", "create", "Engines"]);
    assert!(ok, "{out}");
    let guild = out
        .rsplit_once('(')
        .map(|(_, id)| id.trim().trim_end_matches(')').to_owned())
        .expect("guild id");
    let (ok, link) = mzchat(&ada, &b.origin, &["guild", "invite", &guild]);
    assert!(ok, "{link}");

    // Grace's default server is A; the link names B.
    let (ok, out) = mzchat(&grace, &a.origin, &["guild", "join", link.trim()]);
    assert!(
        ok && out.contains("joined Engines") && out.contains(&b.origin),
        "{out}"
    );
    let (ok, channels) = mzchat(&grace, &b.origin, &["channel", "list", &guild]);
    assert!(ok && channels.contains("#general"), "{channels}");
    let channel = channels
        .split_whitespace()
        .next()
        .expect("channel id")
        .to_owned();
    let (ok, out) = mzchat(
        &grace,
        &b.origin,
        &["send", &guild, &channel, "hi", "from", "A"],
    );
    assert!(ok, "{out}");
    let (ok, history) = mzchat(&ada, &b.origin, &["history", &guild, &channel]);
    assert!(ok && history.contains("hi from A"), "{history}");
    let (ok, out) = mzchat(&grace, &b.origin, &["whoami"]);
    assert!(ok && out.contains("shadow"), "{out}");
    drop((a, b));
    std::fs::remove_dir_all(data).ok();
}

/// `mzchat upload` killed mid-way resumes the same upload on the next run, and the file comes
/// back byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_cli_upload_resumes() {
    use sha2::{Digest, Sha256};
    let data = std::env::temp_dir().join(unique("mzchatd-resume-"));
    let daemon = Daemon::start(&data, &[]);
    let origin = daemon.origin.clone();
    let home = data.join("ada");
    assert!(mzchat(&home, &origin, &["keygen"]).0);
    assert!(mzchat(&home, &origin, &["login"]).0);
    let big = data.join("big.bin");
    let bytes = crate::media::bytes_of(60 * 1024 * 1024, 42);
    std::fs::write(&big, &bytes).expect("write");
    let big = big.to_str().expect("utf-8 path").to_owned();

    // Killed as soon as the upload is declared (its id is on disk), before it can finish.
    let mut first = Command::new(mzchat_binary())
        .args(["--server", &origin, "upload", &big])
        .env("MZCHAT_HOME", &home)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run mzchat");
    let uploads = home.join("uploads");
    let start = std::time::Instant::now();
    while std::fs::read_dir(&uploads).map_or(true, |mut d| d.next().is_none()) {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "the upload was never declared"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    first.kill().expect("kill");
    first.wait().ok();

    let (ok, out) = mzchat(&home, &origin, &["upload", &big]);
    assert!(ok, "{out}");
    assert!(out.contains("resuming upload"), "{out}");
    let url = out
        .lines()
        .find_map(|l| l.split('\t').nth(2))
        .expect("the file's URL");
    let path = url
        .rsplit_once('/')
        .map(|(_, id)| format!("/{id}"))
        .expect("path");
    let served = crate::media::http_get(daemon.assets_port, &path, &[]).await;
    assert_eq!(served.status, 200);
    assert!(
        Sha256::digest(&served.body) == Sha256::digest(&bytes),
        "the resumed upload is the file"
    );
    assert!(
        std::fs::read_dir(&uploads).map_or(true, |mut d| d.next().is_none()),
        "the finished upload is forgotten"
    );
    drop(daemon);
    std::fs::remove_dir_all(data).ok();
}
