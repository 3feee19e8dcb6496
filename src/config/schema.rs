//! The JSON Schema of the deploy file and of the org policy, for editors
//! (the YAML language server reads `# yaml-language-server: $schema=...`)
//! and for `bluegreen schema`. It is derived from the serde types the
//! parser reads, so a new field reaches it with its doc comment; the values
//! serde reads by hand (durations, steps, shares, plugin settings,
//! `rehearse`, hook names) have theirs written in `schema_types`. Draft-07: the dialect the YAML language server
//! supports best.
//!
//! What JSON Schema cannot say (values compared with each other, a
//! duration's size) stays with the parser's checks; tests/it/schema_corpus.rs
//! lists each such difference and compares the two verdicts on every deploy
//! file we have.

pub use super::schema_types::*;
use schemars::generate::SchemaSettings;
use schemars::transform::RecursiveTransform;
use schemars::{JsonSchema, Schema};

/// The deploy file's (`bluegreen.yaml`) schema.
pub fn deploy_file() -> serde_json::Value {
    let mut schema = generate::<super::DeployFile>();
    schema["allOf"] = strategy_rules();
    // `manifest_app` names an app of `manifest`.
    schema["dependencies"] = serde_json::json!({ "manifest_app": ["manifest"] });
    schema
}

/// The rules between `strategy` and the fields it needs or refuses
/// (`config::analysis::validate`, `config::steps::validate` and the
/// deploy file's checks), as draft-07 `if`/`then`, so an editor flags
/// `strategy: cf-canary` without `platform: cf`. (That steps grow, and
/// how long durations are, JSON Schema cannot say: the parser does.)
fn strategy_rules() -> serde_json::Value {
    use super::Strategy::{Canary, CfCanary, CfRolling};
    let is = |s: &[super::Strategy]| {
        let names: Vec<&str> = s.iter().map(|s| s.name()).collect();
        serde_json::json!({ "required": ["strategy"], "properties": { "strategy": { "enum": names } } })
    };
    serde_json::json!([
        { "if": is(&[Canary, CfCanary]),
          "else": { "properties": { "steps": { "maxItems": 0,
              "errorMessage": "Steps need `strategy: canary` or `cf-canary`." } } } },
        // Canary steps end at 100; pauses only under canary.
        { "if": is(&[Canary]),
          "then": { "required": ["steps"], "properties": { "steps": {
              "contains": { "const": 100 },
              "errorMessage": "Canary steps end at 100: the new release ends up serving every \
                               request." } } } },
        { "if": is(&[CfCanary]),
          "then": { "required": ["steps"],
                    "properties": { "steps": { "minItems": 1, "items": { "type": "integer",
                        "errorMessage": "`cf-canary` steps are shares of instances; pauses need \
                                         `strategy: canary`." } } } } },
        // CF's own deployments: on CF, one app (no manifest applied to two
        // colors), no pause on failure; `max_in_flight` is theirs alone.
        { "if": is(&[CfCanary, CfRolling]),
          "then": { "required": ["platform"],
                    "properties": {
                        "platform": { "const": "cf",
                            "errorMessage": "`cf-canary` and `cf-rolling` drive Cloud Foundry's \
                                             own deployments: set `platform: cf`." },
                        "manifest": { "type": "null",
                            "errorMessage": "A manifest is applied to two colors; `cf-canary` \
                                             and `cf-rolling` deploy one app: remove it." },
                        "analysis": { "properties": { "on_fail": { "not": { "const": "pause" },
                            "errorMessage": "`pause` holds two colors where they are; \
                                             `cf-canary` and `cf-rolling` deploy one app." } } } } },
          "else": { "properties": { "max_in_flight": { "type": "null",
              "errorMessage": "`max_in_flight` is CF's deployment option: it needs `strategy: \
                               cf-canary` or `cf-rolling`." } } } }
    ])
}

/// The org policy file's schema.
pub fn policy() -> serde_json::Value {
    generate::<super::policy::Policy>()
}

/// Every subschema inline, none behind a `$ref`: the YAML language server
/// shows a referenced type's description on hover instead of the field's.
fn settings() -> SchemaSettings {
    let mut s = SchemaSettings::draft07().with_transform(RecursiveTransform(for_editors));
    s.inline_subschemas = true;
    s
}

/// A schema as the files hold it: pretty JSON and a final newline.
pub fn text(schema: &serde_json::Value) -> String {
    let mut text = serde_json::to_string_pretty(schema).expect("a JSON value serializes");
    text.push('\n');
    text
}

/// The deploy file's reference in Markdown, from its schema.
pub fn deploy_file_markdown() -> String {
    let title = "The deploy file: bluegreen.yaml";
    super::schema_doc::markdown(&deploy_file(), title, "", &value_types())
}

/// The policy file's reference in Markdown, from its schema.
pub fn policy_markdown() -> String {
    super::schema_doc::markdown(&policy(), "The policy file", " --policy", &value_types())
}

/// The title and description of each value type written here, for the
/// reference (a field's own description replaces its type's in the schema).
fn value_types() -> Vec<(String, String)> {
    let mut g = SchemaSettings::draft07().into_generator();
    let schemas = [
        HumanDuration::json_schema(&mut g),
        Share::json_schema(&mut g),
        Steps::json_schema(&mut g),
        Settings::json_schema(&mut g),
        RehearseSchema::json_schema(&mut g),
        crate::plugin::Hook::json_schema(&mut g),
    ];
    schemas
        .iter()
        .filter_map(|s| {
            let text = |k: &str| Some(s.get(k)?.as_str()?.to_string());
            Some((text("title")?, text("description")?))
        })
        .collect()
}

fn generate<T: JsonSchema>() -> serde_json::Value {
    settings()
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value()
}

/// A doc comment's lines as one line (editors wrap it themselves), and no
/// Rust number formats (`uint32`, `double`): they are not JSON Schema's.
fn for_editors(schema: &mut Schema) {
    if let Some(serde_json::Value::String(d)) = schema.get_mut("description") {
        *d = d.split_whitespace().collect::<Vec<_>>().join(" ");
    }
    if schema
        .get("format")
        .and_then(|f| f.as_str())
        .is_some_and(|f| {
            f == "double" || f == "float" || f.starts_with("uint") || f.starts_with("int")
        })
    {
        schema.remove("format");
    }
}
