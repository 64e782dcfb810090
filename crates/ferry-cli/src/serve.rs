//! `ferry serve`: the broker as a server. With no arguments it keeps its data in
//! `./ferry-data`, listens on `http://127.0.0.1:8080`, and prints the admin credentials it
//! made at first start; the gRPC API has a port of its own (127.0.0.1:7601, `--grpc ADDR`,
//! or `--no-grpc`).

use anyhow::Context as _;
use ferry_server::{Config, Server};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub(crate) struct ServeArgs {
    /// A TOML configuration file; `FERRY_*` variables and these flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Where the HTTP API listens [default: 127.0.0.1:8080]; port 0 picks a free port.
    #[arg(long, env = "FERRY_HTTP")]
    http: Option<SocketAddr>,
    /// Where the gRPC API listens [default: 127.0.0.1:7601]; port 0 picks a free port. It is
    /// on unless --no-grpc, grpc.enabled = false or FERRY_GRPC=false. Also FERRY_GRPC=ADDR.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, conflicts_with = "no_grpc")]
    grpc: Option<Option<SocketAddr>>,
    /// Do not serve gRPC, whatever the configuration file or FERRY_GRPC say.
    #[arg(long)]
    no_grpc: bool,
    /// The data directory [default: ./ferry-data].
    #[arg(long, env = "FERRY_DATA")]
    data: Option<PathBuf>,
    /// Serve HTTPS with this PEM certificate chain (needs --tls-key).
    #[arg(long, env = "FERRY_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key for --tls-cert.
    #[arg(long, env = "FERRY_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Print the effective configuration (without secrets) and exit.
    #[arg(long)]
    print_config: bool,
}

fn load(args: &ServeArgs) -> anyhow::Result<Config> {
    let mut config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    config.apply_env(std::env::vars())?;
    if let Some(http) = args.http {
        config.http = http;
    }
    match args.grpc {
        Some(addr) => {
            config.grpc.enabled = true;
            if let Some(addr) = addr {
                config.grpc.listen = addr;
            }
        }
        None if args.no_grpc => config.grpc.enabled = false,
        None => {}
    }
    if let Some(data) = &args.data {
        config.data_dir = data.clone();
    }
    if let Some(cert) = &args.tls_cert {
        config.tls_mut().cert_file = cert.clone();
    }
    if let Some(key) = &args.tls_key {
        config.tls_mut().key_file = key.clone();
    }
    config.validate()?;
    Ok(config)
}

pub(crate) fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = load(&args)?;
    if args.print_config {
        print!("{}", config.to_toml());
        return Ok(ExitCode::SUCCESS);
    }
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the tokio runtime")?;
    runtime.block_on(async move {
        let server = Server::start(config).await?;
        let c = server.config();
        println!("ferry serve: listening on {}", server.url());
        if let Some(url) = server.grpc_url() {
            println!("ferry serve: gRPC on {url} (with health checking and reflection)");
        }
        println!("ferry serve: data directory {}", c.data_dir.display());
        match server.generated_password() {
            Some(p) => println!(
                "ferry serve: admin user {:?}, password {p:?} (generated at first start; shown once)",
                c.admin.user
            ),
            None => println!("ferry serve: admin user {:?}", c.admin.user),
        }
        server.run(shutdown_signal()).await?;
        println!("ferry serve: stopped");
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
