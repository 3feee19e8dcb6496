//! A `bluegreen` child a test talks to while it runs: its output as it
//! arrives (read by threads, so a full pipe never stalls it), signals, and
//! bounded waits (the Ctrl-C and live-`status` tests of «19 · The first
//! hour»).

use std::io::Read;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A child's stdout and stderr as they arrive, read by two threads.
pub struct Output {
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    /// One message per pipe read to its end.
    closed: Mutex<std::sync::mpsc::Receiver<()>>,
}

impl Output {
    pub fn of(child: &mut Child) -> Output {
        let (closing, closed) = std::sync::mpsc::channel();
        let read = |mut pipe: Box<dyn Read + Send>| {
            let buf = Arc::new(Mutex::new(String::new()));
            let (to, closing) = (buf.clone(), closing.clone());
            std::thread::spawn(move || {
                let mut chunk = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    to.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&chunk[..n]));
                }
                let _ = closing.send(());
            });
            buf
        };
        Output {
            stdout: read(Box::new(child.stdout.take().unwrap())),
            stderr: read(Box::new(child.stderr.take().unwrap())),
            closed: Mutex::new(closed),
        }
    }

    /// Stdout and stderr whole, once the command exited: its last lines
    /// may still be in the pipes when its exit is seen (up to 10 s).
    pub fn ended(&self) -> (String, String) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let closed = self.closed.lock().unwrap();
        for _ in 0..2 {
            let left = deadline.saturating_duration_since(Instant::now());
            if closed.recv_timeout(left).is_err() {
                break;
            }
        }
        (self.stdout(), self.stderr())
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits (up to `within`) until stdout contains `what`.
    pub fn wait_for(&self, child: &mut Child, what: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.stdout().contains(what) {
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "ended ({status}) before {what:?}:\n{}\n{}",
                    self.stdout(),
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no {what:?} within {within:?}:\n{}",
                self.stdout()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

pub fn sigint(child: &Child) {
    signal(child, libc::SIGINT);
}

pub fn signal(child: &Child, signal: i32) {
    // SAFETY: signalling our own child, which has not been reaped yet.
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
}

/// Waits (up to `within`) for `child` to exit; its exit code.
pub fn exit_code(child: &mut Child, within: Duration) -> Option<i32> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running {within:?} after the signal");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
