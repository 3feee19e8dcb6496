//! Concurrent requests against a real local platform daemon: each change
//! to a record is one read-modify-write transaction, so requests racing on
//! one app, one host or one lease neither lose each other's writes nor both
//! win. The daemon runs on a multi-threaded runtime here, as in `bluegreen
//! platform start`, so its handlers really do run side by side.

use crate::platform::start;
use crate::util::lease;
use bluegreen::platform::client::CfClient;
use bluegreen::platform::lease::unix_now;
use bluegreen::platform::{local, v3};
use std::future::Future;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);
const N: usize = 50;

/// Runs `n` copies of `call(i)` at once on the runtime's workers; their
/// results in order, within `WAIT`.
async fn all_at_once<F, T>(n: usize, call: impl Fn(usize) -> F) -> Vec<T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let tasks: Vec<_> = (0..n).map(|i| tokio::spawn(call(i))).collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(
            tokio::time::timeout(WAIT, t)
                .await
                .expect("bounded")
                .unwrap(),
        );
    }
    out
}

async fn space(client: &CfClient) -> String {
    let org = client.find_org(local::ORG_NAME).await.unwrap().unwrap();
    client
        .find_space(&org.guid, "local")
        .await
        .unwrap()
        .unwrap()
        .guid
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_metadata_and_env_patches_to_one_app_all_land() {
    let tmp = tempfile::tempdir().unwrap();
    let (running, client) = start(tmp.path()).await;
    let app = client
        .create_app(&space(&client).await, "busy", &Default::default())
        .await
        .unwrap();

    let results = all_at_once(N, |i| {
        let (client, guid) = (client.clone(), app.guid.clone());
        async move {
            let mut metadata = v3::Metadata::default();
            let target = if i % 2 == 0 {
                &mut metadata.labels
            } else {
                &mut metadata.annotations
            };
            target.insert(format!("key-{i}"), Some(format!("value-{i}")));
            let env = [(format!("VAR_{i}"), Some(i.to_string()))].into();
            let meta = client.set_metadata(&guid, &metadata).await;
            let env = client.set_env(&guid, &env).await;
            (meta.map(|_| ()), env)
        }
    })
    .await;
    for (i, (meta, env)) in results.into_iter().enumerate() {
        meta.unwrap_or_else(|e| panic!("metadata patch {i}: {e}"));
        env.unwrap_or_else(|e| panic!("env patch {i}: {e}"));
    }

    let after = client.get_app(&app.guid).await.unwrap().metadata;
    let env = client.get_env(&app.guid).await.unwrap();
    for i in 0..N {
        let kept = if i % 2 == 0 {
            &after.labels
        } else {
            &after.annotations
        };
        assert_eq!(
            kept.get(&format!("key-{i}")),
            Some(&Some(format!("value-{i}"))),
            "metadata change {i} was lost: {after:?}"
        );
        assert_eq!(
            env.get(&format!("VAR_{i}")),
            Some(&i.to_string()),
            "env change {i} was lost: {env:?}"
        );
    }
    assert_eq!(after.labels.len() + after.annotations.len(), N);
    assert_eq!(env.len(), N);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_racing_claims_on_one_host_or_one_lease_exactly_one_wins() {
    let tmp = tempfile::tempdir().unwrap();
    let (running, client) = start(tmp.path()).await;
    let space = space(&client).await;
    let domain = client.find_domain(local::DOMAIN).await.unwrap().unwrap();

    let routes = all_at_once(N, |_| {
        let (client, space, domain) = (client.clone(), space.clone(), domain.guid.clone());
        async move { client.create_route(&domain, &space, "contested").await }
    })
    .await;
    let made = routes.iter().filter(|r| r.is_ok()).count();
    assert_eq!(made, 1, "one route per host: {routes:?}");
    let listed: Vec<v3::Route> = client.list("/v3/routes?hosts=contested").await.unwrap();
    assert_eq!(listed.len(), 1);

    let expires = unix_now() + 600;
    let claims = all_at_once(N, |i| {
        let client = client.clone();
        async move {
            let mine = lease(&format!("deploy-{i}"), "shop", expires);
            let got = client.lease_local(&mine, None).await.unwrap();
            (mine.id, got)
        }
    })
    .await;
    let winners: Vec<&String> = claims
        .iter()
        .filter(|(_, got)| got.acquired)
        .map(|(id, _)| id)
        .collect();
    assert_eq!(winners.len(), 1, "one holder: {claims:?}");
    let winner = winners[0];
    for (_, got) in &claims {
        assert_eq!(&got.holder.id, winner, "every answer names the one holder");
    }
    let holder = client.lease_holder_local("shop").await.unwrap().unwrap();
    assert_eq!(&holder.id, winner);
    running.shutdown().await;
}
