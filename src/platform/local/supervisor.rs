//! Runs apps as supervised child processes, one per instance of each process
//! type (`web` ×N, `worker` ×M): `PORT` and `CF_INSTANCE_INDEX` set, the
//! droplet as working directory, output into the app's capped log, restarted
//! with backoff after a crash, stopped with SIGTERM then SIGKILL after a
//! grace period. Also runs one-off tasks (migrations) in a droplet.
//!
//! A stop reaches every process a run started, also those that left its
//! process group (`tracking.rs`); and nothing bound to a service starts
//! while the service is not proven up and ours (`pg_check.rs`), restarts
//! after a crash included.

use super::pg_check::Gate;
use super::pidfiles::PidFile;
use super::tracking::{Tracked, Tracking};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

/// Logs rotate past this size (one previous file is kept).
const LOG_CAP: u64 = 1 << 20;
/// A longer output line is cut here (the rest up to its newline is dropped).
const LINE_CAP: usize = 16 << 10;
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// What to run for one app.
#[derive(Clone, Debug)]
pub struct RunSpec {
    pub app_guid: String,
    pub app_name: String,
    pub command: String,
    pub dir: PathBuf,
    pub env: BTreeMap<String, String>,
    /// `port`: running once the port accepts connections; `process`: once
    /// spawned; `http`: once `endpoint` answers 2xx on the port.
    pub health_check: String,
    pub endpoint: Option<String>,
    /// The process type (`web`, `worker`, ...) and the instance's index.
    pub kind: String,
    pub index: u32,
    /// The bound services, checked before every start of a process.
    pub gates: Vec<Gate>,
    /// The guid of the droplet it runs.
    pub droplet: String,
    /// Who started it: empty for a start or a scale, a deployment's guid
    /// (`rollout.rs`) for the instances it brings up beside the old ones,
    /// so one index can run twice, on two droplets, during a rollout.
    pub generation: String,
}

impl RunSpec {
    /// The instance's key: unique per app, process type, index and
    /// generation.
    pub fn key(&self) -> String {
        let key = format!("{}/{}/{}", self.app_guid, self.kind, self.index);
        if self.generation.is_empty() {
            key
        } else {
            format!("{key}#{}", self.generation)
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Starting,
    Running,
    Crashed,
    Down,
}

impl State {
    pub fn cf_name(self) -> &'static str {
        match self {
            State::Starting => "STARTING",
            State::Running => "RUNNING",
            State::Crashed => "CRASHED",
            State::Down => "DOWN",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Status {
    pub state: State,
    pub port: u16,
    pub since: Instant,
    pub restarts: u32,
    /// The process group leader while a process runs.
    pub pid: Option<u32>,
}

struct Instance {
    app_guid: String,
    kind: String,
    index: u32,
    droplet: String,
    generation: Arc<str>,
    /// Taken off the router before it stops (`retire`).
    draining: bool,
    status: Arc<Mutex<Status>>,
    stop: watch::Sender<bool>,
    done: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
pub struct Supervisor {
    instances: Arc<Mutex<HashMap<String, Instance>>>,
    logs: PathBuf,
    /// Where running process groups are recorded (see `pidfiles`).
    run: PathBuf,
    grace: Duration,
    tracking: Tracking,
}

impl Supervisor {
    pub fn new(logs: PathBuf, run: PathBuf, grace: Duration, tracking: Tracking) -> Supervisor {
        Supervisor {
            instances: Arc::default(),
            logs,
            run,
            grace,
            tracking,
        }
    }

    pub fn log_path(&self, app_guid: &str) -> PathBuf {
        self.logs.join(format!("{app_guid}.log"))
    }

    /// Stops every instance of the app, then starts one per spec.
    pub async fn start_app(&self, app_guid: &str, specs: Vec<RunSpec>) {
        self.stop(app_guid).await;
        for spec in specs {
            self.start(spec);
        }
    }

    /// Starts the specs whose index has no instance (of any generation);
    /// the others go on.
    pub fn start_missing(&self, specs: Vec<RunSpec>) {
        for spec in specs {
            let present = self.instances.lock().unwrap().values().any(|i| {
                i.app_guid == spec.app_guid && i.kind == spec.kind && i.index == spec.index
            });
            if !present {
                self.start(spec);
            }
        }
    }

    /// Starts one instance (its key must not be running).
    pub fn start(&self, spec: RunSpec) {
        let status = Arc::new(Mutex::new(Status {
            state: State::Starting,
            port: 0,
            since: Instant::now(),
            restarts: 0,
            pid: None,
        }));
        let (stop, stop_rx) = watch::channel(false);
        let log = self.log_path(&spec.app_guid);
        let key = spec.key();
        let (app_guid, kind, index) = (spec.app_guid.clone(), spec.kind.clone(), spec.index);
        let (droplet, generation) = (spec.droplet.clone(), Arc::from(spec.generation.as_str()));
        let done = tokio::spawn(supervise(
            spec,
            status.clone(),
            stop_rx,
            (log, self.run.clone()),
            (self.grace, self.tracking.clone()),
        ));
        let instance = Instance {
            app_guid,
            kind,
            index,
            droplet,
            generation,
            draining: false,
            status,
            stop,
            done,
        };
        self.instances.lock().unwrap().insert(key, instance);
    }

    /// Stops every instance of an app (all at once, so their grace periods
    /// overlap) and waits until their processes are gone.
    pub async fn stop(&self, app_guid: &str) {
        self.stop_where(|_, i| i.app_guid == app_guid).await;
    }

    /// Stops the instances of one process type of an app beyond `keep`.
    pub async fn scale_down(&self, app_guid: &str, kind: &str, keep: u32) {
        self.stop_where(|_, i| i.app_guid == app_guid && i.kind == kind && i.index >= keep)
            .await;
    }

    /// Stops the instances with these keys (see `members`), once the
    /// router has stopped sending them requests for `drain`: what it sent
    /// them just before gets answered (as gorouter unregisters an instance
    /// before Diego stops it).
    pub async fn retire(&self, keys: &[String], drain: Duration) {
        if keys.is_empty() {
            return;
        }
        for (k, i) in self.instances.lock().unwrap().iter_mut() {
            i.draining |= keys.contains(k);
        }
        tokio::time::sleep(drain).await;
        self.stop_where(|k, _| keys.contains(k)).await;
    }

    async fn stop_where(&self, which: impl Fn(&String, &Instance) -> bool) {
        let stopping: Vec<Instance> = {
            let mut all = self.instances.lock().unwrap();
            let keys: Vec<String> = all
                .iter()
                .filter(|(k, i)| which(k, i))
                .map(|(k, _)| k.clone())
                .collect();
            keys.iter().filter_map(|k| all.remove(k)).collect()
        };
        for i in &stopping {
            let _ = i.stop.send(true);
        }
        for i in stopping {
            let _ = i.done.await;
        }
    }

    pub async fn stop_all(&self) {
        self.stop_where(|_, _| true).await;
    }

    /// At shutdown, once apps and services are stopped: what apps orphaned
    /// dies too (a daemon that adopts them: `tracking::sweep`), and the
    /// daemon's cgroups are removed.
    pub async fn finish(&self) {
        if super::reaper::adopting() {
            super::tracking::sweep(self.grace.min(Duration::from_secs(2))).await;
        }
        self.tracking.close();
    }

    /// Every instance of the app: process type, index and status, in order.
    pub fn instances(&self, app_guid: &str) -> Vec<(String, u32, Status)> {
        let mut out: Vec<(String, u32, Status)> = self
            .instances
            .lock()
            .unwrap()
            .values()
            .filter(|i| i.app_guid == app_guid)
            .map(|i| (i.kind.clone(), i.index, i.status.lock().unwrap().clone()))
            .collect();
        out.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        out
    }

    /// Every instance of one process type of the app, with the droplet
    /// and generation it runs: what a rollout counts and replaces.
    pub fn members(&self, app_guid: &str, kind: &str) -> Vec<Member> {
        let mut out: Vec<Member> = self
            .instances
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, i)| i.app_guid == app_guid && i.kind == kind)
            .map(|(key, i)| Member {
                key: key.clone(),
                index: i.index,
                droplet: i.droplet.clone(),
                generation: i.generation.to_string(),
                state: i.status.lock().unwrap().state,
            })
            .collect();
        out.sort_by(|a, b| (a.index, &a.key).cmp(&(b.index, &b.key)));
        out
    }

    /// SIGKILLs the process group of one running instance (the first by
    /// app guid, not in `spare`), as a crash would; the supervisor restarts
    /// it. For fault injection. Returns the app's guid and the port the
    /// instance listened on.
    pub fn kill_one(&self, spare: &std::collections::BTreeSet<String>) -> Option<(String, u16)> {
        let instances = self.instances.lock().unwrap();
        let mut running: Vec<(&String, u32, u16)> = instances
            .values()
            .filter(|i| !spare.contains(&i.app_guid))
            .filter_map(|i| {
                let s = i.status.lock().unwrap();
                (s.state == State::Running)
                    .then_some(s.pid)
                    .flatten()
                    .map(|p| (&i.app_guid, p, s.port))
            })
            .collect();
        running.sort();
        let (guid, pid, port) = running.first()?;
        // SAFETY: a process group this supervisor started; no memory involved.
        unsafe { libc::kill(-(*pid as i32), libc::SIGKILL) };
        Some((guid.to_string(), *port))
    }

    /// The running `web` instances of `app_guid`, by index: where the
    /// router may send requests.
    pub fn running_instances(&self, app_guid: &str) -> Vec<Serving> {
        let mut running: Vec<Serving> = self
            .instances
            .lock()
            .unwrap()
            .values()
            .filter(|i| i.app_guid == app_guid && i.kind == "web" && !i.draining)
            .filter_map(|i| {
                let s = i.status.lock().unwrap();
                (s.state == State::Running).then(|| Serving {
                    index: i.index,
                    port: s.port,
                    generation: i.generation.clone(),
                })
            })
            .collect();
        running.sort_by_key(|s| (s.index, s.port));
        running
    }

    /// Runs a one-off command in a droplet to completion (or `timeout`);
    /// returns `None` on success, else why it failed.
    pub async fn run_task(&self, spec: &RunSpec, name: &str, timeout: Duration) -> Option<String> {
        let log = self.log_path(&spec.app_guid);
        if let Err(why) = check_gates(spec, &format!("task {name}")).await {
            append_log(&log, &format!("[bluegreen] {why}"));
            return Some(why);
        }
        let label = format!("task {name}");
        let mut run = match spawn(spec, None, &log, &label, (&self.run, &self.tracking)) {
            Ok(c) => c,
            Err(e) => return Some(format!("could not start `{}`: {e}", spec.command)),
        };
        let waited = tokio::time::timeout(timeout, run.child.wait()).await;
        let leader = run.child.id();
        let outcome = match waited {
            Ok(Ok(status)) if status.success() => None,
            Ok(Ok(status)) => Some(format!("task `{}` exited with {status}", spec.command)),
            Ok(Err(e)) => Some(format!("waiting for task `{}`: {e}", spec.command)),
            Err(_) => {
                run.tracked.stop(&mut run.child, self.grace).await;
                return Some(format!(
                    "task `{}` timed out after {}",
                    spec.command,
                    humantime::format_duration(timeout)
                ));
            }
        };
        // What the task left running goes with it, as on CF.
        run.tracked.kill(leader).await;
        outcome
    }
}

/// A running web instance the router may send to: its index, port and
/// generation (see `RunSpec::generation`).
#[derive(Clone, Debug)]
pub struct Serving {
    pub index: u32,
    pub port: u16,
    pub generation: Arc<str>,
}

/// The guid of the process an instance of `generation` belongs to, as a
/// CF client sees it (`new_processes`, log-cache's `process_id`, gorouter's
/// `X-CF-Process-Instance`): a deployment's own instances form its new
/// process, named by the deployment's guid; the others (first started, or
/// brought back by a cancel, `<guid>-cancel`) are the app's web process.
pub fn process_guid<'a>(web: &'a str, generation: &'a str) -> &'a str {
    if generation.is_empty() || generation.ends_with("-cancel") {
        web
    } else {
        generation
    }
}

/// One instance as `Supervisor::members` sees it.
#[derive(Clone, Debug)]
pub struct Member {
    pub key: String,
    pub index: u32,
    pub droplet: String,
    pub generation: String,
    pub state: State,
}

async fn supervise(
    spec: RunSpec,
    status: Arc<Mutex<Status>>,
    mut stop: watch::Receiver<bool>,
    (log, run): (PathBuf, PathBuf),
    (grace, tracking): (Duration, Tracking),
) {
    let mut backoff = Duration::from_millis(500);
    let set = |state: State, port: u16| {
        let mut s = status.lock().unwrap();
        s.state = state;
        s.port = port;
        s.since = Instant::now();
    };
    loop {
        let port = free_port();
        let label = format!("app {}/{}", spec.kind, spec.index);
        let started = match check_gates(&spec, &format!("app {}", spec.app_name)).await {
            Ok(()) => spawn(&spec, Some(port), &log, &label, (&run, &tracking))
                .map_err(|e| format!("could not start `{}`: {e}", spec.command)),
            Err(why) => Err(why),
        };
        let Run {
            mut child,
            mut tracked,
            _direct,
            _recorded,
        } = match started {
            Ok(run) => run,
            Err(why) => {
                append_log(&log, &format!("[bluegreen] {why}"));
                set(State::Crashed, 0);
                if wait_or_stop(&mut stop, backoff).await {
                    set(State::Down, 0);
                    return;
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        set(State::Starting, port);
        let leader = child.id();
        status.lock().unwrap().pid = leader;
        let started = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(25));
        let mut is_ready = false;
        let mut squatted = false;
        let exit = loop {
            tokio::select! {
                exit = child.wait() => {
                    // What the app left behind (in its group or not) goes with it.
                    tracked.kill(leader).await;
                    break exit;
                }
                _ = stop.changed() => {
                    tracked.stop(&mut child, grace).await;
                    set(State::Down, 0);
                    return;
                }
                _ = tick.tick(), if !is_ready => {
                    match ready(&spec, port, &mut tracked).await {
                        Ok(true) => {
                            is_ready = true;
                            set(State::Running, port);
                        }
                        Ok(false) => {}
                        Err(why) => {
                            if !std::mem::replace(&mut squatted, true) {
                                append_log(&log, &format!("[bluegreen] app {}: {why}", spec.app_name));
                            }
                        }
                    }
                }
            }
        };
        let why = match exit {
            Ok(status) => format!("exited with {status}"),
            Err(e) => format!("could not be waited for: {e}"),
        };
        append_log(
            &log,
            &format!(
                "[bluegreen] app {} {why}; restarting in {backoff:?}",
                spec.app_name
            ),
        );
        set(State::Crashed, 0);
        status.lock().unwrap().restarts += 1;
        // An instance that ran a while was healthy: start the backoff over.
        if started.elapsed() > BACKOFF_MAX {
            backoff = Duration::from_millis(500);
        }
        if wait_or_stop(&mut stop, backoff).await {
            set(State::Down, 0);
            return;
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Sleeps for `d`; true if asked to stop meanwhile.
async fn wait_or_stop(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}

/// Whether the instance counts as running now. The port must be its own
/// before anything connects to it: it was chosen free and handed over, so
/// someone else may have bound it first, and a connect or GET would pass on
/// their socket (and send them the probe). An error says whose it is.
async fn ready(spec: &RunSpec, port: u16, tracked: &mut Tracked) -> Result<bool, String> {
    if spec.health_check == "process" {
        return Ok(true);
    }
    match tracked.holds_port(port) {
        Some(Ok(true)) => {}
        Some(Ok(false)) => return Ok(false),
        Some(Err(why)) => return Err(why),
        // No /proc to ask: a connect is all there is.
        None => {
            let connected = tokio::net::TcpStream::connect(("127.0.0.1", port)).await;
            if connected.is_err() {
                return Ok(false);
            }
        }
    }
    Ok(match (spec.health_check.as_str(), &spec.endpoint) {
        ("http", Some(path)) => http_ok(port, path).await,
        _ => true,
    })
}

/// A CF `http` health check: a GET of `path` answered 2xx within a second.
async fn http_ok(port: u16, path: &str) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.ok()?;
        let mut head = [0u8; 12];
        s.read_exact(&mut head).await.ok()?;
        Some(head.starts_with(b"HTTP/1.") && head[9] == b'2')
    };
    tokio::time::timeout(Duration::from_secs(1), attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

pub(super) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// One started process and what tracks it. Fields drop in order: the
/// record and the registration outlive the child handle.
struct Run {
    child: Child,
    tracked: Tracked,
    _direct: super::reaper::Direct,
    _recorded: PidFile,
}

/// Checks the spec's bound services off the async workers (it reads /proc).
async fn check_gates(spec: &RunSpec, what: &str) -> Result<(), String> {
    if spec.gates.is_empty() {
        return Ok(());
    }
    let (gates, what) = (spec.gates.clone(), what.to_string());
    tokio::task::spawn_blocking(move || gates.iter().try_for_each(|g| g.check(&what)))
        .await
        .unwrap_or_else(|e| Err(format!("checking the bound services: {e}")))
}

fn spawn(
    spec: &RunSpec,
    port: Option<u16>,
    log: &std::path::Path,
    what: &str,
    (run, tracking): (&std::path::Path, &Tracking),
) -> std::io::Result<Run> {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(&spec.command)
        .current_dir(&spec.dir)
        .env_clear();
    // Apps get a plain environment, not the daemon's (which may hold secrets).
    for var in ["PATH", "HOME", "LANG", "TZ"] {
        if let Some(v) = std::env::var_os(var) {
            cmd.env(var, v);
        }
    }
    cmd.envs(&spec.env);
    if let Some(port) = port {
        cmd.env("PORT", port.to_string());
        cmd.env("CF_INSTANCE_INDEX", spec.index.to_string());
        cmd.env("CF_INSTANCE_PORT", port.to_string());
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // A process group of its own, so a stop reaches the shell's children too.
    cmd.process_group(0).kill_on_drop(true);
    // And a marker (and cgroup) for those that leave the group.
    let mut tracked = tracking.prepare(&spec.key(), &mut cmd)?;
    let (mut child, direct) = super::reaper::spawn(&mut cmd)?;
    tracked.started(child.id());
    let recorded = PidFile::record(run, child.id(), &tracked);
    append_log(
        log,
        &format!("[bluegreen] {what} started: {}", spec.command),
    );
    for pipe in [
        child.stdout.take().map(boxed),
        child.stderr.take().map(boxed),
    ]
    .into_iter()
    .flatten()
    {
        let log = log.to_path_buf();
        // One log per app: lines of instances past the first say whose they are.
        let prefix = match (spec.kind.as_str(), spec.index) {
            ("web", 0) | ("task", _) => String::new(),
            (kind, i) => format!("[{kind}/{i}] "),
        };
        tokio::spawn(copy_lines(pipe, log, prefix));
    }
    Ok(Run {
        child,
        tracked,
        _direct: direct,
        _recorded: recorded,
    })
}

/// Copies an app's output into its log line by line. Bytes that are not
/// UTF-8 are replaced, not fatal, and a line is cut at `LINE_CAP`: the pipe
/// is drained to its end whatever the app writes, or the app would die of
/// SIGPIPE on its next write.
async fn copy_lines(pipe: Box<dyn AsyncRead + Send + Unpin>, log: PathBuf, prefix: String) {
    use tokio::io::AsyncReadExt;
    let mut reader = BufReader::new(pipe);
    let mut buf = Vec::with_capacity(1024);
    let mut cut = false;
    loop {
        buf.clear();
        let mut limited = (&mut reader).take(LINE_CAP as u64);
        match limited.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let whole = buf.ends_with(b"\n");
        if !cut {
            let text = String::from_utf8_lossy(&buf);
            let text = text.trim_end_matches(['\n', '\r']);
            if whole {
                append_log(&log, &format!("{prefix}{text}"));
            } else {
                append_log(
                    &log,
                    &format!("{prefix}{text} [line cut at {LINE_CAP} bytes]"),
                );
            }
        }
        // The rest of a cut line is dropped up to its newline.
        cut = !whole;
    }
}

fn boxed(r: impl AsyncRead + Send + Unpin + 'static) -> Box<dyn AsyncRead + Send + Unpin> {
    Box::new(r)
}

/// Appends a line, rotating the log past its cap so it never grows unbounded.
pub fn append_log(path: &std::path::Path, line: &str) {
    use std::io::Write;
    if std::fs::metadata(path)
        .map(|m| m.len() > LOG_CAP)
        .unwrap_or(false)
    {
        let _ = std::fs::rename(path, path.with_extension("log.1"));
    }
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}
