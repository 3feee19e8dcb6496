//! The spinner for a step that waits (a push, a health check, a lock): drawn
//! by indicatif on stdout, and only there when stdout is a terminal and not
//! `-q`, so a pipe, a CI log and `--json` never see it. Everything else the
//! printer writes, to stdout or stderr, first lifts the spinner off its line
//! ([`suspended`]), so a line printed mid-step does not land inside it.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

/// The spinner on screen, if any: one at a time (steps run one by one).
static ACTIVE: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// The frames, then what indicatif shows once finished (cleared anyway).
const FRAMES: [&str; 11] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏", " "];

/// A running spinner; stopped and its line cleared when dropped.
#[derive(Default)]
pub struct Spinner(Option<ProgressBar>);

impl Spinner {
    /// No spinner: what a step that does not wait gets.
    pub fn none() -> Spinner {
        Spinner(None)
    }
}

/// `⠋ {text} 1.2s`, redrawn every 100 ms, until the returned [`Spinner`] is
/// dropped; nothing when stdout is not a terminal or with `-q`.
pub fn spinner(text: String) -> Spinner {
    if super::quiet() || super::stdout_gone() || !std::io::stdout().is_terminal() {
        return Spinner(None);
    }
    let style = ProgressStyle::with_template("{spinner} {msg} {secs}")
        .expect("a valid spinner template")
        .tick_strings(&FRAMES)
        .with_key(
            "secs",
            |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.1}s", state.elapsed().as_secs_f64());
            },
        );
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stdout())
        .with_style(style)
        .with_message(text);
    bar.enable_steady_tick(Duration::from_millis(100));
    *lock() = Some(bar.clone());
    Spinner(Some(bar))
}

impl Drop for Spinner {
    fn drop(&mut self) {
        if let Some(bar) = self.0.take() {
            // Forget it first: `suspended` holds no lock while it writes, so
            // the order of the two locks never inverts.
            lock().take();
            bar.finish_and_clear();
        }
    }
}

fn lock() -> std::sync::MutexGuard<'static, Option<ProgressBar>> {
    ACTIVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs `write` with the spinner (if one runs) lifted off the screen, then
/// draws it again under what was written.
pub(super) fn suspended<R>(write: impl FnOnce() -> R) -> R {
    let active = lock().clone();
    match active {
        Some(bar) => bar.suspend(write),
        None => write(),
    }
}
