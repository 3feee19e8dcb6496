//! The standby plans: one push to the idle color only, the old color off
//! the route only after the new one is mapped, and a rollback with no push.

use super::*;
use crate::deploy::plan::for_mode;
use Color::{Blue, Green};
use std::path::Path;
use std::time::Duration;

fn file(yaml: &str) -> DeployFile {
    DeployFile::parse(Path::new("bluegreen.yaml"), yaml).unwrap()
}

fn kinds(steps: &[Step]) -> Vec<String> {
    steps
        .iter()
        .filter(|s| !matches!(s, Step::Hook { .. }))
        .map(|s| match s.color() {
            Some(c) => format!("{} {c}", s.kind()),
            None => s.kind().to_string(),
        })
        .collect()
}

const FILE: &str = "app: shop\nscale_down_delay: 30m\nmigrate: { command: bin/migrate }\n";

#[test]
fn only_the_idle_color_gets_the_release_and_the_live_one_becomes_the_standby() {
    let sides = Sides::from_site([Green, Blue], &[Blue], &[Blue]);
    assert_eq!(
        sides,
        Sides {
            idle: Green,
            idle_mapped: false,
            live: Some(Blue)
        }
    );
    let steps = plan(&file(FILE), sides, &BTreeMap::new(), &Source::New);
    assert_eq!(
        kinds(&steps),
        [
            "validate",
            "acquire-lock",
            "push green",
            "migrate green",
            "health green",
            "map green",
            "unmap blue",
            "standby blue",
            "record-release",
            "release-lock"
        ]
    );
    assert!(steps.contains(&Step::Push {
        color: Green,
        bits: Bits::Stage
    }));
    assert!(steps.contains(&Step::Standby {
        color: Blue,
        keep: Duration::from_secs(1800)
    }));
    // `plan` without a site assumes the same steady state.
    let shown = for_mode(
        &file(FILE),
        false,
        [Green, Blue],
        &BTreeMap::new(),
        &Source::New,
    );
    assert_eq!(shown, steps);
}

#[test]
fn a_first_deploy_pushes_one_color_and_keeps_no_standby() {
    let sides = Sides::from_site([Blue, Green], &[], &[]);
    let steps = plan(&file(FILE), sides, &BTreeMap::new(), &Source::New);
    assert_eq!(
        kinds(&steps),
        [
            "validate",
            "acquire-lock",
            "push blue",
            "migrate blue",
            "health blue",
            "map blue",
            "record-release",
            "release-lock"
        ]
    );
}

/// After deploys without a standby both colors serve: the idle one leaves
/// the route (and drains) before its push, as any deploy's first color.
#[test]
fn an_idle_color_still_on_the_route_leaves_it_before_its_push() {
    let sides = Sides::from_site([Green, Blue], &[Blue, Green], &[Blue, Green]);
    let steps = plan(
        &file(FILE),
        sides,
        &BTreeMap::new(),
        &Source::Existing("v1".into()),
    );
    assert_eq!(
        kinds(&steps),
        [
            "validate",
            "acquire-lock",
            "unmap green",
            "drain green",
            "push green",
            "health green",
            "map green",
            "unmap blue",
            "standby blue",
            "record-release",
            "release-lock"
        ]
    );
    // A replayed release: its droplet, never a migration.
    assert!(steps.contains(&Step::Push {
        color: Green,
        bits: Bits::Release("v1".into())
    }));
}

#[test]
fn a_rollback_to_the_standby_maps_it_after_its_health_check_without_a_push() {
    let steps = switch_back(&file(FILE), Green, &BTreeMap::new());
    assert_eq!(
        kinds(&steps),
        [
            "validate",
            "acquire-lock",
            "health green",
            "map green",
            "unmap blue",
            "standby blue",
            "record-release",
            "release-lock"
        ]
    );
    let hooks: Vec<String> = steps
        .iter()
        .filter_map(|s| match s {
            Step::Hook { hook, color, .. } => Some(format!(
                "{hook}{}",
                match color {
                    Some(c) => format!(" {c}"),
                    None => String::new(),
                }
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        hooks,
        [
            "pre-deploy",
            "health-check green",
            "pre-map green",
            "post-map green",
            "pre-unmap blue",
            "post-deploy"
        ]
    );
}

/// With analysis, the new color is judged beside the old one, both mapped,
/// in one window that must decide: the old one leaves only after it.
#[test]
fn analysis_judges_the_new_color_before_the_old_one_leaves() {
    let f = file("app: shop\nscale_down_delay: 5m\nanalysis: { duration: 20s }\n");
    let steps = plan(
        &f,
        Sides::assumed([Blue, Green]),
        &BTreeMap::new(),
        &Source::New,
    );
    let at = |k: &str| kinds(&steps).iter().position(|s| s == k).unwrap();
    assert!(at("map blue") < at("analyze blue") && at("analyze blue") < at("unmap green"));
    assert!(
        steps
            .iter()
            .any(|s| matches!(s, Step::Analyze { last: true, .. }))
    );
}

#[test]
fn the_standby_step_says_what_stays_up_and_for_how_long() {
    let s = Step::Standby {
        color: Blue,
        keep: Duration::from_secs(1800),
    };
    assert_eq!(
        s.to_string(),
        "keep blue running off the route on its release for 30m as the standby \
         (`bluegreen rollback` maps it again without a push), then stop it"
    );
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["keep_ms"], 1_800_000);
    assert_eq!(serde_json::from_value::<Step>(json).unwrap(), s);
}

/// Combinations that cannot keep a standby are refused where the file
/// writes the field, with the fix.
#[test]
fn a_standby_with_no_second_color_or_a_stepped_route_is_refused() {
    let err = |yaml: &str| {
        DeployFile::parse(Path::new("bluegreen.yaml"), yaml)
            .unwrap_err()
            .to_string()
    };
    let e = err("app: shop\nplatform: cf\nstrategy: cf-rolling\nscale_down_delay: 30m\n");
    assert!(
        e.starts_with("bluegreen.yaml:4:1: field `scale_down_delay`: `strategy: cf-rolling`"),
        "{e}"
    );
    assert!(e.contains("use `strategy: blue-green`"), "{e}");
    let e = err("app: shop\nstrategy: canary\nsteps: [10, 100]\nscale_down_delay: 30m\n");
    assert!(e.contains("moves the route in steps"), "{e}");
    let e = err("app: shop\nscale_down_delay: 0s\n");
    assert!(
        e.starts_with("bluegreen.yaml:2:1: field `scale_down_delay`: 0 keeps no standby"),
        "{e}"
    );
    let e = err("app: shop\nscale_down_delay: soon\n");
    assert!(e.starts_with("bluegreen.yaml:2:"), "{e}");
    assert!(e.contains("write durations like"), "{e}");
    let e = err("app: shop\nscale_down_delay: 30m\nmigrate: { command: m, post_dirs: [post] }\n");
    assert!(e.contains("contract migrations"), "{e}");
    let e = err("app: shop\nscale_down_delay: 30d\n");
    assert!(e.contains("longer than 7 days"), "{e}");
}
