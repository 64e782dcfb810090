//! What the disk benchmarks (`bench log`, `bench broker`) share: run lengths, fresh
//! directories on a flushed system, closed-loop rates and medians.

use anyhow::Context as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Seconds per measurement and rounds: `--quick` is one short round; otherwise 1 s and 3
/// rounds unless asked.
pub(crate) fn timing(quick: bool, duration: Option<Duration>, rounds: Option<u32>) -> (Duration, u32) {
    if quick {
        (Duration::from_millis(100), 1)
    } else {
        (duration.unwrap_or(Duration::from_secs(1)), rounds.unwrap_or(3))
    }
}

pub(crate) fn median(v: &[f64]) -> f64 {
    percentile(v, 0.5)
}

pub(crate) fn percentile(v: &[f64], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// A fresh directory under `dir`, after flushing the whole system's dirty data. Without the
/// flush, the writeback and journal work left by the previous run (hundreds of megabytes
/// written and deleted) lands on the next one's fdatasyncs, and a raw rate measured after a
/// big log run drops tenfold.
pub(crate) fn scratch(dir: &Path, what: &str) -> anyhow::Result<tempfile::TempDir> {
    let _ = std::process::Command::new("sync").status();
    tempfile::Builder::new()
        .prefix(&format!("ferry-bench-{what}-"))
        .tempdir_in(dir)
        .with_context(|| format!("creating a directory in {}", dir.display()))
}

/// Runs `tasks` copies of `step` in a closed loop for a warm-up of a fifth of `duration`,
/// then `duration`; returns the completions per second within the timed window.
pub(crate) async fn closed_loop_rate<F, Fut>(tasks: u32, duration: Duration, step: F) -> anyhow::Result<f64>
where
    F: Fn(u32) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let step = Arc::new(step);
    let start = Instant::now();
    let (warm_end, end) = (start + duration / 5, start + duration / 5 + duration);
    let counted = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::new();
    for t in 0..tasks {
        let (step, counted) = (step.clone(), counted.clone());
        handles.push(tokio::spawn(async move {
            loop {
                step(t).await?;
                let now = Instant::now();
                if now >= end {
                    return anyhow::Ok(());
                }
                if now >= warm_end {
                    counted.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for h in handles {
        h.await.context("benchmark task failed")??;
    }
    Ok(counted.load(Ordering::Relaxed) as f64 / duration.as_secs_f64())
}
