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

/// gorouter's `X-CF-Process-Instance: PROCESS_GUID:INDEX`, which a native
/// deploy's probes pin each new instance with: every request reaches that
/// one instance, whatever the spread; a malformed or unknown one (the
/// input that would let a probe pass on any instance) is refused.
#[tokio::test(flavor = "multi_thread")]
async fn a_process_instance_header_reaches_that_instance_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let (running, client) = start(tmp.path()).await;
    let red = app_on_v1(&client, tmp.path(), "red", 4).await;
    let url = format!("http://127.0.0.1:{}/", running.endpoint.router_port);
    let host = format!("red.{}", bluegreen::platform::local::DOMAIN);
    let http = reqwest::Client::new();
    let ask = |pins: Vec<String>| {
        let mut req = http.get(&url).header("host", &host);
        for p in pins {
            req = req.header("x-cf-process-instance", p);
        }
        async move {
            let resp = req.send().await.unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    };
    for i in 0..4 {
        for _ in 0..8 {
            let (status, text) = ask(vec![format!("{red}:{i}")]).await;
            assert_eq!(status, 200, "{text}");
            assert_eq!(
                text.split_whitespace().nth(2),
                Some(&*i.to_string()),
                "{text}"
            );
        }
    }
    for bad in [
        vec![red.clone()],
        vec![format!("{red}:x")],
        vec![format!("{red}:9")],
        vec![format!("{red}-other:0")],
        vec![":0".to_string()],
        vec![format!("{red}:0"), format!("{red}:1")],
    ] {
        let (status, text) = ask(bad.clone()).await;
        assert_eq!(status, 400, "{bad:?}: {text}");
    }
    running.shutdown().await;
}
