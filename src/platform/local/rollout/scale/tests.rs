use super::*;

fn member(key: &str, index: u32, state: State) -> Member {
    Member {
        key: key.into(),
        index,
        droplet: String::new(),
        generation: String::new(),
        state,
    }
}

/// Per tick, (running, live); then the instances at the end, new or not.
type Simulated = (Vec<(u32, u32)>, Vec<(Member, bool)>);

/// Runs `plan` against a simulated supervisor where a started instance
/// starts for `slow` ticks then runs.
fn simulate(goal: &Goal, old: u32, slow: u32) -> Simulated {
    let mut members: Vec<(Member, bool, u32)> = (0..old)
        .map(|i| (member(&format!("old{i}"), i, State::Running), false, 0))
        .collect();
    let mut seen = Vec::new();
    for _ in 0..200 {
        let view: Vec<(Member, bool)> = members.iter().map(|m| (m.0.clone(), m.1)).collect();
        let step = plan(goal, &view);
        members.retain(|m| !step.stop.contains(&m.0.key));
        let running = |ms: &[(Member, bool, u32)]| {
            ms.iter().filter(|m| m.0.state == State::Running).count() as u32
        };
        seen.push((running(&members), members.len() as u32));
        if step.finished {
            return (seen, members.into_iter().map(|m| (m.0, m.1)).collect());
        }
        for i in step.start {
            members.push((member(&format!("new{i}"), i, State::Starting), true, 0));
        }
        for m in members.iter_mut().filter(|m| m.0.state == State::Starting) {
            m.2 += 1;
            if m.2 > slow {
                m.0.state = State::Running;
            }
        }
    }
    panic!("never finished: {seen:?}");
}

#[test]
fn a_rolling_step_never_leaves_fewer_running_than_wanted_nor_more_in_flight() {
    for (n, max) in [(3, 1), (3, 2), (4, 3), (1, 1), (5, 10)] {
        let goal = Goal {
            total: n,
            interim: n,
            max_in_flight: max,
            final_step: true,
        };
        let (ticks, end) = simulate(&goal, n, 3);
        for (running, live) in &ticks {
            assert!(*running >= n, "n={n} max={max}: {ticks:?}");
            assert!(*live <= n + max, "n={n} max={max}: {ticks:?}");
        }
        assert_eq!(end.len() as u32, n);
        assert!(end.iter().all(|(m, new)| *new && m.state == State::Running));
        let mut indices: Vec<u32> = end.iter().map(|(m, _)| m.index).collect();
        indices.sort();
        assert_eq!(indices, (0..n).collect::<Vec<_>>(), "new ones at 0..n");
    }
}

#[test]
fn a_canary_step_stops_at_its_counts() {
    // No steps: one new instance beside the three old ones.
    let plan3 = canary_plan(None, 3, None);
    assert_eq!(plan3, [(1, 3)]);
    let (canary, original) = plan3[0];
    let goal = Goal {
        total: canary + original,
        interim: canary,
        max_in_flight: 1,
        final_step: false,
    };
    let (_, end) = simulate(&goal, 3, 2);
    let new = end.iter().filter(|(_, new)| *new).count();
    assert_eq!((new, end.len() - new), (1, 3));
}

#[test]
fn the_canary_plan_is_ccs() {
    // CC's `canary_step_plan`: weight × instances rounded (at least one),
    // old ones one more than the rest, none at 100%.
    assert_eq!(
        canary_plan(Some(&[10, 50, 100]), 10, None),
        [(1, 10), (5, 6), (10, 0)]
    );
    assert_eq!(canary_plan(Some(&[34, 67]), 3, None), [(1, 3), (2, 2)]);
    assert_eq!(canary_plan(Some(&[1]), 4, None), [(1, 4)]);
    // `web_instances` counts only when it is fewer.
    assert_eq!(canary_plan(Some(&[50]), 4, Some(2)), [(1, 2)]);
    assert_eq!(canary_plan(Some(&[50]), 4, Some(8)), [(2, 3)]);
}

#[test]
fn a_failing_new_instance_stops_the_rollout_and_keeps_the_old_ones() {
    let goal = Goal {
        total: 3,
        interim: 3,
        max_in_flight: 2,
        final_step: true,
    };
    let members = vec![
        (member("old0", 0, State::Running), false),
        (member("old1", 1, State::Running), false),
        (member("old2", 2, State::Running), false),
        (member("new0", 0, State::Crashed), true),
    ];
    assert_eq!(plan(&goal, &members), Step::default());
}

#[test]
fn a_cancel_starts_the_old_count_at_once_then_stops_the_rest() {
    // Two old instances left, two new ones running: the cancel's "new"
    // are the old droplet's.
    let goal = Goal {
        total: 3,
        interim: 3,
        max_in_flight: 3,
        final_step: true,
    };
    let mut members = vec![
        (member("keep1", 1, State::Running), true),
        (member("keep2", 2, State::Running), true),
        (member("canary0", 0, State::Running), false),
        (member("canary1", 1, State::Running), false),
    ];
    let step = plan(&goal, &members);
    assert_eq!(step.start, [0], "{step:?}");
    // Three keep running: the two old-droplet ones and one canary.
    assert_eq!(step.stop, ["canary1"]);
    members.retain(|m| m.0.key != "canary1");
    members.push((member("back0", 0, State::Running), true));
    let step = plan(&goal, &members);
    assert!(step.finished);
    assert_eq!(step.stop, ["canary0"]);
}
