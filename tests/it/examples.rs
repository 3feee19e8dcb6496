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
fn the_rails_app_is_guarded_and_migrates_once() {
    let db = tempfile::tempdir().unwrap();
    let f = Fixture::example("rails-app", |y| {
        y.replace("/tmp/bluegreen-rails-app-db", db.path().to_str().unwrap())
    });
    f.plugins(&["migration-guard"]);
    let ledger = || std::fs::read_to_string(db.path().join("schema_migrations")).unwrap();

    // The safe migrations deploy, and run once.
    let out = f.deploy("r1");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    f.assert_colors("r1");
    assert_eq!(ledger(), "20260101000000\n20260115000000\n");
    let (_, body) = get(f.router_port, "rails-app", "/").unwrap();
    assert!(
        body.contains("release r1") && body.contains("schema 20260115000000"),
        "{body}"
    );

    // The destructive one is blocked before any route changes.
    let unsafe_migration = "20260201000000_remove_name_from_products.rb";
    std::fs::copy(
        f.root.path().join("unsafe").join(unsafe_migration),
        f.root.path().join("db/migrate").join(unsafe_migration),
    )
    .unwrap();
    let out = f.run(&["deploy", "--release", "r2", "--json"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let events = String::from_utf8_lossy(&out.stdout);
    assert!(
        events.contains("remove-column") && events.contains("ignored_columns"),
        "{events}"
    );
    assert!(
        !events.contains("\"step\":\"unmap\""),
        "no route changed: {events}"
    );
    f.assert_colors("r1");
    assert_eq!(
        ledger(),
        "20260101000000\n20260115000000\n",
        "nothing migrated"
    );

    // Moved to the contract phase (db/post_migrate), it runs once both
    // colors serve the new release, and is reported, not blocked.
    std::fs::rename(
        f.root.path().join("db/migrate").join(unsafe_migration),
        f.root.path().join("db/post_migrate").join(unsafe_migration),
    )
    .unwrap();
    let out = f.deploy("r3");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("contract phase, allowed"), "{stdout}");
    assert!(
        stdout.contains("migrate the contract phase once"),
        "{stdout}"
    );
    f.assert_colors("r3");
    assert_eq!(ledger(), "20260101000000\n20260115000000\n20260201000000\n");

    // Rolling back past it warns.
    let out = f.run(&["rollback", "--to", "r1"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("rolling back past contract-phase migrations"),
        "{}",
        text(&out)
    );
}
