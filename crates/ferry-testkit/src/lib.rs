//! Helpers for ferry's integration tests. Every process a test starts is a [`Proc`], which
//! kills it on drop, and every wait here is bounded, so a failing test cannot leave a peer
//! running or hang the suite. [`TestCerts`] makes the TLS certificates tests need.

mod certs;

pub use certs::TestCerts;

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The path of `nngcat` (Debian package `nng-utils`), or a panic that says how to get it.
pub fn nngcat() -> PathBuf {
    which("nngcat").unwrap_or_else(|| {
        panic!("nngcat not found on PATH: the interop tests need it. Install it with `apt-get install nng-utils` (or run `bash .ci/run`).")
    })
}

/// Looks a program up on `PATH`.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(program)).find(|p| p.is_file())
}

/// A loopback TCP port that was free a moment ago, for peers that cannot listen on port 0
/// and report the port back (nngcat).
pub fn free_port() -> u16 {
    // Never the same port twice in one test process, so that parallel tests cannot end up
    // sharing one when the system hands a freed port out again.
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = l.local_addr().expect("local addr").port();
        let mut given = GIVEN.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// A `tcp://127.0.0.1:PORT` URL on a free port.
pub fn tcp_url() -> String {
    format!("tcp://127.0.0.1:{}", free_port())
}

/// A temporary directory for IPC socket files; removed on drop.
pub struct IpcDir(tempfile::TempDir);

impl IpcDir {
    /// Creates the directory.
    pub fn new() -> IpcDir {
        IpcDir(tempfile::Builder::new().prefix("ferry-ipc").tempdir().expect("temp dir"))
    }

    /// `ipc://<dir>/<name>`.
    pub fn url(&self, name: &str) -> String {
        format!("ipc://{}", self.0.path().join(name).display())
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Default for IpcDir {
    fn default() -> Self {
        IpcDir::new()
    }
}

/// What a finished process printed.
#[derive(Debug)]
pub struct Output {
    /// Exit status; `None` if the process had to be killed at the deadline.
    pub status: Option<ExitStatus>,
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded.
    pub stderr: String,
}

impl Output {
    /// Standard output split into lines.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    /// Whether the process exited by itself with status 0.
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
}

/// A child process that is killed when dropped. Its output is collected on background
/// threads so that a chatty child never blocks on a full pipe.
pub struct Proc {
    child: Child,
    name: String,
    stdout: Option<thread::JoinHandle<Vec<u8>>>,
    stderr: Option<thread::JoinHandle<Vec<u8>>>,
}

impl Proc {
    /// Starts `program` with `args`, stdin closed, stdout and stderr captured.
    pub fn spawn(program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Proc {
        let mut cmd = Command::new(program.as_ref());
        cmd.args(args);
        Proc::spawn_cmd(cmd)
    }

    /// Starts a prepared command, with stdin closed and output captured.
    pub fn spawn_cmd(mut cmd: Command) -> Proc {
        let name = format!("{cmd:?}");
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let stdout = child.stdout.take().map(|mut s| {
            thread::spawn(move || {
                let mut v = Vec::new();
                let _ = s.read_to_end(&mut v);
                v
            })
        });
        let stderr = child.stderr.take().map(|mut s| {
            thread::spawn(move || {
                let mut v = Vec::new();
                let _ = s.read_to_end(&mut v);
                v
            })
        });
        Proc { child, name, stdout, stderr }
    }

    /// Starts nngcat with `args`.
    pub fn nngcat(args: &[&str]) -> Proc {
        Proc::spawn(nngcat(), args)
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits up to `limit` for the process to exit; kills it if it has not, then collects
    /// its output.
    pub fn wait(mut self, limit: Duration) -> Output {
        let deadline = Instant::now() + limit;
        let mut status = None;
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(s)) => {
                    status = Some(s);
                    break;
                }
                Ok(None) => thread::sleep(Duration::from_millis(10)),
                Err(_) => break,
            }
        }
        if status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let stdout = self.stdout.take().and_then(|h| h.join().ok()).unwrap_or_default();
        let stderr = self.stderr.take().and_then(|h| h.join().ok()).unwrap_or_default();
        Output {
            status,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }

    /// Kills the process now and collects its output.
    pub fn kill(mut self) -> Output {
        let _ = self.child.kill();
        self.wait(Duration::from_secs(5))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl std::fmt::Debug for Proc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proc").field("name", &self.name).field("pid", &self.child.id()).finish()
    }
}

/// Polls `cond` every 10 ms until it holds or `limit` passes; returns whether it held.
pub fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until something accepts TCP connections on `127.0.0.1:port`, up to `limit`.
/// Connecting and closing at once is harmless to an SP listener (the handshake fails).
pub fn wait_for_tcp(port: u16, limit: Duration) -> bool {
    eventually(limit, || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok())
}

/// Waits until the IPC socket file at `url` (`ipc://path`) exists, up to `limit`.
pub fn wait_for_ipc(url: &str, limit: Duration) -> bool {
    let path = url.trim_start_matches("ipc://").to_string();
    eventually(limit, || Path::new(&path).exists())
}

/// A child process whose standard output arrives line by line on a channel while it runs,
/// for tests that must react to what it prints (a server's address, a crash victim's
/// acknowledgements). It is killed (SIGKILL) when dropped.
pub struct LineChild {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    reader: Option<thread::JoinHandle<()>>,
}

impl LineChild {
    /// Starts a second copy of the running test binary that runs one `#[ignore]`d test
    /// (`--ignored --exact <test>`) with `env` added: how a crash test starts its victim.
    pub fn self_test(test: &str, env: &[(&str, &std::ffi::OsStr)]) -> LineChild {
        let exe = std::env::current_exe().expect("the test binary's path");
        let mut cmd = Command::new(exe);
        cmd.args(["--ignored", "--exact", test, "--nocapture", "--test-threads=1"]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        LineChild::spawn(cmd)
    }

    /// Starts `cmd` with stdin closed, stdout read line by line and stderr discarded.
    pub fn spawn(mut cmd: Command) -> LineChild {
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null());
        let name = format!("{cmd:?}");
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        let reader = thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        LineChild { child, lines, reader: Some(reader) }
    }

    /// The process id, for sending it signals.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Waits (at most `timeout`) for the process to exit by itself; `None` if it did not.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// Waits (at most `timeout`) for a line containing `marker`; returns the lines before
    /// it, or an error saying why it never came.
    pub fn wait_for(&self, marker: &str, timeout: Duration) -> Result<Vec<String>, String> {
        let deadline = Instant::now() + timeout;
        let mut before = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                // libtest may print its own "test name ... " in front of the first line.
                Ok(line) if line.contains(marker) => return Ok(before),
                Ok(line) => before.push(line),
                Err(e) => return Err(format!("no line with {marker:?}: {e:?}")),
            }
        }
    }

    /// Kills the process with SIGKILL, waits for it, and returns every line it printed
    /// that was not read yet.
    pub fn kill(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        self.lines.try_iter().collect()
    }
}

impl Drop for LineChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
