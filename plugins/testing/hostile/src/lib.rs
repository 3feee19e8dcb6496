//! Test-only: a pre-deploy plugin that attacks its sandbox (or the host:
//! endless recursion, a flood of log lines, findings of any size). The `attack`
//! setting picks what it tries; the host's tests assert the sandbox stops each
//! one with the right kind of error. Never put this in a real plugin directory.

use bluegreen_plugin::pre_deploy::{Deploy, Finding, Outcome, Severity, Verdict};
use std::hint::black_box;
use std::io::{Read, Write};

struct Hostile;

fn setting<'a>(d: &'a Deploy, key: &str) -> Result<&'a str, String> {
    d.settings
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| format!("setting `{key}` is required"))
}

fn outcome(verdict: Verdict, findings: Vec<Finding>) -> Result<Outcome, String> {
    Ok(Outcome { verdict, findings })
}

fn info(rule: &str, message: String) -> Finding {
    Finding {
        severity: Severity::Info,
        rule: rule.into(),
        message,
        file: None,
        line: None,
        fix: None,
    }
}

/// Whatever the sandbox lets through becomes a `block` carrying the evidence,
/// so a test can never mistake a breach for a pass.
fn breach(what: String) -> Result<Outcome, String> {
    outcome(Verdict::Block(format!("sandbox breached: {what}")), Vec::new())
}

fn http_get(url: &str) -> Result<u16, String> {
    use wasip2::http::types::{Fields, Method, OutgoingRequest, Scheme};
    let rest = url.strip_prefix("http://").ok_or("url must be http://")?;
    let (authority, path) =
        rest.split_once('/').map(|(a, p)| (a, format!("/{p}"))).unwrap_or((rest, "/".into()));
    let req = OutgoingRequest::new(Fields::new());
    req.set_method(&Method::Get).map_err(|()| "method")?;
    req.set_scheme(Some(&Scheme::Http)).map_err(|()| "scheme")?;
    req.set_authority(Some(authority)).map_err(|()| "authority")?;
    req.set_path_with_query(Some(&path)).map_err(|()| "path")?;
    let pending =
        wasip2::http::outgoing_handler::handle(req, None).map_err(|e| format!("{e:?}"))?;
    pending.subscribe().block();
    match pending.get() {
        Some(Ok(Ok(resp))) => Ok(resp.status()),
        Some(Ok(Err(e))) => Err(format!("{e:?}")),
        _ => Err("no response".into()),
    }
}

impl bluegreen_plugin::pre_deploy::Guest for Hostile {
    fn handle(d: Deploy) -> Result<Outcome, String> {
        match setting(&d, "attack")? {
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = black_box(n.wrapping_add(1));
                }
            }
            "sleep" => {
                // Blocked inside a host call, where epoch interruption cannot reach.
                std::thread::sleep(std::time::Duration::from_secs(3600));
                breach("slept an hour".into())
            }
            "memory" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(black_box(vec![7u8; 1 << 20]));
                }
            }
            "trap" => panic!("hostile plugin panicked on purpose"),
            "stdout" => {
                let line = [b'x'; 1023];
                let mut out = std::io::stdout().lock();
                for _ in 0..8 * 1024 {
                    // Ignore a refused write: the point is to push, not to crash.
                    let _ = out.write_all(&line).and_then(|()| out.write_all(b"\n"));
                }
                outcome(Verdict::Proceed, Vec::new())
            }
            "read-file" => {
                let path = setting(&d, "path")?;
                match std::fs::read_to_string(path) {
                    Ok(text) => breach(format!("read {path}: {text}")),
                    Err(e) => Err(format!("read {path}: {:?}: {e}", e.kind())),
                }
            }
            "write-file" => {
                let path = setting(&d, "path")?;
                match std::fs::write(path, b"written by a plugin") {
                    Ok(()) => breach(format!("wrote {path}")),
                    Err(e) => Err(format!("write {path}: {:?}: {e}", e.kind())),
                }
            }
            "http" => {
                let url = setting(&d, "url")?;
                match http_get(url) {
                    Ok(status) => breach(format!("GET {url} answered {status}")),
                    Err(e) => Err(format!("GET {url}: {e}")),
                }
            }
            "env" => {
                let vars: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
                let args: Vec<String> = std::env::args().collect();
                let mut stdin = String::new();
                let _ = std::io::stdin().read_to_string(&mut stdin);
                let cwd =
                    std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_default();
                if vars.is_empty() && args.is_empty() && stdin.is_empty() {
                    let found = format!("env 0, args 0, stdin 0 bytes, cwd `{cwd}`");
                    outcome(Verdict::Proceed, vec![info("ambient", found)])
                } else {
                    breach(format!("env {vars:?}, args {args:?}, stdin {} bytes", stdin.len()))
                }
            }
            "counter" => {
                // State must not survive between calls: each call sees 1.
                static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
                let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                outcome(Verdict::Proceed, vec![info("calls", n.to_string())])
            }
            "recursion" => {
                fn deeper(n: u64) -> u64 {
                    // `n` never reaches the bound: the stack runs out first.
                    if black_box(n) == u64::MAX { 0 } else { black_box(deeper(n + 1)) + 1 }
                }
                breach(format!("recursed without end and returned {}", deeper(0)))
            }
            "log-flood" => {
                let n: u64 = setting(&d, "lines")?.parse().map_err(|_| "lines: a number")?;
                for _ in 0..n {
                    bluegreen_plugin::pre_deploy::log::log(Severity::Info, "");
                }
                outcome(Verdict::Proceed, Vec::new())
            }
            "huge-findings" => {
                let mb: usize = setting(&d, "mb")?.parse().map_err(|_| "mb: a number")?;
                let findings =
                    (0..mb).map(|i| info("huge", format!("{i}").repeat(1 << 20))).collect();
                outcome(Verdict::Proceed, findings)
            }
            "text" => {
                // Terminal escapes (setting `text`) everywhere a plugin can put
                // text: stdout, stderr, a log line, then per `answer` an
                // `err`, a block with a finding, or a proceed with a finding.
                let text = setting(&d, "text")?;
                println!("{text}");
                eprintln!("{text}");
                bluegreen_plugin::pre_deploy::log::log(Severity::Warning, text);
                let finding = Finding {
                    severity: Severity::Error,
                    rule: text.into(),
                    message: text.into(),
                    file: Some(text.into()),
                    line: Some(1),
                    fix: Some(text.into()),
                };
                match setting(&d, "answer")? {
                    "err" => Err(text.into()),
                    "block" => outcome(Verdict::Block(text.into()), vec![finding]),
                    _ => outcome(Verdict::Proceed, vec![finding]),
                }
            }
            "block" => outcome(Verdict::Block("blocked on purpose".into()), Vec::new()),
            "empty-block" => outcome(Verdict::Block(String::new()), Vec::new()),
            other => Err(format!("unknown attack `{other}`")),
        }
    }
}

bluegreen_plugin::pre_deploy::export!(Hostile);
