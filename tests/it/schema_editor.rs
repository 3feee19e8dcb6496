//! The schema as editors read it: the YAML language server itself (the
//! npm package VS Code, Neovim and Helix run, pinned in tests/editor and
//! installed by scripts/test) validates the whole corpus of
//! `schema_corpus.rs` with the same verdicts as the `jsonschema` crate,
//! says how to fix a misspelt value instead of quoting a pattern, offers
//! the strategies, and shows a field's own description on hover. And
//! `bluegreen init` writes the first line that points it at the schema.

use crate::schema::schema_output;
use crate::schema_corpus::{corpus, schema_errors, validator};
use crate::util::succeeded;
use serde_json::{Value, json};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

#[test]
fn the_yaml_language_server_reads_the_schema_as_the_validator_does() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let editor = root.join("tests/editor");
    assert!(
        editor.join("node_modules/yaml-language-server").is_dir(),
        "tests/editor/node_modules is missing: scripts/test installs it \
         (`cd tests/editor && npm ci`)"
    );
    let docs = corpus();
    let input = json!({
        "schema": root.join("docs/src/schema/bluegreen.schema.json"),
        "docs": docs,
    });
    let mut child = Command::new("node")
        .arg(editor.join("check.js"))
        .current_dir(&editor)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running node");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();

    let v = validator();
    let mut checked = 0;
    for (name, text) in &docs {
        let editor_says: Vec<&str> = got["diagnostics"][name]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: no answer"))
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let crate_says = schema_errors(&v, text);
        assert_eq!(
            editor_says.is_empty(),
            crate_says.is_empty(),
            "{name}: the language server says {editor_says:?}, the validator {crate_says:?}"
        );
        checked += 1;
    }
    assert!(checked >= 60, "only {checked} documents");
    let said = |name: &str| got["diagnostics"][name].to_string();
    assert!(
        said("drain-words").contains("Write a duration like"),
        "{}",
        said("drain-words")
    );
    let max_in_flight = "tests/ui/config/max-in-flight-two-colors.yaml";
    assert!(
        said(max_in_flight).contains("needs `strategy: cf-canary`"),
        "{}",
        said(max_in_flight)
    );

    let offered: Vec<&str> = got["completion"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for s in ["blue-green", "canary", "cf-canary", "cf-rolling"] {
        assert!(offered.contains(&s), "{s} not offered: {offered:?}");
    }
    let hover = got["hover"].as_str().unwrap();
    assert!(
        hover.contains("How long to wait at most for in-flight requests"),
        "{hover}"
    );
}

/// `bluegreen init` points the YAML language server at the schema beside
/// the file it writes, writes that schema, and the file validates under it;
/// a schema file already there is kept.
#[test]
fn init_writes_the_modeline_and_the_schema_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("shop");
    std::fs::create_dir(&app).unwrap();
    std::fs::write(app.join("Procfile"), "web: python3 app.py\n").unwrap();
    let run = |dir: &Path| {
        succeeded(
            Command::new(env!("CARGO_BIN_EXE_bluegreen"))
                .args(["init", "-C"])
                .arg(dir)
                .env("NO_COLOR", "1")
                .output()
                .unwrap(),
        )
    };
    run(&app);
    let written = std::fs::read_to_string(app.join("bluegreen.yaml")).unwrap();
    assert_eq!(
        written.lines().next(),
        Some("# yaml-language-server: $schema=.bluegreen.schema.json")
    );
    let schema = std::fs::read_to_string(app.join(".bluegreen.schema.json")).unwrap();
    assert_eq!(schema, schema_output(&[]));
    let schema: Value = serde_json::from_str(&schema).unwrap();
    let doc: Value = serde_yaml::from_str(&written).unwrap();
    let errors: Vec<String> = jsonschema::validator_for(&schema)
        .unwrap()
        .iter_errors(&doc)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}\n{written}");

    let other = dir.path().join("kept");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("config.ru"), "run ->(env) { [200, {}, []] }\n").unwrap();
    std::fs::write(other.join(".bluegreen.schema.json"), "{}\n").unwrap();
    run(&other);
    let kept = std::fs::read_to_string(other.join(".bluegreen.schema.json")).unwrap();
    assert_eq!(kept, "{}\n");
}
