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
