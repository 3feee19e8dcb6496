//! The operator's channel to a running deploy, kept next to its lease so it
//! reaches the deploy from any terminal or CI job that can reach the
//! platform: `bluegreen promote`, `resume` and `abort` write a [`Command`],
//! the deploy writes its [`State`] (running, or paused and how to go on)
//! and acknowledges each command it took.
//!
//! Two halves, each with one writer, so neither overwrites the other: the
//! local daemon merges a `PUT` of either half (`/bluegreen/v1/locks/{app}/
//! control`); on Cloud Foundry each half is its own annotation on the lock
//! app (`bluegreen.dev/state`, `bluegreen.dev/command`), and a metadata
//! `PATCH` leaves the annotations it does not name alone.

use super::ANNOTATION;
use super::lock_app::gone;
use crate::platform::{PlatformError, client::CfClient, v3};
use serde::{Deserialize, Serialize};

/// The annotation holding the deploy's state, on the lock app.
pub const STATE_ANNOTATION: &str = "bluegreen.dev/state";
/// The annotation holding the last operator command, on the lock app.
pub const COMMAND_ANNOTATION: &str = "bluegreen.dev/command";

/// What an operator asks of a running deploy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verb {
    /// Skip every remaining pause and analysis window: finish now.
    Promote,
    /// Go on to the next step.
    Resume,
    /// Roll back now, as a failed step does.
    Abort,
}

impl Verb {
    pub fn name(self) -> &'static str {
        match self {
            Verb::Promote => "promote",
            Verb::Resume => "resume",
            Verb::Abort => "abort",
        }
    }
}

/// One operator command, for one deploy (by its lease's id).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// Unique per command: what the deploy acknowledges.
    pub id: String,
    pub deploy: String,
    pub verb: Verb,
    /// `user@host`.
    pub by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// RFC 3339.
    pub at: String,
}

/// What the deploy holding the lease says of itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub deploy: String,
    /// Where it is paused (`paused at 10%`), or none while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<String>,
    /// The last command it took (`Command::id`), and what it does about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handled: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doing: Option<String>,
}

/// Both halves; a write carries one and leaves the other as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Control {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<State>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Command>,
}

impl Control {
    /// `self` with what `write` carries put over it.
    pub fn merged(mut self, write: Control) -> Control {
        if write.state.is_some() {
            self.state = write.state;
        }
        if write.command.is_some() {
            self.command = write.command;
        }
        self
    }
}

impl CfClient {
    /// Local platform: the control record next to `app`'s lock.
    pub async fn control_local(&self, app: &str) -> Result<Control, PlatformError> {
        self.get(&format!("/bluegreen/v1/locks/{app}/control"))
            .await
    }

    /// Local platform: writes the halves `write` carries.
    pub async fn write_control_local(
        &self,
        app: &str,
        write: &Control,
    ) -> Result<Control, PlatformError> {
        let path = format!("/bluegreen/v1/locks/{app}/control");
        self.call(reqwest::Method::PUT, &path, Some(write)).await
    }

    /// Cloud Foundry: the control record on `app`'s lock app (empty when
    /// there is no lock app: no deploy runs).
    pub async fn control_cf(&self, space_guid: &str, app: &str) -> Result<Control, PlatformError> {
        let Some(lock) = self.lock_app(space_guid, app).await? else {
            return Ok(Control::default());
        };
        let read = |key: &str| {
            lock.metadata
                .annotations
                .get(key)
                .cloned()
                .flatten()
                .unwrap_or_default()
        };
        Ok(Control {
            state: serde_json::from_str(&read(STATE_ANNOTATION)).ok(),
            command: serde_json::from_str(&read(COMMAND_ANNOTATION)).ok(),
        })
    }

    /// Cloud Foundry: writes the halves `write` carries as annotations on
    /// the lock app; false when there is no lock app (no deploy runs).
    pub async fn write_control_cf(
        &self,
        space_guid: &str,
        app: &str,
        write: &Control,
    ) -> Result<bool, PlatformError> {
        let Some(lock) = self.lock_app(space_guid, app).await? else {
            return Ok(false);
        };
        let mut meta = v3::Metadata::default();
        if let Some(s) = &write.state {
            meta.annotations.insert(STATE_ANNOTATION.into(), json(s));
        }
        if let Some(c) = &write.command {
            meta.annotations.insert(COMMAND_ANNOTATION.into(), json(c));
        }
        match self.set_metadata(&lock.guid, &meta).await {
            Ok(_) => Ok(true),
            Err(e) if gone(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The lock app of `app` in the space, whole (its annotations).
    async fn lock_app(
        &self,
        space_guid: &str,
        app: &str,
    ) -> Result<Option<v3::App>, PlatformError> {
        let path = format!(
            "/v3/apps?names={}&space_guids={}",
            crate::platform::calls::q(&super::lock_app_name(app)),
            crate::platform::calls::q(space_guid)
        );
        let page: v3::List<v3::App> = self.get(&path).await?;
        // A lock app without a lease is one being made or taken over.
        Ok(page
            .resources
            .into_iter()
            .find(|a| a.metadata.annotations.contains_key(ANNOTATION)))
    }
}

/// Either half as an annotation's value.
fn json<T: Serialize>(v: &T) -> Option<String> {
    Some(serde_json::to_string(v).expect("a control record serializes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_replaces_only_the_half_it_carries() {
        let state = State {
            deploy: "d1".into(),
            paused: Some("paused at 10%".into()),
            ..State::default()
        };
        let command = Command {
            id: "c1".into(),
            deploy: "d1".into(),
            verb: Verb::Promote,
            by: "ann@box".into(),
            reason: None,
            at: "2026-01-01T00:00:00Z".into(),
        };
        let both = Control {
            state: Some(state.clone()),
            command: None,
        }
        .merged(Control {
            state: None,
            command: Some(command.clone()),
        });
        assert_eq!(both.state, Some(state));
        assert_eq!(both.command, Some(command));
        let json = serde_json::to_value(&both).unwrap();
        assert_eq!(json["command"]["verb"], "promote");
        assert!(json["state"].get("handled").is_none());
    }
}
