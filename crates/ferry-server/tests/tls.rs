//! The HTTP listener with TLS: clients that trust the authority get the API over https,
//! plain-HTTP clients and bad certificate files get nothing.

use ferry_server::config::TlsConfig;
use ferry_server::{Config, Server, ServerError};
use ferry_testkit::TestCerts;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(10);

fn config(data: &std::path::Path, certs: &TestCerts) -> Config {
    let mut c = Config {
        http: "127.0.0.1:0".parse().unwrap(),
        data_dir: data.to_path_buf(),
        tls: Some(TlsConfig { cert_file: certs.cert_file(), key_file: certs.key_file() }),
        ..Config::default()
    };
    c.grpc.listen = "127.0.0.1:0".parse().unwrap();
    c.admin.password = Some("tls-test-password".into());
    c
}

async fn https_get(addr: std::net::SocketAddr, ca_pem: &str, path: &str) -> std::io::Result<String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = TcpStream::connect(addr).await?;
    let mut tls = connector.connect(ServerName::try_from("127.0.0.1").unwrap(), tcp).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    tls.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    tls.read_to_string(&mut response).await?;
    Ok(response)
}

#[tokio::test]
async fn the_api_is_served_over_tls() {
    let certs = TestCerts::new();
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(config(data.path(), &certs)).await.unwrap();
    let addr = server.local_addr();
    assert_eq!(server.url(), format!("https://{addr}"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));

    let response = tokio::time::timeout(WAIT, https_get(addr, &certs.ca_pem, "/healthz")).await.unwrap().unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("ok"), "{response}");
    let response = tokio::time::timeout(WAIT, https_get(addr, &certs.ca_pem, "/v1/queues")).await.unwrap().unwrap();
    assert!(response.starts_with("HTTP/1.1 401"), "{response}");

    // A client that trusts another authority refuses the server.
    let other = TestCerts::new();
    assert!(tokio::time::timeout(WAIT, https_get(addr, &other.ca_pem, "/healthz")).await.unwrap().is_err());

    // Plain HTTP on the TLS port gets no HTTP answer, and the server keeps serving others.
    let mut plain = TcpStream::connect(addr).await.unwrap();
    plain.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(WAIT, plain.read_to_end(&mut buf)).await.unwrap();
    assert!(!buf.starts_with(b"HTTP/1.1 200"));
    let response = tokio::time::timeout(WAIT, https_get(addr, &certs.ca_pem, "/healthz")).await.unwrap().unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    stop.send(()).unwrap();
    tokio::time::timeout(WAIT, running).await.unwrap().unwrap().unwrap();
}

#[tokio::test]
async fn bad_certificate_files_stop_startup_naming_the_key() {
    let certs = TestCerts::new();
    let data = tempfile::tempdir().unwrap();
    let mut c = config(data.path(), &certs);
    c.tls.as_mut().unwrap().key_file = certs.dir().join("missing.pem");
    let err = Server::start(c).await.err().expect("a missing key file is refused");
    assert!(matches!(&err, ServerError::Config(_)), "{err}");
    assert!(err.to_string().contains("tls.key_file"), "{err}");

    let mut c = config(data.path(), &certs);
    c.tls.as_mut().unwrap().cert_file = certs.key_file(); // a key is not a certificate
    let err = Server::start(c).await.err().expect("a key as certificate is refused");
    assert!(err.to_string().contains("tls.cert_file"), "{err}");

    let mut c = config(data.path(), &certs);
    c.tls = Some(TlsConfig { cert_file: certs.cert_file(), key_file: "".into() });
    let err = Server::start(c).await.err().expect("an empty key path is refused");
    assert!(err.to_string().contains("tls.key_file"), "{err}");
}
