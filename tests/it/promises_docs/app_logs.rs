//! What the local platform keeps of an app's output (`platforms/index.md`:
//! "each app's log rotated once past 1 MiB with one previous file kept"; it
//! said "logs capped at 1 MiB", but two files are kept): an app that writes
//! about 3 MiB as it starts, and what is left of it on disk and in
//! `bluegreen platform logs`.

use crate::deploy::Fixture;
use crate::util::{succeeded, wait_until};
use std::path::PathBuf;
use std::time::Duration;

const MIB: u64 = 1 << 20;
/// One line of the app's output: `line NNNNN ` and 1,000 `x`, and its
/// newline (the log adds no prefix to an app's own output).
const LINE: u64 = 1011;
const LINES: u64 = 3000;

/// Each color's log keeps its newest lines in its file, rotated once it
/// has grown past 1 MiB to `.log.1`, the one previous file kept: about
/// 2 MiB of the 3 written, the oldest lines gone. `platform logs` shows
/// the current file.
#[test]
fn an_apps_log_rotates_past_1_mib_keeping_one_previous_file() {
    let f = Fixture::new("");
    std::fs::write(
        f.root.path().join("app/app.py"),
        format!(
            "for i in range({LINES}):\n    print('line %05d ' % i + 'x' * 1000, flush=True)\n\
             exec(open('serve.py').read())\n"
        ),
    )
    .unwrap();
    std::fs::write(
        f.root.path().join("app/serve.py"),
        crate::util::py_app("", "200", r#""ok\n""#),
    )
    .unwrap();
    succeeded(f.deploy("v1"));

    let logs = f.home().join("platform/logs");
    let last = format!("line {:05} ", LINES - 1);
    let rotated = || -> Vec<PathBuf> {
        std::fs::read_dir(&logs)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .filter(|p| {
                std::fs::read_to_string(p).is_ok_and(|t| t.contains(&last))
                    && p.with_extension("log.1").exists()
            })
            .collect()
    };
    // Both colors run the app; the daemon copies their output as it comes.
    wait_until(
        "both logs hold the last line",
        Duration::from_secs(60),
        || rotated().len() == 2,
    );
    for log in rotated() {
        let current = std::fs::read_to_string(&log).unwrap();
        let previous = std::fs::read_to_string(log.with_extension("log.1")).unwrap();
        let size = |t: &str| t.len() as u64;
        // A file rotates at the first line written once it is over 1 MiB:
        // the previous one ends just past 1 MiB, the current one is under
        // 1 MiB and a line.
        assert!(
            size(&previous) > MIB && size(&previous) <= MIB + LINE,
            "{}: the previous file has {} bytes",
            log.display(),
            size(&previous)
        );
        assert!(
            size(&current) <= MIB + LINE,
            "{}: {} bytes",
            log.display(),
            size(&current)
        );
        assert!(
            !current.contains("line 00000 ") && !previous.contains("line 00000 "),
            "the oldest lines are gone: {}",
            log.display()
        );
        // Nothing lost at the rotation: the current file goes on from the
        // line after the previous file's last.
        let numbers = |t: &str| -> Vec<u64> {
            t.lines()
                .filter_map(|l| l.strip_prefix("line ")?.get(..5)?.parse().ok())
                .collect()
        };
        let (old, new) = (numbers(&previous), numbers(&current));
        assert_eq!(
            old.last().map(|n| n + 1),
            new.first().copied(),
            "{}",
            log.display()
        );
        assert_eq!(new.last(), Some(&(LINES - 1)));
    }

    let out = succeeded(f.run(&["platform", "logs", "shop-blue"]));
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains(&last), "the newest line is shown");
    assert!(
        (shown.len() as u64) <= MIB + LINE,
        "`platform logs` printed {} bytes",
        shown.len()
    );
}
