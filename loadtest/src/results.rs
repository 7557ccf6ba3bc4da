//! What a run measured: printed as it goes, and with `--json FILE` appended to FILE as one JSON
//! line per run (scenario, throughput, latency percentiles, errors, and with `--server-pid` the
//! server's CPU time and peak memory over the run).

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use serde_json::{Map, Value, json};

static RUN: Mutex<Option<Map<String, Value>>> = Mutex::new(None);

fn with_run(f: impl FnOnce(&mut Map<String, Value>)) {
    let mut run = RUN.lock().unwrap_or_else(|e| e.into_inner());
    f(run.get_or_insert_with(Map::new));
}

/// Records the run's throughput (e.g. "messages/s").
pub fn throughput(unit: &str, value: f64) {
    with_run(|run| {
        run.insert("throughput".into(), json!({ "unit": unit, "value": value }));
    });
}

/// Records another figure of the run.
pub fn field(key: &str, value: Value) {
    with_run(|run| {
        run.insert(key.into(), value);
    });
}

/// Records a latency distribution (sorted samples).
pub fn latency(what: &str, sorted: &[Duration], percentile: impl Fn(f64) -> Duration) {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    with_run(|run| {
        run.insert(
            "latency_ms".into(),
            json!({
                "what": what,
                "n": sorted.len(),
                "p50": ms(percentile(0.50)),
                "p90": ms(percentile(0.90)),
                "p99": ms(percentile(0.99)),
                "max": ms(sorted.last().copied().unwrap_or_default()),
            }),
        );
    });
}

/// The server process watched over a run.
pub struct Server {
    pid: u32,
    cpu_at_start: f64,
    started: Instant,
}

/// CPU seconds (user + system) the process has used.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at ") ".
    let fields: Vec<&str> = stat.rsplit_once(") ")?.1.split(' ').collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

impl Server {
    pub fn watch(pid: u32) -> Self {
        Self {
            pid,
            cpu_at_start: cpu_seconds(pid).unwrap_or(0.0),
            started: Instant::now(),
        }
    }
}

/// Prints the server's share and writes the run's record.
pub fn finish(
    scenario: &str,
    ok: bool,
    server: Option<Server>,
    json_file: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let mut run = RUN
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .unwrap_or_default();
    run.insert("scenario".into(), json!(scenario));
    run.insert("errors".into(), json!(if ok { 0 } else { 1 }));
    if let Some(server) = server {
        let wall = server.started.elapsed().as_secs_f64();
        let cpu = cpu_seconds(server.pid).map(|now| now - server.cpu_at_start);
        let rss = peak_rss_mib(server.pid);
        if let (Some(cpu), Some(rss)) = (cpu, rss) {
            println!(
                "server: {cpu:.1} s CPU over {wall:.1} s ({:.0}% of one core), peak RSS {rss:.0} MiB",
                cpu / wall * 100.0
            );
        }
        run.insert(
            "server".into(),
            json!({ "cpu_seconds": cpu, "wall_seconds": wall, "peak_rss_mib": rss }),
        );
    }
    if let Some(path) = json_file {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        writeln!(file, "{}", Value::Object(run))?;
    }
    Ok(())
}
