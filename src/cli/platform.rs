//! `bluegreen platform start | stop | status | logs`: the embedded local
//! platform's lifecycle. Its state lives in `$BLUEGREEN_HOME/platform`
//! (default `~/.bluegreen/platform`).

use super::output::{Printer, outln};
use super::{BadInput, Exit};
use crate::platform::local::{self, Config, Endpoint};
use clap::Subcommand;
use serde_json::json;

#[derive(Debug, Subcommand)]
pub enum PlatformCommand {
    /// Start the local platform (in the background unless --foreground).
    Start {
        /// Run in this process until SIGTERM or Ctrl-C.
        #[arg(long)]
        foreground: bool,
        /// Port of the Host-routing HTTP router [default: 8080] (0 picks a
        /// free one). A platform already running on another port is not
        /// moved: `platform stop` it first.
        #[arg(long, env = "BLUEGREEN_ROUTER_PORT")]
        router_port: Option<u16>,
        /// Port of the API on 127.0.0.1 (0 picks a free one).
        #[arg(long, env = "BLUEGREEN_API_PORT", default_value_t = 0)]
        api_port: u16,
        /// The largest app package the platform accepts (`1GiB`, `512MiB`).
        #[arg(long, env = "BLUEGREEN_MAX_UPLOAD", value_parser = crate::units::parse_size, default_value = "1GiB")]
        max_upload: u64,
        /// Print one JSON object: `{"status": "running", "pid", "api_url",
        /// "router_url", "router_port"}` (with --foreground, then
        /// `{"status": "stopped"}`).
        #[arg(long)]
        json: bool,
    },
    /// Stop the local platform and every app it runs.
    Stop {
        /// Print one JSON object: `{"status": "stopped" | "not-running"}`.
        #[arg(long)]
        json: bool,
    },
    /// Where the platform listens and the state of each app.
    Status {
        /// Print one JSON object: `{"running", "state_dir", "pid", "api_url",
        /// "router_url", "router_port", "apps": [{"name", "state", "process_state"}]}`.
        #[arg(long)]
        json: bool,
    },
    /// Print the variables that point a Cloud Foundry client at this
    /// platform over TLS (`eval "$(bluegreen platform cf-env)"`, then deploy
    /// with `platform: cf`); the password line reads the token file.
    CfEnv,
    /// Print an app's log (stdout and stderr of its process and tasks): a
    /// platform app's, or both colors of a deploy's app (`shop` for
    /// `shop-blue` and `shop-green`, each line after its color).
    Logs {
        app: String,
        /// Keep printing new lines as they arrive.
        #[arg(long, short)]
        follow: bool,
        /// One JSON object per log line: `{"app", "line"}` (and `"color"`
        /// for a deploy's app).
        #[arg(long)]
        json: bool,
    },
    /// Set how many instances of an app's process run (as `cf scale -i`, or
    /// an autoscaler): the running ones keep serving.
    Scale {
        app: String,
        #[arg(long)]
        instances: u32,
        /// The process type.
        #[arg(long, default_value = "web")]
        process: String,
        /// Print the process as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Backing services (PostgreSQL) that apps bind with `services:`.
    #[command(subcommand)]
    Service(super::service::ServiceCommand),
}

/// The running local platform's client and its app named `app`.
async fn local_app(
    dir: &std::path::Path,
    app: &str,
) -> anyhow::Result<(crate::platform::client::CfClient, crate::platform::v3::App)> {
    let Some((_, client)) = local::connect(dir).await else {
        return Err(BadInput(
            "the local platform is not running (start it with `bluegreen platform start`)".into(),
        )
        .into());
    };
    let space = client
        .find_space(local::ORG_GUID, "local")
        .await?
        .map(|s| s.guid)
        .unwrap_or_default();
    let Some(found) = client.find_app(&space, app).await? else {
        return Err(BadInput(format!("no app named `{app}` on the local platform")).into());
    };
    Ok((client, found))
}

/// The platform's address as `start --json` and `status --json` print it.
fn endpoint_json(e: &Endpoint) -> serde_json::Value {
    json!({"pid": e.pid, "api_url": e.api_url, "router_port": e.router_port,
        "router_url": format!("http://*.{}:{}", local::DOMAIN, e.router_port),
        "cf_api_url": e.cf_api_url, "router_tls_port": e.router_tls_port,
        "ca_file": e.ca_file})
}

fn say_running(e: &Endpoint, out: Printer) {
    let mut v = endpoint_json(e);
    v["status"] = "running".into();
    out.emit(v, || {
        outln!(
            "local platform running: API {}, router http://*.{}:{} (pid {})",
            e.api_url,
            local::DOMAIN,
            e.router_port,
            e.pid
        )
    });
}

/// `platform status` for people.
fn print_status(endpoint: &Endpoint, apps: &[serde_json::Value]) {
    outln!("local platform: running (pid {})", endpoint.pid);
    outln!("  API:    {}", endpoint.api_url);
    outln!(
        "  router: http://*.{}:{}",
        local::DOMAIN,
        endpoint.router_port
    );
    if let (Some(api), Some(port)) = (&endpoint.cf_api_url, endpoint.router_tls_port) {
        outln!(
            "  as Cloud Foundry: API {api}, routes https://*.{}:{port} \
             (`eval \"$(bluegreen platform cf-env)\"`)",
            local::DOMAIN
        );
    }
    for app in apps {
        let text = |k: &str| app[k].as_str().unwrap_or_default().to_string();
        outln!(
            "  {:<24} {:<8} {}",
            text("name"),
            text("state"),
            text("process_state")
        );
    }
}

/// The router's port when `--router-port` is not given.
const DEFAULT_ROUTER_PORT: u16 = 8080;

/// `platform start` while a platform runs: where it is, and what to do to
/// have it elsewhere (`asked`: the router port asked for, if any).
fn already_running(e: &Endpoint, asked: Option<u16>) -> BadInput {
    let running = format!(
        "the local platform is already running (pid {}), its router on port {}",
        e.pid, e.router_port
    );
    BadInput(match asked.filter(|p| *p != 0 && *p != e.router_port) {
        Some(p) => format!(
            "{running}, not {p}: a running platform keeps its port. To move it, \
             `bluegreen platform stop` first, then `bluegreen platform start --router-port {p}`"
        ),
        None => format!("{running}: `bluegreen platform stop` it first"),
    })
}

fn config(router_port: u16, api_port: u16, max_upload: u64) -> Result<Config, BadInput> {
    let mut config = Config::new(&local::home_dir());
    config.router_port = router_port;
    config.api_port = api_port;
    config.max_upload = max_upload;
    // The daemon runs in this process and nothing else does (see the field).
    config.own_processes = true;
    config.router_limits = local::RouterLimits::from_env().map_err(|e| BadInput(e.to_string()))?;
    // Read again by the daemon's token endpoint (`local/tokens.rs`); a bad
    // value is refused here, by name, before anything starts.
    local::token_ttl_from_env().map_err(|e| BadInput(e.to_string()))?;
    Ok(config)
}

pub async fn run(cmd: PlatformCommand) -> anyhow::Result<Exit> {
    let dir = Config::new(&local::home_dir()).dir;
    match cmd {
        PlatformCommand::Start {
            foreground: true,
            router_port,
            api_port,
            max_upload,
            json,
        } => {
            let out = Printer::new(json);
            if let Some((endpoint, _)) = local::connect(&dir).await {
                return Err(already_running(&endpoint, router_port).into());
            }
            let port = router_port.unwrap_or(DEFAULT_ROUTER_PORT);
            let running = local::start(config(port, api_port, max_upload)?).await?;
            say_running(&running.endpoint, out);
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            out.line("stopping apps and the platform");
            running.shutdown().await;
            out.event(json!({"status": "stopped"}));
            Ok(Exit::Ok)
        }
        PlatformCommand::Start {
            foreground: false,
            router_port,
            api_port,
            max_upload,
            json,
        } => {
            // Running already: fine on the port asked for (or any, if none
            // or 0 was), else said, since the router stays where it is.
            if let Some((endpoint, _)) = local::connect(&dir).await {
                if router_port.is_some_and(|p| p != 0 && p != endpoint.router_port) {
                    return Err(already_running(&endpoint, router_port).into());
                }
                say_running(&endpoint, Printer::new(json));
                return Ok(Exit::Ok);
            }
            let port = router_port.unwrap_or(DEFAULT_ROUTER_PORT);
            let (endpoint, _) = local::ensure_running(&config(port, api_port, max_upload)?).await?;
            say_running(&endpoint, Printer::new(json));
            Ok(Exit::Ok)
        }
        PlatformCommand::Stop { json } => {
            let stopped = local::stop(&dir).await?;
            let status = if stopped { "stopped" } else { "not-running" };
            Printer::new(json).emit(json!({ "status": status }), || {
                if stopped {
                    outln!("local platform stopped");
                } else {
                    outln!("local platform was not running");
                }
            });
            Ok(Exit::Ok)
        }
        PlatformCommand::Status { json } => {
            let out = Printer::new(json);
            let Some((endpoint, client)) = local::connect(&dir).await else {
                out.emit(json!({"running": false, "state_dir": dir}), || {
                    outln!("local platform: not running (state in {})", dir.display())
                });
                return Ok(Exit::Failed);
            };
            let mut apps = Vec::new();
            for app in client.list::<crate::platform::v3::App>("/v3/apps").await? {
                let stats = client.process_stats(&app.guid).await?;
                let state = stats.first().map(|s| s.state.as_str()).unwrap_or("DOWN");
                apps.push(json!({"name": app.name, "state": app.state, "process_state": state}));
            }
            let mut v = endpoint_json(&endpoint);
            v["running"] = true.into();
            v["state_dir"] = json!(dir);
            v["apps"] = json!(apps);
            out.emit(v, || print_status(&endpoint, &apps));
            Ok(Exit::Ok)
        }
        PlatformCommand::Service(cmd) => super::service::run(cmd).await,
        PlatformCommand::CfEnv => {
            let Some((endpoint, _)) = local::connect(&dir).await else {
                return Err(BadInput(
                    "the local platform is not running (start it with `bluegreen platform start`)"
                        .into(),
                )
                .into());
            };
            let Some(vars) = super::cf_env::exports(&endpoint, &dir) else {
                return Err(BadInput(
                    "the running platform serves no TLS (it predates it): restart it with \
                     `bluegreen platform stop` and `bluegreen platform start`"
                        .into(),
                )
                .into());
            };
            for (name, value) in vars {
                outln!("export {name}={value}");
            }
            Ok(Exit::Ok)
        }
        PlatformCommand::Scale {
            app,
            instances,
            process,
            json,
        } => {
            let (client, found) = local_app(&dir, &app).await?;
            let Some(p) = client
                .processes(&found.guid)
                .await?
                .into_iter()
                .find(|p| p.kind == process)
            else {
                return Err(BadInput(format!("app `{app}` has no `{process}` process")).into());
            };
            let scaled = client.scale_process(&p.guid, instances).await?;
            Printer::new(json).emit(json!({"app": app, "process": scaled}), || {
                outln!("{app}: {} ×{}", scaled.kind, scaled.instances)
            });
            Ok(super::Exit::Ok)
        }
        PlatformCommand::Logs { app, follow, json } => {
            super::logs::platform(&dir, &app, follow, json).await
        }
    }
}
