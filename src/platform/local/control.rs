//! Controlling the daemon from another process: finding it (`daemon.json` and
//! the token file in the state directory), starting it in the background when
//! nothing answers, and stopping it.

use super::daemon::{Config, Endpoint};
use crate::platform::PlatformError;
use crate::platform::client::CfClient;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::{Duration, Instant};

const START_TIMEOUT: Duration = Duration::from_secs(15);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

fn read_endpoint(dir: &Path) -> Option<Endpoint> {
    serde_json::from_slice(&std::fs::read(dir.join("daemon.json")).ok()?).ok()
}

/// A client for the daemon whose state lives in `dir`, if one answers. The
/// token goes only to the daemon `daemon.json` names, and only while that
/// very process (pid and start time) is alive: a stale file's port may be
/// anyone's by now.
pub async fn connect(dir: &Path) -> Option<(Endpoint, CfClient)> {
    let endpoint = read_endpoint(dir)?;
    if !ours(&endpoint) {
        return None;
    }
    let token = std::fs::read_to_string(dir.join("token")).ok()?;
    let client = CfClient::with_token(&endpoint.api_url, token.trim());
    client.find_org(super::records::ORG_NAME).await.ok()?;
    Some((endpoint, client))
}

/// Connects to the daemon, starting it in the background first if needed.
pub async fn ensure_running(config: &Config) -> Result<(Endpoint, CfClient), PlatformError> {
    if let Some(found) = connect(&config.dir).await {
        return Ok(found);
    }
    super::daemon::check_ports(config)?;
    std::fs::create_dir_all(&config.dir).map_err(|source| PlatformError::Io {
        path: config.dir.clone(),
        source,
    })?;
    let log_path = config.dir.join("daemon.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|source| PlatformError::Io {
            path: log_path.clone(),
            source,
        })?;
    let exe = std::env::current_exe().map_err(|source| PlatformError::Io {
        path: "bluegreen".into(),
        source,
    })?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["platform", "start", "--foreground"])
        .arg("--router-port")
        .arg(config.router_port.to_string())
        .arg("--api-port")
        .arg(config.api_port.to_string())
        .arg("--max-upload")
        .arg(config.max_upload.to_string())
        .env(
            "BLUEGREEN_HOME",
            config.dir.parent().unwrap_or(Path::new(".")),
        )
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().map_err(|source| PlatformError::Io {
            path: log_path.clone(),
            source,
        })?)
        .stderr(log);
    // SAFETY: setsid is async-signal-safe; it detaches the daemon from our
    // terminal and process group so it outlives this command.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    // What the log holds already is an earlier start's.
    let logged = std::fs::metadata(&log_path).map_or(0, |m| m.len());
    let mut child = cmd.spawn().map_err(|source| PlatformError::Io {
        path: "bluegreen platform start".into(),
        source,
    })?;
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if let Some((endpoint, client)) = connect(&config.dir).await
            && endpoint.pid == child.id()
        {
            return Ok((endpoint, client));
        }
        // A daemon that could not start (a port taken since the check)
        // says why in its log: no point waiting out the timeout.
        if let Ok(Some(status)) = child.try_wait() {
            return Err(PlatformError::Local(format!(
                "the daemon stopped as it started ({status}): {}",
                log_since(&log_path, logged)
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(PlatformError::Local(format!(
        "the daemon did not answer within {}s; {}:\n{}",
        START_TIMEOUT.as_secs(),
        log_path.display(),
        log_since(&log_path, logged)
    )))
}

/// The last lines (up to 5) the daemon wrote to its log after `offset`.
fn log_since(path: &Path, offset: u64) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(text.get(offset as usize..).unwrap_or_default());
    let tail: Vec<&str> = text.lines().rev().take(5).collect();
    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
}

/// Whether the daemon `endpoint` names is still that process, not another
/// one that got its pid since. A `daemon.json` written before start times
/// were recorded is trusted only while its pid runs a bluegreen daemon.
fn ours(endpoint: &Endpoint) -> bool {
    // A zombie has exited; only its parent has yet to notice.
    let zombie = std::fs::read_to_string(format!("/proc/{}/stat", endpoint.pid))
        .ok()
        .and_then(|s| {
            s.rsplit(')')
                .next()
                .map(|r| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false);
    if zombie || !super::daemon::pid_alive(endpoint.pid) {
        return false;
    }
    match endpoint.started {
        Some(started) => super::daemon::process_started(endpoint.pid) == Some(started),
        None => std::fs::read(format!("/proc/{}/cmdline", endpoint.pid))
            .map(|c| {
                let args: Vec<&[u8]> = c.split(|b| *b == 0).collect();
                args.first().is_some_and(|a| a.ends_with(b"bluegreen"))
                    && args
                        .windows(2)
                        .any(|w| w == [&b"platform"[..], &b"start"[..]])
            })
            .unwrap_or(false),
    }
}

/// Stops the daemon (its apps stop with it). False if none was running.
pub async fn stop(dir: &Path) -> Result<bool, PlatformError> {
    let Some(endpoint) = read_endpoint(dir) else {
        return Ok(false);
    };
    if !ours(&endpoint) {
        let _ = std::fs::remove_file(dir.join("daemon.json"));
        return Ok(false);
    }
    // SAFETY: signalling the daemon process recorded in our state directory.
    unsafe { libc::kill(endpoint.pid as i32, libc::SIGTERM) };
    let deadline = Instant::now() + STOP_TIMEOUT;
    while ours(&endpoint) {
        if Instant::now() > deadline {
            // SAFETY: as above.
            unsafe { libc::kill(endpoint.pid as i32, libc::SIGKILL) };
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // It has exited; give its parent a moment to reap it, so the pid is
    // gone when we say it stopped (bounded: a parent may never reap).
    let reaped = Instant::now() + Duration::from_secs(2);
    while super::daemon::pid_alive(endpoint.pid) && Instant::now() < reaped {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(true)
}
