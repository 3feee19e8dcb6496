//! Promises the book (`docs/src/`) makes with a number, a limit, a default or
//! a variable, each checked end to end against the value the book states
//! (a literal here, never a constant read from the crate, so a change of
//! the code that the docs do not follow fails a test).

mod app_logs;
mod health_errors;
mod lease;
mod limits;
mod manifest;
mod migration_retries;
mod notify_approval;
mod plugin_outcome;
mod router;
mod router_handoff;
mod system_policy;
