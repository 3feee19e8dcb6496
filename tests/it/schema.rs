//! The published JSON Schemas and references (`bluegreen schema`): the
//! copies under docs/src are what the binary prints (`BLESS=1` rewrites
//! them, as for the other golden files), every field says what it is, and
//! every default the schema publishes is the one the parser applies. What
//! the schema accepts is compared with the parser in `schema_corpus.rs`.

use crate::util::{golden, succeeded};
use bluegreen::config::DeployFile;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;

pub fn schema_output(args: &[&str]) -> String {
    let out = succeeded(
        Command::new(env!("CARGO_BIN_EXE_bluegreen"))
            .arg("schema")
            .args(args)
            .env("NO_COLOR", "1")
            .output()
            .expect("running bluegreen schema"),
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_committed_schemas_and_references_are_what_bluegreen_schema_prints() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (args, file) in [
        (&[][..], "docs/src/schema/bluegreen.schema.json"),
        (&["--policy"][..], "docs/src/schema/policy.schema.json"),
        (&["--markdown"][..], "docs/src/reference/deploy-file.md"),
        (
            &["--policy", "--markdown"][..],
            "docs/src/reference/policy-file.md",
        ),
    ] {
        let printed = schema_output(args);
        if file.ends_with(".json") {
            let schema: Value = serde_json::from_str(&printed).unwrap();
            assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
            assert!(
                jsonschema::meta::is_valid(&schema),
                "{file}: not a valid draft-07 schema"
            );
        }
        if std::env::var_os("BLESS").is_none() {
            let committed = std::fs::read_to_string(root.join(file)).unwrap_or_default();
            let differs = committed
                .lines()
                .zip(printed.lines())
                .position(|(a, b)| a != b);
            assert!(
                committed == printed,
                "{file} is not what `bluegreen schema {}` prints (first at line {}): a field or \
                 its doc comment changed. Regenerate it with `BLESS=1 cargo test --test it \
                 schema::` and commit it.",
                args.join(" "),
                differs.map_or("end".into(), |n| (n + 1).to_string())
            );
        }
        golden(&root.join(file), &printed);
    }
}

/// Each object the schema describes, by dotted path, and its fields.
fn objects(schema: &Value) -> Vec<(String, Value)> {
    let defs = &schema["definitions"];
    let resolve = |v: &Value| -> Value {
        let mut v = v.clone();
        loop {
            if let Some(r) = v["$ref"].as_str() {
                v = defs[r.rsplit('/').next().unwrap()].clone();
            } else if let Some([one]) = v["allOf"].as_array().map(Vec::as_slice) {
                v = one.clone();
            } else {
                return v;
            }
        }
    };
    let mut found = vec![(String::new(), schema.clone())];
    let mut i = 0;
    while i < found.len() {
        let (path, object) = found[i].clone();
        for (name, field) in object["properties"].as_object().into_iter().flatten() {
            let field = resolve(field);
            let mut candidates = vec![(format!("{path}{name}"), field.clone())];
            for branch in field["anyOf"].as_array().into_iter().flatten() {
                candidates.push((format!("{path}{name}"), resolve(branch)));
            }
            candidates.push((format!("{path}{name}[]"), resolve(&field["items"])));
            for b in field["items"]["anyOf"].as_array().into_iter().flatten() {
                candidates.push((format!("{path}{name}[]"), resolve(b)));
            }
            let values = resolve(&field["additionalProperties"]);
            candidates.push((format!("{path}{name}.<name>"), values));
            for (p, c) in candidates {
                if c["properties"].is_object() {
                    found.push((format!("{p}."), c));
                }
            }
        }
        i += 1;
    }
    found
}

#[test]
fn every_field_has_a_description() {
    for (schema, least) in [
        (bluegreen::config::schema::deploy_file(), 50),
        (bluegreen::config::schema::policy(), 10),
    ] {
        let mut fields = 0;
        for (path, object) in objects(&schema) {
            for (name, field) in object["properties"].as_object().unwrap() {
                let text = field["description"].as_str().unwrap_or_default();
                assert!(
                    text.len() > 10,
                    "{path}{name}: no description a user can read"
                );
                fields += 1;
            }
        }
        assert!(fields >= least, "only {fields} fields found");
    }
}

/// Writing a field's published default changes nothing: the schema's
/// defaults are the parser's. Each object is written with what it needs
/// (`migrate` its command) and its fields tried one at a time.
#[test]
fn every_published_default_is_the_one_the_parser_applies() {
    let schema = bluegreen::config::schema::deploy_file();
    let base = |path: &str| -> Value {
        let mut doc = json!({ "app": "shop" });
        let mut at = &mut doc;
        for key in path.split('.').filter(|k| !k.is_empty()) {
            let key = if key == "<name>" { "probe" } else { key };
            at = at
                .as_object_mut()
                .unwrap()
                .entry(key)
                .or_insert_with(|| json!({}));
            if key == "migrate" {
                at["command"] = json!("bin/migrate");
            }
        }
        doc
    };
    let parse = |doc: &Value| {
        let yaml = serde_yaml::to_string(doc).unwrap();
        DeployFile::parse(Path::new("bluegreen.yaml"), &yaml)
            .unwrap_or_else(|e| panic!("{e}\n{yaml}"))
    };
    let mut checked = 0;
    for (path, object) in objects(&schema) {
        if path.ends_with("[].") || path.starts_with("steps") {
            continue;
        }
        let prefix = path.trim_end_matches('.');
        for (name, field) in object["properties"].as_object().unwrap() {
            let Some(default) = field.get("default").filter(|d| !d.is_null()) else {
                continue;
            };
            let plain = base(prefix);
            let mut written = plain.clone();
            let mut at = &mut written;
            for key in prefix.split('.').filter(|k| !k.is_empty()) {
                at = &mut at[if key == "<name>" { "probe" } else { key }];
            }
            at[name] = default.clone();
            assert_eq!(
                parse(&written),
                parse(&plain),
                "{path}{name}: the published default {default} is not the parser's"
            );
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} defaults checked");
}

/// Durations as the parser reads them (humantime), spelled right and
/// wrong: the schema's pattern says the same of each.
#[test]
fn the_duration_pattern_accepts_what_the_parser_accepts() {
    let v = jsonschema::validator_for(&bluegreen::config::schema::deploy_file()).unwrap();
    let mut both = [0, 0];
    for d in [
        "0",
        "5",
        "0s",
        "1h 30m",
        "1h30m",
        "5 s",
        "1.5s",
        "5sec",
        "5S",
        "2d",
        "1M",
        "1y",
        "5µs",
        "5us",
        "1weeks",
        "1w",
        "1hour",
        "1hr",
        "1msec",
        "1nsec",
        "-1s",
        "+1s",
        "1m1",
        "1h,30m",
        "1months",
        "1min",
        "1mins",
        "1secs",
        "1days",
        "1e3s",
        "00s",
        "1h  30m",
        "500ms",
        "2 minutes",
        "five seconds",
        "1.s",
        ".5s",
        "",
        "s",
    ] {
        let yaml = format!("app: shop\ndrain: {}\n", serde_json::to_string(d).unwrap());
        let parser = DeployFile::parse(Path::new("b.yaml"), &yaml).is_ok();
        let doc: Value = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(
            v.is_valid(&doc),
            parser,
            "drain: {d:?}: the parser says {parser}"
        );
        both[parser as usize] += 1;
    }
    assert!(both[0] >= 10 && both[1] >= 10, "{both:?}");
}
