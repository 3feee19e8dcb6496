//! The migration guard at scale (`cargo bench --bench guard`): 10,000
//! migration files (the labelled corpus, Rails and SQL, repeated under new
//! versions) checked in one `migration-safety-check` call through the host,
//! as a deploy makes it. Target: ≤ 2 s. Reported as the median of 5 calls,
//! with the first (cold instance) call beside it.

use bluegreen::plugin::context::Migration;
use bluegreen::plugin::{Hook, HookContext, PluginConfig, PluginHost, Sandbox};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const FILES: usize = 10_000;

#[tokio::main]
async fn main() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/migrations");
    let mut sources: Vec<(String, String)> = std::fs::read_dir(&corpus)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rb" || e == "sql"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    sources.sort();
    let pending: Vec<Migration> = (0..FILES)
        .map(|i| {
            let (name, contents) = &sources[i % sources.len()];
            Migration {
                path: format!("db/migrate/{:05}_{name}", i),
                version: format!("{i}"),
                phase: "expand".into(),
                contents: contents.clone(),
            }
        })
        .collect();
    let bytes: usize = pending.iter().map(|m| m.contents.len()).sum();
    let cache = tempfile::tempdir().unwrap();
    let host = PluginHost::new(Some(cache.path().join("cache"))).unwrap();
    let wasm = PathBuf::from(env!("BLUEGREEN_BUILT_PLUGINS")).join("migration-guard.wasm");
    let guard = host.load(&wasm).await.unwrap();
    let ctx = HookContext {
        pending,
        ..HookContext::default()
    };
    let config = PluginConfig {
        sandbox: Sandbox {
            timeout: Duration::from_secs(60),
            memory: 256 << 20,
            ..Sandbox::default()
        },
        ..PluginConfig::default()
    };
    let mut times = Vec::new();
    let mut findings = 0;
    for _ in 0..6 {
        let t = Instant::now();
        let report = host
            .call(&guard, Hook::MigrationSafetyCheck, &ctx, &config)
            .await
            .unwrap();
        times.push(t.elapsed());
        findings = report.outcome.findings.len();
    }
    let first = times[0];
    let mut warm = times[1..].to_vec();
    warm.sort();
    let median = warm[warm.len() / 2];
    println!(
        "migration guard: {FILES} files ({:.1} MB) in one call through the host",
        bytes as f64 / 1e6
    );
    println!(
        "  median {:.0} ms ({:.1} µs per file), first call {:.0} ms, {findings} findings (target ≤ 2000 ms)",
        median.as_secs_f64() * 1e3,
        median.as_secs_f64() * 1e6 / FILES as f64,
        first.as_secs_f64() * 1e3
    );
}
