//! tls+tcp://: every case of the [`interop`] table against nngcat with `--cert`, `--key`
//! and `--cacert`, then ferry against ferry: verification, its refusals, and what a
//! listener survives. Certificates are made when the tests run ([`TestCerts`]).
#![cfg(feature = "transport-tls")]

mod common;
mod interop;

use common::{assert_err, connect_at, listen, recv_text, round_trip, send, socket, until, use_certs, within};
use ferry_sp::{Error, Pem, Protocol, SockOpt, Socket, TlsAuthMode};
use ferry_testkit::TestCerts;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

interop::nngcat_matrix!(tls: Tls);

/// Loopback tls+tcp on a port the system chooses.
const TLS: &str = "tls+tcp://127.0.0.1:0";

/// A REQ that trusts `certs`' authority and shows no certificate of its own.
fn trusting_req(certs: &TestCerts) -> Socket {
    let req = socket(Protocol::Req);
    req.set(SockOpt::TlsCa(Pem::File(certs.ca_file()))).unwrap();
    req
}

/// A REP listening with `certs`' server certificate; returns it and its URL.
async fn rep_listening(certs: &TestCerts) -> (Socket, String) {
    let rep = socket(Protocol::Rep);
    use_certs(&rep, certs);
    let url = listen(&rep, TLS).await;
    (rep, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ferry_to_ferry_over_tls_tcp() {
    let certs = TestCerts::new();
    let (rep, req) = (socket(Protocol::Rep), trusting_req(&certs));
    use_certs(&rep, &certs);
    let url = connect_at(&rep, &req, TLS).await;
    assert!(url.starts_with("tls+tcp://127.0.0.1:") && !url.ends_with(":0"), "{url}");
    round_trip(&req, &rep).await;
    let big = "0123456789abcdef".repeat(64 * 1024); // 1 MiB, many TLS records
    send(&req, big.clone()).await;
    assert_eq!(recv_text(&rep).await, big);
}

/// A dialer that cannot verify the listener gets an error from `dial`; the listener drops
/// only that connection and goes on serving dialers that can.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dialer_with_the_wrong_ca_fails_and_the_listener_survives() {
    let (right, wrong) = (TestCerts::new(), TestCerts::new());
    let (rep, url) = rep_listening(&right).await;

    let strangers = trusting_req(&wrong);
    match strangers.dial(&url).await {
        Err(Error::Io(e)) => assert!(e.to_string().contains("certificate"), "unexpected TLS error: {e}"),
        other => panic!("dialing with the wrong CA: expected a certificate error, got {other:?}"),
    }
    let misnamed = trusting_req(&right);
    misnamed.set(SockOpt::TlsServerName("elsewhere.example".into())).unwrap();
    assert_err!(misnamed.dial(&url).await, Error::Io(_));
    // Plain SP over TCP to a TLS listener: the listener ends that connection (after a TLS
    // alert), nothing else happens.
    let mut plain = tokio::net::TcpStream::connect(url.trim_start_matches("tls+tcp://")).await.expect("connect");
    plain.write_all(&common::header(Protocol::Req.id())).await.expect("write");
    within("the listener closes the plain connection", plain.read_to_end(&mut Vec::new())).await.ok();
    assert_eq!(rep.pipe_count(), 0);

    let req = trusting_req(&right);
    common::dial(&rep, &req, &url).await;
    round_trip(&req, &rep).await;
    let by_name = trusting_req(&right);
    by_name.set(SockOpt::TlsServerName("localhost".into())).unwrap();
    common::dial(&rep, &by_name, &url).await;
}

/// `tls-authmode none` on a dialer (nngcat's `--insecure`) connects without a CA; without
/// that or a CA, a dialer refuses to start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dialer_skips_verification_only_when_told_to() {
    let certs = TestCerts::new();
    let (rep, url) = rep_listening(&certs).await;
    assert_err!(socket(Protocol::Req).dial(&url).await, Error::InvalidOption { name: "tls-ca-file", .. });

    let insecure = socket(Protocol::Req);
    insecure.set(SockOpt::TlsAuthMode(TlsAuthMode::None)).unwrap();
    common::dial(&rep, &insecure, &url).await;
    round_trip(&insecure, &rep).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_needs_a_certificate() {
    let rep = socket(Protocol::Rep);
    assert_err!(rep.listen(TLS).await, Error::InvalidOption { name: "tls-cert-key-file", .. });
    let certs = TestCerts::new();
    let mismatched = TestCerts::new();
    let (cert, key) = (Pem::File(certs.cert_file()), Pem::File(mismatched.key_file()));
    rep.set(SockOpt::TlsCertKey { cert, key }).unwrap();
    assert_err!(rep.listen(TLS).await, Error::InvalidOption { name: "tls-cert-key-file", .. });
}

/// With `tls-authmode required` a listener admits only dialers whose own certificate
/// chains to its CA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_requiring_client_certificates_admits_only_dialers_with_one() {
    let certs = TestCerts::new();
    let (rep, url) = {
        let rep = socket(Protocol::Rep);
        use_certs(&rep, &certs);
        rep.set(SockOpt::TlsAuthMode(TlsAuthMode::Required)).unwrap();
        let url = listen(&rep, TLS).await;
        (rep, url)
    };
    // TLS 1.3 clients finish their handshake before the listener judges their certificate,
    // so the refusal may come with the SP header exchange: either way, no pipe.
    let anonymous = trusting_req(&certs);
    assert!(anonymous.dial(&url).await.is_err(), "a dialer without a certificate got in");

    let known = socket(Protocol::Req);
    use_certs(&known, &certs);
    common::dial(&rep, &known, &url).await;
    round_trip(&known, &rep).await;
    until("only the known dialer's pipe", || rep.pipe_count() == 1).await;
}
