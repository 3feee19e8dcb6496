//! The embedded local platform: a daemon that runs apps as supervised
//! processes behind a Host-routing HTTP router and serves the same Cloud
//! Foundry v3 subset as a real CF, so one client drives both.

mod api;
mod apps_api;
mod cgroup;
mod control;
mod daemon;
mod deployment_message;
mod deployments_api;
pub mod faults;
mod jwt;
mod log_cache_api;
mod manifest_api;
mod meta_api;
mod packages_api;
mod pg_check;
mod pidfiles;
mod postgres;
mod process_api;
mod procs;
mod query_check;
mod reaper;
mod records;
mod retention;
mod revisions_api;
mod rollout;
mod router;
mod routes_api;
mod service_api;
mod services;
mod sock_diag;
mod staging;
mod standby_sweep;
mod state;
mod store;
mod supervisor;
mod tls;
mod tokens;
mod tracking;
mod uaa;

pub use control::{connect, ensure_running, stop};
pub use daemon::{Config, Endpoint, Running, home_dir, pid_alive, start};
pub use records::{ORG_GUID, ORG_NAME};
pub use retention::DROPLETS_KEPT;
pub use router::{DOMAIN, Limits as RouterLimits};
pub use store::StoreError;
pub use tokens::{TTL_VAR as TOKEN_TTL_VAR, ttl_from_env as token_ttl_from_env};
pub use uaa::{BLUEGREEN_CLIENT, CF_CLIENT, USER as UAA_USER};
