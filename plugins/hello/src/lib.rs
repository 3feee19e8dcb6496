//! `hello`: the smallest plugin that handles every hook. It logs the context it
//! was given and lets the deploy proceed. Copy it to start a new plugin.

wit_bindgen::generate!({ world: "all-hooks", path: "../../wit" });

use bluegreen::hooks::log::log;
use bluegreen::hooks::types::{Color, Deploy, Failure, Outcome, Severity, Target, Verdict};
use exports::bluegreen::hooks::*;

struct Hello;

fn proceed(hook: &str, d: &Deploy, extra: String) -> Result<Outcome, String> {
    let settings: Vec<String> = d.settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
    log(
        Severity::Info,
        &format!(
            "hello from {hook}: deploy {} of {} release {} (previous {}) route {} settings [{}]{extra}",
            d.id,
            d.app,
            d.release,
            d.previous_release.as_deref().unwrap_or("none"),
            d.route_url,
            settings.join(", "),
        ),
    );
    Ok(Outcome { verdict: Verdict::Proceed, findings: Vec::new() })
}

fn on(t: &Target) -> String {
    let color = match t.color {
        Color::Blue => "blue",
        Color::Green => "green",
    };
    format!(" on {color} ({}) at {} first={}", t.app_name, t.candidate_url, t.first)
}

impl pre_deploy::Guest for Hello {
    fn handle(d: Deploy) -> Result<Outcome, String> {
        proceed("pre-deploy", &d, String::new())
    }
}

impl migration_safety_check::Guest for Hello {
    fn handle(
        d: Deploy,
        pending: Vec<migration_safety_check::Migration>,
    ) -> Result<Outcome, String> {
        let names: Vec<&str> = pending.iter().map(|m| m.path.as_str()).collect();
        proceed("migration-safety-check", &d, format!(" pending [{}]", names.join(", ")))
    }
}

impl pre_unmap::Guest for Hello {
    fn handle(d: Deploy, t: Target) -> Result<Outcome, String> {
        proceed("pre-unmap", &d, on(&t))
    }
}

impl pre_push::Guest for Hello {
    fn handle(d: Deploy, t: Target) -> Result<Outcome, String> {
        proceed("pre-push", &d, on(&t))
    }
}

impl health_check::Guest for Hello {
    fn handle(d: Deploy, t: Target, attempt: u32) -> Result<Outcome, String> {
        proceed("health-check", &d, format!("{} attempt {attempt}", on(&t)))
    }
}

impl pre_map::Guest for Hello {
    fn handle(d: Deploy, t: Target) -> Result<Outcome, String> {
        proceed("pre-map", &d, on(&t))
    }
}

impl post_map::Guest for Hello {
    fn handle(d: Deploy, t: Target) -> Result<Outcome, String> {
        proceed("post-map", &d, on(&t))
    }
}

impl post_deploy::Guest for Hello {
    fn handle(d: Deploy) -> Result<Outcome, String> {
        proceed("post-deploy", &d, String::new())
    }
}

impl on_failure::Guest for Hello {
    fn handle(d: Deploy, f: Failure) -> Result<Outcome, String> {
        proceed("on-failure", &d, format!(" after {} failed: {}", f.step, f.message))
    }
}

export!(Hello);
