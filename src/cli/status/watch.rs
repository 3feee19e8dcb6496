//! `status --watch`: the same look as `status`, again every interval, so a
//! second terminal follows a deploy the way `kubectl argo rollouts get
//! --watch` does: step, weights, the window the judge is looking at. On a
//! terminal each look replaces the last; otherwise (a CI log, a pipe) looks
//! follow one another under a time stamp, and `--json` writes one object per
//! look. It runs until Ctrl-C, or with `--wait` until the route serves with
//! no deploy running (or that time is up), with `status`'s exit codes.

use super::StatusCmd;
use super::look::look;
use crate::cli::Exit;
use crate::cli::deploy::Loaded;
use crate::cli::output::{Printer, outln};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

pub(super) async fn watch(l: &Loaded, cmd: &StatusCmd, every: Duration) -> anyhow::Result<Exit> {
    let out = Printer::new(cmd.args.json);
    let redraw = !cmd.args.json && std::io::stdout().is_terminal();
    let until = cmd.wait.map(|w| Instant::now() + w);
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    loop {
        let seen = look(l).await?;
        out.emit(seen.json(l), || {
            if redraw {
                // Home, then clear: the look replaces the last one.
                crate::output::write_stdout_verbatim("\x1b[H\x1b[2J");
            }
            outln!("{}", httpdate::fmt_http_date(std::time::SystemTime::now()));
            seen.print(l);
            if !redraw {
                outln!();
            }
        });
        let over = until.map(|u| seen.settled() || Instant::now() >= u);
        if over == Some(true) {
            return Ok(seen.exit(true));
        }
        tokio::select! {
            _ = tokio::time::sleep(every.max(Duration::from_millis(100))) => {}
            _ = &mut stop => return Ok(seen.exit(false)),
        }
    }
}
