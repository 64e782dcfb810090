//! `ferry log inspect <dir>`: a table (or JSON) of what [`ferry_log::inspect`] finds.

use anyhow::Context as _;
use ferry_log::{Damage, IndexStatus, Inspection, SegmentReport};
use serde_json::json;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

#[derive(clap::Args)]
pub(crate) struct InspectArgs {
    /// The log directory.
    dir: PathBuf,
    /// The largest record the log accepts; a length field above it counts as damage.
    #[arg(long, default_value_t = 16 << 20)]
    max_record_size: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: &InspectArgs) -> anyhow::Result<ExitCode> {
    if !args.dir.is_dir() {
        anyhow::bail!("{} is not a directory", args.dir.display());
    }
    let inspection = ferry_log::inspect(&args.dir, args.max_record_size)
        .with_context(|| format!("inspecting {}", args.dir.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&to_json(&inspection))?);
    } else {
        print!("{}", table(&args.dir, &inspection));
    }
    Ok(if inspection.is_corrupt() { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn time(millis: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(millis)).to_string()
}

fn name(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

fn seq_range(s: &SegmentReport) -> String {
    match s.records {
        0 => "-".to_string(),
        n => format!("{}..={}", s.base, s.base + n - 1),
    }
}

fn index_label(status: IndexStatus) -> &'static str {
    match status {
        IndexStatus::Valid => "valid",
        IndexStatus::Missing => "missing (rebuilt at next open)",
        IndexStatus::Stale => "stale (rebuilt at next open)",
    }
}

fn damage_line(d: &Damage) -> String {
    let what = if d.torn_tail { "torn tail, cut at the next open" } else { "CORRUPT" };
    format!("{} at byte {}: {} ({what})", name(&d.segment), d.offset, d.reason)
}

fn table(dir: &Path, inspection: &Inspection) -> String {
    let mut out = String::new();
    let segs = &inspection.segments;
    let _ = writeln!(out, "log {}: {} segments, {} records", dir.display(), segs.len(), inspection.records());
    if !segs.is_empty() {
        let _ = writeln!(
            out,
            "{:<26} {:>12} {:>9} {:<24} {:<24} {:<24} index",
            "segment", "bytes", "records", "sequence numbers", "first time", "last time"
        );
        for s in segs {
            let (first, last) = s.timestamps.map_or(("-".into(), "-".into()), |(a, b)| (time(a), time(b)));
            let _ = writeln!(
                out,
                "{:<26} {:>12} {:>9} {:<24} {:<24} {:<24} {}",
                name(&s.path),
                s.bytes,
                s.records,
                seq_range(s),
                first,
                last,
                index_label(s.index)
            );
        }
    }
    if inspection.damage.is_empty() {
        let _ = writeln!(out, "no damage");
    } else {
        let _ = writeln!(out, "damage:");
        for d in &inspection.damage {
            let _ = writeln!(out, "  {}", damage_line(d));
        }
    }
    out
}

fn to_json(inspection: &Inspection) -> serde_json::Value {
    json!({
        "records": inspection.records(),
        "corrupt": inspection.is_corrupt(),
        "segments": inspection.segments.iter().map(|s| json!({
            "base": s.base,
            "path": s.path,
            "bytes": s.bytes,
            "records": s.records,
            "first_timestamp_ms": s.timestamps.map(|t| t.0),
            "last_timestamp_ms": s.timestamps.map(|t| t.1),
            "index": match s.index {
                IndexStatus::Valid => "valid",
                IndexStatus::Missing => "missing",
                IndexStatus::Stale => "stale",
            },
        })).collect::<Vec<_>>(),
        "damage": inspection.damage.iter().map(|d| json!({
            "segment": d.segment,
            "offset": d.offset,
            "reason": d.reason,
            "torn_tail": d.torn_tail,
        })).collect::<Vec<_>>(),
    })
}
