//! The `bluegreen` command: parse arguments, run, map the result to an exit
//! code, and print an error's whole cause chain (escaped: it may quote
//! plugins, apps and servers).

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
            // An error may quote anyone (a plugin, an app, a server's answer,
            // a file name): each of its lines is shown escaped.
            let shown = |e: &dyn std::fmt::Display| output::printable_lines(&e.to_string());
            let mut text = format!("error: {}\n", shown(&err));
            for cause in err.chain().skip(1) {
                text.push_str(&format!("  caused by: {}\n", shown(&cause)));
            }
            output::write_stderr(&text);
            bluegreen::cli::Exit::of(&err).into()
        }
    }
}
