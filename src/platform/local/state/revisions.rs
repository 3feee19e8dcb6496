//! Revisions, by Cloud Controller's rules (`RevisionResolver` in
//! cloud_controller_ng): an app's start, restart or deployment records a
//! new revision when its droplet, environment or start commands changed
//! since the latest one, described by what changed; a deployment to an
//! older revision records a new one too ("Rolled back to revision N."),
//! and is refused when nothing would change. Kept so a CF client's
//! `rollback` (a deployment naming a revision) finds the releases to go
//! back to, with the environment they ran with.

use super::super::records::*;
use super::{ApiErr, ApiResult, Platform, Tx};
use std::collections::BTreeMap;

/// Cloud Controller keeps at most this many revisions per app.
const KEPT: usize = 100;
/// Versions count up from 1 and roll over after this one.
const LAST_VERSION: u32 = 9999;

impl Platform {
    /// The app's revisions, oldest first (a CF 404 for an unknown app).
    pub fn revisions(&self, app_guid: &str) -> ApiResult<Vec<RevisionRec>> {
        self.transaction(|tx| {
            tx.find::<AppRec>(APP, app_guid)?
                .ok_or_else(|| ApiErr::not_found("App"))?;
            of_app(tx, app_guid)
        })
    }

    /// Before `POST /v3/apps/:guid/actions/{start,restart}`: CC's
    /// `AppStart` records a revision when it starts a stopped app,
    /// `AppRestart` whenever it restarts one.
    pub fn revise_on_start(&self, app_guid: &str, action: &str) -> ApiResult<()> {
        self.transaction(|tx| {
            let Some(app) = tx.find::<AppRec>(APP, app_guid)? else {
                return Ok(());
            };
            if action == "restart" || (action == "start" && app.app.state != "STARTED") {
                update_app_revision(tx, &app)?;
            }
            Ok(())
        })
    }
}

/// Each process type's own start command, as a revision keeps them.
pub fn commands(app: &AppRec) -> BTreeMap<String, Option<String>> {
    app.processes()
        .map(|p| (p.kind.clone(), p.command.clone()))
        .collect()
}

fn of_app(tx: &Tx, app_guid: &str) -> ApiResult<Vec<RevisionRec>> {
    Ok(tx
        .all::<RevisionRec>(REVISION)?
        .into_iter()
        .filter(|r| r.app_guid == app_guid)
        .collect())
}

/// The app's revision now: the latest when nothing changed since it, else
/// a new one saying what did (`None` for an app with no droplet).
pub fn update_app_revision(tx: &Tx, app: &AppRec) -> ApiResult<Option<RevisionRec>> {
    let Some(droplet) = app.current_droplet.clone() else {
        return Ok(None);
    };
    let commands = commands(app);
    let description = match of_app(tx, &app.app.guid)?.pop() {
        None => "Initial revision.".to_string(),
        Some(latest) => {
            let why = reasons(&latest, &droplet, &app.env, &commands);
            if why.is_empty() {
                return Ok(Some(latest));
            }
            why.join(" ")
        }
    };
    create(tx, app, droplet, app.env.clone(), commands, description).map(Some)
}

/// The revision a deployment to `target` makes: `target`'s droplet,
/// environment and commands as a new version, or CC's refusal when they
/// are those of the latest revision already.
pub fn rollback_app_revision(
    tx: &Tx,
    app: &AppRec,
    target: &RevisionRec,
) -> ApiResult<RevisionRec> {
    let latest = of_app(tx, &app.app.guid)?.pop();
    let mut why = latest
        .map(|l| reasons(&l, &target.droplet, &target.env, &target.commands))
        .unwrap_or_else(|| vec!["New droplet deployed.".into()]);
    if why.is_empty() {
        return Err(ApiErr::unprocessable(
            "Unable to rollback. The code and configuration you are rolling back to is the same \
             as the deployed revision."
                .into(),
        ));
    }
    why.push(format!("Rolled back to revision {}.", target.version));
    create(
        tx,
        app,
        target.droplet.clone(),
        target.env.clone(),
        target.commands.clone(),
        why.join(" "),
    )
}

/// What changed from `latest`, in CC's words, sorted as CC sorts them.
fn reasons(
    latest: &RevisionRec,
    droplet: &str,
    env: &BTreeMap<String, String>,
    commands: &BTreeMap<String, Option<String>>,
) -> Vec<String> {
    let mut out = Vec::new();
    if latest.droplet != droplet {
        out.push("New droplet deployed.".to_string());
    }
    if &latest.env != env {
        out.push("New environment variables deployed.".to_string());
    }
    for (kind, before) in &latest.commands {
        match (before, commands.get(kind)) {
            (_, None) => out.push(format!("Process type '{kind}' removed.")),
            (None, Some(Some(_))) => {
                out.push(format!("Custom start command added for '{kind}' process."))
            }
            (Some(_), Some(None)) => out.push(format!(
                "Custom start command removed for '{kind}' process."
            )),
            (Some(a), Some(Some(b))) if a != b => out.push(format!(
                "Custom start command updated for '{kind}' process."
            )),
            _ => {}
        }
    }
    for kind in commands
        .keys()
        .filter(|k| !latest.commands.contains_key(*k))
    {
        out.push(format!("New process type '{kind}' added."));
    }
    out.sort();
    out
}

/// A new revision with the next version (one that version already names,
/// after a rollover, goes), the oldest past `KEPT` pruned.
fn create(
    tx: &Tx,
    app: &AppRec,
    droplet: String,
    env: BTreeMap<String, String>,
    commands: BTreeMap<String, Option<String>>,
    description: String,
) -> ApiResult<RevisionRec> {
    let mine = of_app(tx, &app.app.guid)?;
    let version = match mine.last() {
        Some(l) if l.version < LAST_VERSION => l.version + 1,
        _ => 1,
    };
    for r in mine.iter().filter(|r| r.version == version) {
        tx.delete(REVISION, &r.guid)?;
    }
    let now = now();
    let rec = RevisionRec {
        guid: new_guid(),
        app_guid: app.app.guid.clone(),
        version,
        droplet,
        env,
        commands,
        description,
        metadata: Default::default(),
        created_at: now.clone(),
        updated_at: now,
    };
    tx.put(REVISION, &rec.guid, &rec)?;
    let left: Vec<RevisionRec> = of_app(tx, &app.app.guid)?;
    for old in left.iter().take(left.len().saturating_sub(KEPT)) {
        tx.delete(REVISION, &old.guid)?;
    }
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rev(droplet: &str, env: &[(&str, &str)], web: Option<&str>) -> RevisionRec {
        RevisionRec {
            guid: "r".into(),
            app_guid: "a".into(),
            version: 1,
            droplet: droplet.into(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            commands: [("web".to_string(), web.map(String::from))].into(),
            description: String::new(),
            metadata: Default::default(),
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    #[test]
    fn reasons_name_each_change_in_ccs_words_and_order() {
        let latest = rev("d1", &[("A", "1")], None);
        let same = rev("d1", &[("A", "1")], None);
        assert!(reasons(&latest, &same.droplet, &same.env, &same.commands).is_empty());
        let next = rev("d2", &[("A", "2")], Some("python3 app.py"));
        assert_eq!(
            reasons(&latest, &next.droplet, &next.env, &next.commands),
            [
                "Custom start command added for 'web' process.",
                "New droplet deployed.",
                "New environment variables deployed.",
            ]
        );
        let mut worker = next.commands.clone();
        worker.insert("worker".into(), None);
        worker.insert("web".into(), None);
        assert_eq!(
            reasons(&next, &next.droplet, &next.env, &worker),
            [
                "Custom start command removed for 'web' process.",
                "New process type 'worker' added.",
            ]
        );
    }
}
