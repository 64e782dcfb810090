//! The blocking API, used the way a program without a runtime uses it: plain threads.

mod common;

use common::{assert_err, text, QUIET, WAIT};
use ferry_sp::blocking::Socket;
use ferry_sp::{Error, Protocol, SockOpt};
use std::thread;

fn socket(protocol: Protocol) -> Socket {
    let s = Socket::new(protocol).unwrap();
    s.set(SockOpt::RecvTimeout(Some(WAIT))).unwrap();
    s.set(SockOpt::SendTimeout(Some(WAIT))).unwrap();
    s
}

#[test]
fn blocking_request_and_reply_across_threads() {
    let rep = socket(Protocol::Rep);
    let url = rep.listen("tcp://127.0.0.1:0").unwrap().url().to_string();
    let server = thread::spawn(move || -> ferry_sp::Result<Socket> {
        for _ in 0..3 {
            let m = rep.recv()?;
            rep.send(format!("echo {}", text(&m)))?;
        }
        // Handed back rather than dropped: closing a socket discards the replies it has
        // not written yet, and the last one may still be queued.
        Ok(rep)
    });

    let req = socket(Protocol::Req);
    req.dial(&url).unwrap();
    for i in 0..2 {
        req.send(format!("plain {i}")).unwrap();
        assert_eq!(text(&req.recv().unwrap()), format!("echo plain {i}"));
    }
    let ctx = req.context().unwrap();
    ctx.send("from a context").unwrap();
    assert_eq!(text(&ctx.recv().unwrap()), "echo from a context");
    server.join().unwrap().unwrap();
}

#[test]
fn blocking_timeouts_and_close() {
    let pull = socket(Protocol::Pull);
    pull.set(SockOpt::RecvTimeout(Some(QUIET))).unwrap();
    assert_err!(pull.recv(), Error::Timeout);
    assert_eq!(pull.options().recv_timeout, Some(QUIET));

    let push = socket(Protocol::Push);
    push.set(SockOpt::SendTimeout(Some(QUIET))).unwrap();
    assert_err!(push.send("nobody"), Error::Timeout);

    pull.close();
    assert_err!(pull.recv(), Error::Closed);
    assert_err!(pull.listen("inproc://blocking-closed"), Error::Closed);
}

#[test]
fn blocking_background_dial() {
    let pull = socket(Protocol::Pull);
    let url = pull.listen("tcp://127.0.0.1:0").unwrap().url().to_string();
    let push = socket(Protocol::Push);
    push.dial_in_background(&url).unwrap();
    push.send("through the background dialer").unwrap();
    assert_eq!(text(&pull.recv().unwrap()), "through the background dialer");
    // The async socket underneath is the same socket.
    assert_eq!(pull.as_async().pipe_count(), 1);
}
