//! A small W3C WebDriver client for the dashboard's tests: Debian's
//! chromedriver on a free 127.0.0.1 port, one headless Chromium session
//! with a fresh profile, spoken to as JSON over reqwest. The machine's
//! network is closed, so the flags turn off everything Chromium would
//! fetch by itself (QUIC, sync, component updates, background traffic).
//!
//! Everything it starts is stopped when it drops, also when a test fails:
//! the session is deleted (Chromium quits), chromedriver is killed, and any
//! process still running with this session's profile directory (found by
//! its pid in /proc, never by name) is killed too.

use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// W3C's key for an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    driver: Child,
    base: String,
    session: Option<String>,
    profile: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
}

impl Browser {
    /// chromedriver up (a bounded wait until it answers ready), then a
    /// headless Chromium session `width`×`height`.
    pub fn start(width: u32, height: u32) -> Browser {
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {CHROMEDRIVER}: {e} (scripts/test installs it)"));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut b = Browser {
            driver,
            base: format!("http://127.0.0.1:{port}"),
            session: None,
            profile: tempfile::tempdir().unwrap(),
            rt,
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = b.call("GET", "/status", None).ok();
            if ready.is_some_and(|v| v["ready"] == true) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not answer within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            &format!("--window-size={width},{height}"),
            &format!("--user-data-dir={}", b.profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args}}}});
        let s = b
            .call("POST", "/session", Some(caps))
            .expect("a Chromium session");
        b.session = Some(s["sessionId"].as_str().expect("a session id").to_string());
        b
    }

    /// One WebDriver command; its `value`, or the error it answered.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        self.rt.block_on(async {
            let mut req = self
                .http
                .request(method, &url)
                .timeout(Duration::from_secs(60));
            if let Some(b) = body {
                req = req.json(&b);
            }
            let resp = req.send().await.map_err(|e| format!("{url}: {e}"))?;
            let ok = resp.status().is_success();
            let v: Value = resp.json().await.map_err(|e| format!("{url}: {e}"))?;
            match ok {
                true => Ok(v["value"].clone()),
                false => Err(format!("{url}: {}", v["value"])),
            }
        })
    }

    fn session(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let id = self.session.as_deref().expect("a session");
        self.call(method, &format!("/session/{id}{path}"), body)
            .unwrap_or_else(|e| panic!("WebDriver: {e}"))
    }

    pub fn goto(&self, url: &str) {
        self.session("POST", "/url", Some(json!({"url": url})));
    }

    /// Runs `script` (a function body) in the page; what it returns.
    pub fn eval(&self, script: &str) -> Value {
        self.session(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }

    fn element(&self, css: &str) -> String {
        let e = self.session(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        e[ELEMENT].as_str().expect("an element").to_string()
    }

    /// A click as a user's: WebDriver scrolls to the element and clicks it.
    pub fn click(&self, css: &str) {
        let id = self.element(css);
        self.session("POST", &format!("/element/{id}/click"), Some(json!({})));
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css);
        self.session(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({"text": text})),
        );
    }

    /// The viewport as PNG.
    pub fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let b64 = self.session("GET", "/screenshot", None);
        base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().expect("base64 PNG"))
            .unwrap()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(id) = self.session.take() {
            let _ = self.call("DELETE", &format!("/session/{id}"), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        // A Chromium the session left behind: by the profile only it uses.
        let mark = format!("--user-data-dir={}", self.profile.path().display());
        for pid in pids_with_arg(&mark) {
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    }
}

/// Processes with `arg` among their arguments, from /proc.
pub fn pids_with_arg(arg: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.split(|b| *b == 0).any(|a| a == arg.as_bytes()))
        })
        .collect()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
