//! Durations in config files as people write them (`500ms`, `5s`, `2m`).
//! Parsing inside the visitor lets serde_yaml attach the line and column to
//! a bad value.

use serde::Deserializer;
use serde::de::{Error, Unexpected, Visitor};
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

pub mod option {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        super::deserialize(d).map(Some)
    }
}
