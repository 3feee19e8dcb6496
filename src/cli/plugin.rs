//! `bluegreen plugin check` and `bluegreen plugin run`: the plugin author's
//! tools. `check` also fills the compiled-code cache, so a later deploy loads
//! every checked plugin without compiling it.

use super::output::{BAD, GOOD, Printer, outln, paint, printable};
use super::{BadInput, Exit};
use crate::plugin::context::{HookContext, Severity};
use crate::plugin::{
    CallReport, DirGrant, Hook, OnError, Origin, Plugin, PluginConfig, PluginHost, Sandbox, Verdict,
};
use crate::units::{parse_duration, parse_size};
use anyhow::Context;
use clap::Subcommand;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Validate components (files or directories of *.wasm): hooks handled,
    /// imports, size, sha256. Exit 0 when all are valid, 2 otherwise.
    Check {
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Print one JSON object per plugin.
        #[arg(long)]
        json: bool,
    },
    /// Call one hook of one plugin once and print its verdict, findings and log.
    /// Exit 0 proceed, 3 block, 75 retry later, 1 plugin failure, 2 bad input.
    Run(RunArgs),
    /// Write a new plugin project (Rust, JavaScript, Python or C) that builds
    /// and passes `plugin check` as written.
    New(super::new_plugin::NewArgs),
    /// The first-party plugins built into bluegreen, with the sha256 a
    /// policy pins them by (`path: builtin:NAME`).
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The hook to call, e.g. `health-check`.
    #[arg(long, value_enum)]
    hook: Hook,
    /// A JSON or YAML file with the hook's inputs (deploy, target, attempt, pending, failure, analysis).
    #[arg(long, value_name = "FILE")]
    context: Option<PathBuf>,
    /// A plugin setting, `KEY=VALUE`; repeat for several.
    #[arg(long = "setting", value_name = "KEY=VALUE", value_parser = parse_setting)]
    settings: Vec<(String, String)>,
    /// Let the plugin read this directory (`DIR` or `DIR:/guest/path`); repeatable.
    #[arg(long = "grant-dir", value_name = "DIR", value_parser = |s: &str| DirGrant::parse(s))]
    grant_dirs: Vec<DirGrant>,
    /// Let the plugin send HTTP requests to this origin, e.g. http://127.0.0.1:8080; repeatable.
    #[arg(long = "allow-http", value_name = "ORIGIN", value_parser = |s: &str| Origin::parse(s))]
    allow_http: Vec<Origin>,
    /// Wall-clock limit for the call.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    timeout: Duration,
    /// Memory limit over all of the plugin's memories, e.g. 64MiB.
    #[arg(long, default_value = "64MiB", value_parser = parse_size)]
    memory: u64,
    /// What a plugin failure means: `block` (exit 1) or `warn` (a warning, exit by verdict).
    #[arg(long, value_enum, default_value_t = OnError::Block)]
    on_error: OnError,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
}

fn parse_setting(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("`{s}` is not KEY=VALUE")),
    }
}

pub async fn run(cmd: PluginCommand) -> anyhow::Result<Exit> {
    let host = || PluginHost::new(crate::plugin::Cache::default_dir());
    match cmd {
        PluginCommand::Check { paths, json } => check(&host()?, &paths, json).await,
        PluginCommand::Run(args) => run_one(&host()?, args).await,
        PluginCommand::New(args) => super::new_plugin::run(args),
        PluginCommand::List { json } => list(json),
    }
}

fn list(json: bool) -> anyhow::Result<Exit> {
    let out = Printer::new(json);
    for b in crate::plugin::builtin::ALL {
        out.event(
            serde_json::json!({"name": b.name, "use": format!("builtin:{}", b.name),
            "sha256": b.sha256(), "size": b.wasm.len(), "about": b.about}),
        );
    }
    out.text(|| {
        outln!("Built into this bluegreen (deploy file `plugins: {{ builtin: [NAME] }}`, policy `path: builtin:NAME`):");
        for b in crate::plugin::builtin::ALL {
            outln!("  {:<16} sha256:{}  {}", b.name, b.sha256(), b.about);
        }
    });
    Ok(Exit::Ok)
}

async fn check(host: &PluginHost, paths: &[PathBuf], json: bool) -> anyhow::Result<Exit> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("reading directory {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "wasm"))
                .collect();
            if found.is_empty() {
                return Err(BadInput(format!(
                    "{}: no *.wasm files in this directory",
                    path.display()
                ))
                .into());
            }
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    let out = Printer::new(json);
    let mut code = Exit::Ok;
    for file in &files {
        match host.load(file).await {
            Ok(plugin) => out.emit(describe(&plugin), || print_plugin(&plugin)),
            Err(err) => {
                code = Exit::BadInput;
                out.emit(
                    serde_json::json!({
                        "path": file, "valid": false, "error": err.kind.code(), "message": err.to_string(),
                    }),
                    || outln!("{} {}\n    {err}", paint(BAD, "✗"), file.display()),
                );
            }
        }
    }
    Ok(code)
}

fn describe(p: &Plugin) -> serde_json::Value {
    serde_json::json!({
        "path": p.path, "name": p.name, "valid": true,
        "hooks": p.hooks.iter().map(|h| h.name()).collect::<Vec<_>>(),
        "imports": p.imports, "size": p.size, "sha256": p.sha256,
        "cache": p.cache, "load_ms": p.load_time.as_secs_f64() * 1e3,
    })
}

fn print_plugin(p: &Plugin) {
    let hooks: Vec<&str> = p.hooks.iter().map(|h| h.name()).collect();
    let how = match p.cache {
        crate::plugin::CacheStatus::Hit => "loaded from cache",
        crate::plugin::CacheStatus::Compiled => "compiled",
    };
    outln!(
        "{} {} (plugin `{}`)",
        paint(GOOD, "✓"),
        p.path.display(),
        printable(&p.name)
    );
    outln!("    hooks:   {}", hooks.join(", "));
    outln!("    imports: {}", p.imports.join(", "));
    outln!("    size:    {} bytes", p.size);
    outln!("    sha256:  {}", p.sha256);
    outln!("    {how} in {:.1} ms", p.load_time.as_secs_f64() * 1e3);
}

fn read_context(path: &Path) -> anyhow::Result<HookContext> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| BadInput(format!("reading context file {}: {e}", path.display())))?;
    HookContext::parse(path, &text).map_err(|e| BadInput(e).into())
}

async fn run_one(host: &PluginHost, args: RunArgs) -> anyhow::Result<Exit> {
    let ctx = match &args.context {
        Some(path) => read_context(path)?,
        None => HookContext::default(),
    };
    let plugin = host.load(&args.file).await?;
    let config = PluginConfig {
        settings: args.settings,
        sandbox: Sandbox {
            dirs: args.grant_dirs,
            http: args.allow_http,
            timeout: args.timeout,
            memory: args.memory,
            ..Sandbox::default()
        },
        on_error: args.on_error,
    };
    let report = host.run_hook(&plugin, args.hook, &ctx, &config).await?;
    let mut v = serde_json::to_value(&report)?;
    v["plugin"] = plugin.name.clone().into();
    v["hook"] = args.hook.name().into();
    Printer::new(args.json).emit(v, || print_report(&plugin, args.hook, &report));
    Ok(match report.outcome.verdict {
        Verdict::Proceed | Verdict::Abstain => Exit::Ok,
        Verdict::Block(_) => Exit::Blocked,
        Verdict::RetryAfterMs(_) => Exit::Retry,
    })
}

fn print_report(plugin: &Plugin, hook: Hook, r: &CallReport) {
    let verdict = match &r.outcome.verdict {
        Verdict::Proceed => "proceed".to_string(),
        Verdict::Block(reason) => paint(BAD, &format!("block: {}", printable(reason))),
        Verdict::RetryAfterMs(ms) => format!("retry after {ms} ms"),
        Verdict::Abstain => "abstain".to_string(),
    };
    outln!(
        "plugin `{}` at hook `{hook}` ({:.1} ms)",
        printable(&plugin.name),
        r.duration.as_secs_f64() * 1e3
    );
    outln!("verdict: {verdict}");
    if let Some(m) = &r.outcome.message
        && !matches!(&r.outcome.verdict, Verdict::Block(reason) if reason == m)
    {
        outln!("message: {}", printable(m));
    }
    for f in &r.outcome.findings {
        let at = match (&f.file, f.line) {
            (Some(file), Some(line)) => format!(" ({}:{line})", printable(file)),
            (Some(file), None) => format!(" ({})", printable(file)),
            _ => String::new(),
        };
        outln!(
            "  {} [{}] {}{at}",
            severity(f.severity),
            printable(&f.rule),
            printable(&f.message)
        );
    }
    for line in &r.log {
        outln!("log {}: {}", severity(line.level), printable(&line.message));
    }
    for (name, text) in [("stdout", &r.stdout), ("stderr", &r.stderr)] {
        for line in text.lines() {
            outln!("{name}: {}", printable(line));
        }
    }
    if r.dropped > 0 {
        outln!("({} bytes of output dropped past the cap)", r.dropped);
    }
    for d in &r.denied {
        outln!("denied: {d}");
    }
}

fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Error => "error",
    }
}
