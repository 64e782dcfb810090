//! What every socket shares: closing, receive timeouts, option values and their checks.

mod common;

use common::{assert_err, connected, recv_text, send, socket, spawn_on, within, QUIET, TCP};
use ferry_sp::{Error, Pem, Protocol, SockOpt, Socket, TlsAuthMode};
use std::time::Duration;

/// The protocols that can receive without sending first.
const RECEIVERS: [Protocol; 7] = [
    Protocol::Pair0,
    Protocol::Pair1,
    Protocol::Sub,
    Protocol::Pull,
    Protocol::Rep,
    Protocol::Respondent,
    Protocol::Bus,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_socket_refuses_everything() {
    for proto in Protocol::ALL {
        let s = socket(proto);
        s.close();
        assert_err!(s.send("x").await, Error::Closed);
        assert_err!(s.recv().await, Error::Closed);
        assert_err!(s.listen(TCP).await, Error::Closed);
        assert_err!(s.dial("tcp://127.0.0.1:1").await, Error::Closed);
        assert_err!(s.context(), Error::Closed);
    }
}

/// Starts `op` on `s`, closes `s`, and checks that `op` ends with [`Error::Closed`].
async fn verify_close_wakes<T, F, Fut>(s: &Socket, op: F)
where
    T: std::fmt::Debug + Send + 'static,
    F: FnOnce(Socket) -> Fut,
    Fut: std::future::Future<Output = ferry_sp::Result<T>> + Send + 'static,
{
    let waiting = spawn_on(s, op);
    s.close();
    assert_err!(within("the operation woken by close", waiting).await.unwrap(), Error::Closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_wakes_a_waiting_receive() {
    for proto in RECEIVERS {
        verify_close_wakes(&Socket::new(proto).unwrap(), |s| async move { s.recv().await }).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_wakes_a_waiting_send_and_a_waiting_request() {
    let push = Socket::new(Protocol::Push).unwrap();
    verify_close_wakes(&push, |push| async move { push.send("nobody takes this").await }).await;

    let (rep, req) = connected(Protocol::Rep, Protocol::Req).await;
    send(&req, "never answered").await;
    assert_eq!(recv_text(&rep).await, "never answered");
    verify_close_wakes(&req, |req| async move { req.recv().await }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_last_handle_closes_the_socket() {
    let (pull, push) = connected(Protocol::Pull, Protocol::Push).await;
    drop(push);
    common::until("the pull side sees the pipe go", || pull.pipe_count() == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receive_with_nothing_to_receive_times_out() {
    for proto in RECEIVERS {
        let s = socket(proto);
        s.set(SockOpt::RecvTimeout(Some(QUIET))).unwrap();
        assert_err!(s.recv().await, Error::Timeout);
    }
}

#[test]
fn defaults_follow_nng() {
    let defaults = |p| Socket::new(p).unwrap().options();
    let req = defaults(Protocol::Req);
    assert_eq!((req.recv_timeout, req.send_timeout), (None, None));
    assert_eq!(req.req_resend_time, Some(Duration::from_secs(60)));
    assert_eq!(req.ttl_max, 8);
    assert_eq!(req.recv_size_max, 1 << 30);
    assert_eq!(defaults(Protocol::Surveyor).survey_time, Duration::from_secs(1));
    assert_eq!(defaults(Protocol::Pub).send_buffer, 16);
    assert_eq!(defaults(Protocol::Sub).recv_buffer, 128);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_read_back_and_out_of_range_values_are_refused() {
    let s = socket(Protocol::Req);
    s.set(SockOpt::SendTimeout(Some(Duration::from_millis(250)))).unwrap();
    s.set(SockOpt::TtlMax(15)).unwrap();
    s.set(SockOpt::RecvSizeMax(0)).unwrap();
    s.set(SockOpt::ReqResendTime(None)).unwrap();
    let o = s.options();
    assert_eq!(o.send_timeout, Some(Duration::from_millis(250)));
    assert_eq!((o.ttl_max, o.recv_size_max, o.req_resend_time), (15, 0, None));

    for bad in [
        SockOpt::TtlMax(0),
        SockOpt::TtlMax(16),
        SockOpt::SendBuffer(8193),
        SockOpt::RecvBuffer(8193),
        SockOpt::SurveyTime(Duration::ZERO),
        SockOpt::ReqResendTime(Some(Duration::ZERO)),
        SockOpt::Subscribe("only for sub".into()),
    ] {
        assert_err!(s.set(bad), Error::InvalidOption { .. });
    }
    assert_eq!(s.options(), o, "refused values change nothing");
}

#[test]
fn options_parse_from_their_nng_names() {
    assert_eq!(SockOpt::parse("recv-timeout", "-1").unwrap(), SockOpt::RecvTimeout(None));
    assert_eq!(
        SockOpt::parse("req:resend-time", "1500").unwrap(),
        SockOpt::ReqResendTime(Some(Duration::from_millis(1500)))
    );
    assert_eq!(SockOpt::parse("sub:subscribe", "news").unwrap(), SockOpt::Subscribe("news".into()));
    assert_eq!(SockOpt::parse("ttl-max", "3").unwrap().name(), "ttl-max");
    for (name, value) in [("recv-timeout", "soon"), ("ttl-max", "16"), ("surveyor:survey-time", "-1"), ("no-such", "1")]
    {
        assert_err!(SockOpt::parse(name, value), Error::InvalidOption { .. });
    }
}

#[test]
fn tls_options_parse_from_their_nng_names_and_land_in_options() {
    let file = || Pem::File("/etc/ferry/node.pem".into());
    let both = SockOpt::parse("tls-cert-key-file", "/etc/ferry/node.pem").unwrap();
    assert_eq!(both, SockOpt::TlsCertKey { cert: file(), key: file() });
    assert_eq!(SockOpt::parse("tls-ca-file", "/etc/ferry/ca.pem").unwrap().name(), "tls-ca-file");
    assert_eq!(SockOpt::parse("tls-server-name", "broker.lan").unwrap(), SockOpt::TlsServerName("broker.lan".into()));
    for (value, mode) in
        [("none", TlsAuthMode::None), ("1", TlsAuthMode::Optional), ("required", TlsAuthMode::Required)]
    {
        assert_eq!(SockOpt::parse("tls-authmode", value).unwrap(), SockOpt::TlsAuthMode(mode));
    }
    assert_err!(SockOpt::parse("tls-authmode", "maybe"), Error::InvalidOption { name: "tls-authmode", .. });
    assert_err!(SockOpt::parse("tls-server-name", ""), Error::InvalidOption { name: "tls-server-name", .. });

    let s = Socket::new(Protocol::Req).unwrap();
    s.set(both).unwrap();
    s.set(SockOpt::TlsAuthMode(TlsAuthMode::None)).unwrap();
    let tls = s.options().tls;
    assert_eq!((tls.cert, tls.key, tls.auth_mode), (Some(file()), Some(file()), Some(TlsAuthMode::None)));
    // Key material given in memory never shows in debug output.
    let secret = SockOpt::TlsCertKey { cert: Pem::from("CERT"), key: Pem::from("SECRET KEY") };
    assert!(!format!("{secret:?}").contains("SECRET"), "{secret:?}");
}
