//! TLS for `https://` servers when the built-in roots will not do: `--ca-file` trusts the
//! CA that signed the server's certificate (a `ferry serve --tls-cert` with its own CA), and
//! `--insecure` trusts any certificate, for tests. The configuration is ferry-sp's, so
//! every TLS client in ferry checks certificates the same way.

use super::http::Failure;
use ferry_sp::{Pem, TlsAuthMode, TlsOptions};
use rustls::ClientConfig;
use std::path::Path;
use std::sync::Arc;

/// The client configuration for `--ca-file` or `--insecure`.
pub(crate) fn client_config(ca_file: Option<&Path>, insecure: bool) -> Result<Arc<ClientConfig>, Failure> {
    let mut options = TlsOptions::default();
    options.ca = ca_file.map(|f| Pem::File(f.to_path_buf()));
    options.auth_mode = Some(if insecure { TlsAuthMode::None } else { TlsAuthMode::Required });
    options.client_config().map_err(|e| match ca_file {
        Some(file) => Failure::Usage(format!("--ca-file {}: {e}", file.display())),
        None => Failure::Other(format!("TLS setup: {e}")),
    })
}
