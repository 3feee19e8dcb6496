//! Output on a real terminal (a pseudo-terminal the test holds the other end
//! of): the spinner a waiting step gets, colour by default, and the step
//! lines intact around the spinner. Pipes (every other test) see neither
//! spinner nor colour; `cli::colour_follows_no_color_and_clicolor_force` and
//! `cli::quiet_verbose_and_colour_on_a_real_deploy` cover that side.

use crate::deploy::Fixture;
use serde_json::json;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// Runs `c` with stdout and stderr on a new pseudo-terminal (100×30) and
/// returns its exit code and everything it wrote there.
fn on_terminal(mut c: Command) -> (Option<i32>, String) {
    let (mut master, mut slave) = (-1, -1);
    let size = libc::winsize {
        ws_row: 30,
        ws_col: 100,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two descriptors it opened into the pointers.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors are ours alone from here on.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    c.stdin(Stdio::null())
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave));
    let mut child = c.spawn().expect("spawning bluegreen");
    // Drop our copies of the slave end (moved into `c`): once the child
    // exits, reading the master ends (EIO) instead of waiting forever.
    drop(c);
    let reader = std::thread::spawn(move || {
        let mut file = std::fs::File::from(master);
        let mut all = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match file.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&all).into_owned()
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (code, reader.join().unwrap())
}

/// `cmd` with the terminal's environment: no colour variables, a real TERM.
fn terminal_cmd(f: &Fixture, args: &[&str]) -> Command {
    let mut c = f.cmd(args);
    c.env_remove("NO_COLOR")
        .env_remove("CLICOLOR")
        .env_remove("CLICOLOR_FORCE")
        .env("TERM", "xterm-256color");
    c
}

/// The step lines (`✓ [ i/n] …`) in `screen`, escape sequences taken out.
fn step_lines(screen: &str) -> Vec<String> {
    let plain = strip(screen);
    plain
        .split(['\n', '\r'])
        .filter(|l| l.starts_with("✓ ["))
        .map(str::to_string)
        .collect()
}

/// `s` without CSI sequences (`ESC [ … final byte`).
fn strip(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

#[test]
fn on_a_terminal_waiting_steps_spin_and_every_step_line_stays_whole() {
    let f = Fixture::new("");

    let (code, screen) = on_terminal(terminal_cmd(&f, &["deploy", "--release", "t1"]));
    assert_eq!(code, Some(0), "{screen}");
    assert!(screen.contains(FRAMES), "a waiting step spins: {screen:?}");
    assert!(
        screen.contains("\x1b[32m✓\x1b[0m"),
        "colour on a terminal: {screen:?}"
    );
    // Every step got its line once, in order, whole, despite the spinner
    // drawn over the same line while it ran; but a hook without plugins,
    // folded away (its number is skipped).
    let lines = step_lines(&screen);
    let plan = f.run(&["plan", "--json", "--release", "t1"]);
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let steps = plan["steps"].as_array().unwrap();
    let total = steps.len();
    let shown: Vec<usize> = (1..=total)
        .filter(|i| !(steps[i - 1]["step"] == "hook" && steps[i - 1]["plugins"] == json!([])))
        .collect();
    assert!(shown.len() < total - 10, "{shown:?} of {total}");
    assert_eq!(lines.len(), shown.len(), "{lines:#?}");
    for (line, i) in lines.iter().zip(&shown) {
        assert!(
            line.starts_with(&format!("✓ [{i:>2}/{total}] ")),
            "{lines:#?}"
        );
        assert!(line.trim_end().ends_with("s)"), "{line:?}");
        assert!(!line.contains(FRAMES), "no spinner left in {line:?}");
    }
    assert!(strip(&screen).contains("Done in "), "{screen:?}");

    // NO_COLOR on a terminal: no colour, the spinner still turns.
    let mut c = terminal_cmd(&f, &["deploy", "--release", "t2"]);
    c.env("NO_COLOR", "1");
    let (code, screen) = on_terminal(c);
    assert_eq!(code, Some(0), "{screen}");
    assert!(screen.contains(FRAMES), "{screen:?}");
    for sgr in ["\x1b[31m", "\x1b[32m", "\x1b[33m", "\x1b[2m"] {
        assert!(!screen.contains(sgr), "{sgr:?} in {screen:?}");
    }
    assert_eq!(step_lines(&screen).len(), shown.len(), "{screen:?}");

    // -q on a terminal: the result line only, no spinner.
    let (code, screen) = on_terminal(terminal_cmd(&f, &["deploy", "--release", "t3", "-q"]));
    assert_eq!(code, Some(0), "{screen}");
    assert!(!screen.contains(FRAMES), "{screen:?}");
    let plain = strip(&screen);
    assert_eq!(plain.trim().lines().count(), 1, "{plain:?}");
    assert!(plain.trim().starts_with("Done in "), "{plain:?}");
}
