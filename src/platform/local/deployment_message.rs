//! The body of `POST /v3/deployments`, checked as Cloud Controller's
//! `DeploymentCreateMessage` checks it, with its messages: a CF client
//! that sends a bad strategy, a canary option on a rolling deployment or
//! unsorted weights gets the same 422 here as from a foundation, rather
//! than a deployment the foundation would have refused. Options the local
//! platform has nothing to apply to (`disk_in_mb`,
//! `log_rate_limit_in_bytes_per_second`) are refused by name, not ignored.

use super::state::{ApiErr, ApiResult};
use crate::platform::v3;
use serde_json::{Map, Value};

/// A valid create request.
#[derive(Debug, Default)]
pub struct CreateDeployment {
    pub app_guid: Option<String>,
    pub droplet: Option<String>,
    pub revision: Option<String>,
    /// `rolling` or `canary`.
    pub strategy: String,
    pub max_in_flight: u32,
    /// The canary steps' instance weights (none given: one step of one
    /// instance).
    pub canary_steps: Option<Vec<u32>>,
    pub web_instances: Option<u32>,
    pub memory_in_mb: Option<u64>,
    pub metadata: v3::Metadata,
}

const KEYS: &[&str] = &[
    "relationships",
    "droplet",
    "revision",
    "strategy",
    "options",
    "metadata",
];
const OPTIONS: &[&str] = &[
    "canary",
    "max_in_flight",
    "web_instances",
    "memory_in_mb",
    "disk_in_mb",
    "log_rate_limit_in_bytes_per_second",
];
/// CC's options the local platform does not implement.
const NOT_HERE: &[&str] = &["disk_in_mb", "log_rate_limit_in_bytes_per_second"];

impl CreateDeployment {
    /// Parses and checks `body`; every problem found is in the one 422,
    /// joined as CC joins its messages.
    pub fn parse(body: &Value) -> ApiResult<CreateDeployment> {
        let Some(body) = body.as_object() else {
            return Err(ApiErr::unprocessable(
                "Request must be a JSON object".into(),
            ));
        };
        let mut errors: Vec<String> = Vec::new();
        let unknown: Vec<String> = body
            .keys()
            .filter(|k| !KEYS.contains(&k.as_str()))
            .map(|k| format!("'{k}'"))
            .collect();
        if !unknown.is_empty() {
            errors.push(format!("Unknown field(s): {}", unknown.join(", ")));
        }
        let guid_at = |v: Option<&Value>| v.and_then(|v| v["guid"].as_str()).map(String::from);
        let mut m = CreateDeployment {
            app_guid: body
                .get("relationships")
                .and_then(|r| r["app"]["data"]["guid"].as_str())
                .map(String::from),
            droplet: guid_at(body.get("droplet")),
            revision: guid_at(body.get("revision")),
            strategy: "rolling".into(),
            max_in_flight: 1,
            ..Default::default()
        };
        match body.get("strategy") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s == "rolling" || s == "canary" => m.strategy = s.clone(),
            Some(other) => {
                let shown = other
                    .as_str()
                    .map(String::from)
                    .unwrap_or(other.to_string());
                errors.push(format!(
                    "Strategy '{shown}' is not a supported deployment strategy"
                ));
            }
        }
        if body.get("droplet").is_some_and(|v| !v.is_null())
            && body.get("revision").is_some_and(|v| !v.is_null())
        {
            errors.push("Droplet Cannot set both fields 'droplet' and 'revision'".into());
        }
        match body.get("options") {
            None | Some(Value::Null) => {}
            Some(Value::Object(o)) => options(&mut m, o, body.get("strategy"), &mut errors),
            Some(_) => errors.push("Options must be an object".into()),
        }
        if let Some(meta) = body.get("metadata") {
            match serde_json::from_value(meta.clone()) {
                Ok(meta) => m.metadata = meta,
                Err(_) => {
                    errors.push("Metadata must be an object of labels and annotations".into())
                }
            }
        }
        if errors.is_empty() {
            Ok(m)
        } else {
            Err(ApiErr::unprocessable(errors.join(", ")))
        }
    }
}

fn options(
    m: &mut CreateDeployment,
    o: &Map<String, Value>,
    strategy: Option<&Value>,
    errors: &mut Vec<String>,
) {
    let unsupported: Vec<&str> = o
        .keys()
        .map(String::as_str)
        .filter(|k| !OPTIONS.contains(k))
        .collect();
    if !unsupported.is_empty() {
        errors.push(format!(
            "Options has unsupported key(s): {}",
            unsupported.join(", ")
        ));
    }
    for k in NOT_HERE
        .iter()
        .filter(|k| o.get(**k).is_some_and(|v| !v.is_null()))
    {
        errors.push(format!(
            "Options {k} is not implemented by the local platform"
        ));
    }
    let int = |k: &str| o.get(k).filter(|v| !v.is_null()).map(Value::as_u64);
    match int("max_in_flight") {
        None => {}
        Some(Some(n)) if (1..=u32::MAX as u64).contains(&n) => m.max_in_flight = n as u32,
        Some(_) => errors.push("Max in flight must be an integer greater than 0".into()),
    }
    match int("web_instances") {
        None => {}
        Some(Some(n)) if n <= 2_000_000 => m.web_instances = Some(n as u32),
        Some(_) => errors.push("Web instances must be an integer between 0 and 2000000".into()),
    }
    match int("memory_in_mb") {
        None => {}
        Some(Some(n)) if n > 0 => m.memory_in_mb = Some(n),
        Some(_) => errors.push("Memory in mb must be greater than 0".into()),
    }
    match o.get("canary") {
        None | Some(Value::Null) => {}
        Some(Value::Object(c)) => {
            if strategy.and_then(Value::as_str) != Some("canary") {
                errors.push("Options.canary are only valid for Canary deployments".into());
            } else if let Some(steps) = c.get("steps").filter(|s| !s.is_null()) {
                m.canary_steps = canary_steps(steps, errors);
            }
        }
        Some(_) => errors.push("Options.canary must be an object".into()),
    }
}

/// The steps' weights when they are CC's valid steps: objects with one
/// integer `instance_weight` from 1 to 100, in ascending order.
fn canary_steps(steps: &Value, errors: &mut Vec<String>) -> Option<Vec<u32>> {
    let Some(steps) = steps.as_array().filter(|s| s.iter().all(Value::is_object)) else {
        errors.push("Options.canary.steps must be an array of objects".into());
        return None;
    };
    let before = errors.len();
    for step in steps {
        let keys: Vec<&str> = step
            .as_object()
            .into_iter()
            .flat_map(|o| o.keys())
            .map(String::as_str)
            .filter(|k| *k != "instance_weight")
            .collect();
        if !keys.is_empty() {
            errors.push(format!(
                "Options.canary.steps has unsupported key(s): {}",
                keys.join(", ")
            ));
        }
    }
    if steps.iter().any(|s| s.get("instance_weight").is_none()) {
        errors.push("Options.canary.steps missing key: \"instance_weight\"".into());
    }
    let weights: Option<Vec<u32>> = steps
        .iter()
        .map(|s| {
            s["instance_weight"]
                .as_u64()
                .filter(|w| (1..=100).contains(w))
                .map(|w| w as u32)
        })
        .collect();
    let Some(weights) = weights else {
        errors.push(
            "Options.canary.steps.instance weight must be an Integer between 1-100 (inclusive)"
                .into(),
        );
        return None;
    };
    if weights.windows(2).any(|w| w[0] > w[1]) {
        errors
            .push("Options.canary.steps.instance weight must be sorted in ascending order".into());
    }
    // No steps at all is CC's default: one instance.
    (errors.len() == before && !weights.is_empty()).then_some(weights)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refused(body: Value) -> String {
        CreateDeployment::parse(&body).unwrap_err().3
    }

    #[test]
    fn defaults_are_ccs_and_each_bad_field_is_refused_in_ccs_words() {
        let app = json!({ "relationships": { "app": { "data": { "guid": "a" } } } });
        let m = CreateDeployment::parse(&app).unwrap();
        assert_eq!((m.strategy.as_str(), m.max_in_flight), ("rolling", 1));
        assert_eq!((m.app_guid.as_deref(), m.canary_steps), (Some("a"), None));

        let canary = json!({ "strategy": "canary", "options": { "max_in_flight": 2,
            "canary": { "steps": [{ "instance_weight": 25 }, { "instance_weight": 100 }] } } });
        let m = CreateDeployment::parse(&canary).unwrap();
        assert_eq!((m.max_in_flight, m.canary_steps), (2, Some(vec![25, 100])));

        for (body, says) in [
            (
                json!({ "strategy": "blue" }),
                "Strategy 'blue' is not a supported",
            ),
            (
                json!({ "droplet": { "guid": "d" }, "revision": { "guid": "r" } }),
                "Cannot set both",
            ),
            (
                json!({ "options": { "max_in_flight": 0 } }),
                "Max in flight must be",
            ),
            (
                json!({ "options": { "max_in_flight": "2" } }),
                "Max in flight must be",
            ),
            (
                json!({ "options": { "canary": { "steps": [] } } }),
                "only valid for Canary",
            ),
            (
                json!({ "strategy": "canary", "options": { "canary": { "steps": [{ "instance_weight": 0 }] } } }),
                "between 1-100",
            ),
            (
                json!({ "strategy": "canary", "options": { "canary": { "steps": [{ "instance_weight": 50 }, { "instance_weight": 10 }] } } }),
                "ascending order",
            ),
            (
                json!({ "strategy": "canary", "options": { "canary": { "steps": [{ "weight": 5 }] } } }),
                "unsupported key(s): weight",
            ),
            (
                json!({ "options": { "disk_in_mb": 512 } }),
                "disk_in_mb is not implemented",
            ),
            (
                json!({ "options": { "surge": 1 } }),
                "unsupported key(s): surge",
            ),
            (json!({ "app": "a" }), "Unknown field(s): 'app'"),
        ] {
            let got = refused(body.clone());
            assert!(got.contains(says), "{body}: {got}");
        }
    }
}
