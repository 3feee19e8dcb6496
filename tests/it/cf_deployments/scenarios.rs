//! Rolling, canary (paused, continued, cancelled), a never-healthy
//! release, each under load; the numbers are printed with `--nocapture`.

use super::load::{Load, Tally, assert_none_failed};
use super::*;

/// Waits until the load has answered something, so it spans the change.
async fn warmed(load: &Load) {
    let deadline = Instant::now() + WAIT;
    let mut seen = Tally::default();
    while seen.ok < 20 {
        assert!(Instant::now() < deadline, "the load never got answers");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let t = load.take();
        assert_none_failed_yet(&t);
        seen.ok += t.ok;
    }
}

fn assert_none_failed_yet(t: &Tally) {
    assert!(
        t.failed.is_empty(),
        "failed before the deployment: {:?}",
        t.failed
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rolling_deployment_replaces_every_instance_under_load() {
    let tmp = tempfile::tempdir().unwrap();
    let (running, client) = start(tmp.path()).await;
    let api = Api::new(&running);
    let app = app_on_v1(&client, tmp.path(), "roll", 3).await;
    let v1 = client.current_droplet(&app).await.unwrap().unwrap();
    let v2 = stage(&client, &app, &source(tmp.path(), "v2", true)).await;
    let load = Load::start(running.endpoint.router_port, "roll");
    warmed(&load).await;
    let errors_before = server_errors(&api, &app).await;
    let sampler = Sampler::start(&client, &app);

    let started = Instant::now();
    let d = api
        .deploy(body(
            &app,
            json!({ "droplet": { "guid": v2 }, "strategy": "rolling" }),
        ))
        .await;
    assert_eq!(
        (&d["status"]["value"], &d["status"]["reason"]),
        (&json!("ACTIVE"), &json!("DEPLOYING")),
        "{d}"
    );
    assert_eq!(d["droplet"]["guid"], v2.as_str());
    assert_eq!(d["previous_droplet"]["guid"], v1.as_str());
    assert_eq!(d["options"]["max_in_flight"], 1, "CC's default");
    assert_eq!(d["new_processes"][0]["type"], "web", "{d}");
    assert_eq!(d["revision"]["version"], 2, "{d}");
    assert!(d["links"]["cancel"]["href"].is_string(), "{d}");
    assert!(d["links"]["continue"].is_null(), "{d}");
    assert!(
        d["status"]["canary"].is_null(),
        "rolling has no canary: {d}"
    );
    // CC points the app at the new droplet when the deployment is made.
    assert_eq!(
        client.current_droplet(&app).await.unwrap(),
        Some(v2.clone())
    );

    let guid = d["guid"].as_str().unwrap();
    let done = api.wait_status(guid, "FINALIZED", "DEPLOYED").await;
    let took = started.elapsed();
    let (fewest, most) = sampler.finish().await;
    load.more(20).await;
    let tally = load.finish().await;
    eprintln!(
        "rolling 3 instances, max_in_flight 1: {took:?}; {} requests, {} failed, per droplet \
         {:?}; running instances never fewer than {fewest}, live never more than {most}",
        tally.ok,
        tally.failed.len(),
        tally.shares
    );
    assert_none_failed("rolling", &tally);
    assert!(tally.shares.contains_key("v1") && tally.shares.contains_key("v2"));
    assert!(fewest >= 3, "fewer than 3 running at some point: {fewest}");
    assert!(
        most <= 4,
        "more than max_in_flight new at once: {most} live"
    );
    assert_eq!(versions(&client, &app).await, ["v2", "v2", "v2"]);
    assert_eq!(
        server_errors(&api, &app).await,
        errors_before,
        "the router answered or counted a 5xx for the app during the rollout"
    );
    assert!(done["links"]["cancel"].is_null(), "{done}");
    assert!(done["status"]["details"]["last_successful_healthcheck"].is_string());
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_canary_pauses_at_each_step_with_its_share_then_continues_under_load() {
    let tmp = tempfile::tempdir().unwrap();
    let (running, client) = start(tmp.path()).await;
    let api = Api::new(&running);
    let app = app_on_v1(&client, tmp.path(), "bird", 3).await;
    let v2 = stage(&client, &app, &source(tmp.path(), "v2", true)).await;
    let load = Load::start(running.endpoint.router_port, "bird");
    warmed(&load).await;
    let steps = json!({ "steps": [{ "instance_weight": 34 }, { "instance_weight": 67 }] });
    let d = api
        .deploy(body(
            &app,
            json!({ "droplet": { "guid": v2 }, "strategy": "canary",
                    "options": { "canary": steps } }),
        ))
        .await;
    let guid = d["guid"].as_str().unwrap().to_string();
    assert_eq!(
        d["status"]["canary"]["steps"],
        json!({ "current": 1, "total": 2 })
    );
    assert_eq!(d["options"]["canary"], steps, "{d}");
    let mut failed = Vec::new();

    // Step 1, 34% of 3: one new instance beside the three old ones.
    let paused = api.wait_status(&guid, "ACTIVE", "PAUSED").await;
    assert!(paused["links"]["continue"]["href"].is_string(), "{paused}");
    assert_eq!(versions(&client, &app).await, ["v1", "v1", "v1", "v2"]);
    failed.extend(load.take().failed);
    let t = load.window().await;
    let first = share(&t.shares, "v2");
    eprintln!(
        "canary step 1 (1 new, 3 old): {} requests, v2 answered {:.1}%",
        t.ok,
        first * 100.0
    );
    assert!(
        (0.15..=0.35).contains(&first),
        "one of four: {:?}",
        t.shares
    );
    failed.extend(t.failed);

    // Step 2, 67% of 3: two new, two old.
    api.action(&guid, "continue").await;
    let paused = api.wait_status(&guid, "ACTIVE", "PAUSED").await;
    assert_eq!(
        paused["status"]["canary"]["steps"]["current"], 2,
        "{paused}"
    );
    assert_eq!(versions(&client, &app).await, ["v1", "v1", "v2", "v2"]);
    failed.extend(load.take().failed);
    let t = load.window().await;
    let second = share(&t.shares, "v2");
    eprintln!(
        "canary step 2 (2 new, 2 old): {} requests, v2 answered {:.1}%",
        t.ok,
        second * 100.0
    );
    assert!((0.4..=0.6).contains(&second), "two of four: {:?}", t.shares);
    failed.extend(t.failed);

    // After the last step, the rest of the rollout.
    api.action(&guid, "continue").await;
    api.wait_status(&guid, "FINALIZED", "DEPLOYED").await;
    assert_eq!(versions(&client, &app).await, ["v2", "v2", "v2"]);
    let mut end = load.finish().await;
    end.failed.extend(failed);
    assert_none_failed("canary", &end);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_canary_goes_back_to_the_old_droplet_under_load() {
    let tmp = tempfile::tempdir().unwrap();
    let (running, client) = start(tmp.path()).await;
    let api = Api::new(&running);
    let app = app_on_v1(&client, tmp.path(), "back", 3).await;
    let v1 = client.current_droplet(&app).await.unwrap().unwrap();
    let v2 = stage(&client, &app, &source(tmp.path(), "v2", true)).await;
    let load = Load::start(running.endpoint.router_port, "back");
    warmed(&load).await;
    let errors_before = server_errors(&api, &app).await;
    let d = api
        .deploy(body(
            &app,
            json!({ "droplet": { "guid": v2 }, "strategy": "canary" }),
        ))
        .await;
    let guid = d["guid"].as_str().unwrap();
    let paused = api.wait_status(guid, "ACTIVE", "PAUSED").await;
    assert_eq!(
        paused["status"]["canary"]["steps"],
        json!({ "current": 1, "total": 1 })
    );
    assert_eq!(versions(&client, &app).await, ["v1", "v1", "v1", "v2"]);

    api.action(guid, "cancel").await;
    let now = api.get(&format!("/v3/deployments/{guid}")).await;
    assert!(
        ["CANCELING", "CANCELED"].contains(&now["status"]["reason"].as_str().unwrap()),
        "{now}"
    );
    assert_eq!(client.current_droplet(&app).await.unwrap(), Some(v1));
    let done = api.wait_status(guid, "FINALIZED", "CANCELED").await;
    assert!(done["links"]["cancel"].is_null(), "{done}");
    load.more(20).await;
    let tally = load.finish().await;
    eprintln!(
        "canary cancelled: {} requests, {} failed, per droplet {:?}",
        tally.ok,
        tally.failed.len(),
        tally.shares
    );
    assert_none_failed("cancel", &tally);
    assert_eq!(versions(&client, &app).await, ["v1", "v1", "v1"]);
    assert_eq!(server_errors(&api, &app).await, errors_before);
    // A finished deployment is neither continued nor cancelled again.
    for action in ["continue", "cancel"] {
        let path = format!("/v3/deployments/{guid}/actions/{action}");
        let (status, e) = api.call("POST", &path, None).await;
        assert_eq!(status, 422, "{e}");
        assert_eq!(
            e["errors"][0]["detail"],
            format!("Cannot {action} a deployment with status: FINALIZED and reason: CANCELED")
        );
    }
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_release_that_never_gets_healthy_stops_the_rollout_and_old_instances_serve() {
    let tmp = tempfile::tempdir().unwrap();
    let (running, client) = start(tmp.path()).await;
    let api = Api::new(&running);
    let app = app_on_v1(&client, tmp.path(), "stuck", 3).await;
    let health = bluegreen::platform::v3::HealthCheck {
        kind: "port".into(),
        data: bluegreen::platform::v3::HealthCheckData {
            timeout: Some(2),
            ..Default::default()
        },
    };
    client
        .update_process(&app, None, Some(&health))
        .await
        .unwrap();
    let bad = stage(&client, &app, &source(tmp.path(), "v3", false)).await;
    let load = Load::start(running.endpoint.router_port, "stuck");
    warmed(&load).await;
    let d = api
        .deploy(body(&app, json!({ "droplet": { "guid": bad } })))
        .await;
    let guid = d["guid"].as_str().unwrap();
    let started = Instant::now();
    let stuck = loop {
        let d = api.get(&format!("/v3/deployments/{guid}")).await;
        if d["status"]["details"]["error"].is_string() {
            break d;
        }
        assert!(started.elapsed() < WAIT, "no error recorded: {d}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!(
        "never healthy: error after {:?}: {}",
        started.elapsed(),
        stuck["status"]
    );
    // As CF leaves it: still ACTIVE, DEPLOYING, with the error.
    assert_eq!(stuck["status"]["value"], "ACTIVE");
    assert_eq!(stuck["status"]["reason"], "DEPLOYING");
    let error = stuck["status"]["details"]["error"].as_str().unwrap();
    assert!(error.contains("health check within 2s"), "{error}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(versions(&client, &app).await, ["v1", "v1", "v1"]);
    api.action(guid, "cancel").await;
    api.wait_status(guid, "FINALIZED", "CANCELED").await;
    let tally = load.finish().await;
    eprintln!(
        "never healthy, then cancelled: {} requests, {} failed",
        tally.ok,
        tally.failed.len()
    );
    assert_none_failed("never healthy", &tally);
    assert_eq!(versions(&client, &app).await, ["v1", "v1", "v1"]);
    let stats = client.process_stats(&app).await.unwrap();
    assert_eq!(stats.len(), 3, "the failing instance is gone: {stats:?}");
    running.shutdown().await;
}
