//! Where a command's words go, decided in one place so every command follows
//! the same conventions: results on stdout (also with `-q`), progress and
//! hints only without `-q`, detail only with `-v` (on stderr, so `--json` on
//! stdout stays as it is), colour by one rule (`NO_COLOR`, `CLICOLOR_FORCE`,
//! else a terminal), and a reader that went away (`| head -1`) silences
//! stdout instead of panicking: the command still finishes what it started
//! (a deploy must not stop half-way because its log reader left).

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

/// `-q`, nothing, or `-v`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Verbosity {
    Quiet,
    #[default]
    Normal,
    Verbose,
}

static VERBOSITY: OnceLock<Verbosity> = OnceLock::new();
static STDOUT_GONE: AtomicBool = AtomicBool::new(false);
static STDOUT_ERROR: Mutex<Option<String>> = Mutex::new(None);

/// Set once, from the global flags, before the command runs.
pub fn set_verbosity(v: Verbosity) {
    let _ = VERBOSITY.set(v);
}

pub fn quiet() -> bool {
    VERBOSITY.get() == Some(&Verbosity::Quiet)
}

pub fn verbose() -> bool {
    VERBOSITY.get() == Some(&Verbosity::Verbose)
}

/// The colour rule, from no-color.org and bixense.com/clicolors: `NO_COLOR`
/// set and non-empty turns colour off; else `CLICOLOR_FORCE` set, non-empty
/// and not `0` turns it on; else colour when the stream is a terminal.
pub fn decide_color(no_color: Option<OsString>, force: Option<OsString>, terminal: bool) -> bool {
    if no_color.is_some_and(|v| !v.is_empty()) {
        return false;
    }
    if force.is_some_and(|v| !v.is_empty() && v != "0") {
        return true;
    }
    terminal
}

/// Whether text written to stdout may carry colour.
pub fn stdout_color() -> bool {
    static COLOR: OnceLock<bool> = OnceLock::new();
    *COLOR.get_or_init(|| {
        decide_color(
            std::env::var_os("NO_COLOR"),
            std::env::var_os("CLICOLOR_FORCE"),
            std::io::stdout().is_terminal(),
        )
    })
}

/// `s` in an SGR colour (`32` green, `31` red, `33` yellow, `2` dim) when
/// stdout may carry colour.
pub fn paint(code: &str, s: &str) -> String {
    if stdout_color() {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

/// Writes to stdout. A closed pipe (EPIPE) ends stdout quietly; another
/// error (a full disk) is kept for [`stdout_error`] and ends stdout too.
pub fn write_stdout(text: &str) {
    if STDOUT_GONE.load(Ordering::SeqCst) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        STDOUT_GONE.store(true, Ordering::SeqCst);
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            *STDOUT_ERROR.lock().unwrap_or_else(|p| p.into_inner()) =
                Some(format!("writing to standard output: {e}"));
        }
    }
}

/// True once stdout's reader went away: a command that would print forever
/// (`platform logs --follow`) stops.
pub fn stdout_gone() -> bool {
    STDOUT_GONE.load(Ordering::SeqCst)
}

/// The first write to stdout that failed other than by a closed pipe.
pub fn stdout_error() -> Option<String> {
    STDOUT_ERROR
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
}

/// Writes to stderr; nothing is left to tell if that fails.
pub fn write_stderr(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes()).and_then(|()| err.flush());
}

/// A detail line for `-v` only (each HTTP call, each plugin log line), on
/// stderr so the result on stdout is the same with or without `-v`.
pub fn detail(line: &str) {
    if verbose() {
        write_stderr(&format!("  · {line}\n"));
    }
}

/// A line of the command's result on stdout, shown also with `-q`.
macro_rules! outln {
    () => {
        $crate::output::write_stdout("\n")
    };
    ($($arg:tt)*) => {
        $crate::output::write_stdout(&format!("{}\n", format_args!($($arg)*)))
    };
}

/// Progress or a hint on stdout, left out with `-q`.
macro_rules! sayln {
    ($($arg:tt)*) => {
        if !$crate::output::quiet() {
            $crate::output::outln!($($arg)*)
        }
    };
}

pub(crate) use {outln, sayln};

#[cfg(test)]
mod tests {
    use super::decide_color;

    #[test]
    fn no_color_wins_then_force_then_the_terminal() {
        let s = |v: &str| Some(v.into());
        assert!(!decide_color(s("1"), s("1"), true));
        assert!(
            decide_color(s(""), s("1"), false),
            "empty NO_COLOR is unset"
        );
        assert!(!decide_color(None, s("0"), false));
        assert!(!decide_color(None, s(""), false));
        assert!(decide_color(None, None, true));
        assert!(!decide_color(None, None, false));
    }
}
