//! Durations in config files as people write them (`500ms`, `5s`, `2m`).
//! Parsing inside the visitor lets serde_yaml attach the line and column to
//! a bad value. Written back the same way, which is how the JSON Schema
//! (`config::schema`) shows each field's default.

use serde::de::{Error, Unexpected, Visitor};
use serde::{Deserializer, Serializer};
use std::time::Duration;

struct Human;

impl Visitor<'_> for Human {
    type Value = Duration;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a duration like `500ms`, `5s` or `2m`")
    }

    fn visit_str<E: Error>(self, s: &str) -> Result<Duration, E> {
        humantime::parse_duration(s).map_err(|_| E::invalid_value(Unexpected::Str(s), &self))
    }
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_str(Human)
}

pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_duration(*d))
}

pub mod option {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        super::deserialize(d).map(Some)
    }

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::serialize(d, s),
            None => s.serialize_none(),
        }
    }
}
