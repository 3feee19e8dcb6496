//! Ctrl-C (SIGINT) and SIGTERM during a deploy. Left to the default, a
//! signal killed the runner between two platform calls: the color in flight
//! stayed off the route or on the new release, a canary split stayed in
//! place, and the lock waited for `recover`. Here the first signal is only
//! noted; the executor sees it, stops the step it is in and rolls back as a
//! failed step would (`executor/undo.rs`), releasing the lock. A second
//! signal means "stop now": the process exits at once, leaving the journal
//! (and so the unfinished work) to `bluegreen recover`.

use std::sync::{Arc, Mutex};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

/// Which signal interrupted the deploy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT: Ctrl-C on a terminal.
    Int,
    /// SIGTERM: a CI runner cancelling the job, `kill`, systemd.
    Term,
}

impl Signal {
    /// How people know it: `Ctrl-C`, `SIGTERM`.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Int => "Ctrl-C",
            Signal::Term => "SIGTERM",
        }
    }

    /// The shell's convention: 128 + the signal's number.
    pub fn exit_code(self) -> u8 {
        match self {
            Signal::Int => 130,
            Signal::Term => 143,
        }
    }
}

/// The deploy was stopped by a signal: its exit code is the signal's.
#[derive(Debug, thiserror::Error)]
#[error("interrupted ({}): {what}", .signal.name())]
pub struct Interrupted {
    pub signal: Signal,
    pub what: String,
}

/// What a second signal leaves behind, said as the process exits.
#[derive(Clone, Debug, Default)]
struct Leaving {
    id: String,
    /// Whether the deploy has a journal, left for `recover`.
    journal: bool,
    json: bool,
}

/// A handle on the signals: cheap to clone, and [`Interrupt::none`] for a
/// run that does not listen (its signals keep their default).
#[derive(Clone)]
pub struct Interrupt {
    rx: watch::Receiver<Option<Signal>>,
    leaving: Arc<Mutex<Leaving>>,
}

impl Interrupt {
    /// Starts listening: from now on SIGINT and SIGTERM no longer kill the
    /// process at once, the first is published to every handle, and the
    /// second exits (see the module doc). `json`: that exit also writes
    /// deploy `id`'s last event.
    pub fn install(id: &str, json: bool) -> std::io::Result<Interrupt> {
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        let (tx, rx) = watch::channel(None);
        let leaving = Arc::new(Mutex::new(Leaving {
            id: id.to_string(),
            journal: false,
            json,
        }));
        let left = leaving.clone();
        tokio::spawn(async move {
            loop {
                let got = tokio::select! {
                    Some(()) = int.recv() => Signal::Int,
                    Some(()) = term.recv() => Signal::Term,
                    else => return,
                };
                if tx.borrow().is_some() {
                    let left = left.lock().map(|l| l.clone()).unwrap_or_default();
                    exit_now(got, &left);
                }
                let _ = tx.send(Some(got));
            }
        });
        Ok(Interrupt { rx, leaving })
    }

    /// A handle that never fires.
    pub fn none() -> Interrupt {
        let (_, rx) = watch::channel(None);
        Interrupt {
            rx,
            leaving: Arc::default(),
        }
    }

    /// The first signal, if one came.
    pub fn received(&self) -> Option<Signal> {
        *self.rx.borrow()
    }

    /// Waits for the first signal (at once if it came already); never
    /// returns on a handle that does not listen.
    pub async fn wait(&mut self) -> Signal {
        loop {
            if let Some(s) = *self.rx.borrow_and_update() {
                return s;
            }
            if self.rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// From now on a second signal leaves the deploy's journal for
    /// `recover`, and says so.
    pub fn journal_begun(&self) {
        if let Ok(mut l) = self.leaving.lock() {
            l.journal = true;
        }
    }
}

/// The second signal: say what is left and exit with the signal's code.
fn exit_now(signal: Signal, left: &Leaving) -> ! {
    let code = signal.exit_code();
    let what = if left.journal {
        format!(
            "interrupted again ({}): stopped at once; deploy {} is left unfinished \
             for `bluegreen recover` (or the next deploy) to finish or roll back",
            signal.name(),
            left.id
        )
    } else {
        format!(
            "interrupted again ({}): stopped at once, before the deploy's first step",
            signal.name()
        )
    };
    if left.json {
        let event = serde_json::json!({"event": "deploy", "status": "interrupted",
            "id": left.id, "exit_code": code, "error": what, "recover": left.journal});
        crate::output::write_stdout(&format!("{event}\n"));
    }
    crate::output::write_stderr(&format!("error: {what}\n"));
    std::process::exit(code.into())
}
