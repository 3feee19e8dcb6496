//! Defect 12 of «7 · Hardening»: droplets and packages were never cleaned
//! up, so every deploy left a full copy of the app on disk for good. The
//! platform now keeps the newest few per app (and the current one); a
//! rollback within them works, one past them says why it cannot.

use crate::deploy::{Fixture, text};

#[test]
fn defect_12_old_droplets_are_pruned_and_rollback_keeps_what_it_needs() {
    let f = Fixture::new("");
    // The README's promise: the newest 5 droplets are kept.
    let kept = 5;
    let deploys = kept + 2;
    for i in 1..=deploys {
        // A change per release, so each stages its own droplet.
        std::fs::write(f.root.path().join("app/VERSION"), format!("{i}\n")).unwrap();
        let out = f.deploy(&format!("v{i}"));
        assert_eq!(out.status.code(), Some(0), "v{i}: {}", text(&out));
    }
    let platform = f.home().join("platform");
    let dirs = std::fs::read_dir(platform.join("droplets"))
        .unwrap()
        .count();
    assert_eq!(dirs, kept, "droplet directories after {deploys} deploys");
    let zips = std::fs::read_dir(platform.join("packages"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "zip"))
        .count();
    assert_eq!(zips, 0, "staged packages keep no bits");

    // Within what is kept: a real rollback.
    let recent = format!("v{}", deploys - 1);
    let out = f.run(&["rollback", "--to", &recent]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    f.assert_serving(&recent);
    // Past it: bad input, and nothing changes.
    let out = f.run(&["rollback", "--to", "v1"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("droplet") && text(&out).contains("is gone"),
        "{}",
        text(&out)
    );
    f.assert_serving(&recent);
    let out = f.run(&["deploy", "--release", "v1"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}
