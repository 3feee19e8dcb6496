//! What a failing health probe says, as `strategies/blue-green.md` states
//! it: for "another status: its body's first 120 characters".

use crate::deploy::Fixture;
use crate::util::{exits, py_app};

/// `/health` answers 500 with 300 characters (330 bytes: `é` is two): the
/// failed deploy's error names the status and shows the first 120
/// characters, then `…`. (The health timeout is the fixture's 5 s: on a
/// loaded machine the app may not listen within 1 s, and the error would
/// name the refused connection instead.)
#[test]
fn a_failing_probe_shows_the_first_120_characters_of_the_body() {
    let f = Fixture::new("");
    std::fs::write(
        f.root.path().join("app/app.py"),
        py_app("", "500", r#""é123456789" * 30"#),
    )
    .unwrap();
    std::fs::write(
        &f.file,
        "app: shop\npath: app\nhealth: { path: /health, interval: 50ms, timeout: 5s }\n",
    )
    .unwrap();
    let out = exits(f.deploy("v1"), 1);
    let err = String::from_utf8_lossy(&out.stderr);
    let body = "é123456789".repeat(30);
    let first: String = body.chars().take(120).collect();
    let more: String = body.chars().take(121).collect();
    assert!(err.contains("HTTP 500"), "{err}");
    assert!(err.contains(&format!(": {first}…")), "{err}");
    assert!(!err.contains(&more), "{err}");
}
