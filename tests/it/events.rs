//! Defect 11 of «7 · Hardening»: the `--json` events had gaps. `validate`
//! and `acquire-lock` had no `started`, and a deploy that failed or was
//! blocked never closed with its `deploy` event. Now every step emits
//! `started` then `done` or `failed`, and every deploy ends with one
//! `deploy` event saying how.

use crate::deploy::{Fixture, text};
use serde_json::Value;
use std::process::Output;

fn events(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Each step that started ended once, after it started and before the
/// next one; the first event opens the deploy, the last closes it with
/// `status`. Returns the step kinds in order.
fn assert_well_formed(ev: &[Value], status: &str) -> Vec<String> {
    assert_eq!(
        (&ev[0]["event"], &ev[0]["status"]),
        (&"deploy".into(), &"started".into())
    );
    let last = ev.last().unwrap();
    assert_eq!(
        (&last["event"], &last["status"]),
        (&"deploy".into(), &status.into()),
        "{last}"
    );
    let steps: Vec<&Value> = ev.iter().filter(|e| e["event"] == "step").collect();
    let mut kinds = Vec::new();
    let mut open: Option<&Value> = None;
    for e in steps {
        match (e["status"].as_str().unwrap(), open) {
            ("started", None) => open = Some(e),
            ("done" | "failed", Some(s)) => {
                assert_eq!((&e["index"], &e["step"]), (&s["index"], &s["step"]), "{e}");
                kinds.push(e["step"].as_str().unwrap().to_string());
                open = None;
            }
            _ => panic!("out of order: {e} while {open:?} is open"),
        }
    }
    assert!(open.is_none(), "a step never ended: {open:?}");
    kinds
}

#[test]
fn defect_11_every_step_starts_and_ends_and_every_deploy_closes() {
    let f = Fixture::new("");
    let out = f.run(&["deploy", "--release", "v1", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let ev = events(&out);
    let kinds = assert_well_formed(&ev, "done");
    assert_eq!(kinds.len(), 28);
    assert_eq!(&kinds[..2], ["validate", "acquire-lock"]);
    let indexes: Vec<u64> = ev
        .iter()
        .filter(|e| e["event"] == "step" && e["status"] == "done")
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, (1..=28).collect::<Vec<_>>());

    // Blocked mid-deploy: the blocked step fails, the deploy closes.
    f.gate("block-at: \"pre-push:blue\"");
    let out = f.run(&["deploy", "--release", "v2", "--json"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let ev = events(&out);
    assert_well_formed(&ev, "blocked");
    assert_eq!(ev.last().unwrap()["exit_code"], 3);

    // Bad input: validation fails, nothing else starts.
    let yaml = std::fs::read_to_string(&f.file).unwrap();
    std::fs::write(&f.file, yaml.replace("timeout: 10s", "timeout: soon")).unwrap();
    let out = f.run(&["deploy", "--release", "v3", "--json"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let ev = events(&out);
    assert_eq!(assert_well_formed(&ev, "bad-input"), ["validate"]);
    let failed = ev.iter().find(|e| e["status"] == "failed").unwrap();
    assert!(
        failed["error"].as_str().unwrap().contains("timeout"),
        "{failed}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn defect_11_a_locked_deploy_fails_its_acquire_lock_step() {
    use bluegreen::platform::lease::unix_now;
    let f = Fixture::new("");
    crate::util::succeeded(f.deploy("v1"));
    let (_, client) = bluegreen::platform::local::connect(&f.home().join("platform"))
        .await
        .expect("the daemon answers");
    let holder = crate::util::lease("other", "shop", unix_now() + 60);
    assert!(client.lease_local(&holder, None).await.unwrap().acquired);
    let cmd = f.cmd(&["deploy", "--release", "v2", "--json"]);
    let out = tokio::task::spawn_blocking(move || { cmd }.output().unwrap())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let ev = events(&out);
    assert_eq!(
        assert_well_formed(&ev, "locked"),
        ["validate", "acquire-lock"]
    );
    let failed = ev.iter().find(|e| e["status"] == "failed").unwrap();
    assert_eq!(failed["step"], "acquire-lock");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("locked by deploy other"),
        "{failed}"
    );
}
