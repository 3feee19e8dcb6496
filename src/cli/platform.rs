//! `bluegreen platform start | stop | status | logs`: the embedded local
//! platform's lifecycle. Its state lives in `$BLUEGREEN_HOME/platform`
//! (default `~/.bluegreen/platform`).

use super::{BadInput, exit};
use crate::platform::local::{self, Config};
use clap::Subcommand;
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub enum PlatformCommand {
    /// Start the local platform (in the background unless --foreground).
    Start {
        /// Run in this process until SIGTERM or Ctrl-C.
        #[arg(long)]
        foreground: bool,
        /// Port of the Host-routing HTTP router (0 picks a free one).
        #[arg(long, env = "BLUEGREEN_ROUTER_PORT", default_value_t = 8080)]
        router_port: u16,
        /// Port of the API on 127.0.0.1 (0 picks a free one).
        #[arg(long, env = "BLUEGREEN_API_PORT", default_value_t = 0)]
        api_port: u16,
        /// The largest app package the platform accepts (`1GiB`, `512MiB`).
        #[arg(long, env = "BLUEGREEN_MAX_UPLOAD", value_parser = crate::units::parse_size, default_value = "1GiB")]
        max_upload: u64,
    },
    /// Stop the local platform and every app it runs.
    Stop,
    /// Where the platform listens and the state of each app.
    Status,
    /// Print an app's log (stdout and stderr of its process and tasks).
    Logs {
        app: String,
        /// Keep printing new lines as they arrive.
        #[arg(long, short)]
        follow: bool,
    },
    /// Backing services (PostgreSQL) that apps bind with `services:`.
    #[command(subcommand)]
    Service(super::service::ServiceCommand),
}

fn config(router_port: u16, api_port: u16, max_upload: u64) -> Config {
    let mut config = Config::new(&local::home_dir());
    config.router_port = router_port;
    config.api_port = api_port;
    config.max_upload = max_upload;
    config
}

pub async fn run(cmd: PlatformCommand) -> anyhow::Result<u8> {
    let dir = Config::new(&local::home_dir()).dir;
    match cmd {
        PlatformCommand::Start {
            foreground: true,
            router_port,
            api_port,
            max_upload,
        } => {
            let running = local::start(config(router_port, api_port, max_upload)).await?;
            println!(
                "local platform running: API {}, router http://*.{}:{} (pid {})",
                running.endpoint.api_url,
                local::DOMAIN,
                running.endpoint.router_port,
                running.endpoint.pid
            );
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            println!("stopping apps and the platform");
            running.shutdown().await;
            Ok(exit::OK)
        }
        PlatformCommand::Start {
            foreground: false,
            router_port,
            api_port,
            max_upload,
        } => {
            let (endpoint, _) =
                local::ensure_running(&config(router_port, api_port, max_upload)).await?;
            println!(
                "local platform running: API {}, router http://*.{}:{} (pid {})",
                endpoint.api_url,
                local::DOMAIN,
                endpoint.router_port,
                endpoint.pid
            );
            Ok(exit::OK)
        }
        PlatformCommand::Stop => {
            if local::stop(&dir).await? {
                println!("local platform stopped");
            } else {
                println!("local platform was not running");
            }
            Ok(exit::OK)
        }
        PlatformCommand::Status => {
            let Some((endpoint, client)) = local::connect(&dir).await else {
                println!("local platform: not running (state in {})", dir.display());
                return Ok(exit::FAILED);
            };
            println!("local platform: running (pid {})", endpoint.pid);
            println!("  API:    {}", endpoint.api_url);
            println!(
                "  router: http://*.{}:{}",
                local::DOMAIN,
                endpoint.router_port
            );
            let apps: Vec<crate::platform::v3::App> = client.list("/v3/apps").await?;
            for app in apps {
                let stats = client.process_stats(&app.guid).await?;
                let state = stats.first().map(|s| s.state.as_str()).unwrap_or("DOWN");
                println!("  {:<24} {:<8} {state}", app.name, app.state);
            }
            Ok(exit::OK)
        }
        PlatformCommand::Service(cmd) => super::service::run(cmd).await,
        PlatformCommand::Logs { app, follow } => {
            let Some((_, client)) = local::connect(&dir).await else {
                return Err(BadInput(
                    "the local platform is not running (start it with `bluegreen platform start`)"
                        .into(),
                )
                .into());
            };
            let space = client
                .find_space(local::ORG_GUID, "local")
                .await?
                .map(|s| s.guid)
                .unwrap_or_default();
            let Some(found) = client.find_app(&space, &app).await? else {
                return Err(BadInput(format!("no app named `{app}` on the local platform")).into());
            };
            let mut printed = 0;
            loop {
                let resp = client
                    .request::<()>(
                        reqwest::Method::GET,
                        &format!("/bluegreen/v1/apps/{}/logs", found.guid),
                        None,
                    )
                    .await?;
                let text = resp.text().await.unwrap_or_default();
                // The log rotates: start over when it got shorter.
                if text.len() < printed {
                    printed = 0;
                }
                print!("{}", &text[printed..]);
                printed = text.len();
                if !follow {
                    return Ok(exit::OK);
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}
