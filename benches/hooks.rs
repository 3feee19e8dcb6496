//! Hook overhead, side by side in one run (`cargo bench --bench hooks`):
//! - a warm call into the `hello` plugin (fresh store + instance per call,
//!   as a deploy does) against the same work as a shell hook (a bash script,
//!   fork+exec per call, the way Kamal runs hooks);
//! - loading a plugin from the compiled-code cache against compiling it.
//!
//! Targets: warm call >= 100x faster than the shell hook; cached load >= 20x
//! faster than compiling and <= 5 ms per plugin. Reported as medians.

use bluegreen::plugin::{Hook, HookContext, PluginConfig, PluginHost};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn sample<F: FnMut()>(n: usize, mut f: F) -> Duration {
    f(); // warm up
    median(
        (0..n)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect(),
    )
}

const SHELL_HOOK: &str = r#"#!/usr/bin/env bash
# What `hello` does at pre-deploy, as a Kamal-style shell hook: read the
# context from the environment and log one line.
echo "hello from pre-deploy: deploy $BLUEGREEN_DEPLOY_ID of $BLUEGREEN_APP release $BLUEGREEN_RELEASE (previous ${BLUEGREEN_PREVIOUS_RELEASE:-none}) route $BLUEGREEN_ROUTE_URL settings [greeting=$BLUEGREEN_SETTING_GREETING]"
"#;

fn shell_hook(script: &Path, ctx: &HookContext) {
    let d = &ctx.deploy;
    let out = Command::new(script)
        .env("BLUEGREEN_DEPLOY_ID", &d.id)
        .env("BLUEGREEN_APP", &d.app)
        .env("BLUEGREEN_RELEASE", &d.release)
        .env("BLUEGREEN_ROUTE_URL", &d.route_url)
        .env("BLUEGREEN_SETTING_GREETING", "hi")
        .output()
        .expect("running the shell hook");
    assert!(out.status.success() && out.stdout.starts_with(b"hello from pre-deploy"));
}

fn fmt(d: Duration) -> String {
    format!("{:>10.1} µs", d.as_secs_f64() * 1e6)
}

fn main() {
    let plugins = PathBuf::from(env!("BLUEGREEN_BUILT_PLUGINS"));
    let hello_path = plugins.join("hello.wasm");
    let tmp = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();

    let cached = PluginHost::new(Some(tmp.path().join("cache"))).unwrap();
    let uncached = PluginHost::new(None).unwrap();
    let hello = rt.block_on(cached.load(&hello_path)).unwrap();
    let ctx = HookContext::default();
    let config = PluginConfig {
        settings: vec![("greeting".into(), "hi".into())],
        ..PluginConfig::default()
    };

    // `cargo bench --bench hooks -- --profile-calls`: only the warm call, for a profiler.
    let calls = if std::env::args().any(|a| a == "--profile-calls") {
        200_000
    } else {
        20_000
    };
    // Timed inside the runtime, where a deploy makes its calls.
    let warm = rt.block_on(async {
        let mut samples = Vec::with_capacity(calls);
        for _ in 0..calls {
            let t = Instant::now();
            let r = cached
                .call(&hello, Hook::PreDeploy, &ctx, &config)
                .await
                .unwrap();
            samples.push(t.elapsed());
            assert_eq!(r.log.len(), 1);
        }
        median(samples)
    });
    if calls > 20_000 {
        println!("warm call {}", fmt(warm));
        return;
    }
    let script = tmp.path().join("pre-deploy");
    std::fs::write(&script, SHELL_HOOK).unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let shell = sample(200, || shell_hook(&script, &ctx));

    let cached_load = sample(200, || {
        let p = rt.block_on(cached.load(&hello_path)).unwrap();
        assert_eq!(p.cache, bluegreen::plugin::CacheStatus::Hit);
    });
    let compiled_load = sample(20, || {
        rt.block_on(uncached.load(&hello_path)).unwrap();
    });

    let call_ratio = shell.as_secs_f64() / warm.as_secs_f64();
    let load_ratio = compiled_load.as_secs_f64() / cached_load.as_secs_f64();
    let verdict = |ok: bool| if ok { "target met" } else { "TARGET MISSED" };
    println!(
        "hook overhead (medians, hello plugin {} bytes)",
        std::fs::metadata(&hello_path).unwrap().len()
    );
    println!("  warm wasm hook call        {}", fmt(warm));
    println!("  shell hook (fork+exec)     {}", fmt(shell));
    println!(
        "  -> wasm call is {call_ratio:.0}x faster (target >= 100x): {}",
        verdict(call_ratio >= 100.0)
    );
    println!("  load from cache            {}", fmt(cached_load));
    println!("  load by compiling          {}", fmt(compiled_load));
    println!(
        "  -> cached load is {load_ratio:.0}x faster (target >= 20x): {}",
        verdict(load_ratio >= 20.0)
    );
    println!(
        "  -> cached load {:.2} ms per plugin (target <= 5 ms): {}",
        cached_load.as_secs_f64() * 1e3,
        verdict(cached_load <= Duration::from_millis(5))
    );
}
