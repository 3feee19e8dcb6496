//! The plugin's settings, parsed and checked up front: a limit that is
//! misspelled or malformed must fail the call (a plugin error the deploy
//! shows), not silently fall back to a default the team never chose.

/// The limits a window is judged against.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// How far the candidate's 5xx share may exceed the baseline's (0.0-1.0).
    pub max_error_rate: f64,
    /// An absolute SLO on the candidate's p99, in ms.
    pub max_p99_ms: Option<f64>,
    /// How many times the baseline's p99 the candidate's may be.
    pub max_p99_ratio: f64,
    /// Under this candidate p99 (ms) the ratio is not checked: 3 ms against
    /// 1 ms is noise, not a regression.
    pub p99_floor_ms: f64,
    /// Fewer candidate requests than this is too thin a window to judge.
    pub min_requests: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_error_rate: 0.01,
            max_p99_ms: None,
            max_p99_ratio: 2.0,
            p99_floor_ms: 20.0,
            min_requests: 50,
        }
    }
}

const KEYS: [&str; 5] =
    ["max_error_rate", "max_p99_ms", "max_p99_ratio", "p99_floor_ms", "min_requests"];

impl Limits {
    /// Reads `settings` (`max-error-rate` spelled with dashes works too, as
    /// the other plugins' settings are). Keys starting with `bluegreen.`
    /// come from the host and are not ours.
    pub fn from(settings: &[(String, String)]) -> Result<Limits, String> {
        let mut limits = Limits::default();
        for (key, value) in settings {
            if key.starts_with("bluegreen.") {
                continue;
            }
            let name = key.trim().replace('-', "_");
            let value = value.trim();
            let number = |min: f64| -> Result<f64, String> {
                let v = value.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= min);
                v.ok_or_else(|| {
                    format!("setting `{key}`: `{value}` is not a number of at least {min}")
                })
            };
            match name.as_str() {
                "max_error_rate" => {
                    // `0.01` or `1%`: both read naturally.
                    let rate = match value.strip_suffix('%') {
                        Some(p) => p.trim().parse::<f64>().ok().map(|p| p / 100.0),
                        None => value.parse::<f64>().ok(),
                    };
                    limits.max_error_rate =
                        rate.filter(|r| (0.0..=1.0).contains(r)).ok_or_else(|| {
                            format!("setting `{key}`: `{value}` is not a share from 0 to 1 (e.g. 0.01) or a percentage (e.g. 1%)")
                        })?;
                }
                "max_p99_ms" => {
                    let ms = number(0.0)?;
                    if ms == 0.0 {
                        return Err(format!("setting `{key}`: the p99 SLO must be above 0 ms"));
                    }
                    limits.max_p99_ms = Some(ms);
                }
                "max_p99_ratio" => limits.max_p99_ratio = number(1.0)?,
                "p99_floor_ms" => limits.p99_floor_ms = number(0.0)?,
                "min_requests" => {
                    limits.min_requests = value.parse().map_err(|_| {
                        format!("setting `{key}`: `{value}` is not a whole number of requests")
                    })?;
                }
                _ => {
                    return Err(format!(
                        "unknown setting `{key}`; expected one of: {}",
                        KEYS.join(", ")
                    ));
                }
            }
        }
        Ok(limits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<Limits, String> {
        let owned: Vec<(String, String)> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Limits::from(&owned)
    }

    #[test]
    fn defaults_and_both_spellings() {
        assert_eq!(parse(&[]), Ok(Limits::default()));
        let l = parse(&[
            ("max_error_rate", "2%"),
            ("max-p99-ms", "250"),
            ("max_p99_ratio", "1.5"),
            ("p99_floor_ms", "0"),
            ("min_requests", "10"),
            ("bluegreen.lock-timeout", "5s"),
        ])
        .unwrap();
        assert_eq!(
            l,
            Limits {
                max_error_rate: 0.02,
                max_p99_ms: Some(250.0),
                max_p99_ratio: 1.5,
                p99_floor_ms: 0.0,
                min_requests: 10
            }
        );
        assert_eq!(parse(&[("max_error_rate", "0.005")]).unwrap().max_error_rate, 0.005);
    }

    #[test]
    fn bad_values_and_unknown_keys_are_errors_that_name_the_key() {
        for (k, v) in [
            ("max_error_rate", "5"),
            ("max_error_rate", "-0.1"),
            ("max_error_rate", "lots"),
            ("max_p99_ms", "0"),
            ("max_p99_ms", "NaN"),
            ("max_p99_ratio", "0.5"),
            ("p99_floor_ms", "-1"),
            ("min_requests", "-3"),
            ("min_requests", "1.5"),
        ] {
            let err = parse(&[(k, v)]).unwrap_err();
            assert!(err.contains(&format!("setting `{k}`")) && err.contains(v), "{k}={v}: {err}");
        }
        let err = parse(&[("max_error_rte", "0.1")]).unwrap_err();
        assert!(
            err.contains("unknown setting `max_error_rte`") && err.contains("max_error_rate"),
            "{err}"
        );
    }
}
