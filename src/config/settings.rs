//! Plugin settings as a plugin receives them: a map of strings (the WIT's
//! `list<tuple<string, string>>`). A deploy file or policy may write a value
//! as a string, number or boolean, or a list of them (`sql_methods:
//! [DB.exec, Repo.run]`), which reaches the plugin joined with commas, the
//! form every first-party plugin reads lists in.

use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;

#[derive(Deserialize)]
#[serde(untagged)]
enum Value {
    One(Scalar),
    List(Vec<Scalar>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Text(String),
    Bool(bool),
    Int(i64),
    Float(f64),
}

impl Scalar {
    fn text(self) -> String {
        match self {
            Scalar::Text(s) => s,
            Scalar::Bool(b) => b.to_string(),
            Scalar::Int(n) => n.to_string(),
            Scalar::Float(f) => f.to_string(),
        }
    }
}

pub fn map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let raw: BTreeMap<String, Value> = BTreeMap::deserialize(d)?;
    raw.into_iter()
        .map(|(k, v)| {
            let text = match v {
                Value::One(s) => s.text(),
                Value::List(items) => {
                    let items: Vec<String> = items.into_iter().map(Scalar::text).collect();
                    if items.iter().any(|i| i.contains(',')) {
                        return Err(serde::de::Error::custom(format!(
                            "setting `{k}`: a list item holds a comma, which the plugin would \
                             read as two items"
                        )));
                    }
                    items.join(",")
                }
            };
            Ok((k, text))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[derive(serde::Deserialize)]
    struct S {
        #[serde(deserialize_with = "super::map")]
        settings: std::collections::BTreeMap<String, String>,
    }

    fn parse(yaml: &str) -> Result<Vec<(String, String)>, String> {
        serde_yaml::from_str::<S>(yaml)
            .map(|s| s.settings.into_iter().collect())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn scalars_and_lists_reach_a_plugin_as_strings() {
        let got =
            parse("settings: { a: x, b: 3, c: true, d: [DB.exec, Repo.run], e: [] }").unwrap();
        let want = [
            ("a", "x"),
            ("b", "3"),
            ("c", "true"),
            ("d", "DB.exec,Repo.run"),
            ("e", ""),
        ];
        assert_eq!(got, want.map(|(k, v)| (k.to_string(), v.to_string())));
        // The input that would smuggle a third item into a two-item list.
        assert!(
            parse("settings: { d: ['a,b', c] }")
                .unwrap_err()
                .contains("comma")
        );
        assert!(parse("settings: { d: { nested: 1 } }").is_err());
    }
}
