//! Every way a Cloud Foundry user or CI job logs in, each running a whole
//! `platform: cf` deploy against the local platform serving as CF: a
//! password grant (`CF_USERNAME`/`CF_PASSWORD`, as `cf auth`), client
//! credentials (`CF_CLIENT_ID`/`CF_CLIENT_SECRET`), the cf CLI's own
//! `config.json` with an access token already expired (refreshed first),
//! tokens that expire every few seconds throughout a deploy, a 401 in the
//! middle of one, a login made with `--skip-ssl-validation`, and wrong
//! credentials (refused by name, the secret never printed).

use crate::deploy::{Fixture, text};
use serde_json::{Value, json};
use std::process::Command;
use std::time::Duration;

fn var(f: &Fixture, k: &str) -> String {
    let vars = f.cf.as_ref().expect("a cf fixture");
    vars.iter().find(|(n, _)| n == k).unwrap().1.clone()
}

/// A deploy command with the fixture's CF variables but none of its
/// credentials, then `set`.
fn deploy_with(f: &Fixture, release: &str, set: &[(&str, String)]) -> Command {
    let mut c = f.cmd(&["deploy", "--release", release]);
    for k in ["CF_USERNAME", "CF_PASSWORD"] {
        c.env_remove(k);
    }
    for (k, v) in set {
        c.env(k, v);
    }
    c
}

/// `POST /oauth/token` with the password grant, as `cf login` does.
fn password_grant(f: &Fixture) -> Value {
    let ca = std::fs::read(var(f, "BLUEGREEN_CA_FILE")).unwrap();
    let api = var(f, "CF_API");
    let password = var(f, "CF_PASSWORD");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            reqwest::Client::builder()
                .tls_built_in_root_certs(false)
                .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap()
                .post(format!("{api}/oauth/token"))
                .basic_auth("cf", Some(""))
                .form(&[
                    ("grant_type", "password"),
                    ("username", "admin"),
                    ("password", &password),
                ])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap()
        })
}

/// A `$CF_HOME` whose `.cf/config.json` is what `cf login` leaves.
fn cf_home(f: &Fixture, token: &Value, ssl_disabled: bool) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".cf")).unwrap();
    let api = var(f, "CF_API");
    let config = json!({
        "ConfigVersion": 3,
        "Target": api,
        "APIVersion": "3.99.0",
        "AuthorizationEndpoint": api,
        "UaaEndpoint": api,
        "AccessToken": format!("bearer {}", token["access_token"].as_str().unwrap()),
        "RefreshToken": token["refresh_token"],
        "UAAOAuthClient": "cf",
        "UAAOAuthClientSecret": "",
        "SSLDisabled": ssl_disabled,
        "OrganizationFields": { "GUID": "", "Name": "local" },
        "SpaceFields": { "GUID": "", "Name": "local" },
    });
    std::fs::write(
        home.path().join(".cf/config.json"),
        serde_json::to_vec_pretty(&config).unwrap(),
    )
    .unwrap();
    home
}

#[test]
fn a_deploy_as_cf_logs_in_with_each_credential_shape() {
    // Tokens live 3 s: the client renews one before nearly every call, and
    // one fetched now has expired by the time a deploy reads it.
    let mut f = Fixture::new_cf("");
    f.restart_platform_with(&[("BLUEGREEN_PLATFORM_TOKEN_TTL", "3s")]);

    // The password grant, the fixture's own: tokens renewed throughout.
    let out = f.deploy("v1");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // Client credentials: no refresh token, so a new grant each time.
    let secret = var(&f, "CF_PASSWORD");
    let out = deploy_with(
        &f,
        "v2",
        &[
            ("CF_CLIENT_ID", "bluegreen".into()),
            ("CF_CLIENT_SECRET", secret.clone()),
        ],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    f.assert_serving("v2");

    // The cf CLI's login, its access token expired: refreshed first.
    let token = password_grant(&f);
    std::thread::sleep(Duration::from_millis(3500));
    let home = cf_home(&f, &token, false);
    let out = deploy_with(&f, "v3", &[("CF_HOME", home.path().display().to_string())])
        .env_remove("CF_API")
        .env_remove("CF_ORG")
        .env_remove("CF_SPACE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    f.assert_serving("v3");

    // Wrong credentials: refused, naming what to check, the secret unsaid.
    let out = deploy_with(
        &f,
        "v4",
        &[
            ("CF_USERNAME", "admin".into()),
            ("CF_PASSWORD", "not-the-password".into()),
        ],
    )
    .output()
    .unwrap();
    let said = text(&out);
    assert_ne!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("CF_USERNAME and CF_PASSWORD"), "{said}");
    assert!(said.contains("Bad credentials"), "{said}");
    assert!(
        !said.contains("not-the-password") && !said.contains(&secret),
        "{said}"
    );
    f.assert_serving("v3");
}

#[test]
fn a_401_mid_deploy_is_answered_with_a_new_token_and_the_deploy_finishes() {
    let mut f = Fixture::new_cf("");
    f.restart_platform_with(&[(bluegreen::platform::local::faults::ENV, "1")]);
    crate::util::succeeded(f.deploy("v1"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (_, client) = rt
        .block_on(bluegreen::platform::local::connect(
            &f.home().join("platform"),
        ))
        .expect("the daemon answers");
    // Every 7th call of the next deploy refuses its token, as CF does with
    // one it revoked: each is renewed and the call made again.
    for at in [7u64, 20, 33] {
        let plan = json!({"at": at, "mode": "unauthorized"});
        let _: Value = rt
            .block_on(client.call(
                reqwest::Method::PUT,
                bluegreen::platform::local::faults::PATH,
                Some(&plan),
            ))
            .unwrap();
        let release = format!("v{at}");
        let load = f.load();
        let out = f.deploy(&release);
        let (n, failures, _) = load.finish();
        assert_eq!(
            out.status.code(),
            Some(0),
            "401 at call {at}: {}",
            text(&out)
        );
        assert!(
            failures.is_empty(),
            "{} of {n} failed: {failures:?}",
            failures.len()
        );
        f.assert_serving(&release);
    }
}

#[test]
fn a_login_that_skips_ssl_validation_is_warned_about_and_works_without_the_ca() {
    let f = Fixture::new_cf("");
    let token = password_grant(&f);
    let home = cf_home(&f, &token, true);
    let out = deploy_with(&f, "v1", &[("CF_HOME", home.path().display().to_string())])
        .env_remove("CF_API")
        .env_remove("BLUEGREEN_CA_FILE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("skips SSL validation") && err.contains("BLUEGREEN_CA_FILE"),
        "{err}"
    );
    f.assert_serving("v1");
    // Without the CA and without the skip, the foundation is not trusted.
    let home = cf_home(&f, &token, false);
    let out = deploy_with(&f, "v2", &[("CF_HOME", home.path().display().to_string())])
        .env_remove("CF_API")
        .env_remove("BLUEGREEN_CA_FILE")
        .output()
        .unwrap();
    let said = text(&out);
    assert_ne!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("certificate"), "{said}");
    f.assert_serving("v1");
}
