//! Throwaway TLS certificates for tests, made with rcgen when a test runs: no certificate
//! or key is ever committed, and every [`TestCerts`] is a new authority.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType};
use std::path::{Path, PathBuf};

/// A certificate authority and a server certificate it signed, as PEM text and as files in
/// a temporary directory that is removed on drop.
///
/// The server certificate is for `127.0.0.1`, `::1` and `localhost`. It names `127.0.0.1`
/// both as an IP address and as a DNS name, because mbedTLS 2.28 (behind Debian's nngcat)
/// compares a host only with DNS names.
pub struct TestCerts {
    /// The authority's certificate: what a verifying peer trusts.
    pub ca_pem: String,
    /// The server's certificate.
    pub cert_pem: String,
    /// The server certificate's private key (PKCS#8).
    pub key_pem: String,
    dir: tempfile::TempDir,
}

impl TestCerts {
    /// Makes a new authority and server certificate and writes `ca.pem`, `cert.pem` and
    /// `key.pem`.
    pub fn new() -> TestCerts {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, "ferry test CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = ca.self_signed(&ca_key).expect("self-signed CA");

        let key = KeyPair::generate().expect("server key");
        let names = ["127.0.0.1", "::1", "localhost"].map(str::to_string);
        let mut params = CertificateParams::new(names).expect("server params");
        params.subject_alt_names.push(SanType::DnsName("127.0.0.1".try_into().expect("IA5 name")));
        params.distinguished_name.push(DnType::CommonName, "127.0.0.1");
        let cert = params.signed_by(&key, &ca, &ca_key).expect("server certificate");

        let dir = tempfile::Builder::new().prefix("ferry-tls").tempdir().expect("temp dir");
        let certs = TestCerts { ca_pem: ca.pem(), cert_pem: cert.pem(), key_pem: key.serialize_pem(), dir };
        for (name, text) in [("ca.pem", &certs.ca_pem), ("cert.pem", &certs.cert_pem), ("key.pem", &certs.key_pem)] {
            std::fs::write(certs.dir.path().join(name), text).expect("write PEM file");
        }
        certs
    }

    /// The authority's certificate file.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The server certificate file.
    pub fn cert_file(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// The server key file.
    pub fn key_file(&self) -> PathBuf {
        self.dir.path().join("key.pem")
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Default for TestCerts {
    fn default() -> Self {
        TestCerts::new()
    }
}
