//! Backing services on the local platform: a real PostgreSQL per service,
//! created with `platform service create`, bound by the deploy file's
//! `services:`, and kept across platform restarts.

use crate::deploy::{Fixture, text};
use crate::rails::{database_url, psql};
use crate::util::succeeded;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;

#[test]
fn a_postgres_service_keeps_its_rows_across_platform_stop_and_start() {
    let f = Fixture::new("");
    let out = f.run(&[
        "platform", "service", "create", "shop-db", "--type", "postgres",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let url = database_url(&f, "shop-db");
    assert!(url.starts_with("postgres://bluegreen:"), "{url}");
    assert!(
        // With libpq 16 or later the URI ends in `?require_auth=scram-sha-256`.
        url.contains("@127.0.0.1:") && url.split('?').next().unwrap().ends_with("/shop_db"),
        "{url}"
    );

    // The password is generated and shown only where asked for (--json).
    let password = url.split(':').nth(2).unwrap().split('@').next().unwrap();
    assert!(password.len() >= 32, "a generated password");
    let plain = succeeded(f.run(&["platform", "service", "list"]));
    let shown = String::from_utf8_lossy(&plain.stdout);
    assert!(
        shown.contains("shop-db") && shown.contains("running"),
        "{shown}"
    );
    assert!(!shown.contains(password), "masked: {shown}");
    let wrong = url.replace(password, "wrong");
    let denied = std::process::Command::new("psql")
        .args([&wrong, "-c", "select 1"])
        .output()
        .unwrap();
    assert!(!denied.status.success(), "a wrong password is refused");

    // Its data lives in the private platform home.
    let dir = f.home().join("platform/services/shop-db");
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "{}", dir.display());
    assert!(dir.join("data/PG_VERSION").exists());

    psql(
        &url,
        "CREATE TABLE kept (n int); INSERT INTO kept SELECT generate_series(1, 500)",
    );
    assert_eq!(f.run(&["platform", "stop"]).status.code(), Some(0));
    let port: u16 = url
        .rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the server stops with the platform"
    );
    let out = f.run(&["platform", "start", "--router-port", "0"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(database_url(&f, "shop-db"), url, "same port and password");
    assert_eq!(
        psql(&url, "SELECT count(*), sum(n) FROM kept"),
        "500|125250"
    );

    let out = f.run(&["platform", "service", "delete", "shop-db"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!dir.exists(), "its data is deleted with it");
}

#[test]
fn bound_services_reach_both_colors_and_the_migration_in_cf_shape() {
    bound_services(Fixture::new("services: [shop-db]\n"));
}

/// The same, deployed as `platform: cf`: the services bound through the v3
/// API reach the apps and the migration task as Cloud Foundry's do.
#[test]
fn as_cf_bound_services_reach_both_colors_and_the_migration_task() {
    bound_services(Fixture::new_cf("services: [shop-db]\n"));
}

fn bound_services(f: Fixture) {
    // Named but missing: refused before anything exists on the platform.
    let out = f.deploy("v1");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    let fix = if f.cf.is_some() {
        "create it in space `local` (`cf create-service OFFERING PLAN shop-db`)"
    } else {
        "bluegreen platform service create shop-db --type postgres"
    };
    assert!(
        err.contains("no service instance named `shop-db`") && err.contains(fix),
        "{err}"
    );
    let status = succeeded(f.run(&["platform", "status", "--json"]));
    let v: Value = serde_json::from_slice(&status.stdout).unwrap();
    let apps = v["apps"]
        .as_array()
        .unwrap_or_else(|| panic!("no apps list: {v}"));
    assert!(
        apps.iter()
            .all(|a| a["name"].as_str().is_some_and(|n| !n.starts_with("shop"))),
        "no app was created: {v}"
    );

    let out = f.run(&[
        "platform", "service", "create", "shop-db", "--type", "postgres",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = f.deploy("v1");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    f.assert_serving("v1");
    let url = database_url(&f, "shop-db");
    let env: Value = serde_json::from_str(
        &std::fs::read_to_string(f.migration_log().with_extension("log.env.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(env["DATABASE_URL"], url.as_str());
    assert_eq!(env["PGOPTIONS"], "-c lock_timeout=5000ms");
    let vcap: Value = serde_json::from_str(env["VCAP_SERVICES"].as_str().unwrap()).unwrap();
    let entry = &vcap["postgres"][0];
    assert_eq!(entry["name"], "shop-db");
    assert_eq!(entry["label"], "postgres");
    let creds = &entry["credentials"];
    assert_eq!(creds["uri"], url.as_str());
    assert_eq!(creds["hostname"], "127.0.0.1");
    assert_eq!(creds["username"], "bluegreen");
    assert_eq!(creds["name"], "shop_db");
    assert!(
        creds["port"].is_u64() && creds["password"].is_string(),
        "{creds}"
    );

    // A bound service cannot be deleted from under its apps.
    let out = f.run(&["platform", "service", "delete", "shop-db"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bound to shop-"),
        "{}",
        text(&out)
    );
}
