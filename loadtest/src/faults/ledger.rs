//! What the load generator saw: every write the server acknowledged (appended to a JSON-lines
//! file as it happens, so nothing is lost if the generator dies), and per kind of operation the
//! attempts, retries, acknowledgements, give-ups and error codes. A write is recorded only
//! after the server answered OK; an operation that never got an OK is counted as failed and
//! its id (if any) is not claimed.

use std::{
    collections::BTreeMap,
    io::Write,
    path::{Path, PathBuf},
    sync::Mutex,
    time::{Duration, Instant},
};

use mzchat_client::ClientError;
use serde_json::{Value, json};

#[derive(Default, Clone, Copy)]
pub struct Counts {
    /// Operations started.
    pub started: u64,
    /// Calls made (first tries and retries).
    pub calls: u64,
    pub acked: u64,
    /// Operations that never got an OK before their deadline (or got a permanent error).
    pub failed: u64,
    /// Operations not started because too many were in flight.
    pub skipped: u64,
}

pub struct Ledger {
    started: Instant,
    lines: Mutex<std::io::BufWriter<std::fs::File>>,
    path: PathBuf,
    counts: Mutex<BTreeMap<&'static str, Counts>>,
    /// "kind code" -> how many calls ended so.
    errors: Mutex<BTreeMap<String, u64>>,
    /// Errors since the last progress line.
    recent: Mutex<BTreeMap<String, u64>>,
    /// Last error text of each kind and code, for the summary.
    samples: Mutex<BTreeMap<String, String>>,
}

impl Ledger {
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        let lines = path.with_extension("jsonl");
        Ok(Self {
            started: Instant::now(),
            lines: Mutex::new(std::io::BufWriter::new(std::fs::File::create(&lines)?)),
            path: path.to_owned(),
            counts: Mutex::default(),
            errors: Mutex::default(),
            recent: Mutex::default(),
            samples: Mutex::default(),
        })
    }

    fn count(&self, kind: &'static str, f: impl FnOnce(&mut Counts)) {
        f(self
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(kind)
            .or_default());
    }

    pub fn started(&self, kind: &'static str) {
        self.count(kind, |c| c.started += 1);
    }

    pub fn skipped(&self, kind: &'static str) {
        self.count(kind, |c| c.skipped += 1);
    }

    pub fn call(&self, kind: &'static str) {
        self.count(kind, |c| c.calls += 1);
    }

    pub fn failed(&self, kind: &'static str) {
        self.count(kind, |c| c.failed += 1);
    }

    pub fn error(&self, kind: &'static str, err: &ClientError) {
        let code = match err {
            ClientError::Rpc(status) => format!("{:?}", status.code()),
            ClientError::Local(_) => "Local".to_owned(),
        };
        let key = format!("{kind} {code}");
        for map in [&self.errors, &self.recent] {
            *map.lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(key.clone())
                .or_default() += 1;
        }
        let mut text = err.to_string();
        text.truncate(300);
        self.samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, text);
    }

    /// An acknowledged write: `entry` holds its kind and ids.
    pub fn acked(&self, kind: &'static str, mut entry: Value) {
        entry["kind"] = json!(kind);
        entry["at_s"] = json!(self.started.elapsed().as_secs_f64());
        let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        // Written through at once: the checker must see every acknowledgement.
        let _ = writeln!(lines, "{entry}").and_then(|()| lines.flush());
        drop(lines);
        self.count(kind, |c| c.acked += 1);
    }

    /// Seconds since the ledger began (the time base of the writes' `at_s`).
    pub fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    pub fn counts(&self) -> BTreeMap<&'static str, Counts> {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// One progress line: acknowledged so far per kind, and the errors since the last line.
    pub fn progress(&self, in_flight: usize) -> String {
        let counts = self.counts();
        let acked: Vec<String> = counts
            .iter()
            .map(|(kind, c)| format!("{kind} {}", c.acked))
            .collect();
        let recent = std::mem::take(&mut *self.recent.lock().unwrap_or_else(|e| e.into_inner()));
        let errors: Vec<String> = recent.iter().map(|(k, n)| format!("{k} x{n}")).collect();
        format!(
            "faults load t={:>4.0}s acked: {} | in flight {in_flight} | errors: {}",
            self.started.elapsed().as_secs_f64(),
            acked.join(", "),
            if errors.is_empty() {
                "none".to_owned()
            } else {
                errors.join(", ")
            }
        )
    }

    /// Writes the summary JSON the checker reads: every acknowledged write and the counts.
    pub fn finish(&self, elapsed: Duration, extra: Value) -> anyhow::Result<()> {
        self.lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .flush()?;
        let writes: Vec<Value> = std::fs::read_to_string(self.path.with_extension("jsonl"))?
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let counts: serde_json::Map<String, Value> = self
            .counts()
            .into_iter()
            .map(|(kind, c)| {
                (
                    kind.to_owned(),
                    json!({
                        "started": c.started,
                        "calls": c.calls,
                        "acked": c.acked,
                        "failed": c.failed,
                        "skipped": c.skipped,
                    }),
                )
            })
            .collect();
        let errors = self
            .errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let samples = self
            .samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let summary = json!({
            "seconds": elapsed.as_secs_f64(),
            "counts": counts,
            "errors": errors,
            "error_samples": samples,
            "setup": extra,
            "writes": writes,
        });
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&summary)?)?;
        std::fs::rename(&tmp, &self.path)?;
        Ok(())
    }
}
