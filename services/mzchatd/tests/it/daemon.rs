//! Starting and stopping `mzchatd` processes on free loopback ports.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

/// A port nothing listens on, never handed out twice in this test run: tests start servers in
/// parallel, and a port released here may otherwise be given to another test before the first
/// server binds it (that server then fails, and its "ready" port answers for someone else).
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

pub struct Daemon {
    child: Child,
    pub origin: String,
    pub port: u16,
    pub admin_port: u16,
    /// The assets origin (media over HTTP).
    pub assets_port: u16,
    pub log: PathBuf,
}

impl Daemon {
    /// Starts `mzchatd all` in development mode with `extra` flags and waits until it serves.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Self {
        Self::start_on(free_port(), data_dir, extra)
    }

    pub fn start_on(port: u16, data_dir: &Path, extra: &[&str]) -> Self {
        Self::start_mode("all", port, data_dir, extra)
    }

    /// Starts `mzchatd <mode>`.
    pub fn start_mode(mode: &str, port: u16, data_dir: &Path, extra: &[&str]) -> Self {
        Self::start_with_env(mode, port, data_dir, extra, &[])
    }

    /// Starts `mzchatd <mode>` with extra environment variables.
    pub fn start_with_env(
        mode: &str,
        port: u16,
        data_dir: &Path,
        extra: &[&str],
        env: &[(String, String)],
    ) -> Self {
        let admin_port = free_port();
        let assets_port = free_port();
        std::fs::create_dir_all(data_dir).expect("data dir");
        let log = data_dir.join(format!("mzchatd-{}.log", unique("")));
        let child = Command::new(env!("CARGO_BIN_EXE_mzchatd"))
            .arg(mode)
            .args(["--insecure-dev", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--admin-listen", &format!("127.0.0.1:{admin_port}")])
            .args(["--assets-listen", &format!("127.0.0.1:{assets_port}")])
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .env_remove("MZCHAT_DATABASE_URL")
            .env_remove("MZCHAT_NATS_URL")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(std::fs::File::create(&log).expect("log file"))
            .stderr(Stdio::null())
            .spawn()
            .expect("start mzchatd");
        let mut daemon = Self {
            child,
            origin: format!("http://127.0.0.1:{port}"),
            port,
            admin_port,
            assets_port,
            log,
        };
        daemon.wait_ready();
        daemon
    }

    fn wait_ready(&mut self) {
        for _ in 0..300 {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("mzchatd exited with {status}: {}", self.log_text());
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
        panic!("mzchatd did not listen within 15 s: {}", self.log_text());
    }

    /// Peak resident memory so far, in KiB (Linux `VmHWM`).
    pub fn peak_rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: no chance to flush or drain.
    pub fn kill(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }

    /// SIGTERM and wait for the orderly exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        for _ in 0..200 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
        panic!(
            "mzchatd did not stop within 10 s of SIGTERM: {}",
            self.log_text()
        );
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A NATS server of the test's own, so it can be stopped and started.
pub struct Nats {
    child: Child,
    pub port: u16,
    store: PathBuf,
}

impl Nats {
    pub fn start() -> Self {
        let port = free_port();
        let store = std::env::temp_dir().join(unique("mzchatd-nats-"));
        Self::start_on(port, store)
    }

    fn start_on(port: u16, store: PathBuf) -> Self {
        let binary = [
            "nats-server",
            "/usr/sbin/nats-server",
            "/usr/bin/nats-server",
        ]
        .into_iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .stdout(Stdio::null())
                .status()
                .is_ok()
        })
        .expect("nats-server not found: run `make services-up` (it installs one)");
        let mut child = Command::new(binary)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(&store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Self { child, port, store };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        child.kill().ok();
        child.wait().ok();
        panic!("nats-server did not listen on {port}");
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
        std::fs::remove_dir_all(&self.store).ok();
    }
}
