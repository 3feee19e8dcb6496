//! `bluegreen dashboard`: a live page of one app on its platform (local or
//! Cloud Foundry, through the same client `status` uses): its colors, a
//! deploy under way with its steps, its traffic per color and its analysis
//! windows' verdicts, the history, and promote/resume/abort buttons.
//!
//! One process, the user's own: it reads what `status` and `history` read
//! with the user's credentials, and its buttons send what `bluegreen
//! promote`/`resume`/`abort` send (`cli::operator::send`), journaled as
//! `dashboard (user@host)`. Everything the page needs is in the binary
//! (`dashboard/page.*`, no CDN). A background task looks at the platform
//! every `--every` (`api`); the page polls the last look.
//!
//! Who may press a button: whoever can load the page from this process. It
//! listens on loopback by default; every request must name this server in
//! `Host` (a DNS-rebinding page names its own), and a POST must carry the
//! per-process token the page embeds and an `Origin` of this server
//! (`actions`), else 403.

use super::deploy::{FileArg, Loaded};
use super::output::outln;
use crate::cli::Exit;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use clap::Args;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod actions;
mod api;
mod page;
mod traffic;

#[derive(Debug, Args)]
pub struct DashboardArgs {
    #[command(flatten)]
    pub file: FileArg,
    /// The port to serve on; 0 takes any free one (the URL is printed).
    #[arg(long, default_value_t = 8900)]
    pub port: u16,
    /// The address to listen on. Keep it loopback: anyone who reaches the
    /// page sees what `status` shows (the buttons also need its token).
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// How often the platform is looked at (and the page refreshed).
    #[arg(long, value_parser = crate::units::parse_duration, default_value = "1s")]
    pub every: Duration,
}

/// What every handler shares: the deploy file, this server's secrets and
/// names, and the last look at the platform.
pub struct Shared {
    loaded: Loaded,
    /// Sent back by the page's buttons in `x-bluegreen-token`.
    token: String,
    /// `Host` values naming this server.
    hosts: Vec<String>,
    /// `api::gather`'s last look, as the page's `GET /api/state` serves it.
    last: Mutex<serde_json::Value>,
    /// Who the buttons act as: `dashboard (user@host)`.
    by: String,
}

pub async fn run(args: &DashboardArgs) -> anyhow::Result<Exit> {
    let loaded = Loaded::read(&args.file.file)?;
    if args.bind.is_unspecified() {
        // Every request must name the server in `Host`: it needs one name.
        return Err(super::BadInput(format!(
            "--bind {}: name one address to listen on (the page is opened by it), such as \
             127.0.0.1",
            args.bind
        ))
        .into());
    }
    let listener = tokio::net::TcpListener::bind((args.bind, args.port))
        .await
        .map_err(|e| {
            super::BadInput(format!(
                "cannot listen on {}:{}: {e} (choose another --port, or --port 0 for any free one)",
                args.bind, args.port
            ))
        })?;
    let addr = listener.local_addr()?;
    let app = loaded.file.app.clone();
    let shared = Arc::new(Shared {
        loaded,
        token: token(),
        hosts: host_names(addr),
        last: Mutex::new(serde_json::json!({"app": app, "loading": true})),
        by: format!("dashboard ({})", crate::deploy::operator::who()),
    });
    tokio::spawn(api::gather(
        shared.clone(),
        args.every.max(Duration::from_millis(200)),
    ));
    let router = Router::new()
        .merge(page::routes())
        .merge(api::routes())
        .merge(actions::routes())
        .layer(middleware::from_fn_with_state(shared.clone(), this_host))
        .with_state(shared);
    outln!("bluegreen dashboard of {app}: http://{addr}/ (Ctrl-C stops it)");
    if !args.bind.is_loopback() {
        outln!(
            "  warning: listening on {}: whoever reaches it sees this app's state",
            args.bind
        );
    }
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            use tokio::signal::unix::{SignalKind, signal};
            let mut term = signal(SignalKind::terminate()).ok();
            let terminated = async {
                match term.as_mut() {
                    Some(t) => t.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminated => {}
            }
        })
        .await?;
    Ok(Exit::Ok)
}

/// A fresh secret per process: 256 random bits, hex.
fn token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// The `Host` values that name this server: its address, and `localhost`
/// when it listens on loopback.
fn host_names(addr: SocketAddr) -> Vec<String> {
    let port = addr.port();
    let mut names = vec![addr.to_string()];
    if addr.ip().is_loopback() {
        names.push(format!("localhost:{port}"));
    }
    names
}

/// Refuses (403) a request whose `Host` names another server: a page on
/// another site that rebinds its name to 127.0.0.1 still sends its own.
async fn this_host(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    if !shared.hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
        return forbidden("the Host header does not name this dashboard");
    }
    next.run(req).await
}

fn forbidden(why: &str) -> Response {
    (
        StatusCode::FORBIDDEN,
        axum::Json(serde_json::json!({"error": why})),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_and_fresh() {
        let (a, b) = (token(), token());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn only_this_servers_names_are_hosts() {
        let names = host_names("127.0.0.1:8900".parse().unwrap());
        assert_eq!(names, ["127.0.0.1:8900", "localhost:8900"]);
        let names = host_names("10.0.0.5:8900".parse().unwrap());
        assert_eq!(names, ["10.0.0.5:8900"]);
    }
}
