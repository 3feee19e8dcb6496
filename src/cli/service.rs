//! `bluegreen platform service create | list | delete`: backing services on
//! the local platform. A deploy file's `services: [NAME]` binds them to both
//! colors; each color then gets `DATABASE_URL` and `VCAP_SERVICES`.

use super::output::{Printer, outln, sayln};
use super::{BadInput, Exit};
use crate::platform::local::{self, Config};
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Create a service (starts the platform if it is not running).
    Create {
        /// Letters, digits and dashes; the deploy file names it in `services:`.
        name: String,
        /// The kind of service: `postgres` (a PostgreSQL server of its own).
        #[arg(long = "type", value_name = "TYPE")]
        kind: String,
        /// Print the created service as `list --json` prints each one
        /// (with credentials: the URL includes the password).
        #[arg(long)]
        json: bool,
    },
    /// Every service with its state and connection URL.
    List {
        /// One JSON document with credentials (the URL includes the password).
        #[arg(long)]
        json: bool,
    },
    /// Stop a service and delete its data (refused while apps are bound).
    Delete {
        name: String,
        /// Print one JSON object: `{"name", "deleted": true}`.
        #[arg(long)]
        json: bool,
    },
}

/// The URL with its password replaced, for terminal output.
fn masked(uri: &str) -> String {
    match (uri.find("://"), uri.rfind('@')) {
        (Some(s), Some(at)) if at > s => match uri[s + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:****{}", &uri[..s + 3], &uri[at..]),
            None => uri.to_string(),
        },
        _ => uri.to_string(),
    }
}

pub async fn run(cmd: ServiceCommand) -> anyhow::Result<Exit> {
    let config = Config::from_env();
    let client = match &cmd {
        ServiceCommand::Create { .. } => local::ensure_running(&config).await?.1,
        _ => match local::connect(&config.dir).await {
            Some((_, client)) => client,
            None => {
                return Err(BadInput(
                    "the local platform is not running (start it with `bluegreen platform start`)"
                        .into(),
                )
                .into());
            }
        },
    };
    match cmd {
        ServiceCommand::Create { name, kind, json } => {
            let body = json!({ "name": name, "type": kind });
            let created: Value =
                client
                    .post("/bluegreen/v1/services", &body)
                    .await
                    .map_err(|e| match e.cf_title() {
                        Some("CF-UnprocessableEntity") => BadInput(e.to_string()).into(),
                        _ => anyhow::Error::from(e),
                    })?;
            let uri = masked(created["credentials"]["uri"].as_str().unwrap_or(""));
            Printer::new(json).emit(created, || {
                outln!("service {name} ({kind}) running: {uri}");
                sayln!("bind it with `services: [{name}]` in the deploy file");
            });
            Ok(Exit::Ok)
        }
        ServiceCommand::List { json } => {
            let all: Value = client.get("/bluegreen/v1/services").await?;
            let all = all["resources"].as_array().cloned().unwrap_or_default();
            Printer::new(json).emit(json!(all), || print_list(&all));
            Ok(Exit::Ok)
        }
        ServiceCommand::Delete { name, json } => {
            client
                .request::<()>(
                    Method::DELETE,
                    &format!("/bluegreen/v1/services/{name}"),
                    None,
                )
                .await
                .map_err(|e| match e.cf_title() {
                    Some("CF-UnprocessableEntity" | "CF-ResourceNotFound") => {
                        BadInput(e.to_string()).into()
                    }
                    _ => anyhow::Error::from(e),
                })?;
            Printer::new(json).emit(json!({"name": name, "deleted": true}), || {
                outln!("service {name} deleted with its data")
            });
            Ok(Exit::Ok)
        }
    }
}

/// `service list` for people, passwords masked.
fn print_list(all: &[Value]) {
    if all.is_empty() {
        outln!("no services (create one: bluegreen platform service create NAME --type postgres)");
    }
    for s in all {
        let text = |k: &str| s[k].as_str().unwrap_or("").to_string();
        outln!(
            "{:<20} {:<9} {:<8} {}",
            text("name"),
            text("type"),
            text("state"),
            masked(s["credentials"]["uri"].as_str().unwrap_or(""))
        );
        // Why a service is not running: its bound apps will not start.
        if let Some(problem) = s["problem"].as_str() {
            outln!("  {problem}");
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_masked() {
        assert_eq!(
            super::masked("postgres://bluegreen:s3cret@127.0.0.1:5432/db"),
            "postgres://bluegreen:****@127.0.0.1:5432/db"
        );
        assert_eq!(
            super::masked("postgres://127.0.0.1/db"),
            "postgres://127.0.0.1/db"
        );
    }
}
