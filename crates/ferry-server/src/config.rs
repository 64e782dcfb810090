//! The server's configuration: defaults, then a TOML file, then `FERRY_*` environment
//! variables, then command-line flags, each overriding the one before. An invalid value
//! stops startup with a message naming its key.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A key has a value that cannot work (or the file is not valid TOML).
    #[error("invalid configuration: {key}: {reason}")]
    Invalid {
        /// The key, as in the file (`http`, `limits.max_body_bytes`) or the variable.
        key: String,
        /// Why.
        reason: String,
    },
}

fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key: key.to_string(), reason: reason.into() }
}

/// Everything `ferry serve` can be told.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the HTTP API listens (`FERRY_HTTP`, `--http`). Port 0 picks a free port.
    pub http: SocketAddr,
    /// The data directory (`FERRY_DATA`, `--data`).
    pub data_dir: PathBuf,
    /// The durability of destinations created without one: `fsync`, `none`, or
    /// `interval:<ms>` (`FERRY_DURABILITY`).
    pub durability: String,
    /// The account created at first start.
    pub admin: AdminConfig,
    /// Tokens.
    pub auth: AuthConfig,
    /// Limits.
    pub limits: Limits,
    /// TLS for the HTTP and gRPC listeners; plain HTTP when unset.
    pub tls: Option<TlsConfig>,
    /// The Prometheus endpoint.
    pub metrics: MetricsConfig,
    /// The MOM-compatible API under `/api/v1.0.0/MomServer`.
    pub mom: MomConfig,
    /// The gRPC API, on a port of its own.
    pub grpc: GrpcConfig,
}

/// The gRPC API: `ferry.v1.Broker`, `ferry.v1.Users` and `ferry.v1.Auth`, with gRPC health
/// checking and server reflection. It uses `[tls]` as HTTP does.
///
/// On by default, like HTTP: `ferry serve` alone is all a ferry-client program needs. A
/// second server on the same machine names another `listen` (or port 0), or turns it off.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GrpcConfig {
    /// Whether it is served (default true; `--grpc`, `--no-grpc`, `FERRY_GRPC`).
    pub enabled: bool,
    /// Where it listens (default 127.0.0.1:7601). Port 0 picks a free port.
    /// `FERRY_GRPC` takes an address (which also turns it on) or true/false.
    pub listen: SocketAddr,
}

/// TLS for the HTTP and gRPC listeners (rustls). Both files are PEM.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain (`FERRY_TLS_CERT`, `--tls-cert`).
    pub cert_file: PathBuf,
    /// The private key (`FERRY_TLS_KEY`, `--tls-key`).
    pub key_file: PathBuf,
}

/// The Prometheus endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Whether `/metrics` answers without a token (default true; `FERRY_METRICS_PUBLIC`).
    /// When false it takes an admin's token or API key.
    pub public: bool,
}

/// The MOM-compatible API. Its rate limits count requests per client IP and path in a
/// fixed 60 s window, as the reference server's do; 0 turns a limit off.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MomConfig {
    /// Whether the API is served at all (default true; `FERRY_MOM`).
    pub enabled: bool,
    /// Whether its rate limits apply (default true; `FERRY_MOM_RATE_LIMITS`).
    pub rate_limits: bool,
    /// Per minute for `GET /` (default 15).
    pub home_per_minute: u32,
    /// Per minute for `POST /login/` (default 300).
    pub login_per_minute: u32,
    /// Per minute for `/protected/` and `/admin/protected/` (default 5).
    pub protected_per_minute: u32,
    /// Per minute for user administration (default 15).
    pub users_per_minute: u32,
    /// Per minute for creating and deleting queues and topics (default 100).
    pub admin_per_minute: u32,
    /// Per minute for subscribe, unsubscribe, send and receive (default 200).
    pub operations_per_minute: u32,
}

/// The account created at first start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Its name (`FERRY_ADMIN_USER`).
    pub user: String,
    /// Its password (`FERRY_ADMIN_PASSWORD`); a random one is made and printed once if
    /// unset. Never printed by `--print-config`.
    #[serde(skip_serializing)]
    pub password: Option<String>,
}

/// Tokens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// How long a token from `POST /v1/auth/token` is valid, in seconds (default 1800).
    pub token_ttl_secs: u64,
}

/// Limits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// The largest request body, in bytes (default 8 MiB).
    pub max_body_bytes: usize,
    /// The longest long poll a receive may ask for, in milliseconds (default 60 s).
    pub max_wait_ms: u64,
    /// Requests per second each user (or API key's owner) may make on `/v1`, sustained;
    /// 0 means no limit (the default) (`FERRY_REQUESTS_PER_SECOND`).
    pub requests_per_second: u32,
    /// How many requests above the sustained rate a user may make in a burst (default:
    /// twice the rate).
    pub burst: Option<u32>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            http: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("ferry-data"),
            durability: "fsync".into(),
            admin: AdminConfig { user: "admin".into(), password: None },
            auth: AuthConfig { token_ttl_secs: 1800 },
            limits: Limits { max_body_bytes: 8 << 20, max_wait_ms: 60_000, requests_per_second: 0, burst: None },
            tls: None,
            metrics: MetricsConfig { public: true },
            mom: MomConfig {
                enabled: true,
                rate_limits: true,
                home_per_minute: 15,
                login_per_minute: 300,
                protected_per_minute: 5,
                users_per_minute: 15,
                admin_per_minute: 100,
                operations_per_minute: 200,
            },
            grpc: GrpcConfig { enabled: true, listen: SocketAddr::from(([127, 0, 0, 1], 7601)) },
        }
    }
}

impl Default for GrpcConfig {
    fn default() -> Self {
        Config::default().grpc
    }
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Config::default().metrics
    }
}

impl Default for MomConfig {
    fn default() -> Self {
        Config::default().mom
    }
}

impl Default for AdminConfig {
    fn default() -> Self {
        Config::default().admin
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Config::default().auth
    }
}

impl Default for Limits {
    fn default() -> Self {
        Config::default().limits
    }
}

impl Config {
    /// Reads a TOML file over the defaults.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Read`] and [`ConfigError::Invalid`] (TOML errors name the key).
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        toml::from_str(&text).map_err(|e| {
            let key = e.span().map_or_else(|| "(file)".to_string(), |s| key_at(&text, s.start));
            invalid(&key, e.message().to_string())
        })
    }

    /// Applies `FERRY_*` variables from `vars` (usually `std::env::vars()`).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming the variable.
    pub fn apply_env(&mut self, vars: impl IntoIterator<Item = (String, String)>) -> Result<(), ConfigError> {
        for (k, v) in vars {
            match k.as_str() {
                "FERRY_HTTP" => self.http = v.parse().map_err(|_| invalid(&k, format!("{v:?} is not HOST:PORT")))?,
                "FERRY_DATA" => self.data_dir = PathBuf::from(v),
                "FERRY_DURABILITY" => self.durability = v,
                "FERRY_ADMIN_USER" => self.admin.user = v,
                "FERRY_ADMIN_PASSWORD" => self.admin.password = Some(v),
                "FERRY_REQUESTS_PER_SECOND" => {
                    self.limits.requests_per_second =
                        v.parse().map_err(|_| invalid(&k, "not a number of requests per second"))?;
                }
                "FERRY_METRICS_PUBLIC" => self.metrics.public = flag(&k, &v)?,
                "FERRY_MOM" => self.mom.enabled = flag(&k, &v)?,
                "FERRY_MOM_RATE_LIMITS" => self.mom.rate_limits = flag(&k, &v)?,
                "FERRY_GRPC" => match v.parse::<SocketAddr>() {
                    Ok(addr) => self.grpc = GrpcConfig { enabled: true, listen: addr },
                    Err(_) => {
                        self.grpc.enabled = flag(&k, &v)
                            .map_err(|_| invalid(&k, format!("{v:?} is neither HOST:PORT nor true or false")))?;
                    }
                },
                "FERRY_TLS_CERT" => self.tls_mut().cert_file = PathBuf::from(v),
                "FERRY_TLS_KEY" => self.tls_mut().key_file = PathBuf::from(v),
                "FERRY_TOKEN_TTL_SECS" => {
                    self.auth.token_ttl_secs = v.parse().map_err(|_| invalid(&k, "not a number of seconds"))?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Checks every value.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming the first bad key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.default_durability().map_err(|reason| invalid("durability", reason))?;
        ferry_broker::names::check(&self.admin.user).map_err(|_| {
            invalid("admin.user", "1 to 255 characters of A-Z, a-z, 0-9, '_', '.', '-', other than '.' and '..'")
        })?;
        if self.admin.password.as_deref().is_some_and(|p| p.len() < 8) {
            return Err(invalid("admin.password", "at least 8 characters"));
        }
        if !(60..=30 * 86_400).contains(&self.auth.token_ttl_secs) {
            return Err(invalid("auth.token_ttl_secs", "60 seconds to 30 days"));
        }
        if !(1024..=1 << 30).contains(&self.limits.max_body_bytes) {
            return Err(invalid("limits.max_body_bytes", "1 KiB to 1 GiB"));
        }
        if self.limits.max_wait_ms > 15 * 60_000 {
            return Err(invalid("limits.max_wait_ms", "at most 15 minutes"));
        }
        if self.grpc.enabled && self.grpc.listen.port() != 0 && self.grpc.listen == self.http {
            return Err(invalid("grpc.listen", "must differ from http (gRPC has a port of its own)"));
        }
        if let Some(tls) = &self.tls {
            for (key, path) in [("tls.cert_file", &tls.cert_file), ("tls.key_file", &tls.key_file)] {
                if path.as_os_str().is_empty() {
                    return Err(invalid(key, "required when TLS is on (set both tls.cert_file and tls.key_file)"));
                }
            }
        }
        Ok(())
    }

    /// The TLS section, made empty if it was unset (so that a file can be set on its own
    /// and `validate` names the missing one).
    pub fn tls_mut(&mut self) -> &mut TlsConfig {
        self.tls.get_or_insert_with(|| TlsConfig { cert_file: PathBuf::new(), key_file: PathBuf::new() })
    }

    /// The durability of destinations created without one.
    pub fn default_durability(&self) -> Result<ferry_broker::Durability, String> {
        match self.durability.as_str() {
            "fsync" => Ok(ferry_broker::Durability::Fsync),
            "none" => Ok(ferry_broker::Durability::None),
            other => other
                .strip_prefix("interval:")
                .and_then(|ms| ms.parse().ok())
                .filter(|ms| (1..=60_000).contains(ms))
                .map(ferry_broker::Durability::Interval)
                .ok_or_else(|| format!("{other:?}: use fsync, none or interval:<1..60000 ms>")),
        }
    }

    /// The effective configuration as TOML (the admin password left out).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot print the configuration: {e}\n"))
    }
}

/// A boolean variable: true/false, 1/0, yes/no, on/off.
fn flag(key: &str, v: &str) -> Result<bool, ConfigError> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(invalid(key, format!("{v:?} is not true or false"))),
    }
}

/// The dotted key whose line contains byte `at` of a TOML text (a best effort for error
/// messages: the table header above it plus the key on the line).
fn key_at(text: &str, at: usize) -> String {
    let before = &text[..at.min(text.len())];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("");
    let key = line.split('=').next().unwrap_or("").trim().trim_matches('"');
    let table = before[..line_start]
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix('[').and_then(|l| l.strip_suffix(']')))
        .map(str::trim);
    match (table, key.is_empty()) {
        (Some(t), false) => format!("{t}.{key}"),
        (Some(t), true) => t.to_string(),
        (None, false) => key.to_string(),
        (None, true) => "(file)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_env_and_keys_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ferry.toml");
        std::fs::write(&path, "http = \"127.0.0.1:9000\"\n[limits]\nmax_wait_ms = 5000\n").unwrap();
        let mut c = Config::from_file(&path).unwrap();
        assert_eq!(c.http.port(), 9000);
        assert_eq!(c.limits.max_wait_ms, 5000);
        c.apply_env([("FERRY_HTTP".to_string(), "127.0.0.1:9100".to_string())]).unwrap();
        assert_eq!(c.http.port(), 9100);
        c.validate().unwrap();

        std::fs::write(&path, "[limits]\nmax_wait_ms = \"soon\"\n").unwrap();
        let e = Config::from_file(&path).unwrap_err().to_string();
        assert!(e.contains("limits.max_wait_ms"), "{e}");
        std::fs::write(&path, "colour = 1\n").unwrap();
        assert!(Config::from_file(&path).is_err());

        let e = c.apply_env([("FERRY_HTTP".to_string(), "nope".to_string())]).unwrap_err().to_string();
        assert!(e.contains("FERRY_HTTP"), "{e}");
        c.durability = "sometimes".into();
        assert!(c.validate().unwrap_err().to_string().contains("durability"));
    }

    #[test]
    fn grpc_is_on_and_can_be_moved_or_turned_off() {
        let mut c = Config::default();
        assert_eq!((c.grpc.enabled, c.grpc.listen.port()), (true, 7601));
        c.apply_env([("FERRY_GRPC".to_string(), "127.0.0.1:9700".to_string())]).unwrap();
        assert_eq!((c.grpc.enabled, c.grpc.listen.port()), (true, 9700));
        c.apply_env([("FERRY_GRPC".to_string(), "off".to_string())]).unwrap();
        assert_eq!((c.grpc.enabled, c.grpc.listen.port()), (false, 9700));
        c.apply_env([("FERRY_GRPC".to_string(), "on".to_string())]).unwrap();
        assert!(c.grpc.enabled);
        let e = c.apply_env([("FERRY_GRPC".to_string(), "soon".to_string())]).unwrap_err().to_string();
        assert!(e.contains("FERRY_GRPC"), "{e}");
        c.grpc.listen = c.http;
        assert!(c.validate().unwrap_err().to_string().contains("grpc.listen"));

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ferry.toml");
        std::fs::write(&path, "[grpc]\nlisten = \"127.0.0.1:0\"\n").unwrap();
        let c = Config::from_file(&path).unwrap();
        assert_eq!((c.grpc.enabled, c.grpc.listen.port()), (true, 0));
        c.validate().unwrap();
        std::fs::write(&path, "[grpc]\nenabled = false\n").unwrap();
        assert!(!Config::from_file(&path).unwrap().grpc.enabled);
    }

    #[test]
    fn the_password_is_never_printed() {
        let mut c = Config::default();
        c.admin.password = Some("secret-password".into());
        assert!(!c.to_toml().contains("secret-password"));
    }
}
