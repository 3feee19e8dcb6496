//! The schemas of the values serde reads by hand, each next to what its
//! parser accepts: durations (`config::duration`, humantime's grammar),
//! canary steps (`config::steps`), shares (`config::analysis`), plugin
//! settings (`config::settings`), `migrate.rehearse` (`config::rehearse`),
//! origins, sizes, built-in plugin and hook names. Each is inlined where it
//! is used (see `config::schema`), so the `title` names its kind and a
//! field's own description replaces the type's.

use super::rehearse::{MAX_SAMPLE_ROWS, Rehearse};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use std::borrow::Cow;

/// humantime's units, longest spelling first within each unit.
const UNITS: &str = "nanos|nsec|ns|usec|us|µs|millis|msec|ms|seconds|second|secs|sec|s|\
                     minutes|minute|mins|min|m|hours|hour|hrs|hr|h|days|day|d|weeks|week|wks|\
                     wk|w|months|month|M|years|year|yrs|yr|y";

/// What the YAML language server says of a misspelt duration (its own
/// message would quote the whole pattern).
const DURATION_HINT: &str = "Write a duration like `500ms`, `5s`, `2m` or `1h30m`.";

/// A duration as text: numbers each followed by a unit (`1h 30m`), or `0`.
fn duration_pattern() -> String {
    format!(r"^(0|\s*([0-9]+(\.[0-9]+)?\s*({UNITS})\s*)+)$")
}

/// A duration field (`config::duration`): text like `500ms`, `5s`, `2m`,
/// `1h30m`, or the number 0 (which serde_yaml hands over as the text `0`).
pub struct HumanDuration;

impl JsonSchema for HumanDuration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "title": "duration",
            "description": "A duration: a number and a unit, e.g. `500ms`, `5s`, `2m`, `1h30m` \
                            (units: ms, s, m, h, d, and their long names).",
            "anyOf": [
                { "type": "string", "pattern": duration_pattern(),
                  "patternErrorMessage": DURATION_HINT },
                { "type": "integer", "const": 0 }
            ]
        })
    }
}

/// An `env` value: serde_yaml reads any scalar as its text.
pub struct Scalar;

impl JsonSchema for Scalar {
    fn schema_name() -> Cow<'static, str> {
        "Scalar".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": ["string", "number", "boolean"] })
    }
}

/// `steps` (`config::steps`): percents, `pause`, `{pause: 10m}`.
pub struct Steps;

impl JsonSchema for Steps {
    fn schema_name() -> Cow<'static, str> {
        "Steps".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "title": "steps",
            "description": "A list of steps: percents from 1 to 100, growing, with `pause` or \
                            `{pause: 10m}` among them, e.g. `[10, pause, 50, {pause: 10m}, 100]`.",
            "type": "array",
            "items": {
                "anyOf": [
                    { "type": "integer", "minimum": 1, "maximum": 100,
                      "description": "A step: a percent from 1 to 100." },
                    { "const": "pause",
                      "description": "Hold the release at the step before until \
                                      `bluegreen resume`, `promote` or `abort` (at most 24h)." },
                    { "type": "object",
                      "properties": { "pause": {
                          "title": "duration",
                          "type": "string",
                          "pattern": duration_pattern(),
                          "patternErrorMessage": DURATION_HINT,
                          "description": "Hold the release at the step before for this long \
                                          (above zero, at most 24h)."
                      } },
                      "required": ["pause"],
                      "additionalProperties": false }
                ]
            }
        })
    }
}

/// A share (`config::analysis`): `0.01` or `"1%"`, from 0 to 1.
pub struct Share;

impl JsonSchema for Share {
    fn schema_name() -> Cow<'static, str> {
        "Share".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        share(true)
    }
}

/// A share that must stay under 1 (`max_error_rate_abs`).
pub struct ShareBelowOne;

impl JsonSchema for ShareBelowOne {
    fn schema_name() -> Cow<'static, str> {
        "ShareBelowOne".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        share(false)
    }
}

/// A share up to 1 when `whole`, else under it.
fn share(whole: bool) -> Schema {
    let mut number = serde_json::json!({ "type": "number", "minimum": 0 });
    number[if whole { "maximum" } else { "exclusiveMaximum" }] = 1.into();
    let hundred = if whole { r"100(\.0*)?|" } else { "" };
    json_schema!({
        "title": "share",
        "description": "A share: a number from 0 to 1, or a percent (`0.01` or `1%`).",
        "anyOf": [
            number,
            { "type": "string",
              "pattern": format!(r"^\s*\+?({hundred}[0-9]{{1,2}}(\.[0-9]*)?|\.[0-9]+)\s*%\s*$"),
              "patternErrorMessage": "Write a share like `0.01` or `1%`." }
        ]
    })
}

/// Plugin settings (`config::settings`): scalars, or lists of them without
/// commas (the plugin reads a list joined with commas).
pub struct Settings;

impl JsonSchema for Settings {
    fn schema_name() -> Cow<'static, str> {
        "Settings".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "title": "settings",
            "description": "A plugin's settings, by name: each a text, number or boolean, or a \
                            list of them (the plugin reads a list joined with commas, so no item \
                            may hold a comma).",
            "type": "object",
            "additionalProperties": {
                "anyOf": [
                    { "type": ["string", "number", "boolean"] },
                    { "type": "array",
                      "description": "A list: reaches the plugin joined with commas, so no \
                                      item may hold one.",
                      "items": { "anyOf": [
                          { "type": "string", "pattern": "^[^,]*$",
                            "patternErrorMessage": "A list item cannot hold a comma: the plugin \
                                                    would read it as two items." },
                          { "type": ["number", "boolean"] }
                      ] } }
                ]
            }
        })
    }
}

/// `migrate.rehearse` (`config::rehearse`): a boolean, or a map of knobs
/// whose defaults are `Rehearse::default()`'s.
pub struct RehearseSchema;

impl JsonSchema for RehearseSchema {
    fn schema_name() -> Cow<'static, str> {
        "Rehearse".into()
    }

    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        let d = Rehearse::default();
        let mut max_exclusive = HumanDuration::json_schema(g);
        max_exclusive.insert(
            "default".into(),
            humantime::format_duration(d.max_exclusive)
                .to_string()
                .into(),
        );
        max_exclusive.insert(
            "description".into(),
            "An ACCESS EXCLUSIVE lock on a table the old release uses, held (or extrapolated to \
             be held) longer than this, blocks the deploy (above zero)."
                .into(),
        );
        json_schema!({
            "title": "rehearse",
            "description": "`true` or `false`, or a map of the rehearsal's knobs (the map form \
                            turns it on).",
            "default": d.enabled,
            "anyOf": [
                { "type": "boolean" },
                { "type": "object",
                  "additionalProperties": false,
                  "properties": {
                      "enabled": { "type": "boolean", "default": true,
                          "description": "Rehearse (the map form turns it on unless this says \
                                          `false`)." },
                      "sample_rows": { "type": "integer", "minimum": 0,
                          "maximum": MAX_SAMPLE_ROWS, "default": d.sample_rows,
                          "description": format!("Rows copied per table into the scratch \
                                                  database (at most {MAX_SAMPLE_ROWS}).") },
                      "max_exclusive": max_exclusive,
                      "required": { "type": "boolean", "default": d.required,
                          "description": "A rehearsal that cannot run refuses the deploy \
                                          instead of being skipped with the reason said." }
                  } }
            ]
        })
    }
}

/// `allow_http`: an origin (`sandbox::Origin::parse`) or `candidate`.
pub struct OriginText;

impl JsonSchema for OriginText {
    fn schema_name() -> Cow<'static, str> {
        "Origin".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": r"^(candidate|[hH][tT][tT][pP][sS]?://[^/?#\s]+/?)$",
            "patternErrorMessage": "Write an origin like `http://127.0.0.1:8080` (scheme, host, \
                                    port; no path), or `candidate`."
        })
    }
}

/// `memory`: a size as `units::parse_size` reads it.
pub struct SizeText;

impl JsonSchema for SizeText {
    fn schema_name() -> Cow<'static, str> {
        "Size".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": r"^\s*[0-9]+\s*([kKmMgG]([bB]|[iI][bB])?|[bB])?\s*$",
            "patternErrorMessage": "Write a size like `64MiB`, `512k` or `1G`."
        })
    }
}

/// A first-party plugin's name (`plugins.builtin`), each with what it does.
/// The parser takes any text; the name is looked up when plugins load.
pub struct BuiltinName;

impl JsonSchema for BuiltinName {
    fn schema_name() -> Cow<'static, str> {
        "BuiltinName".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let names: Vec<serde_json::Value> = crate::plugin::builtin::ALL
            .iter()
            .map(|b| serde_json::json!({ "const": b.name, "description": b.about }))
            .collect();
        json_schema!({ "type": "string", "oneOf": names })
    }
}

/// A hook's name as users write it (`migration-safety-check`).
impl JsonSchema for crate::plugin::Hook {
    fn schema_name() -> Cow<'static, str> {
        "Hook".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let names: Vec<&str> = Self::ALL.iter().map(|h| h.name()).collect();
        json_schema!({
            "title": "hook",
            "description": format!("A hook's name: {}.", names.join(", ")),
            "type": "string",
            "enum": names
        })
    }
}
