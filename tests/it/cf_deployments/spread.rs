//! The router's spread, which a canary's measured share rests on: on a
//! plain route every running instance is first in turn; on a weighted one
//! each weight's app turns over its own instances. (Turned twice, by the
//! request count per app and again over all, four instances got the first
//! pick two at a time: a one-in-four canary answered half the requests.)

use super::*;

/// `n` GETs one after another through route `host`: answers per instance
/// (its port).
async fn answers(running: &Running, host: &str, n: usize) -> BTreeMap<String, usize> {
    let http = reqwest::Client::new();
    let mut by_port = BTreeMap::new();
    for _ in 0..n {
        let (status, text) = crate::platform::via_router(&http, running, host, "/")
            .await
            .unwrap();
        assert_eq!(status, 200, "{text}");
        let port = text.split_whitespace().nth(3).unwrap().to_string();
        *by_port.entry(port).or_default() += 1;
    }
    by_port
}

#[tokio::test(flavor = "multi_thread")]
async fn every_running_instance_gets_its_share_on_plain_and_weighted_routes() {
    let tmp = tempfile::tempdir().unwrap();
    let (running, client) = start(tmp.path()).await;
    let red = app_on_v1(&client, tmp.path(), "red", 4).await;
    let blue = app_on_v1(&client, tmp.path(), "blue", 2).await;

    let plain = answers(&running, "red", 400).await;
    assert_eq!(plain.len(), 4, "{plain:?}");
    assert!(
        plain.values().all(|&n| n == 100),
        "a quarter each: {plain:?}"
    );

    let space = client
        .find_space(&local_org(&client).await, "local")
        .await
        .unwrap()
        .unwrap();
    let domain = client
        .find_domain(bluegreen::platform::local::DOMAIN)
        .await
        .unwrap()
        .unwrap();
    let route = client
        .create_route(&domain.guid, &space.guid, "both")
        .await
        .unwrap();
    client
        .set_destinations(&route.guid, &[(&red, Some(1)), (&blue, Some(1))])
        .await
        .unwrap();
    let weighted = answers(&running, "both", 400).await;
    let mut shares: Vec<usize> = weighted.values().copied().collect();
    shares.sort();
    // Half to red over its four instances, half to blue over its two.
    assert_eq!(shares, [50, 50, 50, 50, 100, 100], "{weighted:?}");
    running.shutdown().await;
}
