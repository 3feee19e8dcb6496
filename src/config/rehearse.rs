//! `migrate.rehearse`: run the release's migration against a throwaway copy
//! of the shared database's schema first and watch what it locks, because a
//! reading of the migration files cannot see a helper defined elsewhere,
//! dynamic SQL, or what a type change costs on this schema.
//!
//! Written as `rehearse: true`, or as a map for the knobs:
//! `rehearse: { sample_rows: 1000, max_exclusive: 100ms, required: true }`.
//! The org policy can require it (`migrate: { require_rehearsal: true }`),
//! which also makes a rehearsal that cannot run refuse the deploy.

use serde::de::{Error, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use std::time::Duration;

/// At most this many rows per table are copied into the scratch database.
pub const MAX_SAMPLE_ROWS: u32 = 100_000;

#[derive(Clone, Debug, PartialEq)]
pub struct Rehearse {
    pub enabled: bool,
    /// Rows copied per table from the shared database (the migration
    /// bookkeeping tables are copied whole: see `deploy::rehearse::scratch`).
    pub sample_rows: u32,
    /// An ACCESS EXCLUSIVE lock on a table the old release uses, held (or
    /// extrapolated to be held) longer than this, blocks.
    pub max_exclusive: Duration,
    /// A rehearsal that cannot run refuses the deploy instead of being
    /// skipped with the reason said.
    pub required: bool,
}

impl Default for Rehearse {
    fn default() -> Self {
        Rehearse {
            enabled: false,
            sample_rows: 1000,
            max_exclusive: Duration::from_millis(100),
            required: false,
        }
    }
}

impl Rehearse {
    /// The field and message of the first value out of range.
    pub fn invalid(&self) -> Option<(&'static str, String)> {
        if self.sample_rows > MAX_SAMPLE_ROWS {
            return Some((
                "migrate.rehearse.sample_rows",
                format!(
                    "{} is more than {MAX_SAMPLE_ROWS}; the sample is copied on every deploy, and \
                     durations are extrapolated to the real table sizes anyway",
                    self.sample_rows
                ),
            ));
        }
        if self.max_exclusive.is_zero() {
            return Some((
                "migrate.rehearse.max_exclusive",
                "0 would block every ALTER TABLE; give a limit like `100ms`".into(),
            ));
        }
        None
    }
}

/// The map form's fields.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    sample_rows: Option<u32>,
    #[serde(default, with = "crate::config::duration::option")]
    max_exclusive: Option<Duration>,
    #[serde(default)]
    required: bool,
}

fn yes() -> bool {
    true
}

struct BoolOrMap;

impl<'de> Visitor<'de> for BoolOrMap {
    type Value = Rehearse;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(
            "`true`, `false`, or a map like `{ sample_rows: 1000, max_exclusive: 100ms, \
             required: true }`",
        )
    }

    fn visit_bool<E: Error>(self, enabled: bool) -> Result<Rehearse, E> {
        Ok(Rehearse {
            enabled,
            ..Rehearse::default()
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Rehearse, A::Error> {
        let t = Table::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
        let d = Rehearse::default();
        Ok(Rehearse {
            enabled: t.enabled,
            sample_rows: t.sample_rows.unwrap_or(d.sample_rows),
            max_exclusive: t.max_exclusive.unwrap_or(d.max_exclusive),
            required: t.required,
        })
    }
}

impl<'de> Deserialize<'de> for Rehearse {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Rehearse, D::Error> {
        d.deserialize_any(BoolOrMap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Rehearse, String> {
        serde_yaml::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn reads_a_bool_or_a_map_and_refuses_anything_else() {
        assert!(parse("true").unwrap().enabled);
        assert!(!parse("false").unwrap().enabled);
        let m = parse("{ sample_rows: 10, max_exclusive: 2s, required: true }").unwrap();
        assert_eq!(
            m,
            Rehearse {
                enabled: true,
                sample_rows: 10,
                max_exclusive: Duration::from_secs(2),
                required: true
            }
        );
        assert!(
            parse("{ sample_row: 10 }")
                .unwrap_err()
                .contains("sample_row")
        );
        assert!(parse("yes please").unwrap_err().contains("`true`, `false`"));
        let big = parse("{ sample_rows: 1000000 }").unwrap();
        assert_eq!(big.invalid().unwrap().0, "migrate.rehearse.sample_rows");
    }
}
