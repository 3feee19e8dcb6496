//! `bluegreen schema [--policy] [--markdown]`: the deploy file's (or the
//! policy's) JSON Schema, for editors and CI validators, or its reference
//! in Markdown. Both come from `config::schema`, so they describe what this
//! binary's parser reads; the copies under docs/src are checked against
//! this output by tests/it/schema.rs.

use super::{Exit, output};

#[derive(Debug, clap::Args)]
pub struct SchemaArgs {
    /// The org policy file's schema instead of the deploy file's.
    #[arg(long)]
    policy: bool,
    /// The reference in Markdown (every field: path, type, default,
    /// description) instead of the JSON Schema.
    #[arg(long)]
    markdown: bool,
}

pub fn run(args: &SchemaArgs) -> anyhow::Result<Exit> {
    use crate::config::schema;
    let text = match (args.policy, args.markdown) {
        (false, false) => schema::text(&schema::deploy_file()),
        (true, false) => schema::text(&schema::policy()),
        (false, true) => schema::deploy_file_markdown(),
        (true, true) => schema::policy_markdown(),
    };
    output::write_stdout_verbatim(&text);
    Ok(Exit::Ok)
}
