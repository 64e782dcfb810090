//! A blocking API for programs without an async runtime. Each call runs the async
//! operation to completion on a small runtime that ferry-sp starts the first time it is
//! needed; the sockets are the same as the async ones.
//!
//! ```
//! use ferry_sp::blocking::Socket;
//! use ferry_sp::Protocol;
//!
//! let pull = Socket::new(Protocol::Pull)?;
//! pull.listen("inproc://blocking-doc")?;
//! let push = Socket::new(Protocol::Push)?;
//! push.dial("inproc://blocking-doc")?;
//! push.send("work")?;
//! assert_eq!(&pull.recv()?.body[..], b"work");
//! # Ok::<(), ferry_sp::Error>(())
//! ```
//!
//! Do not call these from inside an async task: they block the thread.

use crate::{Dialer, Listener, Message, Options, Protocol, Result, SockOpt};
use std::future::Future;
use std::sync::OnceLock;
use tokio::runtime::Runtime;

fn runtime() -> Result<&'static Runtime> {
    static RT: OnceLock<Runtime> = OnceLock::new();
    if let Some(rt) = RT.get() {
        return Ok(rt);
    }
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name("ferry-sp").enable_all().build()?;
    Ok(RT.get_or_init(|| rt))
}

fn run<F: Future>(f: F) -> Result<F::Output> {
    Ok(runtime()?.block_on(f))
}

/// A blocking [`crate::Socket`]. Clones are the same socket.
#[derive(Clone, Debug)]
pub struct Socket(crate::Socket);

impl Socket {
    /// Opens a socket; see [`crate::Socket::new`].
    pub fn new(protocol: Protocol) -> Result<Socket> {
        let _guard = runtime()?.enter();
        Ok(Socket(crate::Socket::new(protocol)?))
    }

    /// Listens on `url`; see [`crate::Socket::listen`].
    pub fn listen(&self, url: &str) -> Result<Listener> {
        run(self.0.listen(url))?
    }

    /// Dials `url` and waits for the connection; see [`crate::Socket::dial`].
    pub fn dial(&self, url: &str) -> Result<Dialer> {
        run(self.0.dial(url))?
    }

    /// Dials `url` in the background; see [`crate::Socket::dial_in_background`].
    pub fn dial_in_background(&self, url: &str) -> Result<Dialer> {
        run(self.0.dial_in_background(url))?
    }

    /// Sends, blocking up to `send-timeout`.
    pub fn send(&self, msg: impl Into<Message>) -> Result<()> {
        run(self.0.send(msg))?
    }

    /// Receives, blocking up to `recv-timeout`.
    pub fn recv(&self) -> Result<Message> {
        run(self.0.recv())?
    }

    /// Opens a context; see [`crate::Socket::context`].
    pub fn context(&self) -> Result<Context> {
        Ok(Context(self.0.context()?))
    }

    /// Sets an option.
    pub fn set(&self, opt: SockOpt) -> Result<()> {
        self.0.set(opt)
    }

    /// The generic options.
    pub fn options(&self) -> Options {
        self.0.options()
    }

    /// A snapshot of the socket's counters; see [`crate::Socket::stats`]. (Pipe events are
    /// async: [`crate::Socket::pipe_events`] on [`Socket::as_async`].)
    pub fn stats(&self) -> crate::SocketStats {
        self.0.stats()
    }

    /// Closes the socket.
    pub fn close(&self) {
        self.0.close()
    }

    /// The async socket underneath.
    pub fn as_async(&self) -> &crate::Socket {
        &self.0
    }
}

/// A blocking [`crate::Context`].
#[derive(Debug)]
pub struct Context(crate::Context);

impl Context {
    /// Sends on this context.
    pub fn send(&self, msg: impl Into<Message>) -> Result<()> {
        run(self.0.send(msg))?
    }

    /// Receives on this context.
    pub fn recv(&self) -> Result<Message> {
        run(self.0.recv())?
    }
}
