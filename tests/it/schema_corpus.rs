//! The JSON Schema against the parser, file by file: the examples and the
//! deploy files the tests use are valid under both, the known-bad ones
//! invalid under both, and where the two disagree on purpose (a rule JSON
//! Schema cannot say, or a stricter choice for editors) the case is listed
//! in `EXCEPTIONS` with why. A listed case that stops disagreeing fails
//! too, so the list cannot go stale.

use bluegreen::config::DeployFile;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Cases where the schema and the parser disagree, and why.
const EXCEPTIONS: &[(&str, &str)] = &[
    (
        "tests/ui/config/same-colors.yaml",
        "blue and green must differ: JSON Schema cannot compare two values",
    ),
    (
        "tests/ui/config/zero-lock-timeout.yaml",
        "a duration's size (above zero, at most 24h, at least another field's) is checked \
         after parsing; the schema checks its spelling",
    ),
    ("pause-zero", "a duration's size (a pause is above zero)"),
    (
        "pause-two-days",
        "a duration's size (a pause lasts at most 24h)",
    ),
    ("health-timeout-under-interval", "compares two durations"),
    (
        "tests/ui/config/cf-canary-steps-shrink.yaml",
        "steps must grow: JSON Schema cannot compare a list's items with each other",
    ),
    (
        "builtin-unknown",
        "a built-in plugin's name is looked up when plugins load (`plan` and `deploy` refuse \
         it, exit 2), not by the parser",
    ),
    (
        "body-as-number",
        "serde_yaml reads any scalar as text; the schema asks for a string where the value is \
         text (env values and plugin settings excepted), so an editor says to quote `200`",
    ),
];

/// Deploy files written here to reach each hand-written schema (durations,
/// steps, shares, settings, rehearse) from both sides.
const CASES: &[(&str, &str)] = &[
    (
        "env-scalars",
        "app: shop\nenv: { WORKERS: 2, DEBUG: true, NAME: x }\n",
    ),
    ("drain-zero", "app: shop\ndrain: 0\n"),
    (
        "drain-compound",
        "app: shop\ndrain: 1h 30m\nhealth: { timeout: 2min }\n",
    ),
    ("drain-no-unit", "app: shop\ndrain: 5\n"),
    ("drain-words", "app: shop\ndrain: five seconds\n"),
    (
        "steps-pauses",
        "app: shop\nstrategy: canary\nsteps: [10, pause, 50, {pause: 10m}, 100]\n",
    ),
    (
        "steps-word",
        "app: shop\nstrategy: canary\nsteps: [10, wait, 100]\n",
    ),
    (
        "steps-pause-typo",
        "app: shop\nstrategy: canary\nsteps: [10, {pause: 1m, resume: x}, 100]\n",
    ),
    (
        "steps-over-100",
        "app: shop\nstrategy: canary\nsteps: [10, 300]\n",
    ),
    (
        "pause-zero",
        "app: shop\nstrategy: canary\nsteps: [10, {pause: 0s}, 100]\n",
    ),
    (
        "pause-two-days",
        "app: shop\nstrategy: canary\nsteps: [10, {pause: 2d}, 100]\n",
    ),
    (
        "canary-last-step-not-100",
        "app: shop\nstrategy: canary\nsteps: [10, 50]\n",
    ),
    (
        "analysis-full",
        "app: shop\nanalysis: { max_error_rate: 2%, max_error_rate_abs: 0.2, on_fail: pause, \
         max_p99: 300ms, load: { paths: [/up], method: HEAD, rate: 5 } }\n",
    ),
    (
        "share-over-100",
        "app: shop\nanalysis: { max_error_rate: 150% }\n",
    ),
    (
        "share-over-1",
        "app: shop\nanalysis: { max_error_rate: 5 }\n",
    ),
    (
        "share-abs-100",
        "app: shop\nanalysis: { max_error_rate_abs: 100% }\n",
    ),
    (
        "confidence-low",
        "app: shop\nanalysis: { confidence: 0.3 }\n",
    ),
    ("ratio-low", "app: shop\nanalysis: { max_p99_ratio: 0.5 }\n"),
    (
        "load-rate-zero",
        "app: shop\nanalysis: { load: { rate: 0 } }\n",
    ),
    (
        "load-method",
        "app: shop\nanalysis: { load: { method: PATCH } }\n",
    ),
    (
        "load-path",
        "app: shop\nanalysis: { load: { paths: [up] } }\n",
    ),
    (
        "min-requests-zero",
        "app: shop\nanalysis: { min_requests: 0 }\n",
    ),
    (
        "rehearse-true",
        "app: shop\nmigrate: { command: m, rehearse: true }\n",
    ),
    (
        "rehearse-map",
        "app: shop\nmigrate: { command: m, rehearse: { sample_rows: 10, max_exclusive: 2s } }\n",
    ),
    (
        "rehearse-words",
        "app: shop\nmigrate: { command: m, rehearse: yes please }\n",
    ),
    (
        "rehearse-typo",
        "app: shop\nmigrate: { command: m, rehearse: { sample_row: 10 } }\n",
    ),
    (
        "rehearse-rows",
        "app: shop\nmigrate: { command: m, rehearse: { sample_rows: 1000000 } }\n",
    ),
    (
        "retries-21",
        "app: shop\nmigrate: { command: m, retries: 21 }\n",
    ),
    ("migrate-no-command", "app: shop\nmigrate: { dirs: [db] }\n"),
    (
        "plugins-full",
        "app: shop\nplugins: { builtin: [http-probe], config: { guard: { settings: { mode: \
         block, sql_methods: [DB.exec, Repo.run], n: 3 }, allow_http: [candidate, \
         'https://example.com'], memory: 64MiB, timeout: 2s, on_error: warn } } }\n",
    ),
    (
        "builtin-unknown",
        "app: shop\nplugins: { builtin: [http-prob] }\n",
    ),
    (
        "settings-comma",
        "app: shop\nplugins: { config: { g: { settings: { d: ['a,b', c] } } } }\n",
    ),
    (
        "settings-nested",
        "app: shop\nplugins: { config: { g: { settings: { d: { n: 1 } } } } }\n",
    ),
    (
        "memory-words",
        "app: shop\nplugins: { config: { g: { memory: lots } } }\n",
    ),
    (
        "on-error-unknown",
        "app: shop\nplugins: { config: { g: { on_error: ignore } } }\n",
    ),
    (
        "services",
        "app: shop\nservices: [shop-db, { name: cache, type: postgres }]\n",
    ),
    ("service-name", "app: shop\nservices: ['bad name']\n"),
    (
        "cf-rolling",
        "app: shop\nplatform: cf\nstrategy: cf-rolling\nmax_in_flight: 2\nfallback: none\n",
    ),
    (
        "max-in-flight-zero",
        "app: shop\nplatform: cf\nstrategy: cf-rolling\nmax_in_flight: 0\n",
    ),
    (
        "route-and-domain",
        "app: shop\ncolors: { blue: a, green: b }\nroute: shop.example.com\ndomain: example.com\n",
    ),
    ("route-bad", "app: shop\nroute: Sto_re.x.com\n"),
    (
        "health-full",
        "app: shop\nhealth: { status: 204, successes: 2, request_timeout: 500ms }\n",
    ),
    ("health-status-text", "app: shop\nhealth: { status: ok }\n"),
    (
        "health-successes-zero",
        "app: shop\nhealth: { successes: 0 }\n",
    ),
    (
        "health-timeout-under-interval",
        "app: shop\nhealth: { interval: 2s, timeout: 1s }\n",
    ),
    ("body-as-number", "app: shop\nhealth: { body: 200 }\n"),
    ("strategy-unknown", "app: shop\nstrategy: rolling\n"),
    ("not-a-map", "[app, shop]\n"),
];

pub fn validator() -> jsonschema::Validator {
    jsonschema::validator_for(&bluegreen::config::schema::deploy_file())
        .expect("the deploy file's schema compiles")
}

/// The schema's verdict: the errors, if any, one line each.
pub fn schema_errors(v: &jsonschema::Validator, text: &str) -> Vec<String> {
    let doc: Value = serde_yaml::from_str(text).expect("YAML the schema can read");
    v.iter_errors(&doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every `bluegreen.yaml` under examples/, at any depth.
fn examples() -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![root().join("examples")];
    while let Some(dir) = dirs.pop() {
        for p in crate::util::sorted_entries(&dir) {
            if p.is_dir() {
                dirs.push(p);
            } else if p.file_name().is_some_and(|n| n == "bluegreen.yaml") {
                found.push(p);
            }
        }
    }
    found
}

/// The `.yaml` files in `dir` (under the checkout), sorted.
fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let entries = crate::util::sorted_entries(&root().join(dir));
    entries
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect()
}

#[test]
fn the_examples_and_the_valid_test_files_validate() {
    let v = validator();
    let mut files = examples();
    assert!(files.len() >= 3, "{files:?}");
    files.push(root().join("tests/ui/config/valid.yaml"));
    files.extend(yaml_files("tests/ui/plan"));
    for path in &files {
        DeployFile::load(path).unwrap_or_else(|e| panic!("{e}"));
        let text = std::fs::read_to_string(path).unwrap();
        let errors = schema_errors(&v, &text);
        assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
    }
}

#[test]
fn known_bad_files_fail_validation_with_the_field_named() {
    let v = validator();
    for (file, at) in [
        ("unknown-field.yaml", "/health"),
        ("bad-duration.yaml", "/drain"),
        ("unknown-platform.yaml", "/platform"),
        ("bad-service-type.yaml", "/services/0"),
        ("bad-origin.yaml", "/plugins/config/probe/allow_http/0"),
        ("missing-app.yaml", ""),
        ("bad-app-name.yaml", "/app"),
    ] {
        let text = std::fs::read_to_string(root().join("tests/ui/config").join(file)).unwrap();
        let errors = schema_errors(&v, &text);
        assert!(
            errors.iter().any(|e| e.starts_with(&format!("{at}: "))),
            "{file}: want an error at `{at}`, got {errors:#?}"
        );
    }
}

/// The corpus, each with its name and text: the examples, every deploy
/// file under tests/ui, and `CASES`.
pub fn corpus() -> Vec<(String, String)> {
    let mut files = examples();
    files.extend(yaml_files("tests/ui/config"));
    files.extend(yaml_files("tests/ui/plan"));
    let mut all: Vec<(String, String)> = files
        .iter()
        .map(|p| {
            let name = p.strip_prefix(root()).unwrap().display().to_string();
            (name, std::fs::read_to_string(p).unwrap())
        })
        .collect();
    all.extend(CASES.iter().map(|(n, t)| (n.to_string(), t.to_string())));
    all
}

#[test]
fn the_schema_and_the_parser_agree_on_every_deploy_file_but_the_listed_exceptions() {
    let v = validator();
    let mut disagree = Vec::new();
    let (mut valid, mut invalid) = (0, 0);
    for (name, text) in corpus() {
        // Loaded from where it is, so an example's `manifest` is read too.
        let path = root().join(&name);
        let parser = match path.is_file() {
            true => DeployFile::load(&path).map(|_| ()),
            false => DeployFile::parse(Path::new(&name), &text).map(|_| ()),
        };
        let schema = schema_errors(&v, &text);
        let listed = EXCEPTIONS.iter().any(|(n, _)| *n == name);
        if parser.is_ok() == schema.is_empty() {
            assert!(
                !listed,
                "{name}: listed as an exception, but both say {}",
                parser.is_ok()
            );
            if parser.is_ok() {
                valid += 1
            } else {
                invalid += 1
            }
        } else if !listed {
            disagree.push(format!("{name}: parser {parser:?}, schema {schema:?}"));
        }
    }
    assert!(
        disagree.is_empty(),
        "unlisted disagreements:\n{}",
        disagree.join("\n")
    );
    assert!(
        valid >= 15 && invalid >= 30,
        "{valid} valid, {invalid} invalid"
    );
}
