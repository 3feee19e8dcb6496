//! The records a CF client reads: revisions and a rollback to one, the
//! list's filters and CF's refusals, supersession, a stopped app.

use super::*;

async fn via_router(running: &Running, host: &str) -> String {
    let http = reqwest::Client::new();
    crate::platform::via_router(&http, running, host, "/")
        .await
        .unwrap()
        .1
}

fn resources(list: &Value) -> Vec<&Value> {
    list["resources"].as_array().unwrap().iter().collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deployment_to_a_revision_brings_back_its_droplet_and_environment() {
    let tmp = tempfile::tempdir().unwrap();
    let (running, client) = start(tmp.path()).await;
    let api = Api::new(&running);
    let app = app_on_v1(&client, tmp.path(), "rev", 2).await;
    let v1 = client.current_droplet(&app).await.unwrap().unwrap();
    let release = |r: &str| [("RELEASE".to_string(), Some(r.to_string()))].into();
    client.set_env(&app, &release("r2")).await.unwrap();
    let v2 = stage(&client, &app, &source(tmp.path(), "v2", true)).await;
    let d = api
        .deploy(body(
            &app,
            json!({ "droplet": { "guid": v2 }, "options": { "max_in_flight": 2 } }),
        ))
        .await;
    api.wait_status(d["guid"].as_str().unwrap(), "FINALIZED", "DEPLOYED")
        .await;
    assert!(via_router(&running, "rev").await.starts_with("v2 r2 "));

    let list = api.get(&format!("/v3/apps/{app}/revisions")).await;
    let revs = resources(&list);
    let seen: Vec<(u64, &str, &str)> = revs
        .iter()
        .map(|r| {
            let (v, d) = (
                r["version"].as_u64().unwrap(),
                r["description"].as_str().unwrap(),
            );
            (v, d, r["droplet"]["guid"].as_str().unwrap())
        })
        .collect();
    assert_eq!(
        seen,
        [
            (1, "Initial revision.", v1.as_str()),
            (
                2,
                "New droplet deployed. New environment variables deployed.",
                v2.as_str()
            ),
        ]
    );
    assert!(revs.iter().all(|r| r["deployable"] == true), "{list}");
    assert_eq!(d["revision"]["guid"], revs[1]["guid"]);
    let first = revs[0]["guid"].as_str().unwrap().to_string();
    let env = api
        .get(&format!("/v3/revisions/{first}/environment_variables"))
        .await;
    assert_eq!(env["var"]["RELEASE"], "r1", "{env}");

    // Back to revision 1: its droplet and its environment.
    let back = api
        .deploy(body(&app, json!({ "revision": { "guid": first } })))
        .await;
    assert_eq!(back["droplet"]["guid"], v1.as_str());
    api.wait_status(back["guid"].as_str().unwrap(), "FINALIZED", "DEPLOYED")
        .await;
    assert_eq!(versions(&client, &app).await, ["v1", "v1"]);
    assert!(via_router(&running, "rev").await.starts_with("v1 r1 "));
    assert_eq!(client.get_env(&app).await.unwrap()["RELEASE"], "r1");
    let third = api
        .get(&format!(
            "/v3/revisions/{}",
            back["revision"]["guid"].as_str().unwrap()
        ))
        .await;
    assert_eq!(third["version"], 3);
    assert_eq!(
        third["description"],
        "New droplet deployed. New environment variables deployed. Rolled back to revision 1."
    );
    // Nothing would change: CC's refusal.
    let again = body(&app, json!({ "revision": { "guid": first } }));
    let (status, e) = api.call("POST", "/v3/deployments", Some(again)).await;
    assert_eq!(status, 422, "{e}");
    assert!(
        e["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .starts_with("Unable to rollback.")
    );
    let some = api
        .get(&format!("/v3/apps/{app}/revisions?versions=1,3"))
        .await;
    assert_eq!(some["pagination"]["total_results"], 2, "{some}");
    let (status, e) = api
        .call("GET", "/v3/revisions/no-such-revision", None)
        .await;
    assert_eq!(
        (status, &e["errors"][0]["detail"]),
        (404, &json!("Revision not found"))
    );
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_list_filters_a_new_deployment_supersedes_and_errors_are_cfs() {
    let tmp = tempfile::tempdir().unwrap();
    let (running, client) = start(tmp.path()).await;
    let api = Api::new(&running);
    let a = app_on_v1(&client, tmp.path(), "first", 1).await;
    let v2 = stage(&client, &a, &source(tmp.path(), "v2", true)).await;
    let canary = api
        .deploy(body(
            &a,
            json!({ "droplet": { "guid": v2 }, "strategy": "canary" }),
        ))
        .await;
    let canary = canary["guid"].as_str().unwrap().to_string();
    api.wait_status(&canary, "ACTIVE", "PAUSED").await;
    // No droplet named: the app's current one, which the canary set.
    let rolling = api.deploy(body(&a, json!({}))).await;
    assert_eq!(rolling["droplet"]["guid"], v2.as_str(), "{rolling}");
    let rolling = rolling["guid"].as_str().unwrap().to_string();
    let old = api.get(&format!("/v3/deployments/{canary}")).await;
    assert_eq!(
        (&old["status"]["value"], &old["status"]["reason"]),
        (&json!("FINALIZED"), &json!("SUPERSEDED")),
        "{old}"
    );
    api.wait_status(&rolling, "FINALIZED", "DEPLOYED").await;
    assert_eq!(versions(&client, &a).await, ["v2"]);

    // A stopped app is started on the droplet, DEPLOYED at once.
    let space = client
        .find_space(&local_org(&client).await, "local")
        .await
        .unwrap()
        .unwrap();
    let b = client
        .create_app(&space.guid, "second", &Default::default())
        .await
        .unwrap()
        .guid;
    let b1 = stage(&client, &b, &source(tmp.path(), "v1", true)).await;
    let at_once = api
        .deploy(body(&b, json!({ "droplet": { "guid": b1 } })))
        .await;
    assert_eq!(at_once["status"]["reason"], "DEPLOYED", "{at_once}");
    assert_eq!(at_once["new_processes"], json!([]));
    assert_eq!(client.get_app(&b).await.unwrap().state, "STARTED");
    wait_running(&client, &b).await;

    let lists = &api;
    let count = |q: String| async move {
        let list = lists.get(&format!("/v3/deployments?{q}")).await;
        list["pagination"]["total_results"].as_u64().unwrap()
    };
    assert_eq!(count(String::new()).await, 3);
    assert_eq!(count(format!("app_guids={a}")).await, 2);
    assert_eq!(count("status_reasons=SUPERSEDED".into()).await, 1);
    assert_eq!(
        count("states=CANCELED".into()).await,
        1,
        "a superseded canary"
    );
    assert_eq!(count("status_values=ACTIVE".into()).await, 0);
    let finished = "status_values=FINALIZED&status_reasons=DEPLOYED,CANCELED";
    assert_eq!(count(finished.into()).await, 2);
    let page = api.get("/v3/deployments?per_page=2").await;
    assert_eq!(page["resources"].as_array().unwrap().len(), 2);
    assert!(
        page["pagination"]["next"]["href"]
            .as_str()
            .unwrap()
            .contains("page=2")
    );
    for path in [
        "/v3/deployments?label_selector=env%3Dprod".to_string(),
        "/v3/deployments?order_by=-created_at".to_string(),
        format!("/v3/apps/{a}/revisions?label_selector=x"),
    ] {
        let (status, e) = api.call("GET", &path, None).await;
        assert_eq!(
            (status, &e["errors"][0]["title"]),
            (400, &json!("CF-BadQueryParameter")),
            "{path}: {e}"
        );
    }

    // CF's errors, in CF's envelope.
    let c = client
        .create_app(&space.guid, "third", &Default::default())
        .await
        .unwrap()
        .guid;
    for (req, detail) in [
        (
            body(&c, json!({})),
            "Invalid droplet. Please specify a droplet in the request or set a current droplet for the app.",
        ),
        (
            body("no-such-app", json!({})),
            "Unable to use app. Ensure that the app exists and you have access to it.",
        ),
        (
            body(&a, json!({ "droplet": { "guid": b1 } })),
            "Unable to assign current droplet. Ensure the droplet exists and belongs to this app.",
        ),
        (
            body(&a, json!({ "strategy": "blue" })),
            "Strategy 'blue' is not a supported deployment strategy",
        ),
        (
            body(&a, json!({ "revision": { "guid": "no-such-revision" } })),
            "The revision does not exist",
        ),
    ] {
        let (status, e) = api.call("POST", "/v3/deployments", Some(req)).await;
        let e0 = &e["errors"][0];
        assert_eq!(
            (status, &e0["code"], &e0["title"]),
            (422, &json!(10008), &json!("CF-UnprocessableEntity")),
            "{e}"
        );
        assert_eq!(e0["detail"], detail);
    }
    for (method, path) in [
        ("GET", "/v3/deployments/no-such-deployment"),
        (
            "POST",
            "/v3/deployments/no-such-deployment/actions/continue",
        ),
        ("POST", "/v3/deployments/no-such-deployment/actions/cancel"),
    ] {
        let (status, e) = api.call(method, path, None).await;
        let e0 = &e["errors"][0];
        assert_eq!(
            (status, &e0["code"], &e0["detail"]),
            (404, &json!(10010), &json!("Deployment not found")),
            "{path}: {e}"
        );
    }
    let (status, e) = api
        .call("GET", "/v3/apps/no-such-app/revisions", None)
        .await;
    assert_eq!(status, 404, "{e}");
    let (status, e) = api
        .call(
            "POST",
            &format!("/v3/deployments/{rolling}/actions/continue"),
            None,
        )
        .await;
    assert_eq!(status, 422, "{e}");
    assert_eq!(
        e["errors"][0]["detail"],
        "Cannot continue a deployment with status: FINALIZED and reason: DEPLOYED"
    );
    running.shutdown().await;
}
