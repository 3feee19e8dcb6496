//! The `bluegreen` command: parse arguments, run, map the result to an exit
//! code, and print an error's whole cause chain.

use bluegreen::cli::output;
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = bluegreen::cli::Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let result = runtime.block_on(bluegreen::cli::run(cli));
    // A plugin call that timed out may leave a blocking thread stuck in a
    // host call (opening a FIFO in a granted directory, say): the command has
    // its answer, so it does not wait for that thread to end.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    // A result that could not be written (a full disk, not a reader that
    // left) is a failure, even when the command itself went well.
    let result = match (result, output::stdout_error()) {
        (Ok(bluegreen::cli::Exit::Ok), Some(e)) => Err(anyhow::anyhow!(e)),
        (result, _) => result,
    };
    match result {
        Ok(code) => code.into(),
        Err(err) => {
            let mut text = format!("error: {err}\n");
            for cause in err.chain().skip(1) {
                text.push_str(&format!("  caused by: {cause}\n"));
            }
            output::write_stderr(&text);
            bluegreen::cli::Exit::of(&err).into()
        }
    }
}
