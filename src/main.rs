//! The `bluegreen` command: parse arguments, run, map the result to an exit
//! code, and print an error's whole cause chain.

use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = bluegreen::cli::Cli::parse();
    match bluegreen::cli::run(cli).await {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(bluegreen::cli::exit_code_for(&err))
        }
    }
}
