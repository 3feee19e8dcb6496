//! User-facing configuration: the deploy file. Errors here are bad input
//! (exit code 2) and always name the file, position or field, and the fix.

pub mod analysis;
mod deploy_file;
pub(crate) mod duration;
mod locate;
pub mod manifest;
pub mod policy;
pub mod rehearse;
mod route;
pub mod schema;
mod schema_doc;
mod schema_types;
pub(crate) mod settings;
mod standby;
pub mod steps;

pub use analysis::{Analysis, Fallback, Inconclusive, Load, OnFail, Strategy};
pub use deploy_file::{
    CANDIDATE, Colors, ConfigError, DeployFile, Health, Migrate, MigrationKind, PlatformKind,
    PluginSettings, Plugins,
};
