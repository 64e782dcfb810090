//! The libnng column: `bench/nng_bench.c`, embedded in this binary, compiled at run time
//! with the system C compiler against libnng (Debian: libnng-dev) and run once per
//! measurement, so that the ferry binary itself stays pure Rust. Without a compiler or
//! libnng the column is left out with a note saying what to install.
//!
//! libnng 1.5.2 can deadlock while closing sockets, so the program prints its result
//! before it closes anything and leaves with `_exit`; should it hang all the same, it is
//! killed by its PID once the result is in or the measurement's time is up.

use super::report::Throughput;
use super::{Plan, Site, Stop, Task, Transport};
use anyhow::Context as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::time::Instant;

const SOURCE: &str = include_str!("../../bench/nng_bench.c");
const INSTALL: &str = "apt-get install libnng-dev gcc";
/// How long the program may take to exit after printing its result.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// The compiled benchmark program.
pub(crate) struct Nng {
    exe: PathBuf,
}

/// Compiles the C program into `dir`. The error is the note to show: why the libnng
/// column is left out and what to install.
pub(crate) fn prepare(dir: &Path) -> Result<Nng, String> {
    let src = dir.join("nng_bench.c");
    let exe = dir.join("nng_bench");
    std::fs::write(&src, SOURCE).map_err(|e| format!("libnng column left out: cannot write {}: {e}", src.display()))?;
    let output = std::process::Command::new("cc")
        .args(["-O2", "-pthread", "-o"])
        .arg(&exe)
        .arg(&src)
        .arg("-lnng")
        .stdin(Stdio::null())
        .output();
    match output {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
            "libnng column left out: no C compiler (`cc`) to build the libnng benchmark; install one and \
             libnng with `{INSTALL}`"
        )),
        Err(e) => Err(format!("libnng column left out: running `cc` failed: {e}")),
        Ok(o) if !o.status.success() => {
            let stderr = String::from_utf8_lossy(&o.stderr);
            let why = stderr
                .lines()
                .find(|l| l.contains("error") || l.contains("cannot find"))
                .or_else(|| stderr.lines().next())
                .unwrap_or("no diagnostics")
                .trim();
            Err(format!(
                "libnng column left out: compiling the libnng benchmark failed (is libnng-dev installed? \
                 `{INSTALL}`): {why}"
            ))
        }
        Ok(_) => Ok(Nng { exe }),
    }
}

impl Nng {
    /// Round-trip times, in nanoseconds, of a libnng REQ/REP pair.
    pub(crate) async fn latency(&self, site: &Site, size: usize, plan: Plan) -> anyhow::Result<Vec<u64>> {
        let result = self.run("lat", site, size, plan).await?;
        let samples = result.strip_prefix("lat").with_context(|| format!("unexpected nng_bench result `{result}`"))?;
        samples
            .split_whitespace()
            .map(|s| s.parse::<u64>().with_context(|| format!("bad sample `{s}` from nng_bench")))
            .collect()
    }

    /// The rate of a libnng PUSH/PULL stream, timed at the receiver.
    pub(crate) async fn throughput(&self, site: &Site, size: usize, plan: Plan) -> anyhow::Result<Throughput> {
        let result = self.run("thr", site, size, plan).await?;
        let numbers: Vec<u64> = result
            .strip_prefix("thr")
            .map(|r| r.split_whitespace().filter_map(|s| s.parse().ok()).collect())
            .unwrap_or_default();
        let [messages, nanos] = numbers[..] else {
            anyhow::bail!("unexpected nng_bench result `{result}`");
        };
        Throughput::new(messages, Duration::from_nanos(nanos), size)
    }

    /// Runs one measurement and returns its result line, without the `result ` prefix.
    async fn run(&self, mode: &str, site: &Site, size: usize, plan: Plan) -> anyhow::Result<String> {
        let url = site.sp_url();
        let (count, millis) = match plan.stop {
            Stop::Count(n) => (n, 0),
            Stop::Duration(d) => (0, d.as_millis().max(1)),
        };
        // The program's own alarm() fires at this; we kill it ourselves a little later.
        let timeout_s = plan.timeout.as_secs_f64().ceil().max(1.0) as u64;
        let args = [
            mode.to_string(),
            url.clone(),
            size.to_string(),
            plan.warmup.to_string(),
            count.to_string(),
            millis.to_string(),
        ];
        let mut cmd = tokio::process::Command::new(&self.exe);
        if let Some(certs) = site.certs.as_ref().filter(|_| site.transport == Transport::Tls) {
            // libnng reads certificate and key from one file.
            let cert_key = certs.dir().join("cert-key.pem");
            if !cert_key.exists() {
                std::fs::write(&cert_key, format!("{}{}", certs.cert_pem, certs.key_pem))
                    .with_context(|| format!("writing {}", cert_key.display()))?;
            }
            cmd.env("NNG_BENCH_CERT_KEY", &cert_key).env("NNG_BENCH_CA", certs.ca_file());
        }
        let mut child = cmd
            .args(&args)
            .arg(timeout_s.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", self.exe.display()))?;
        let pid = child.id().unwrap_or(0);
        let stdout = child.stdout.take().context("nng_bench stdout")?;
        let mut stderr = child.stderr.take().context("nng_bench stderr")?;
        let errors = Task::spawn(async move {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text).await;
            text
        });
        let mut lines = BufReader::new(stdout).lines();
        let deadline = Instant::now() + plan.timeout;
        let mut timed_out = false;
        let result = loop {
            match tokio::time::timeout_at(deadline, lines.next_line()).await {
                Ok(Ok(Some(line))) => {
                    if let Some(r) = line.strip_prefix("result ") {
                        break Some(r.to_string());
                    }
                }
                Ok(Ok(None)) => break None,
                Ok(Err(e)) => return Err(e).context("reading nng_bench output"),
                Err(_) => {
                    timed_out = true;
                    break None;
                }
            }
        };
        let exited = tokio::time::timeout(EXIT_GRACE, child.wait()).await;
        let killed = exited.is_err();
        if killed {
            // Hung, most likely in libnng's close: stop it by its PID.
            child.kill().await.with_context(|| format!("killing nng_bench (pid {pid})"))?;
        }
        if let Some(result) = result {
            return Ok(result);
        }
        let stderr =
            tokio::time::timeout(EXIT_GRACE, errors.join()).await.ok().and_then(Result::ok).unwrap_or_default();
        let why = match stderr.trim() {
            "" if timed_out => format!("no result within {:.3} s", plan.timeout.as_secs_f64()),
            "" if killed => "no result, and it did not exit".to_string(),
            "" => match exited {
                Ok(Ok(status)) => format!("no result ({status})"),
                _ => "no result".to_string(),
            },
            text => text.to_string(),
        };
        anyhow::bail!("nng_bench {} on {url} (pid {pid}): {why}", args.join(" "))
    }
}
