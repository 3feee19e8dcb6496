//! The plan's unit tests: the order of colors, what each strategy adds,
//! and how a plan renders.

use super::*;
use std::path::Path;

fn file(yaml: &str) -> DeployFile {
    DeployFile::parse(Path::new("bluegreen.yaml"), yaml).unwrap()
}

#[test]
fn the_color_not_serving_the_newest_release_goes_first() {
    use Color::{Blue, Green};
    assert_eq!(order(None, &[]), [Blue, Green]);
    assert_eq!(order(Some(Green), &[Blue, Green]), [Blue, Green]);
    assert_eq!(order(Some(Blue), &[Blue, Green]), [Green, Blue]);
    assert_eq!(order(Some(Blue), &[]), [Green, Blue]);
}

/// Defect 9 of «7 · Hardening»: the order ignored which color serves,
/// so a deploy could unmap the only color on the route first.
#[test]
fn defect_9_the_only_color_serving_goes_last_whatever_is_newest() {
    use Color::{Blue, Green};
    assert_eq!(order(Some(Blue), &[Green]), [Blue, Green]);
    assert_eq!(order(Some(Green), &[Blue]), [Green, Blue]);
    assert_eq!(order(None, &[Green]), [Blue, Green]);
}

#[test]
fn stages_once_migrates_once_on_the_first_color_and_maps_only_after_health() {
    let steps = plan(
        &file("app: shop\nmigrate: { command: bin/migrate }\n"),
        order(Some(Color::Blue), &[]),
        &BTreeMap::new(),
        &Source::New,
    );
    let pushes: Vec<&Step> = steps
        .iter()
        .filter(|s| matches!(s, Step::Push { .. }))
        .collect();
    assert_eq!(
        pushes,
        [
            &Step::Push {
                color: Color::Green,
                bits: Bits::Stage
            },
            &Step::Push {
                color: Color::Blue,
                bits: Bits::Reuse
            }
        ]
    );
    let migrate = steps
        .iter()
        .position(|s| matches!(s, Step::Migrate { .. }))
        .unwrap();
    assert_eq!(
        steps
            .iter()
            .filter(|s| matches!(s, Step::Migrate { .. }))
            .count(),
        1
    );
    assert!(
        steps[migrate - 1]
            == Step::Push {
                color: Color::Green,
                bits: Bits::Stage
            }
    );
    let safety = steps
        .iter()
        .position(|s| {
            matches!(
                s,
                Step::Hook {
                    hook: Hook::MigrationSafetyCheck,
                    ..
                }
            )
        })
        .unwrap();
    let first_unmap = steps
        .iter()
        .position(|s| matches!(s, Step::Unmap { .. }))
        .unwrap();
    assert!(
        safety < first_unmap,
        "the guard runs before any route changes"
    );
    for color in [Color::Blue, Color::Green] {
        let health = steps
            .iter()
            .position(|s| matches!(s, Step::Health { color: c, .. } if *c == color))
            .unwrap();
        let map = steps
            .iter()
            .position(|s| *s == Step::Map { color })
            .unwrap();
        let unmap = steps
            .iter()
            .position(|s| *s == Step::Unmap { color })
            .unwrap();
        assert!(unmap < health && health < map, "{color:?}");
    }
    // The second color leaves the route only after the first is back.
    let first_map = steps
        .iter()
        .position(|s| {
            *s == Step::Map {
                color: Color::Green,
            }
        })
        .unwrap();
    let second_unmap = steps
        .iter()
        .position(|s| *s == Step::Unmap { color: Color::Blue })
        .unwrap();
    assert!(first_map < second_unmap);
}

#[test]
fn the_rehearsal_runs_on_the_new_droplet_just_before_the_expand_migration() {
    let plain = plan(
        &file("app: shop\nmigrate: { command: bin/migrate }\n"),
        [Color::Blue, Color::Green],
        &BTreeMap::new(),
        &Source::New,
    );
    assert!(!plain.iter().any(|s| matches!(s, Step::Rehearse { .. })));
    let steps = plan(
        &file(
            "app: shop\nmigrate: { command: bin/migrate, post_dirs: [post], \
             rehearse: { sample_rows: 50 } }\n",
        ),
        [Color::Blue, Color::Green],
        &BTreeMap::new(),
        &Source::New,
    );
    let at = |f: &dyn Fn(&Step) -> bool| steps.iter().position(f).unwrap();
    let rehearse = at(&|s| matches!(s, Step::Rehearse { .. }));
    assert_eq!(
        steps[rehearse],
        Step::Rehearse {
            color: Color::Blue,
            command: "bin/migrate".into(),
            sample_rows: 50,
            max_exclusive: Duration::from_millis(100),
            required: false,
        }
    );
    let push = at(&|s| {
        *s == Step::Push {
            color: Color::Blue,
            bits: Bits::Stage,
        }
    });
    let expand = at(&|s| {
        matches!(
            s,
            Step::Migrate {
                contract: false,
                ..
            }
        )
    });
    assert_eq!((push + 1, rehearse + 1), (rehearse, expand));
    assert_eq!(
        steps
            .iter()
            .filter(|s| matches!(s, Step::Rehearse { .. }))
            .count(),
        1,
        "the contract phase is not rehearsed"
    );
    assert_eq!(steps[rehearse].kind(), "rehearse");
    assert!(steps[rehearse].waits());
    let json = serde_json::to_value(&steps[rehearse]).unwrap();
    assert_eq!(json["max_exclusive_ms"], 100);
    assert_eq!(
        serde_json::from_value::<Step>(json).unwrap(),
        steps[rehearse]
    );
    // A rollback runs old code on the schema as it is: nothing to rehearse.
    let back = plan(
        &file("app: shop\nmigrate: { command: m, rehearse: true }\n"),
        [Color::Blue, Color::Green],
        &BTreeMap::new(),
        &Source::Existing("r1".into()),
    );
    assert!(!back.iter().any(|s| matches!(s, Step::Rehearse { .. })));
}

#[test]
fn a_rollback_switches_droplets_and_never_migrates() {
    let steps = plan(
        &file("app: shop\nmigrate: { command: bin/migrate }\n"),
        order(Some(Color::Green), &[]),
        &BTreeMap::new(),
        &Source::Existing("r1".into()),
    );
    assert!(!steps.iter().any(|s| matches!(
        s,
        Step::Migrate { .. }
            | Step::Hook {
                hook: Hook::MigrationSafetyCheck,
                ..
            }
    )));
    let pushes = steps
        .iter()
        .filter(|s| matches!(s, Step::Push { bits: Bits::Release(r), .. } if r == "r1"))
        .count();
    assert_eq!(pushes, 2);
}

#[test]
fn renders_every_step_with_the_plugins_at_each_hook() {
    let plugins = BTreeMap::from([
        (Hook::PreDeploy, vec!["change-window".to_string()]),
        (
            Hook::HealthCheck,
            vec!["http-probe".to_string(), "smoke-test".to_string()],
        ),
    ]);
    let text = render(&plan(
        &file("app: shop\ndrain: 3s\nhealth: { path: /up, timeout: 45s }\n"),
        order(None, &[]),
        &plugins,
        &Source::New,
    ));
    let expected = " 1. validate the deploy file, policy and plugins
 2. acquire the deploy lock
 3. hook pre-deploy: change-window
 4. hook pre-unmap (blue): no plugins
 5. unmap the route from blue
 6. drain blue (up to 3s)
 7. hook pre-push (blue): no plugins
 8. push to blue: upload and stage a new droplet
 9. probe blue's own URL /up until healthy (up to 45s)
10. hook health-check (blue): http-probe, smoke-test
11. hook pre-map (blue): no plugins
12. map the route to blue
13. hook post-map (blue): no plugins
14. hook pre-unmap (green): no plugins
15. unmap the route from green
16. drain green (up to 3s)
17. hook pre-push (green): no plugins
18. push to green: reuse the staged droplet
19. probe green's own URL /up until healthy (up to 45s)
20. hook health-check (green): http-probe, smoke-test
21. hook pre-map (green): no plugins
22. map the route to green
23. hook post-map (green): no plugins
24. hook post-deploy: no plugins
25. record the release in the history
26. release the deploy lock
";
    assert_eq!(text, expected);
}

/// «19 · The first hour»: `plan --json` wrote durations as serde's
/// `{"secs", "nanos"}`; they are `*_ms` numbers now, and a journal
/// written before still reads.
#[test]
fn steps_carry_durations_as_milliseconds_and_read_old_journals() {
    let drain = Step::Drain {
        color: Color::Blue,
        up_to: Duration::from_millis(1500),
    };
    let json = serde_json::to_value(&drain).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"step": "drain", "color": "blue", "up_to_ms": 1500})
    );
    let old: Step = serde_json::from_str(
        r#"{"step":"drain","color":"blue","up_to":{"secs":1,"nanos":500000000}}"#,
    )
    .unwrap();
    assert_eq!(old, drain);
    let health: Step = serde_json::from_str(
        r#"{"step":"health","color":"green","path":"/up","timeout":{"secs":45,"nanos":0}}"#,
    )
    .unwrap();
    assert_eq!(serde_json::to_value(&health).unwrap()["timeout_ms"], 45_000);
}

#[test]
fn canary_steps_on_cloud_foundry_say_how_near_instances_come() {
    use Color::{Blue, Green};
    assert_eq!(Instances::approximate(10, 9).candidate, 1);
    assert_eq!(Instances::approximate(50, 3).candidate, 3);
    // One baseline instance cannot give 10%: one beside one is 50%.
    let one = Instances::approximate(10, 1);
    assert_eq!((one.candidate, one.percent().round()), (1, 50.0));
    let f = file(
        "app: shop\nplatform: cf\nstrategy: canary\nsteps: [10, 50, 100]\n\
         analysis: { duration: 30s }\n",
    );
    let text = render(&plan(&f, [Blue, Green], &BTreeMap::new(), &Source::New));
    for want in [
        "canary step 10%: Cloud Foundry spreads requests over instances, so blue runs 1 \
         instance beside green's 1: 50% (40 points off; exact with 9 instances of the other \
         color)",
        "canary step 50%: Cloud Foundry spreads requests over instances, so blue runs 1 \
         instance beside green's 1: 50% (0 points off)",
        "canary step 100%: every request of the route to blue",
        "analyze blue's live traffic at 10% against the route before the deploy and green's \
         for up to 30s",
        "read the route's live traffic for up to 30s",
    ] {
        assert!(text.contains(want), "{want}\n{text}");
    }
    // The first color alone takes canary steps; the second maps whole.
    assert!(text.contains("map the route to green"), "{text}");
    assert!(!text.contains("map the route to blue"), "{text}");
}
#[test]
fn pauses_hold_the_canary_after_its_step_and_its_window() {
    use Color::{Blue, Green};
    let f = file(
        "app: shop\nstrategy: canary\nsteps: [10, pause, 50, {pause: 10m}, 100]\n\
         analysis: { duration: 30s, on_fail: pause }\n",
    );
    assert_eq!(f.steps, [10, 50, 100], "the percents as before");
    let steps = plan(&f, [Blue, Green], &BTreeMap::new(), &Source::New);
    let pauses: Vec<(usize, &Step)> = steps
        .iter()
        .enumerate()
        .filter(|(_, s)| matches!(s, Step::Pause { .. }))
        .collect();
    assert_eq!(pauses.len(), 2, "{steps:#?}");
    assert_eq!(
        pauses[0].1,
        &Step::Pause {
            color: Blue,
            percent: 10,
            up_to: crate::config::steps::MAX_PAUSE,
            timed: false,
        }
    );
    assert_eq!(
        pauses[1].1,
        &Step::Pause {
            color: Blue,
            percent: 50,
            up_to: Duration::from_secs(600),
            timed: true,
        }
    );
    // Each pause follows its step's weigh and analysis window.
    for (i, _) in &pauses {
        assert!(
            matches!(steps[i - 2], Step::Weigh { .. }),
            "{:?}",
            steps[i - 2]
        );
        assert!(
            matches!(
                steps[i - 1],
                Step::Analyze {
                    pause_on_fail: true,
                    ..
                }
            ),
            "{:?}",
            steps[i - 1]
        );
    }
    let text = render(&steps);
    for want in [
        "pause at 10% (blue on the new release) until `bluegreen resume`, `promote` or \
         `abort` (rolled back after 24h without one)",
        "pause at 50% (blue on the new release) for 10m, then go on",
        "a failed window pauses instead (on_fail: pause)",
    ] {
        assert!(text.contains(want), "{want}\n{text}");
    }
    let json = serde_json::to_value(pauses[1].1).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"step": "pause", "color": "blue", "percent": 50,
            "up_to_ms": 600000, "timed": true})
    );
    assert_eq!(&serde_json::from_value::<Step>(json).unwrap(), pauses[1].1);
    assert!(pauses[0].1.waits());
    // Without `on_fail: pause` the field stays out of `plan --json`.
    let plain = plan(
        &file("app: shop\nstrategy: canary\nsteps: [10, 100]\n"),
        [Blue, Green],
        &BTreeMap::new(),
        &Source::New,
    );
    let analyze = plain.iter().find(|s| s.kind() == "analyze").unwrap();
    assert!(
        serde_json::to_value(analyze)
            .unwrap()
            .get("pause_on_fail")
            .is_none()
    );
    assert!(!plain.iter().any(|s| matches!(s, Step::Pause { .. })));
}

/// The app pushed before bluegreen is retired once both colors serve, before
/// `post-deploy`, after the deploy file's drain; a journal written before the
/// retire step carried a drain reads as one without.
#[test]
fn the_adopted_app_retires_after_both_colors_serve_with_the_drain() {
    let f = file("app: shop\ndrain: 3s\n");
    let plugins = BTreeMap::from([(Hook::PostDeploy, vec!["notify".to_string()])]);
    let steps = with_retire(
        plan(&f, order(None, &[]), &plugins, &Source::New),
        "shop",
        f.drain,
    );
    let at = |want: &dyn Fn(&Step) -> bool| steps.iter().position(want).unwrap();
    let retire = at(&|s| matches!(s, Step::Retire { .. }));
    let last_map = steps
        .iter()
        .rposition(|s| matches!(s, Step::Map { .. }))
        .unwrap();
    let post = at(&|s| {
        matches!(
            s,
            Step::Hook {
                hook: Hook::PostDeploy,
                ..
            }
        )
    });
    assert!(last_map < retire && retire < post, "{steps:?}");
    let shown = steps[retire].to_string();
    assert!(
        shown.contains("unmap it, drain it (up to 3s) and stop it"),
        "{shown}"
    );
    let old: Step = serde_json::from_str(r#"{"step":"retire","app":"shop"}"#).unwrap();
    assert_eq!(
        old,
        Step::Retire {
            app: "shop".into(),
            up_to: Duration::ZERO
        }
    );
}
