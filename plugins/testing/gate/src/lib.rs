//! `gate` (tests only): handles every hook and does what its settings say,
//! so end-to-end tests can stop a deploy at any hook or hold it there.
//! - `block-at`: comma-separated hooks to block at (per-color hooks may be
//!   written `pre-map:blue` to block for one color only);
//! - `sleep-ms`: how long to wait in every hook before answering.

wit_bindgen::generate!({ world: "all-hooks", path: "../../../wit" });

use bluegreen::hooks::types::{Color, Deploy, Failure, Outcome, Target, Verdict};
use exports::bluegreen::hooks::*;

struct Gate;

fn setting<'a>(d: &'a Deploy, key: &str) -> Option<&'a str> {
    d.settings.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn answer(hook: &str, d: &Deploy, t: Option<&Target>) -> Result<Outcome, String> {
    if let Some(ms) = setting(d, "sleep-ms").and_then(|v| v.parse().ok()) {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
    let color = t.map(|t| match t.color {
        Color::Blue => "blue",
        Color::Green => "green",
    });
    let blocks = setting(d, "block-at").unwrap_or_default().split(',').any(|spec| {
        match spec.trim().split_once(':') {
            Some((h, c)) => h == hook && color == Some(c),
            None => spec.trim() == hook,
        }
    });
    let verdict = if blocks {
        Verdict::Block(format!(
            "gate blocks {hook}{}",
            color.map(|c| format!(" on {c}")).unwrap_or_default()
        ))
    } else {
        Verdict::Proceed
    };
    Ok(Outcome { verdict, findings: Vec::new() })
}

impl pre_deploy::Guest for Gate {
    fn handle(d: Deploy) -> Result<Outcome, String> {
        answer("pre-deploy", &d, None)
    }
}

impl migration_safety_check::Guest for Gate {
    fn handle(d: Deploy, _: Vec<migration_safety_check::Migration>) -> Result<Outcome, String> {
        answer("migration-safety-check", &d, None)
    }
}

impl pre_unmap::Guest for Gate {
    fn handle(d: Deploy, t: Target) -> Result<Outcome, String> {
        answer("pre-unmap", &d, Some(&t))
    }
}

impl pre_push::Guest for Gate {
    fn handle(d: Deploy, t: Target) -> Result<Outcome, String> {
        answer("pre-push", &d, Some(&t))
    }
}

impl health_check::Guest for Gate {
    fn handle(d: Deploy, t: Target, _: u32) -> Result<Outcome, String> {
        answer("health-check", &d, Some(&t))
    }
}

impl pre_map::Guest for Gate {
    fn handle(d: Deploy, t: Target) -> Result<Outcome, String> {
        answer("pre-map", &d, Some(&t))
    }
}

impl post_map::Guest for Gate {
    fn handle(d: Deploy, t: Target) -> Result<Outcome, String> {
        answer("post-map", &d, Some(&t))
    }
}

impl post_deploy::Guest for Gate {
    fn handle(d: Deploy) -> Result<Outcome, String> {
        answer("post-deploy", &d, None)
    }
}

impl on_failure::Guest for Gate {
    fn handle(_: Deploy, _: Failure) -> Result<Outcome, String> {
        // Never blocks: an on-failure verdict cannot undo a failure anyway.
        Ok(Outcome { verdict: Verdict::Proceed, findings: Vec::new() })
    }
}

export!(Gate);
