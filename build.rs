//! Builds the guest plugins in `plugins/` for `wasm32-wasip2`, so that a plain
//! `cargo build`, `cargo run` or `cargo test` of the host also produces every
//! component the README and the tests use (the way wasmtime's test-programs
//! build their guests). The plugins are a separate cargo workspace with their
//! own target directory, so the nested cargo never waits on this build's lock.
//!
//! Output: `<target>/plugins/<name>.wasm` for the real plugins and
//! `<target>/plugins/testing/<name>.wasm` for the test-only components; the
//! directory is passed to the crate as `BLUEGREEN_BUILT_PLUGINS`.

use std::path::{Path, PathBuf};
use std::process::Command;

const GUEST_TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let plugins = manifest_dir.join("plugins");
    // Only the Rust guests: the JS/Python/C plugins next to them build with
    // their own toolchains (in tests), and node_modules must not trigger this.
    for file in ["Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", plugins.join(file).display());
    }
    for group in [plugins.clone(), plugins.join("testing")] {
        for entry in std::fs::read_dir(&group).into_iter().flatten().flatten() {
            if entry.path().join("Cargo.toml").exists() {
                println!("cargo:rerun-if-changed={}", entry.path().display());
            }
        }
    }
    println!(
        "cargo:rerun-if-changed={}",
        manifest_dir.join("wit").display()
    );
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");
    println!("cargo:rerun-if-env-changed=BLUEGREEN_PLUGINS_WRAPPER");

    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| {
            if p.is_absolute() {
                p
            } else {
                manifest_dir.join(p)
            }
        })
        .unwrap_or_else(|| manifest_dir.join("target"));
    let build_dir = target_dir.join("plugins-build");
    let out = target_dir.join("plugins");

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&plugins)
        .args([
            "build",
            "--release",
            "--target",
            GUEST_TARGET,
            "--target-dir",
        ])
        .arg(&build_dir);
    // The outer build's flags and wrappers (clippy sets RUSTC_WORKSPACE_WRAPPER)
    // are for the host target; they must not leak into the guest build.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        cmd.env_remove(var);
    }
    // CI lints the guests in this same build (clippy-driver as their
    // workspace wrapper) instead of type-checking them a second time.
    if let Some(wrapper) = std::env::var_os("BLUEGREEN_PLUGINS_WRAPPER") {
        cmd.env("RUSTC_WORKSPACE_WRAPPER", wrapper);
    }
    let output = cmd.output().unwrap_or_else(|e| {
        fail(&format!(
            "running cargo for the plugins in {}: {e}",
            plugins.display()
        ))
    });
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("target may not be installed")
            || stderr.contains("can't find crate for `core`")
        {
            fail(
                "the wasm32-wasip2 target is not installed: run `rustup target add wasm32-wasip2`",
            );
        }
        fail(&format!(
            "building the plugins in {} failed:\n{stderr}",
            plugins.display()
        ));
    }

    let built = build_dir.join(GUEST_TARGET).join("release");
    for (dir, names) in [
        (
            out.clone(),
            &[
                "hello",
                "http-probe",
                "migration-guard",
                "notify",
                "slo-check",
            ][..],
        ),
        (
            out.join("testing"),
            &[
                "approver",
                "gate",
                "hostile",
                "mismatch",
                "no-hooks",
                "readme-example",
            ][..],
        ),
    ] {
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        for name in names {
            let from = built.join(format!("{}.wasm", name.replace('-', "_")));
            copy_if_changed(&from, &dir.join(format!("{name}.wasm")));
        }
    }
    println!("cargo:rustc-env=BLUEGREEN_BUILT_PLUGINS={}", out.display());
}

/// Ends the build with one message and no backtrace: what is wrong and the
/// fix come first.
fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1)
}

/// Copying only on change keeps the `.wasm` mtimes (and so anything keyed on
/// them downstream) stable across no-op builds.
fn copy_if_changed(from: &Path, to: &Path) {
    let new = std::fs::read(from).unwrap_or_else(|e| panic!("reading {}: {e}", from.display()));
    if std::fs::read(to).ok().as_deref() != Some(&new[..]) {
        std::fs::write(to, &new).unwrap_or_else(|e| panic!("writing {}: {e}", to.display()));
    }
}
