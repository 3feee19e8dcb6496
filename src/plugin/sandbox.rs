//! The sandbox each plugin call runs in: no ambient authority, only what the
//! deploy file grants (read-only directories, HTTP to listed origins), with a
//! memory cap over all of the plugin's memories and captured, capped output.
//!
//! Every WASI interface is linked (toolchains import many of them) and denied
//! through the context instead: a plugin that merely imports sockets still
//! loads, but gets nothing it was not given.

use super::context::Severity;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_MEMORY: u64 = 64 * 1024 * 1024;
/// Per stream (stdout, stderr, log): enough for diagnostics, not for a flood.
pub const DEFAULT_OUTPUT_CAP: usize = 64 * 1024;

/// What one plugin may do. The default grants nothing.
#[derive(Clone, Debug, PartialEq)]
pub struct Sandbox {
    /// Host directories the plugin may read (never write).
    pub dirs: Vec<DirGrant>,
    /// Origins (`http://127.0.0.1:8080`) the plugin may send HTTP requests to.
    pub http: Vec<Origin>,
    /// Wall-clock budget for one call, instantiation included.
    pub timeout: Duration,
    /// Cap on all linear memories and tables of one instance, together.
    pub memory: u64,
    pub output_cap: usize,
    /// Requests to this origin carry `X-CF-Process-Instance` with this
    /// value, set by the host: a native deploy's candidate is one instance
    /// behind the shared route.
    pub pin: Option<(Origin, String)>,
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox {
            dirs: Vec::new(),
            http: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            memory: DEFAULT_MEMORY,
            output_cap: DEFAULT_OUTPUT_CAP,
            pin: None,
        }
    }
}

/// A read-only directory grant: `host` is visible to the plugin as `guest`.
#[derive(Clone, Debug, PartialEq)]
pub struct DirGrant {
    pub host: PathBuf,
    pub guest: String,
}

impl DirGrant {
    /// Parses `HOST[:GUEST]`; the guest path defaults to the host path.
    pub fn parse(spec: &str) -> Result<DirGrant, String> {
        let (host, guest) = match spec.split_once(':') {
            Some((h, g)) if g.starts_with('/') => (h, Some(g)),
            _ => (spec, None),
        };
        let host = std::fs::canonicalize(host)
            .map_err(|e| format!("grant-dir `{host}`: {e} (grant an existing directory)"))?;
        if !host.is_dir() {
            return Err(format!("grant-dir `{}` is not a directory", host.display()));
        }
        let guest = guest
            .map(String::from)
            .unwrap_or_else(|| host.display().to_string());
        Ok(DirGrant { host, guest })
    }
}

/// An HTTP origin: scheme, host and port, compared exactly (`localhost` is not
/// `127.0.0.1`, and a missing port is the scheme's default).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub scheme: String,
    pub host: String,
    pub port: u16,
}

impl Origin {
    pub fn parse(spec: &str) -> Result<Origin, String> {
        let uri: http::Uri = spec.parse().map_err(|e| {
            format!("allow-http `{spec}`: {e} (write an origin like http://127.0.0.1:8080)")
        })?;
        let path_ok = matches!(uri.path(), "" | "/") && uri.query().is_none();
        match (uri.scheme_str(), uri.host()) {
            (Some(scheme @ ("http" | "https")), Some(host)) if path_ok => Ok(Origin {
                scheme: scheme.to_string(),
                host: host.to_ascii_lowercase(),
                port: uri
                    .port_u16()
                    .unwrap_or(if scheme == "https" { 443 } else { 80 }),
            }),
            _ => Err(format!(
                "allow-http `{spec}`: expected an origin like http://127.0.0.1:8080 (scheme, host, port; no path)"
            )),
        }
    }

    fn of(uri: &http::Uri) -> Option<Origin> {
        let scheme = uri.scheme_str()?.to_string();
        let port = uri
            .port_u16()
            .unwrap_or(if scheme == "https" { 443 } else { 80 });
        Some(Origin {
            host: uri.host()?.to_ascii_lowercase(),
            scheme,
            port,
        })
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// Output kept up to a cap; the rest is counted, not stored, and never
/// refused (a refused write would crash most guests' `print`).
#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<CaptureBuf>>);

#[derive(Default)]
struct CaptureBuf {
    bytes: Vec<u8>,
    cap: usize,
    dropped: u64,
}

impl Capture {
    pub fn new(cap: usize) -> Capture {
        Capture(Arc::new(Mutex::new(CaptureBuf {
            cap,
            ..CaptureBuf::default()
        })))
    }

    fn push(&self, data: &[u8]) {
        let mut buf = self.0.lock().unwrap();
        let room = buf.cap.saturating_sub(buf.bytes.len());
        let keep = room.min(data.len());
        buf.bytes.extend_from_slice(&data[..keep]);
        buf.dropped += (data.len() - keep) as u64;
    }

    /// The kept text and how many bytes were dropped past the cap.
    pub fn take(&self) -> (String, u64) {
        let buf = self.0.lock().unwrap();
        (
            String::from_utf8_lossy(&buf.bytes).into_owned(),
            buf.dropped,
        )
    }
}

impl IsTerminal for Capture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Capture {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl tokio::io::AsyncWrite for Capture {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.push(data);
        std::task::Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// Lets requests through to allow-listed origins only, and records the rest.
struct HttpGate {
    allowed: Vec<Origin>,
    denied: Arc<Mutex<Vec<String>>>,
    pin: Option<(Origin, String)>,
}

type SendResult = wasmtime_wasi_http::Result<(
    http::Response<wasmtime_wasi_http::WasiBody>,
    Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
)>;

impl WasiHttpHooks for HttpGate {
    fn send_request(
        &mut self,
        mut request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let origin = Origin::of(request.uri());
        if !origin.as_ref().is_some_and(|o| self.allowed.contains(o)) {
            // The origin only: a path or query may carry a secret (a
            // webhook's token), and this text reaches logs and errors.
            let uri = request.uri();
            let at = match (uri.scheme_str(), uri.authority()) {
                (Some(s), Some(a)) => format!("{s}://{a}"),
                _ => "a URL with no origin".into(),
            };
            self.denied
                .lock()
                .unwrap()
                .push(format!("HTTP {} {at}", request.method()));
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        if let Some((o, pin)) = &self.pin
            && origin.as_ref() == Some(o)
            && let Ok(v) = http::HeaderValue::from_str(pin)
        {
            // The host's, whatever the plugin set.
            request
                .headers_mut()
                .insert(crate::deploy::health::PROCESS_INSTANCE, v);
        }
        if request.uri().scheme() == Some(&http::uri::Scheme::HTTPS) {
            return Box::new(super::https::send(request, options));
        }
        // RFC 6761: `*.localhost` is loopback, but the system resolver here does
        // not know it. Connect to 127.0.0.1; the Host header keeps the name.
        if let Some(o) = origin.filter(|o| o.host == "localhost" || o.host.ends_with(".localhost"))
        {
            let mut parts = request.uri().clone().into_parts();
            parts.authority = format!("127.0.0.1:{}", o.port).parse().ok();
            if let Ok(uri) = http::Uri::from_parts(parts) {
                *request.uri_mut() = uri;
            }
        }
        let default = wasmtime_wasi_http::default_hooks().send_request(request, options, fut);
        Box::new(async move { Box::into_pin(default).await })
    }
}

/// Caps the sum of all memories and tables of one instance. `StoreLimits`
/// caps each memory on its own, which a component with many could dodge.
pub struct MemoryCap {
    pub(super) limit: u64,
    used: u64,
    pub(super) hit: bool,
}

impl wasmtime::ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.grow((desired - current) as u64)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // A table slot costs the host about a pointer.
        self.grow(((desired - current) * std::mem::size_of::<usize>()) as u64)
    }

    // Python components need more than a handful of core instances.
    fn instances(&self) -> usize {
        1000
    }
}

impl MemoryCap {
    fn grow(&mut self, by: u64) -> wasmtime::Result<bool> {
        if self.used + by > self.limit {
            // Trap at once rather than fail the grow: the guest would only
            // abort anyway, and this way the error says why.
            self.hit = true;
            return Err(wasmtime::format_err!(
                "memory limit of {} bytes reached",
                self.limit
            ));
        }
        self.used += by;
        Ok(true)
    }
}

/// One log line written through the `log` import.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LogLine {
    pub level: Severity,
    pub message: String,
}

/// The `T` of each plugin `Store`: fresh for every call.
pub struct StoreState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    gate: HttpGate,
    pub(super) memory: MemoryCap,
    pub(super) log: Vec<LogLine>,
    log_bytes: usize,
    pub(super) log_dropped: usize,
    output_cap: usize,
    pub(super) stdout: Capture,
    pub(super) stderr: Capture,
    pub(super) denied: Arc<Mutex<Vec<String>>>,
}

impl StoreState {
    pub fn new(sandbox: &Sandbox) -> Result<StoreState, String> {
        let stdout = Capture::new(sandbox.output_cap);
        let stderr = Capture::new(sandbox.output_cap);
        let mut wasi = WasiCtxBuilder::new();
        // The builder starts closed (no env, args, stdin, preopens, network);
        // say so anyway, so a future default cannot open anything silently.
        wasi.stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        for grant in &sandbox.dirs {
            wasi.preopened_dir(&grant.host, &grant.guest, FsPerms::ReadOnly)
                .map_err(|e| format!("granting {}: {e}", grant.host.display()))?;
        }
        let denied = Arc::new(Mutex::new(Vec::new()));
        Ok(StoreState {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            gate: HttpGate {
                allowed: sandbox.http.clone(),
                denied: denied.clone(),
                pin: sandbox.pin.clone(),
            },
            memory: MemoryCap {
                limit: sandbox.memory,
                used: 0,
                hit: false,
            },
            log: Vec::new(),
            log_bytes: 0,
            log_dropped: 0,
            output_cap: sandbox.output_cap,
            stdout,
            stderr,
            denied,
        })
    }

    pub(super) fn push_log(&mut self, level: Severity, message: String) {
        // A line costs its record too: a flood of empty lines must hit the
        // cap as surely as a few long ones.
        let cost = message.len() + std::mem::size_of::<LogLine>();
        if self.log_bytes + cost <= self.output_cap {
            self.log_bytes += cost;
            self.log.push(LogLine { level, message });
        } else {
            self.log_dropped += 1;
        }
    }
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for StoreState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.gate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_compare_scheme_host_and_port_exactly() {
        let o = Origin::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(o.to_string(), "http://127.0.0.1:8080");
        assert_eq!(Origin::parse("http://Example.com").unwrap().port, 80);
        assert_ne!(Origin::parse("http://localhost:8080").unwrap(), o);
        assert_ne!(Origin::parse("https://127.0.0.1:8080").unwrap(), o);
        for bad in [
            "127.0.0.1:8080",
            "ftp://x",
            "http://127.0.0.1:8080/health",
            "http://",
        ] {
            assert!(Origin::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn capture_keeps_up_to_its_cap_and_counts_the_rest() {
        let c = Capture::new(4);
        c.push(b"abc");
        c.push(b"defg");
        assert_eq!(c.take(), ("abcd".to_string(), 3));
    }
}
