//! The lifetime of the local platform's access tokens
//! (`BLUEGREEN_PLATFORM_TOKEN_TTL`), through the binary: a bad value stops
//! `platform start` naming it; a token past its `exp` is CF's 401
//! `CF-InvalidAuthToken`, and one refreshed through UAA takes over.

use crate::uaa::{assert_invalid_token, claims_of, get, now_secs, token};
use serde_json::{Value, json};
use std::time::Duration;

/// Runs `platform start` in the background with the TTL variable set, and
/// stops it when dropped.
struct Daemon {
    home: tempfile::TempDir,
}

impl Daemon {
    fn run(home: &std::path::Path, ttl: &str, args: &[&str]) -> std::process::Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_bluegreen"))
            .args(args)
            .env("BLUEGREEN_HOME", home)
            .env("BLUEGREEN_PLATFORM_TOKEN_TTL", ttl)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        crate::util::stop_platform(self.home.path());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_access_token_dies_at_its_ttl_and_a_refreshed_one_takes_over() {
    let home = tempfile::tempdir().unwrap();
    let start = ["platform", "start", "--router-port", "0"];
    // A bad lifetime is refused by name before anything starts.
    let out = Daemon::run(home.path(), "soon", &start);
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("BLUEGREEN_PLATFORM_TOKEN_TTL=soon"), "{text}");
    assert!(!home.path().join("platform/daemon.json").exists());

    let out = Daemon::run(home.path(), "1s", &start);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let daemon = Daemon { home };
    let dir = daemon.home.path().join("platform");
    let endpoint: Value =
        serde_json::from_slice(&std::fs::read(dir.join("daemon.json")).unwrap()).unwrap();
    let api = endpoint["api_url"].as_str().unwrap().to_string();
    let secret = std::fs::read_to_string(dir.join("token")).unwrap();

    let admin = [
        ("grant_type", "password"),
        ("username", "admin"),
        ("password", secret.trim()),
    ];
    let cf = Some(("cf", ""));
    let (status, login) = token(&api, cf, &admin).await;
    assert_eq!((status, &login["expires_in"]), (200, &json!(1)), "{login}");
    let access = login["access_token"].as_str().unwrap();
    assert_eq!(get(&api, Some(access), "/v3/apps").await.0, 200);
    let exp = claims_of(access)["exp"].as_u64().unwrap();
    while now_secs() < exp {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_invalid_token(&get(&api, Some(access), "/v3/apps").await, "past its exp");

    let refresh = login["refresh_token"].as_str().unwrap();
    let again = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
    let (status, refreshed) = token(&api, cf, &again).await;
    assert_eq!(status, 200, "{refreshed}");
    let renewed = refreshed["access_token"].as_str().unwrap();
    assert_eq!(get(&api, Some(renewed), "/v3/apps").await.0, 200);
    drop(daemon);
}
