//! The local platform as a third-party Cloud Foundry v3 client finds it
//! («14», item 2): the endpoints such a client reached and got 404 for, a
//! documented filter the platform does not implement refused with CF's 400
//! instead of ignored (a script selecting apps by label must never get
//! every app), and CF's error envelope on every 404.

use crate::platform::{app_dir, push, start};
use serde_json::Value;

async fn call(
    running: &bluegreen::platform::local::Running,
    method: &str,
    path: &str,
) -> (u16, Value) {
    let http = reqwest::Client::new();
    let url = format!("{}{path}", running.endpoint.api_url);
    let resp = http
        .request(method.parse().unwrap(), url)
        .bearer_auth(&running.token)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, body)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_third_party_client_gets_cfs_answers_and_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let (running, client) = start(tmp.path()).await;
    let guid = push(&client, "shop", &app_dir(tmp.path()), "7").await;
    let other = push(&client, "other", &app_dir(tmp.path()), "1").await;

    // The app's environment, as CF serves it.
    let (status, env) = call(&running, "GET", &format!("/v3/apps/{guid}/env")).await;
    assert_eq!(status, 200, "{env}");
    assert_eq!(env["environment_variables"]["RELEASE"], "7", "{env}");
    assert_eq!(
        env["application_env_json"]["VCAP_APPLICATION"]["application_id"],
        guid.as_str()
    );
    assert!(env["system_env_json"]["VCAP_SERVICES"].is_object(), "{env}");

    // Processes across apps, filtered by app.
    let (status, list) = call(&running, "GET", &format!("/v3/processes?app_guids={guid}")).await;
    assert_eq!(status, 200, "{list}");
    let resources = list["resources"].as_array().unwrap();
    assert_eq!(resources.len(), 1, "{list}");
    assert_eq!(resources[0]["type"], "web");
    assert_eq!(list["pagination"]["total_results"], 1);
    let (_, all) = call(&running, "GET", "/v3/processes?types=web").await;
    assert_eq!(all["resources"].as_array().unwrap().len(), 2, "{all}");

    // The app's routes: those with a destination to it.
    let domain = client
        .find_domain("apps.localhost")
        .await
        .unwrap()
        .expect("the shared domain");
    let space = client
        .find_space(&crate::platform::local_org(&client).await, "local")
        .await
        .unwrap()
        .unwrap();
    let route = client
        .create_route(&domain.guid, &space.guid, "shop-live")
        .await
        .unwrap();
    client.map_route(&route.guid, &guid).await.unwrap();
    let (status, routes) = call(&running, "GET", &format!("/v3/apps/{guid}/routes")).await;
    assert_eq!(status, 200, "{routes}");
    let hosts: Vec<&str> = routes["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["host"].as_str())
        .collect();
    assert_eq!(hosts, ["shop-live"], "{routes}");
    let (_, none) = call(&running, "GET", &format!("/v3/apps/{other}/routes")).await;
    assert_eq!(none["resources"].as_array().unwrap().len(), 0, "{none}");
    let (status, _) = call(&running, "GET", "/v3/apps/no-such-app/routes").await;
    assert_eq!(status, 404);

    // A documented filter the platform does not implement: CF's 400, not
    // every app.
    for path in [
        "/v3/apps?label_selector=env%3Dprod",
        "/v3/apps?names=shop&include=space",
        "/v3/routes?hosts=shop-live&organization_guids=x",
        "/v3/apps/{guid}?include=space",
        "/v3/processes?label_selector=x",
        // Spelled to slip past a check of decoded names, or of the first
        // parameter only: refused all the same.
        "/v3/apps?label%5Fselector=env%3Dprod",
        "/v3/apps?names=shop&names=other&label_selector=x",
        "/v3/apps?=x",
    ] {
        let path = path.replace("{guid}", &guid);
        let (status, body) = call(&running, "GET", &path).await;
        assert_eq!(status, 400, "{path}: {body}");
        let e = &body["errors"][0];
        assert_eq!(
            (e["code"].as_u64(), e["title"].as_str()),
            (Some(10005), Some("CF-BadQueryParameter")),
            "{path}: {body}"
        );
        assert!(
            e["detail"]
                .as_str()
                .unwrap()
                .contains("Unknown query parameter"),
            "{body}"
        );
    }
    // What is implemented still filters.
    let (status, one) = call(
        &running,
        "GET",
        &format!("/v3/apps?guids={other}&per_page=10"),
    )
    .await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["resources"].as_array().unwrap().len(), 1, "{one}");

    // Unknown paths and methods: CF's envelope, never an empty body.
    for (method, path) in [
        ("GET", "/v3/nothing"),
        ("DELETE", "/v3/organizations"),
        ("PUT", "/v3/apps"),
    ] {
        let (status, body) = call(&running, method, path).await;
        assert_eq!(status, 404, "{method} {path}: {body}");
        assert_eq!(
            body["errors"][0]["title"], "CF-NotFound",
            "{method} {path}: {body}"
        );
        assert_eq!(body["errors"][0]["detail"], "Unknown request");
    }
    running.shutdown().await;
}
