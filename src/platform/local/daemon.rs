//! Starting and stopping the local platform in this process: the state
//! directory and its files, the API and router listeners, and a clean
//! shutdown (apps stopped, servers drained) on request.

use super::api;
use super::router::Router;
use super::state::Platform;
use super::store::Store;
use super::supervisor::Supervisor;
use crate::platform::PlatformError;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// `BLUEGREEN_HOME`, else `~/.bluegreen`.
pub fn home_dir() -> PathBuf {
    match std::env::var_os("BLUEGREEN_HOME").filter(|h| !h.is_empty()) {
        Some(home) => PathBuf::from(home),
        None => std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| ".".into())
            .join(".bluegreen"),
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    /// The state directory (`<home>/platform`).
    pub dir: PathBuf,
    /// 0 picks a free port.
    pub api_port: u16,
    pub router_port: u16,
    /// The ports serving the API and the routes over TLS (see `tls`).
    pub api_tls_port: u16,
    pub router_tls_port: u16,
    /// How long an app gets between SIGTERM and SIGKILL.
    pub grace: Duration,
    pub task_timeout: Duration,
    /// The largest package upload accepted, in bytes.
    pub max_upload: u64,
    /// The router's per-app traffic counters (what deploys analyze); off
    /// with `BLUEGREEN_ROUTER_METRICS=off`, for the benchmark of their cost.
    pub router_metrics: bool,
    /// The router's timeouts and connection cap (`BLUEGREEN_ROUTER_*`).
    pub router_limits: super::router::Limits,
    /// This process is the daemon and nothing else (`platform start`): it
    /// adopts what its apps orphan, tracks them in cgroups where it can
    /// (unless `BLUEGREEN_CGROUPS=off`), and at shutdown stops every
    /// process below it. Off for a daemon run inside another program (a
    /// test), whose other children are not its to adopt or stop.
    pub own_processes: bool,
}

/// Packages up to 1 GiB by default, as Cloud Foundry's own default.
pub const DEFAULT_MAX_UPLOAD: u64 = 1 << 30;

impl Config {
    pub fn new(home: &Path) -> Config {
        Config {
            dir: home.join("platform"),
            api_port: 0,
            router_port: 8080,
            api_tls_port: 0,
            router_tls_port: 0,
            grace: Duration::from_secs(10),
            task_timeout: Duration::from_secs(600),
            max_upload: DEFAULT_MAX_UPLOAD,
            router_metrics: std::env::var("BLUEGREEN_ROUTER_METRICS").as_deref() != Ok("off"),
            router_limits: super::router::Limits::default(),
            own_processes: false,
        }
    }

    /// The default home with `BLUEGREEN_ROUTER_PORT` and `BLUEGREEN_MAX_UPLOAD`
    /// applied: what a command that starts the daemon on demand uses.
    pub fn from_env() -> Config {
        let mut config = Config::new(&home_dir());
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        if let Some(port) = var("BLUEGREEN_ROUTER_PORT").and_then(|p| p.parse().ok()) {
            config.router_port = port;
        }
        if let Some(port) = var("BLUEGREEN_ROUTER_TLS_PORT").and_then(|p| p.parse().ok()) {
            config.router_tls_port = port;
        }
        if let Some(n) = var("BLUEGREEN_MAX_UPLOAD").and_then(|s| crate::units::parse_size(&s).ok())
        {
            config.max_upload = n;
        }
        config
    }
}

/// What a client needs to reach a running daemon; also written to
/// `daemon.json` in the state directory.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Endpoint {
    pub pid: u32,
    /// When that process started (clock ticks since boot, from
    /// `/proc/PID/stat`): a pid alone may have been reused by now.
    #[serde(default)]
    pub started: Option<u64>,
    pub api_url: String,
    pub router_port: u16,
    /// The API as Cloud Foundry serves it: over TLS, under the CA in
    /// `ca_file` (absent in a `daemon.json` from before TLS).
    #[serde(default)]
    pub cf_api_url: Option<String>,
    /// The routes over TLS: `https://<host>.apps.localhost:<port>`.
    #[serde(default)]
    pub router_tls_port: Option<u16>,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

pub struct Running {
    pub endpoint: Endpoint,
    pub token: String,
    platform: Arc<Platform>,
    shutdown: watch::Sender<bool>,
    servers: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops every app, then the servers.
    pub async fn shutdown(self) {
        self.platform.supervisor.stop_all().await;
        self.platform.stop_services();
        self.platform.supervisor.finish().await;
        let _ = self.shutdown.send(true);
        for s in self.servers {
            let _ = s.await;
        }
        let _ = std::fs::remove_file(self.platform.dir.join("daemon.json"));
    }

    /// Waits until the servers stop (after `shutdown` from elsewhere).
    pub fn shutdown_handle(&self) -> watch::Sender<bool> {
        self.shutdown.clone()
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> PlatformError + '_ {
    move |source| PlatformError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A fresh API token for this start, readable by the user only: a token
/// that leaked (to a stale port, say) dies with the daemon that issued it.
pub fn token(dir: &Path) -> Result<String, PlatformError> {
    let path = dir.join("token");
    let token = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    write_private(&path, token.as_bytes())?;
    Ok(token)
}

/// Writes `bytes` to `path` readable by the user only, whole or not at all
/// (a sibling `.new` file renamed over it).
pub(super) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), PlatformError> {
    let partial = path.with_extension("new");
    let _ = std::fs::remove_file(&partial);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)
        .map_err(io(&partial))?;
    std::io::Write::write_all(&mut f, bytes).map_err(io(&partial))?;
    std::fs::rename(&partial, path).map_err(io(path))
}

/// Whether process `pid` exists (a zombie included; see `process_started`).
pub fn pid_alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid as i32, 0) == 0 }
}

/// When process `pid` started, in clock ticks since boot (field 22 of
/// `/proc/PID/stat`, after the parenthesised command name).
pub fn process_started(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// The daemon's listening sockets, by what they serve.
#[derive(Clone, Copy, Debug)]
pub enum Listener {
    Router,
    RouterTls,
    Api,
    ApiTls,
}

impl Listener {
    fn describe(self) -> &'static str {
        match self {
            Listener::Router => "the router's port",
            Listener::RouterTls => "the router's TLS port",
            Listener::Api => "the API's port",
            Listener::ApiTls => "the API's TLS port",
        }
    }

    /// The flag and the variable that choose this port.
    fn choice(self) -> (Option<&'static str>, Option<&'static str>) {
        match self {
            Listener::Router => (Some("--router-port"), Some("BLUEGREEN_ROUTER_PORT")),
            Listener::RouterTls => (None, Some("BLUEGREEN_ROUTER_TLS_PORT")),
            Listener::Api => (Some("--api-port"), Some("BLUEGREEN_API_PORT")),
            Listener::ApiTls => (None, None),
        }
    }
}

/// Why `port` could not be listened on, once, and how to pick another.
pub fn bind_error(port: u16, what: Listener, source: &std::io::Error) -> PlatformError {
    let in_use = source.kind() == std::io::ErrorKind::AddrInUse;
    let cause = if in_use {
        "another program (or another local platform) already listens on it".to_string()
    } else {
        source.to_string()
    };
    let (flag, var) = what.choice();
    let fix = match (port, flag, var) {
        (0, ..) | (_, None, None) => String::new(),
        (_, Some(flag), Some(var)) => format!(
            ". Start the platform on another port: `bluegreen platform start {flag} N` \
             (or `{var}=N`; 0 picks a free one)"
        ),
        (_, Some(flag), None) => format!(
            ". Start the platform on another port: `bluegreen platform start {flag} N` \
             (0 picks a free one)"
        ),
        (_, None, Some(var)) => {
            format!(". Choose another port with `{var}=N` (0 picks a free one)")
        }
    };
    PlatformError::Bind {
        port,
        what: what.describe(),
        cause,
        fix,
    }
}

/// Fails at once, as `start` would, when a port the config names is taken:
/// a caller that starts the daemon in the background says so in
/// milliseconds instead of waiting for a daemon that will never answer.
pub fn check_ports(config: &Config) -> Result<(), PlatformError> {
    let ports = [
        (config.router_port, Listener::Router),
        (config.router_tls_port, Listener::RouterTls),
        (config.api_port, Listener::Api),
        (config.api_tls_port, Listener::ApiTls),
    ];
    for (port, what) in ports.into_iter().filter(|(p, _)| *p != 0) {
        std::net::TcpListener::bind(("127.0.0.1", port)).map_err(|e| bind_error(port, what, &e))?;
    }
    Ok(())
}

pub async fn start(config: Config) -> Result<Running, PlatformError> {
    let dir = config.dir.clone();
    for sub in ["", "droplets", "packages", "logs", "services", "run"] {
        let d = dir.join(sub);
        std::fs::create_dir_all(&d).map_err(io(&d))?;
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(io(&dir))?;
    let token = token(&dir)?;
    let store = Store::open(&dir.join("state.db"))?;
    let bind = |port: u16, what: Listener| async move {
        TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|source| bind_error(port, what, &source))
    };
    // The router first: its port is the one a user picks, and the one
    // most likely taken.
    let router_listener = bind(config.router_port, Listener::Router).await?;
    let router_tls_listener = bind(config.router_tls_port, Listener::RouterTls).await?;
    let api_listener = bind(config.api_port, Listener::Api).await?;
    let api_tls_listener = bind(config.api_tls_port, Listener::ApiTls).await?;
    // The API behind TLS answers on a port of its own, so its links can
    // name the https origin the client used.
    let api_behind_tls = bind(0, Listener::ApiTls).await?;
    let (ca_file, acceptor) = super::tls::acceptor(&dir)?;
    let api_addr = api_listener.local_addr().map_err(io(&dir))?;
    let router_port = router_listener.local_addr().map_err(io(&dir))?.port();
    let port_of = |l: &TcpListener| l.local_addr().map(|a| a.port()).map_err(io(&dir));
    let (api_tls_port, router_tls_port) =
        (port_of(&api_tls_listener)?, port_of(&router_tls_listener)?);
    let behind_tls_port = port_of(&api_behind_tls)?;
    // Apps a killed daemon left running would otherwise serve beside the
    // copies `restore` is about to start.
    let run = dir.join("run");
    let grace = config.grace;
    let reaped = tokio::task::spawn_blocking({
        let run = run.clone();
        move || super::pidfiles::reap(&run, grace)
    })
    .await
    .unwrap_or(0);
    if reaped > 0 {
        crate::output::write_stderr(&format!(
            "stopped {reaped} app process group(s) and stray process(es) left running by a \
             daemon that was killed\n"
        ));
    }
    let tracking = super::tracking::Tracking::for_daemon(config.own_processes);
    let supervisor = Supervisor::new(dir.join("logs"), run, config.grace, tracking);
    let router = Router::new(
        supervisor.clone(),
        config.router_metrics,
        config.router_limits.clone(),
    );
    let platform = Arc::new(Platform {
        store: Mutex::new(store),
        supervisor,
        router: router.clone(),
        dir: dir.clone(),
        api_url: format!("http://{api_addr}"),
        router_port,
        task_timeout: config.task_timeout,
        max_upload: config.max_upload,
        faults: super::faults::Faults::from_env(),
        rollouts: Default::default(),
    });
    platform
        .restore()
        .await
        .map_err(|e| PlatformError::Local(e.3))?;

    let (shutdown, rx) = watch::channel(false);
    let app = api::routes(platform.clone(), token.clone());
    let cf_api_url = format!("https://localhost:{api_tls_port}");
    let serve_api = |listener: TcpListener, app: axum::Router| {
        let mut stop = rx.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.changed().await;
                })
                .await;
        })
    };
    let api = serve_api(api_listener, app.clone());
    let api_tls = serve_api(
        api_behind_tls,
        super::tls::with_base_url(app, cf_api_url.clone()),
    );
    let api_terminator = tokio::spawn(super::tls::serve(
        api_tls_listener,
        acceptor.clone(),
        behind_tls_port,
        rx.clone(),
    ));
    let router_terminator = tokio::spawn(super::tls::serve(
        router_tls_listener,
        acceptor,
        router_port,
        rx.clone(),
    ));
    let sweeper = super::standby_sweep::spawn(platform.clone(), rx.clone());
    let routing = tokio::spawn(router.serve(router_listener, rx));
    let endpoint = Endpoint {
        pid: std::process::id(),
        started: process_started(std::process::id()),
        api_url: platform.api_url.clone(),
        router_port,
        cf_api_url: Some(cf_api_url),
        router_tls_port: Some(router_tls_port),
        ca_file: Some(ca_file),
    };
    let path = dir.join("daemon.json");
    std::fs::write(
        &path,
        serde_json::to_vec_pretty(&endpoint).expect("serializable"),
    )
    .map_err(io(&path))?;
    Ok(Running {
        endpoint,
        token,
        platform,
        shutdown,
        servers: vec![
            api,
            api_tls,
            api_terminator,
            router_terminator,
            routing,
            sweeper,
        ],
    })
}
