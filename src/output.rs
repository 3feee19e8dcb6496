//! Where a command's words go, decided in one place so every command follows
//! the same conventions: results on stdout (also with `-q`), progress and
//! hints only without `-q`, detail only with `-v` (on stderr, so `--json` on
//! stdout stays as it is), text or JSON chosen once per command
//! ([`Printer`]), colour by one rule (`NO_COLOR`, `CLICOLOR_FORCE`,
//! `CLICOLOR`, else a terminal), and a reader that went away (`| head -1`)
//! silences stdout instead of panicking: the command still finishes what it
//! started (a deploy must not stop half-way because its log reader left).
//!
//! Text is always styled ([`paint`]); `anstream` strips the styles on the way
//! out when the rule says no colour, so no caller decides about colour.

mod printer;
mod spinner;

pub use printer::Printer;
pub use spinner::{Spinner, spinner};

use anstream::{AutoStream, ColorChoice};
use anstyle::{AnsiColor, Style};
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
/// and not `0` turns it on; else `CLICOLOR=0` turns it off; else colour when
/// the stream is a terminal that is not `TERM=dumb`. (anstream's own rule
/// takes `CLICOLOR_FORCE=0` as forcing, which the README says it is not.)
pub fn decide_color(env: impl Fn(&str) -> Option<OsString>, terminal: bool) -> bool {
    let set = |name: &str| env(name).filter(|v| !v.is_empty());
    if set("NO_COLOR").is_some() {
        return false;
    }
    if set("CLICOLOR_FORCE").is_some_and(|v| v != "0") {
        return true;
    }
    if env("CLICOLOR").is_some_and(|v| v == "0") {
        return false;
    }
    terminal && env("TERM").is_none_or(|t| t != "dumb")
}

fn choice(terminal: bool) -> ColorChoice {
    if decide_color(|name| std::env::var_os(name), terminal) {
        ColorChoice::Always
    } else {
        ColorChoice::Never
    }
}

fn stdout_choice() -> ColorChoice {
    static CHOICE: OnceLock<ColorChoice> = OnceLock::new();
    *CHOICE.get_or_init(|| choice(std::io::stdout().is_terminal()))
}

fn stderr_choice() -> ColorChoice {
    static CHOICE: OnceLock<ColorChoice> = OnceLock::new();
    *CHOICE.get_or_init(|| choice(std::io::stderr().is_terminal()))
}

/// A success mark (`✓`).
pub const GOOD: Style = AnsiColor::Green.on_default();
/// A failure, a block, an error finding.
pub const BAD: Style = AnsiColor::Red.on_default();
/// A warning, an attempt that will be retried.
pub const WARN: Style = AnsiColor::Yellow.on_default();
/// Secondary text (a step's duration).
pub const DIM: Style = Style::new().dimmed();

/// `s` in `style`; the style is stripped on the way out when the stream may
/// not carry colour.
pub fn paint(style: Style, s: &str) -> String {
    format!("{style}{s}{style:#}")
}

/// Writes our text to stdout, its styles kept or stripped by the colour rule.
/// A closed pipe (EPIPE) ends stdout quietly; another error (a full disk) is
/// kept for [`stdout_error`] and ends stdout too.
pub fn write_stdout(text: &str) {
    write_out(text, true);
}

/// Writes data that is not ours (an app's log, a generated script) to stdout
/// as it is, with the same handling of a closed pipe.
pub fn write_stdout_verbatim(text: &str) {
    write_out(text, false);
}

fn write_out(text: &str, styled: bool) {
    if STDOUT_GONE.load(Ordering::SeqCst) {
        return;
    }
    let result = spinner::suspended(|| {
        let out = std::io::stdout().lock();
        let choice = if styled {
            stdout_choice()
        } else {
            ColorChoice::AlwaysAnsi
        };
        let mut out = AutoStream::new(out, choice);
        out.write_all(text.as_bytes()).and_then(|()| out.flush())
    });
    if let Err(e) = result {
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

/// Writes to stderr (errors, `-v` detail), by the same colour rule; nothing
/// is left to tell if that fails.
pub fn write_stderr(text: &str) {
    spinner::suspended(|| {
        let mut err = AutoStream::new(std::io::stderr().lock(), stderr_choice());
        let _ = err.write_all(text.as_bytes()).and_then(|()| err.flush());
    });
}

/// Text that is not ours (a plugin's, an app's, a server's) as it may reach a
/// terminal: the one function that decides what is shown raw, whatever the
/// command and stream. Control characters (C0 but tab, DEL, C1) are shown
/// escaped (`\u{1b}`): escape sequences could retitle the window, clear the
/// screen, recolour text or hide a block. So are the bidi overrides and
/// isolates, which reorder what is shown, and a line break, so a plugin cannot
/// forge a line of ours. A text is cut at 2000 characters.
pub fn printable(s: &str) -> String {
    escape(s, false, Some(2000))
}

/// [`printable`] for text of several lines (an error chain, an app's log):
/// its line breaks kept, every line escaped, nothing cut.
pub fn printable_lines(s: &str) -> String {
    escape(s, true, None)
}

/// What [`printable`] never shows raw (and `--json` never writes raw):
/// every control character but tab, and the bidi overrides and isolates.
pub(crate) fn shown_escaped(c: char) -> bool {
    (c.is_control() && c != '\t') || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn escape(s: &str, keep_newlines: bool, max: Option<usize>) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.chars().enumerate() {
        if Some(i) == max {
            out.push_str("… (cut)");
            break;
        }
        if shown_escaped(c) && !(keep_newlines && c == '\n') {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
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
    use super::{GOOD, decide_color, paint, printable, printable_lines};
    use std::ffi::OsString;

    fn env<'a>(vars: &'a [(&str, &str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.into())
    }

    #[test]
    fn no_color_wins_then_force_then_clicolor_then_the_terminal() {
        let both = [("NO_COLOR", "1"), ("CLICOLOR_FORCE", "1")];
        assert!(!decide_color(env(&both), true));
        let empty = [("NO_COLOR", ""), ("CLICOLOR_FORCE", "1")];
        assert!(decide_color(env(&empty), false), "empty NO_COLOR is unset");
        assert!(!decide_color(env(&[("CLICOLOR_FORCE", "0")]), false));
        assert!(!decide_color(env(&[("CLICOLOR_FORCE", "")]), false));
        assert!(!decide_color(env(&[("CLICOLOR", "0")]), true));
        assert!(decide_color(env(&[("CLICOLOR", "1")]), true));
        assert!(!decide_color(env(&[("TERM", "dumb")]), true));
        assert!(decide_color(env(&[("TERM", "xterm")]), true));
        assert!(decide_color(env(&[]), true));
        assert!(!decide_color(env(&[]), false));
    }

    /// Defect 12 of «7 · Hardening»: plugin text reached the terminal raw.
    #[test]
    fn defect_12_plugin_text_cannot_send_escape_sequences() {
        let hostile = "ok\x1b[2K\r\x1b[32m✓ all good\x07";
        let shown = printable(hostile);
        assert!(!shown.chars().any(|c| c.is_control()), "{shown:?}");
        assert!(shown.contains("\\u{1b}[2K"), "{shown}");
        assert_eq!(
            printable(&"x".repeat(5000)).chars().count(),
            2000 + "… (cut)".chars().count()
        );
        assert_eq!(printable("tab\tand ünïcode"), "tab\tand ünïcode");
    }

    /// Defect 5 of «12 · Hardening, round two»: C1 controls (`\u{9b}` is a
    /// CSI to some terminals), DEL and bidi overrides are escaped too, and
    /// text of several lines keeps its line breaks and nothing else.
    #[test]
    fn defect_5_one_escaping_function_for_every_control() {
        let shown = printable("a\u{9b}2Jb\u{7f}c\u{202e}d\ne");
        assert_eq!(shown, "a\\u{9b}2Jb\\u{7f}c\\u{202e}d\\ne");
        let lines = printable_lines("one\x1b]0;title\x07\ntwo\r\n");
        assert_eq!(lines, "one\\u{1b}]0;title\\u{7}\ntwo\\r\n");
        // Escaping what is already escaped changes nothing.
        assert_eq!(printable_lines(&lines), lines);
    }

    #[test]
    fn paint_writes_sgr_codes_that_anstream_strips() {
        let green = paint(GOOD, "✓");
        assert_eq!(green, "\x1b[32m✓\x1b[0m");
        assert_eq!(anstream::adapter::strip_str(&green).to_string(), "✓");
    }
}
