//! The same plugin in four languages, side by side (`cargo bench --bench
//! languages`): the `plugin new` template for each (a `pre-deploy` hook that
//! blocks while `frozen` is `true`), built with its toolchain, then:
//! component size, load without the cache (compile), load from the cache,
//! and a warm call (fresh store + instance per call, as a deploy makes it).

use bluegreen::plugin::{Hook, HookContext, PluginConfig, PluginHost};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn build(dir: &Path, lang: &str) -> PathBuf {
    let name = format!("freeze-{lang}");
    let status = Command::new(env!("CARGO_BIN_EXE_bluegreen"))
        .args(["plugin", "new", &name, "--lang", lang, "--dir"])
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let out = Command::new(dir.join(&name).join("build"))
        .env(
            "CARGO_TARGET_DIR",
            PathBuf::from(env!("BLUEGREEN_BUILT_PLUGINS")).join("../plugins-build"),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{lang}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join(&name).join(format!("{name}.wasm"))
}

#[tokio::main]
async fn main() {
    let work = tempfile::tempdir().unwrap();
    println!(
        "{:<8} {:>10} {:>12} {:>12} {:>12}",
        "language", "size", "load, cold", "load, cache", "warm call"
    );
    for lang in ["rust", "c", "js", "python"] {
        let wasm = build(work.path(), lang);
        let size = std::fs::metadata(&wasm).unwrap().len();
        let cache = work.path().join(format!("cache-{lang}"));
        let t = Instant::now();
        let cold_host = PluginHost::new(Some(cache.clone())).unwrap();
        cold_host.load(&wasm).await.unwrap();
        let cold = t.elapsed();
        let host = PluginHost::new(Some(cache)).unwrap();
        let cached = median(cached_loads(&host, &wasm, 5).await);
        let plugin = host.load(&wasm).await.unwrap();
        let ctx = HookContext::default();
        let config = PluginConfig::default();
        let mut calls = Vec::new();
        for _ in 0..30 {
            let t = Instant::now();
            host.call(&plugin, Hook::PreDeploy, &ctx, &config)
                .await
                .unwrap();
            calls.push(t.elapsed());
        }
        println!(
            "{lang:<8} {:>8.2} MB {:>9.0} ms {:>9.2} ms {:>9.1} µs",
            size as f64 / 1e6,
            cold.as_secs_f64() * 1e3,
            cached.as_secs_f64() * 1e3,
            median(calls).as_secs_f64() * 1e6
        );
    }
}

async fn cached_loads(host: &PluginHost, wasm: &Path, n: usize) -> Vec<Duration> {
    let mut v = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        host.load(wasm).await.unwrap();
        v.push(t.elapsed());
    }
    v
}
