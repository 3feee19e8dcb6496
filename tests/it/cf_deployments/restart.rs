//! What a daemon restart does to an active deployment: it cancels it (the
//! platform's instances do not outlive it, and a paused canary must not
//! come back as a full rollout nobody approved).

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_daemon_restart_cancels_an_active_deployment() {
    let tmp = tempfile::tempdir().unwrap();
    let (running, client) = start(tmp.path()).await;
    let api = Api::new(&running);
    let app = app_on_v1(&client, tmp.path(), "kept", 2).await;
    let v1 = client.current_droplet(&app).await.unwrap().unwrap();
    let v2 = stage(&client, &app, &source(tmp.path(), "v2", true)).await;
    let d = api
        .deploy(body(
            &app,
            json!({ "droplet": { "guid": v2 }, "strategy": "canary" }),
        ))
        .await;
    let guid = d["guid"].as_str().unwrap().to_string();
    api.wait_status(&guid, "ACTIVE", "PAUSED").await;
    running.shutdown().await;

    let (running, client) = start(tmp.path()).await;
    let api = Api::new(&running);
    let d = api.get(&format!("/v3/deployments/{guid}")).await;
    assert_eq!(
        (&d["status"]["value"], &d["status"]["reason"]),
        (&json!("FINALIZED"), &json!("CANCELED")),
        "{d}"
    );
    assert!(
        d["status"]["details"]["error"]
            .as_str()
            .unwrap()
            .contains("restarted"),
        "{d}"
    );
    assert_eq!(client.current_droplet(&app).await.unwrap(), Some(v1));
    wait_versions(&client, &app, &["v1", "v1"]).await;
    running.shutdown().await;
}
