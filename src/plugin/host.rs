//! Loading plugins and calling their hooks: one shared engine with epoch
//! interruption and the compiled-code cache, a fresh store per call, and every
//! failure turned into a typed [`PluginError`].

use super::bindings::{self, hooks};
use super::cache::{Cache, CacheStatus, sha256_hex};
use super::context::{Finding, HookContext, Outcome, Severity, Verdict};
use super::error::{FailureKind, PluginError};
use super::hook::Hook;
use super::sandbox::{LogLine, Sandbox, StoreState};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::{Config, Engine, Store};

/// How often the engine's epoch advances; deadlines are counted in ticks.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// A plugin's per-deploy configuration: its settings, grants and limits, and
/// what a failure of it means.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PluginConfig {
    pub settings: Vec<(String, String)>,
    pub sandbox: Sandbox,
    pub on_error: OnError,
}

/// Whether a plugin failure stops the deploy (the default: fail closed) or is
/// reported as a warning.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    serde::Deserialize,
    serde::Serialize,
    clap::ValueEnum,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// Stop the deploy, as a veto would.
    #[default]
    Block,
    /// Say so and go on.
    Warn,
}

/// A validated plugin, ready to be called.
pub struct Plugin {
    /// The file name without `.wasm`; settings and grants are keyed by it.
    pub name: String,
    pub path: PathBuf,
    pub sha256: String,
    pub size: u64,
    /// The hooks it exports, in deploy order.
    pub hooks: Vec<Hook>,
    /// The interfaces it imports (WASI, `bluegreen:hooks/log`, ...).
    pub imports: Vec<String>,
    pub cache: CacheStatus,
    pub load_time: Duration,
    pre: InstancePre<StoreState>,
}

/// What one successful call produced.
#[derive(Debug, serde::Serialize)]
pub struct CallReport {
    #[serde(flatten)]
    pub outcome: Outcome,
    pub log: Vec<LogLine>,
    pub stdout: String,
    pub stderr: String,
    /// Bytes of stdout/stderr and log lines dropped past the output cap.
    pub dropped: u64,
    /// Capability requests the sandbox refused (the plugin saw an error).
    pub denied: Vec<String>,
    #[serde(rename = "duration_ms", serialize_with = "millis")]
    pub duration: Duration,
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1e3)
}

pub struct PluginHost {
    engine: Engine,
    linker: Linker<StoreState>,
    cache: Cache,
}

impl PluginHost {
    /// A host whose compiled-code cache lives in `cache_dir` (`None`: no cache).
    pub fn new(cache_dir: Option<PathBuf>) -> anyhow::Result<PluginHost> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.allocation_strategy(pooling());
        // Hooks are plain calls; the component-model-async machinery would
        // only add bookkeeping to every store's teardown.
        config.concurrency_support(false);
        let engine = Engine::new(&config).map_err(anyhow::Error::from)?;
        start_epoch_ticker(&engine);
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(anyhow::Error::from)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(anyhow::Error::from)?;
        bindings::bluegreen::hooks::log::add_to_linker::<_, wasmtime::component::HasSelf<StoreState>>(
            &mut linker,
            |s| s,
        )
        .map_err(anyhow::Error::from)?;
        let cache = Cache::new(&engine, cache_dir);
        Ok(PluginHost {
            engine,
            linker,
            cache,
        })
    }

    pub fn cache_dir(&self) -> Option<&Path> {
        self.cache.dir()
    }

    /// Every `*.wasm` in `dir`, in name order, each validated.
    pub async fn load_dir(&self, dir: &Path) -> Result<Vec<Plugin>, PluginError> {
        let io = |source| {
            PluginError::new(
                &dir.display().to_string(),
                None,
                FailureKind::Io {
                    path: dir.to_path_buf(),
                    source,
                },
            )
        };
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            if path.extension().is_some_and(|e| e == "wasm") && path.is_file() {
                paths.push(path);
            }
        }
        paths.sort();
        let mut plugins = Vec::new();
        for path in paths {
            plugins.push(self.load(&path).await?);
        }
        Ok(plugins)
    }

    /// Reads, compiles (or loads from the cache) and validates one component.
    pub async fn load(&self, path: &Path) -> Result<Plugin, PluginError> {
        let started = Instant::now();
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let fail = |kind| PluginError::new(&name, None, kind);
        // Unchanged since it was last hashed and compiled: no need to read it.
        let known = self.cache.known_digest(path).and_then(|(sha256, size)| {
            let component = self.cache.lookup(&self.engine, &sha256)?;
            Some((component, CacheStatus::Hit, sha256, size))
        });
        let (component, cache, sha256, size) = match known {
            Some(k) => k,
            None => self.read_and_load(path).map_err(fail)?,
        };
        let imports = component_imports(&self.engine, &component);
        let pre = self.linker.instantiate_pre(&component).map_err(|e| {
            fail(FailureKind::WorldMismatch(format!(
                "{e:#} (a plugin may import `bluegreen:hooks/log`, WASI 0.2 and wasi:http 0.2)"
            )))
        })?;
        let hooks = self.exported_hooks(&name, &pre).await?;
        Ok(Plugin {
            name,
            path: path.to_path_buf(),
            sha256,
            size,
            hooks,
            imports,
            cache,
            load_time: started.elapsed(),
            pre,
        })
    }

    /// Reads, checks, hashes and loads (from the cache or compiling) the
    /// component at `path`, and remembers its digest for the file as it was.
    fn read_and_load(
        &self,
        path: &Path,
    ) -> Result<(Component, CacheStatus, String, u64), FailureKind> {
        use std::io::Read;
        let io = |source| FailureKind::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = std::fs::File::open(path).map_err(io)?;
        let identity = super::cache::Identity::of(&file.metadata().map_err(io)?);
        let mut wasm = Vec::new();
        file.read_to_end(&mut wasm).map_err(io)?;
        check_is_component(&wasm).map_err(FailureKind::NotAComponent)?;
        let sha256 = sha256_hex(&wasm);
        let (component, cache) = self
            .cache
            .load(&self.engine, &wasm, &sha256)
            .map_err(|e| FailureKind::NotAComponent(format!("{e:#}")))?;
        self.cache.remember_digest(path, identity, &sha256);
        Ok((component, cache, sha256, wasm.len() as u64))
    }

    /// Which hooks `pre` exports, each type-checked against the WIT by
    /// instantiating it once (a start function that misbehaves fails here).
    async fn exported_hooks(
        &self,
        name: &str,
        pre: &InstancePre<StoreState>,
    ) -> Result<Vec<Hook>, PluginError> {
        let fail = |kind| PluginError::new(name, None, kind);
        let exported: Vec<Hook> = Hook::ALL
            .into_iter()
            .filter(|h| {
                pre.component()
                    .get_export_index(None, h.interface())
                    .is_some()
            })
            .collect();
        if exported.is_empty() {
            let expected: Vec<String> = Hook::ALL.iter().map(|h| h.interface()).collect();
            return Err(fail(FailureKind::WorldMismatch(format!(
                "it exports none of the hook interfaces; expected at least one of: {}",
                expected.join(", ")
            ))));
        }
        let mut store = self
            .store(&Sandbox::default())
            .map_err(|e| fail(FailureKind::Host(e)))?;
        // Epochs stop a start function that spins; this stops one blocked in
        // a host call, which epochs cannot interrupt.
        let budget = Sandbox::default().timeout;
        let instance = tokio::time::timeout(
            budget + Duration::from_secs(1),
            pre.instantiate_async(&mut store),
        )
        .await
        .map_err(|_| fail(FailureKind::Timeout(budget)))?
        .map_err(|e| fail(classify(&store, e, budget)))?;
        for hook in &exported {
            typecheck(*hook, pre, &mut store, &instance).map_err(|e| {
                fail(FailureKind::WorldMismatch(format!(
                    "its export `{}` does not match the WIT: {e:#}",
                    hook.interface()
                )))
            })?;
        }
        Ok(exported)
    }

    fn store(&self, sandbox: &Sandbox) -> Result<Store<StoreState>, String> {
        let mut store = Store::new(&self.engine, StoreState::new(sandbox)?);
        store.limiter(|s| &mut s.memory);
        let ticks = sandbox
            .timeout
            .as_millis()
            .div_ceil(EPOCH_TICK.as_millis())
            .max(1) as u64;
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        Ok(store)
    }

    /// Calls a hook the way a deploy does: a failure blocks (fail closed)
    /// unless the plugin's config says `on_error: warn`, in which case it
    /// becomes `proceed` with a warning finding naming the failure. A plugin
    /// that is not valid at all is never waved through.
    pub async fn run_hook(
        &self,
        plugin: &Plugin,
        hook: Hook,
        ctx: &HookContext,
        config: &PluginConfig,
    ) -> Result<CallReport, PluginError> {
        let started = Instant::now();
        match self.call(plugin, hook, ctx, config).await {
            Err(e) if config.on_error == OnError::Warn && !e.kind.is_invalid_plugin() => {
                Ok(CallReport {
                    outcome: Outcome {
                        verdict: Verdict::Proceed,
                        findings: vec![Finding {
                            severity: Severity::Warning,
                            rule: format!("plugin-{}", e.kind.code()),
                            message: format!("{e} (ignored: on_error is warn)"),
                            file: None,
                            line: None,
                            fix: None,
                        }],
                        message: None,
                    },
                    log: Vec::new(),
                    stdout: String::new(),
                    stderr: e.stderr,
                    dropped: 0,
                    denied: Vec::new(),
                    duration: started.elapsed(),
                })
            }
            result => result,
        }
    }

    /// Calls `hook` on `plugin` once, in a fresh sandboxed instance.
    pub async fn call(
        &self,
        plugin: &Plugin,
        hook: Hook,
        ctx: &HookContext,
        config: &PluginConfig,
    ) -> Result<CallReport, PluginError> {
        let fail = |kind| PluginError::new(&plugin.name, Some(hook), kind);
        if !plugin.hooks.contains(&hook) {
            return Err(fail(FailureKind::HookNotHandled(hook)));
        }
        let started = Instant::now();
        let sandbox = &config.sandbox;
        let mut store = self
            .store(sandbox)
            .map_err(|e| fail(FailureKind::Host(e)))?;
        // Epochs stop guest code; this backstop stops a guest blocked in a host
        // call (a sleep, a slow HTTP response), which epochs cannot reach.
        let call = invoke(&plugin.pre, &mut store, hook, ctx, &config.settings);
        let result = tokio::time::timeout(sandbox.timeout, call).await;
        let state = store.data();
        let (stdout, out_dropped) = state.stdout.take();
        let (stderr, err_dropped) = state.stderr.take();
        let denied = state.denied.lock().unwrap().clone();
        let elapsed = started.elapsed();
        let with_output = |kind| PluginError {
            stderr: tail(&stderr),
            ..fail(kind)
        };
        let outcome = match result {
            Err(_deadline) => return Err(with_output(FailureKind::Timeout(sandbox.timeout))),
            Ok(Err(e)) => return Err(with_output(classify(&store, e, sandbox.timeout))),
            Ok(Ok(Err(message))) if !denied.is_empty() => {
                return Err(with_output(FailureKind::Denied(format!(
                    "{} ({message})",
                    denied.join("; ")
                ))));
            }
            Ok(Ok(Err(message))) => return Err(with_output(FailureKind::Malfunction(message))),
            Ok(Ok(Ok(outcome))) => outcome,
        };
        outcome
            .validate()
            .map_err(|why| with_output(FailureKind::BadResult(why)))?;
        let state = store.into_data();
        Ok(CallReport {
            outcome,
            dropped: out_dropped + err_dropped + state.log_dropped as u64,
            log: state.log,
            stdout,
            stderr,
            denied,
            duration: elapsed,
        })
    }
}

/// Keeps the last lines of a plugin's stderr for an error message.
fn tail(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Turns a wasmtime error from instantiation or a call into a failure kind.
fn classify(store: &Store<StoreState>, e: wasmtime::Error, timeout: Duration) -> FailureKind {
    if store.data().memory.hit {
        return FailureKind::MemoryLimit(store.data().memory.limit);
    }
    match e.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => FailureKind::Timeout(timeout),
        Some(_) => FailureKind::Trap(trap_message(&e)),
        // Lifting the plugin's return value failed: bad UTF-8, a bad enum...
        None => FailureKind::BadResult(format!("{e:#}")),
    }
}

/// A trap as a plugin's author needs it: what trapped, then the guest's own
/// frames; the host's (bluegreen's Rust) backtrace only with `-v`, where
/// `RUST_BACKTRACE` captured one.
fn trap_message(e: &wasmtime::Error) -> String {
    let mut text = e.root_cause().to_string();
    if let Some(frames) = e.downcast_ref::<wasmtime::WasmBacktrace>() {
        text.push_str(&format!("\n{frames}"));
    }
    if crate::output::verbose() {
        let host = e.backtrace().to_string();
        if !host.is_empty() && !host.contains("disabled") {
            text.push_str(&format!("\nhost backtrace:\n{host}"));
        }
    }
    text
}

fn check_is_component(wasm: &[u8]) -> Result<(), String> {
    match wasm {
        [0, b'a', b's', b'm', 1, 0, 0, 0, ..] => Err(
            "it is a core WebAssembly module; build a component (target wasm32-wasip2, or `wasm-tools component new`)"
                .into(),
        ),
        [0, b'a', b's', b'm', _, _, 1, 0, ..] => Ok(()),
        _ => Err("it does not start with the WebAssembly magic bytes".into()),
    }
}

fn component_imports(engine: &Engine, component: &Component) -> Vec<String> {
    component
        .component_type()
        .imports(engine)
        .map(|(name, _)| name.to_string())
        .collect()
}

/// A hook's answer in the host's terms (`approval` answers with its own
/// record, which carries a message and `abstain`).
type HookResult = wasmtime::Result<Result<Outcome, String>>;

/// Type-checks one exported hook interface against the WIT.
fn typecheck(
    hook: Hook,
    pre: &InstancePre<StoreState>,
    store: &mut Store<StoreState>,
    instance: &wasmtime::component::Instance,
) -> wasmtime::Result<()> {
    macro_rules! check {
        ($iface:ident) => {
            hooks::$iface::GuestIndices::new(pre)?
                .load(&mut *store, instance)
                .map(|_| ())
        };
    }
    match hook {
        Hook::PreDeploy => check!(pre_deploy),
        Hook::MigrationSafetyCheck => check!(migration_safety_check),
        Hook::PreUnmap => check!(pre_unmap),
        Hook::PrePush => check!(pre_push),
        Hook::HealthCheck => check!(health_check),
        Hook::PreMap => check!(pre_map),
        Hook::Analyze => check!(analyze),
        Hook::PostMap => check!(post_map),
        Hook::PostDeploy => check!(post_deploy),
        Hook::OnFailure => check!(on_failure),
        Hook::Approval => check!(approval),
    }
}

/// Instantiates `pre` in `store` and calls the hook's `handle`.
async fn invoke(
    pre: &InstancePre<StoreState>,
    store: &mut Store<StoreState>,
    hook: Hook,
    ctx: &HookContext,
    settings: &[(String, String)],
) -> HookResult {
    let instance = pre.instantiate_async(&mut *store).await?;
    let d = bindings::deploy(&ctx.deploy, settings);
    let t = bindings::target(&ctx.target);
    macro_rules! guest {
        ($iface:ident) => {
            hooks::$iface::GuestIndices::new(pre)?.load(&mut *store, &instance)?
        };
    }
    if hook == Hook::Approval {
        // Without a pause (`plugin run` with no `pause:`), an example one.
        let p = bindings::pause(&ctx.pause.clone().unwrap_or_default());
        let attempt = ctx.attempt.unwrap_or(1);
        let answer = guest!(approval)
            .call_handle(&mut *store, &d, &p, attempt)
            .await?;
        return Ok(answer.map(Outcome::from));
    }
    let outcome = match hook {
        Hook::PreDeploy => guest!(pre_deploy).call_handle(&mut *store, &d).await,
        Hook::MigrationSafetyCheck => {
            let pending: Vec<_> = ctx.pending.iter().map(bindings::migration).collect();
            guest!(migration_safety_check)
                .call_handle(&mut *store, &d, &pending)
                .await
        }
        Hook::PreUnmap => guest!(pre_unmap).call_handle(&mut *store, &d, &t).await,
        Hook::PrePush => guest!(pre_push).call_handle(&mut *store, &d, &t).await,
        Hook::HealthCheck => {
            let attempt = ctx.attempt.unwrap_or(1);
            guest!(health_check)
                .call_handle(&mut *store, &d, &t, attempt)
                .await
        }
        Hook::PreMap => guest!(pre_map).call_handle(&mut *store, &d, &t).await,
        Hook::Analyze => {
            // Without a window (`plugin run` with no `analysis:`), an empty
            // one: the plugin sees zero requests, as it would on a quiet route.
            let empty = super::context::AnalysisWindow::default();
            let w = bindings::window(ctx.analysis.as_ref().unwrap_or(&empty));
            let attempt = ctx.attempt.unwrap_or(1);
            guest!(analyze)
                .call_handle(&mut *store, &d, &t, &w, attempt)
                .await
        }
        Hook::PostMap => guest!(post_map).call_handle(&mut *store, &d, &t).await,
        Hook::PostDeploy => guest!(post_deploy).call_handle(&mut *store, &d).await,
        Hook::OnFailure => {
            let f = ctx
                .failure
                .clone()
                .unwrap_or_else(|| super::context::FailureInfo {
                    step: "unknown".into(),
                    color: None,
                    message: "no failure given".into(),
                });
            guest!(on_failure)
                .call_handle(&mut *store, &d, &bindings::failure(&f))
                .await
        }
        Hook::Approval => unreachable!("answered above"),
    };
    Ok(outcome?.map(Outcome::from))
}

impl bindings::bluegreen::hooks::log::Host for StoreState {
    fn log(&mut self, level: bindings::wit::Severity, message: String) {
        self.push_log(Severity::from(level), message);
    }
}

impl bindings::bluegreen::hooks::types::Host for StoreState {}

/// A fresh instance per call is only cheap when memories, tables and fiber
/// stacks come from a pool instead of fresh `mmap`s. The pool bounds how many
/// plugin instances may be alive at once; calls are sequential in a deploy.
fn pooling() -> wasmtime::InstanceAllocationStrategy {
    let mut pool = wasmtime::PoolingAllocationConfig::new();
    pool.total_component_instances(64)
        .total_core_instances(1000)
        .total_memories(128)
        .total_tables(256)
        .total_stacks(64)
        .max_memory_size(1 << 32)
        // Returning memory to the kernel in batches amortizes the TLB
        // shootdowns each `madvise` costs in a multi-threaded process.
        .decommit_batch_size(16)
        // Tables and fiber stacks are small: keeping them resident and
        // zeroing them is cheaper than faulting them in on every call.
        .table_keep_resident(64 << 10)
        .async_stack_keep_resident(64 << 10);
    wasmtime::InstanceAllocationStrategy::Pooling(pool)
}

/// One ticker thread per engine advances the epoch; it ends with the engine.
fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("bluegreen-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawning the epoch ticker thread");
}
