//! The examples deploy as their README says, on a real local platform with
//! real Ruby processes (CI installs ruby, ruby-rack and ruby-webrick).

use crate::deploy::{Fixture, get, text};

#[test]
fn the_rack_app_deploys_and_says_hello() {
    let f = Fixture::example("rack-app", |y| y);
    let out = f.deploy("r1");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    f.assert_colors("r1");
    let (status, body) = get(f.router_port, "rack-app", "/").unwrap();
    assert_eq!((status, body.as_str()), (200, "Hello, world!\n"));
}

#[test]
fn the_rails_app_migrates_once_and_serves_the_new_schema() {
    let db = tempfile::tempdir().unwrap();
    let f = Fixture::example("rails-app", |y| {
        y.replace("/tmp/bluegreen-rails-app-db", db.path().to_str().unwrap())
    });
    let out = f.deploy("r1");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    f.assert_colors("r1");
    let ledger = std::fs::read_to_string(db.path().join("schema_migrations")).unwrap();
    assert_eq!(ledger, "20260101000000\n20260115000000\n");
    let (_, body) = get(f.router_port, "rails-app", "/").unwrap();
    assert!(
        body.contains("release r1") && body.contains("schema 20260115000000"),
        "{body}"
    );

    // Nothing pending: the migration task runs, applies nothing.
    let out = f.deploy("r2");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(db.path().join("schema_migrations")).unwrap(),
        ledger
    );
}
