//! `hello`: the smallest plugin that handles every hook but `approval` (one
//! that approved every pause would quietly remove the gate). It logs the
//! context it was given and lets the deploy proceed. Copy it to start a new
//! plugin.

use bluegreen_plugin::*;

struct Hello;

/// Logs through the host's plugin log (each hook module has the same one).
fn hello(hook: &str, d: &pre_deploy::Deploy, extra: String) {
    let settings: Vec<String> = d.settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
    pre_deploy::log::log(
        pre_deploy::Severity::Info,
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
}

/// Each hook module has its own copy of the WIT types; this carries one
/// module's `deploy` record over to the one `hello` logs with.
macro_rules! deploy {
    ($d:expr) => {
        pre_deploy::Deploy {
            id: $d.id,
            app: $d.app,
            release: $d.release,
            previous_release: $d.previous_release,
            route_url: $d.route_url,
            settings: $d.settings,
        }
    };
}

macro_rules! on {
    ($t:expr) => {
        format!(
            " on {} ({}) at {} first={}",
            $t.color.name(),
            $t.app_name,
            $t.candidate_url,
            $t.first
        )
    };
}

impl pre_deploy::Guest for Hello {
    fn handle(d: pre_deploy::Deploy) -> Result<pre_deploy::Outcome, String> {
        hello("pre-deploy", &d, String::new());
        Ok(pre_deploy::Outcome::proceed())
    }
}

impl migration_safety_check::Guest for Hello {
    fn handle(
        d: migration_safety_check::Deploy,
        pending: Vec<migration_safety_check::Migration>,
    ) -> Result<migration_safety_check::Outcome, String> {
        let names: Vec<&str> = pending.iter().map(|m| m.path.as_str()).collect();
        hello("migration-safety-check", &deploy!(d), format!(" pending [{}]", names.join(", ")));
        Ok(migration_safety_check::Outcome::proceed())
    }
}

impl pre_unmap::Guest for Hello {
    fn handle(d: pre_unmap::Deploy, t: pre_unmap::Target) -> Result<pre_unmap::Outcome, String> {
        hello("pre-unmap", &deploy!(d), on!(t));
        Ok(pre_unmap::Outcome::proceed())
    }
}

impl pre_push::Guest for Hello {
    fn handle(d: pre_push::Deploy, t: pre_push::Target) -> Result<pre_push::Outcome, String> {
        hello("pre-push", &deploy!(d), on!(t));
        Ok(pre_push::Outcome::proceed())
    }
}

impl health_check::Guest for Hello {
    fn handle(
        d: health_check::Deploy,
        t: health_check::Target,
        attempt: u32,
    ) -> Result<health_check::Outcome, String> {
        hello("health-check", &deploy!(d), format!("{} attempt {attempt}", on!(t)));
        Ok(health_check::Outcome::proceed())
    }
}

impl pre_map::Guest for Hello {
    fn handle(d: pre_map::Deploy, t: pre_map::Target) -> Result<pre_map::Outcome, String> {
        hello("pre-map", &deploy!(d), on!(t));
        Ok(pre_map::Outcome::proceed())
    }
}

impl analyze::Guest for Hello {
    fn handle(
        d: analyze::Deploy,
        t: analyze::Target,
        w: analyze::Window,
        attempt: u32,
    ) -> Result<analyze::Outcome, String> {
        let baseline = match &w.baseline {
            Some(b) => format!("{} requests ({} 5xx)", b.requests, b.status_5xx),
            None => "none".into(),
        };
        let window = format!(
            "{} attempt {attempt} window {} ms at {}% from {}: candidate {} requests ({} 5xx, p99 {} ms), baseline {baseline}",
            on!(t),
            w.duration_ms,
            w.weight_percent,
            w.source,
            w.candidate.requests,
            w.candidate.status_5xx,
            w.candidate.p99_ms,
        );
        hello("analyze", &deploy!(d), window);
        Ok(analyze::Outcome::proceed())
    }
}

impl post_map::Guest for Hello {
    fn handle(d: post_map::Deploy, t: post_map::Target) -> Result<post_map::Outcome, String> {
        hello("post-map", &deploy!(d), on!(t));
        Ok(post_map::Outcome::proceed())
    }
}

impl post_deploy::Guest for Hello {
    fn handle(d: post_deploy::Deploy) -> Result<post_deploy::Outcome, String> {
        hello("post-deploy", &deploy!(d), String::new());
        Ok(post_deploy::Outcome::proceed())
    }
}

impl on_failure::Guest for Hello {
    fn handle(
        d: on_failure::Deploy,
        f: on_failure::Failure,
    ) -> Result<on_failure::Outcome, String> {
        hello("on-failure", &deploy!(d), format!(" after {} failed: {}", f.step, f.message));
        Ok(on_failure::Outcome::proceed())
    }
}

pre_deploy::export!(Hello);
migration_safety_check::export!(Hello);
pre_unmap::export!(Hello);
pre_push::export!(Hello);
health_check::export!(Hello);
pre_map::export!(Hello);
analyze::export!(Hello);
post_map::export!(Hello);
post_deploy::export!(Hello);
on_failure::export!(Hello);
