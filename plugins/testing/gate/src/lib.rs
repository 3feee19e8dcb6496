//! `gate` (tests only): handles every hook and does what its settings say,
//! so end-to-end tests can stop a deploy at any hook or hold it there.
//! - `block-at`: comma-separated hooks to block at (per-color hooks may be
//!   written `pre-map:blue` to block for one color only);
//! - `sleep-ms`: how long to wait in every hook before answering.

use bluegreen_plugin::*;

struct Gate;

/// Why to block at `hook` (for `color`), if the settings say so.
fn decide(hook: &str, settings: &[(String, String)], color: Option<&str>) -> Option<String> {
    let setting = |key: &str| settings.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    if let Some(ms) = setting("sleep-ms").and_then(|v| v.parse().ok()) {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
    let blocks = setting("block-at").unwrap_or_default().split(',').any(|spec| {
        match spec.trim().split_once(':') {
            Some((h, c)) => h == hook && color == Some(c),
            None => spec.trim() == hook,
        }
    });
    blocks.then(|| {
        format!("gate blocks {hook}{}", color.map(|c| format!(" on {c}")).unwrap_or_default())
    })
}

/// One `Guest` impl per hook module, all answering through `decide`.
macro_rules! gate {
    ($module:ident, $hook:literal, ($($arg:ident: $ty:ty),*), $color:expr) => {
        impl $module::Guest for Gate {
            fn handle(d: $module::Deploy, $($arg: $ty),*) -> Result<$module::Outcome, String> {
                #[allow(clippy::redundant_closure_call)]
                let color: Option<&str> = ($color)($(&$arg),*);
                Ok(match decide($hook, &d.settings, color) {
                    Some(reason) => $module::Outcome::block(reason),
                    None => $module::Outcome::proceed(),
                })
            }
        }
        $module::export!(Gate);
    };
}

gate!(pre_deploy, "pre-deploy", (), || None);
gate!(migration_safety_check, "migration-safety-check", (_p: Vec<migration_safety_check::Migration>), |_: &Vec<_>| None);
gate!(pre_unmap, "pre-unmap", (t: pre_unmap::Target), |t: &pre_unmap::Target| Some(t.color.name()));
gate!(pre_push, "pre-push", (t: pre_push::Target), |t: &pre_push::Target| Some(t.color.name()));
gate!(health_check, "health-check", (t: health_check::Target, _a: u32), |t: &health_check::Target, _: &u32| Some(t.color.name()));
gate!(pre_map, "pre-map", (t: pre_map::Target), |t: &pre_map::Target| Some(t.color.name()));
gate!(post_map, "post-map", (t: post_map::Target), |t: &post_map::Target| Some(t.color.name()));
gate!(post_deploy, "post-deploy", (), || None);

// Never blocks: an on-failure verdict cannot undo a failure anyway.
impl on_failure::Guest for Gate {
    fn handle(
        _: on_failure::Deploy,
        _: on_failure::Failure,
    ) -> Result<on_failure::Outcome, String> {
        Ok(on_failure::Outcome::proceed())
    }
}
on_failure::export!(Gate);
