//! `completions SHELL`: a completion script generated from the same clap
//! definition the parser uses, so it never lags behind a new flag. It is
//! generated into memory first: clap_complete panics when its writer fails,
//! and a script piped into a reader that closes early must end quietly.

use super::output;
use crate::cli::Exit;
use clap::CommandFactory;

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish (also elvish, powershell).
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

pub fn run(args: &CompletionsArgs) -> anyhow::Result<Exit> {
    let mut cmd = super::Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "bluegreen", &mut script);
    output::write_stdout_verbatim(&String::from_utf8_lossy(&script));
    Ok(super::Exit::Ok)
}
