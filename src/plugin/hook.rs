//! The hooks a plugin can handle: their names as users write them, the WIT
//! interface each one maps to, and the order they run in a deploy.

use std::fmt;
use std::str::FromStr;

/// One point in the deploy where plugins are called.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Hook {
    PreDeploy,
    MigrationSafetyCheck,
    PreUnmap,
    PrePush,
    HealthCheck,
    PreMap,
    /// Judges the candidate color on a window of live traffic, after it is
    /// mapped (and at each canary step), before `post-map`.
    Analyze,
    PostMap,
    PostDeploy,
    OnFailure,
    /// Asked at each pause (a `pause` step, or `analysis.on_fail: pause`)
    /// whether the release may go on: chat approvals, change tickets.
    Approval,
}

/// The version of the `bluegreen:hooks` WIT package this host implements.
pub const WIT_PACKAGE: &str = "bluegreen:hooks@0.1.0";

impl Hook {
    /// Every hook, in the order a deploy reaches them.
    /// (`approval` comes at pauses, which only canary steps and failed
    /// analyses have: it is listed last.)
    pub const ALL: [Hook; 11] = [
        Hook::PreDeploy,
        Hook::MigrationSafetyCheck,
        Hook::PreUnmap,
        Hook::PrePush,
        Hook::HealthCheck,
        Hook::PreMap,
        Hook::Analyze,
        Hook::PostMap,
        Hook::PostDeploy,
        Hook::OnFailure,
        Hook::Approval,
    ];

    /// The name used on the command line, in deploy files and in the WIT.
    pub fn name(self) -> &'static str {
        match self {
            Hook::PreDeploy => "pre-deploy",
            Hook::MigrationSafetyCheck => "migration-safety-check",
            Hook::PreUnmap => "pre-unmap",
            Hook::PrePush => "pre-push",
            Hook::HealthCheck => "health-check",
            Hook::PreMap => "pre-map",
            Hook::Analyze => "analyze",
            Hook::PostMap => "post-map",
            Hook::PostDeploy => "post-deploy",
            Hook::OnFailure => "on-failure",
            Hook::Approval => "approval",
        }
    }

    /// The exported interface a plugin implements to handle this hook.
    pub fn interface(self) -> String {
        let (package, version) = WIT_PACKAGE.split_once('@').expect("versioned package");
        format!("{package}/{}@{version}", self.name())
    }

    /// Hooks that concern one color and receive a `target`.
    pub fn per_color(self) -> bool {
        matches!(
            self,
            Hook::PreUnmap
                | Hook::PrePush
                | Hook::HealthCheck
                | Hook::PreMap
                | Hook::Analyze
                | Hook::PostMap
        )
    }
}

impl fmt::Display for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for Hook {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Hook {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Hook, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// `--hook`: clap lists and completes the names.
impl clap::ValueEnum for Hook {
    fn value_variants<'a>() -> &'a [Self] {
        &Hook::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()))
    }
}

impl FromStr for Hook {
    type Err = String;

    fn from_str(s: &str) -> Result<Hook, String> {
        Hook::ALL
            .into_iter()
            .find(|h| h.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Hook::ALL.iter().map(|h| h.name()).collect();
                format!("unknown hook `{s}`; expected one of: {}", names.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_map_to_versioned_interfaces() {
        for hook in Hook::ALL {
            assert_eq!(hook.name().parse::<Hook>(), Ok(hook));
        }
        assert_eq!(
            Hook::HealthCheck.interface(),
            "bluegreen:hooks/health-check@0.1.0"
        );
        assert_eq!(Hook::Analyze.interface(), "bluegreen:hooks/analyze@0.1.0");
        assert_eq!(Hook::Approval.interface(), "bluegreen:hooks/approval@0.1.0");
        assert!(!Hook::Approval.per_color());
        // The deploy reaches analyze after the map and before post-map.
        let at = |h| Hook::ALL.iter().position(|x| *x == h).unwrap();
        assert_eq!(at(Hook::Analyze), at(Hook::PreMap) + 1);
        assert_eq!(at(Hook::Analyze) + 1, at(Hook::PostMap));
        assert!(Hook::Analyze.per_color());
        let err = "post-push".parse::<Hook>().unwrap_err();
        assert!(
            err.contains("unknown hook `post-push`") && err.contains("pre-push"),
            "{err}"
        );
    }
}
