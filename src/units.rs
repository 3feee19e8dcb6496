//! Parsing of the human units users type: durations (`5s`, `250ms`) and sizes
//! (`64MiB`, `512k`), with errors that say what was expected; and the one
//! timestamp format records use.

use std::time::Duration;

/// Now, as RFC 3339 in whole seconds (UTC): how records and events stamp time.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("`{s}` is not a duration ({e}); write e.g. `5s`, `250ms` or `2m`"))
}

/// A duration as people read it, rounded: `350ms`, `9.6s`, `1m 12s`,
/// `2h 5m` (humantime's `9s 598ms 176us 724ns` is for machines). Exact
/// values go into `--json` as `*_ms` numbers.
pub fn human_duration(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms < 9.95 {
        let shown = format!("{ms:.1}");
        return format!("{}ms", shown.trim_end_matches(".0"));
    }
    if ms < 999.5 {
        return format!("{ms:.0}ms");
    }
    let tenths = (ms / 100.0).round() as u64;
    if tenths < 600 {
        return match tenths % 10 {
            0 => format!("{}s", tenths / 10),
            t => format!("{}.{t}s", tenths / 10),
        };
    }
    let secs = d.as_secs_f64().round() as u64;
    let (big, small, units) = if secs < 3600 {
        (secs / 60, secs % 60, ("m", "s"))
    } else {
        let mins = (d.as_secs_f64() / 60.0).round() as u64;
        (mins / 60, mins % 60, ("h", "m"))
    };
    match small {
        0 => format!("{big}{}", units.0),
        _ => format!("{big}{} {small}{}", units.0, units.1),
    }
}

/// A duration in milliseconds for `--json`: whole when it is (as configured
/// durations are), else with the fraction.
pub fn millis_json(d: Duration) -> serde_json::Value {
    if d.subsec_nanos().is_multiple_of(1_000_000) {
        serde_json::Value::from(d.as_millis() as u64)
    } else {
        serde_json::Value::from(d.as_secs_f64() * 1e3)
    }
}

/// Serde for a duration as a `*_ms` number (see [`millis_json`]); it also
/// reads serde's own `{"secs", "nanos"}`, which journals written before
/// held.
pub mod duration_ms {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        super::millis_json(*d).serialize(s)
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Millis(f64),
        Serde { secs: u64, nanos: u32 },
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        match Either::deserialize(d)? {
            Either::Millis(ms) if ms.is_finite() && (0.0..1.8e13).contains(&ms) => {
                Ok(Duration::from_nanos((ms * 1e6).round() as u64))
            }
            Either::Millis(ms) => Err(serde::de::Error::custom(format!(
                "{ms} is not a duration in milliseconds"
            ))),
            Either::Serde { secs, nanos } => Ok(Duration::new(secs, nanos)),
        }
    }
}

/// Bytes from `123`, `64k`, `64KiB`, `16M`, `16MiB`, `1G`, `1GiB` (binary units).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => {
            return Err(format!(
                "`{s}` is not a size; write e.g. `64MiB`, `512k` or `1G`"
            ));
        }
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{s}` is not a size; write e.g. `64MiB`, `512k` or `1G`"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("`{s}` is too large"))
}

/// The largest binary unit that divides `n` exactly: `1GiB`, `64MiB`, `100B`.
pub fn format_size(n: u64) -> String {
    for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if n >= 1 << shift && n.is_multiple_of(1 << shift) {
            return format!("{}{unit}", n >> shift);
        }
    }
    format!("{n}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("100"), Ok(100));
        assert_eq!(format_size(1 << 30), "1GiB");
        assert_eq!(format_size(3 << 20), "3MiB");
        assert_eq!(format_size(1000), "1000B");
        assert!(parse_size("lots").unwrap_err().contains("64MiB"));
        assert!(parse_size("MiB").is_err());
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(
            parse_duration("5 parsecs")
                .unwrap_err()
                .contains("not a duration")
        );
    }

    /// «19 · The first hour»: durations printed as `9s 598ms 176us 724ns`.
    #[test]
    fn durations_are_rounded_for_people() {
        let ms = Duration::from_millis;
        let cases = [
            (Duration::from_nanos(9_598_176_724), "9.6s"),
            (ms(72_400), "1m 12s"),
            (ms(350), "350ms"),
            (Duration::from_micros(400), "0.4ms"),
            (Duration::ZERO, "0ms"),
            (ms(3), "3ms"),
            (ms(999), "999ms"),
            (ms(1000), "1s"),
            (ms(1500), "1.5s"),
            (ms(59_960), "1m"),
            (ms(120_000), "2m"),
            (Duration::from_secs(3600 + 5 * 60 + 20), "1h 5m"),
            (Duration::from_secs(7200), "2h"),
            (Duration::from_secs(45), "45s"),
        ];
        for (d, want) in cases {
            assert_eq!(human_duration(d), want, "{d:?}");
        }
    }

    #[test]
    fn durations_in_json_are_milliseconds_and_old_journals_still_read() {
        #[derive(serde::Serialize, serde::Deserialize)]
        struct S {
            #[serde(with = "duration_ms")]
            d: Duration,
        }
        let json = |d| serde_json::to_string(&S { d }).unwrap();
        assert_eq!(json(Duration::from_secs(2)), r#"{"d":2000}"#);
        assert_eq!(json(Duration::from_micros(1500)), r#"{"d":1.5}"#);
        let read = |t: &str| serde_json::from_str::<S>(t).map(|s| s.d);
        assert_eq!(read(r#"{"d":2000}"#).unwrap(), Duration::from_secs(2));
        assert_eq!(read(r#"{"d":1.5}"#).unwrap(), Duration::from_micros(1500));
        assert_eq!(
            read(r#"{"d":{"secs":2,"nanos":5}}"#).unwrap(),
            Duration::new(2, 5)
        );
        assert!(read(r#"{"d":-1}"#).is_err());
    }
}
