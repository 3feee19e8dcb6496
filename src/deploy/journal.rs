//! The deploy journal and the release history, on the machine that runs the
//! deploy (`<home>/deploys/<app>/`).
//!
//! The journal is append-only JSON lines, fsynced before and after every
//! step, so a runner killed at any instant leaves a record `recover` can
//! finish or roll back from. When a deploy ends, its summary goes to
//! `history.jsonl` and the journal is removed.

use super::plan::Step;
use crate::plugin::context::Color;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Deploy,
    Rollback,
}

/// A color as the deploy found it, to go back to on failure.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ColorBefore {
    pub droplet: Option<String>,
    pub release: Option<String>,
    pub mapped: bool,
    /// Its `deployed-at` annotation, which orders the colors.
    #[serde(default)]
    pub deployed_at: Option<String>,
    /// Its environment variables: a rollback restores them with the
    /// droplet (the release's env is the release as much as its code).
    /// None in journals written before they were recorded.
    #[serde(default)]
    pub env: Option<std::collections::BTreeMap<String, String>>,
}

/// Everything `recover` needs to carry on without the deploy file's answers
/// changing under it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeployRecord {
    pub id: String,
    pub kind: Kind,
    pub app: String,
    /// The deploy file, absolute.
    pub file: PathBuf,
    pub release: String,
    pub previous_release: Option<String>,
    pub started: String,
    pub host: String,
    pub pid: u32,
    pub order: [Color; 2],
    pub steps: Vec<Step>,
    pub before: BTreeMap<Color, ColorBefore>,
    /// Droplets to run per color: known up front for a rollback, filled in
    /// as they are staged or copied for a deploy.
    pub droplets: BTreeMap<Color, String>,
    /// The newest migration version this release brings (recorded on success).
    pub migration_version: Option<String>,
    /// Every migration version applied once this deploy succeeds.
    #[serde(default)]
    pub applied: Vec<String>,
    /// Versions of the contract-phase migrations pending.
    #[serde(default)]
    pub contract: Vec<String>,
    /// A native deploy's CF deployment, once created: what `recover`
    /// continues or cancels.
    #[serde(default)]
    pub deployment: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Entry {
    Begin { deploy: Box<DeployRecord> },
    Start { step: usize },
    Done { step: usize },
    Droplet { color: Color, guid: String },
    Deployment { guid: String },
    Override(OverrideRecord),
    // The step under way paused (`executor/pause.rs`), and where; an
    // operator's command the deploy took (`bluegreen promote`, ...).
    Paused { at: String },
    Control(crate::platform::lease::control::Command),
    Scratch(ScratchRecord),
    // An analysis window judged: what `bluegreen dashboard` marks on its
    // charts (a deploy's `--json` output is its runner's alone).
    Analysis(AnalysisRecord),
    // An `approval` plugin's answer at a pause (`executor/approval.rs`).
    Approval(ApprovalRecord),
}

/// Who decided at a pause and why: one `approval` plugin's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRecord {
    pub plugin: String,
    /// The pause, as the output says it (`paused at 10%`).
    pub at: String,
    pub attempt: u32,
    /// `proceed`, `block`, `retry-after`, `abstain`, or `error` (the plugin
    /// failed; its error is the message).
    pub decision: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u32>,
}

/// One analysis window's verdict, as the deploy's `analysis` (or `watch`)
/// event gives it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnalysisRecord {
    pub color: Color,
    pub percent: Option<u8>,
    /// `passed`, `failed` or `inconclusive`.
    pub verdict: String,
    pub why: String,
    /// The old color watched after a migration, not the release judged.
    #[serde(default)]
    pub watch: bool,
    /// When the window closed (Unix ms) and how long it lasted.
    pub ended_ms: u64,
    pub window: crate::plugin::context::AnalysisWindow,
}

/// The migration rehearsal's scratch database, journaled before it is made
/// and again once dropped: `recover` drops one left behind, on the server
/// `color`'s binding reaches.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScratchRecord {
    pub database: String,
    pub color: Color,
    pub dropped: bool,
}

/// A plugin's block waved through with `--allow`: who, why, what.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OverrideRecord {
    pub plugin: String,
    pub hook: crate::plugin::Hook,
    pub rules: Vec<String>,
    pub reason: String,
    pub by: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Done,
    Failed,
    Blocked,
    /// Stopped by Ctrl-C or SIGTERM, and rolled back as a failure is.
    Interrupted,
}

/// The journal read back: the record with the droplets learned since, and
/// which steps finished.
#[derive(Clone, Debug)]
pub struct Replay {
    pub record: DeployRecord,
    pub done: BTreeSet<usize>,
    /// Scratch databases made and not dropped, with the color whose
    /// binding reaches their server.
    pub scratch: BTreeMap<String, Color>,
    /// The step the deploy was paused at when it stopped, and where.
    pub paused: Option<(usize, String)>,
    /// What was decided on the way, in order: operators' commands taken,
    /// analysis windows judged and approval plugins' answers.
    pub decisions: Vec<Entry>,
}

impl Replay {
    /// The first step that did not finish.
    pub fn resume_at(&self) -> usize {
        (0..self.record.steps.len())
            .find(|i| !self.done.contains(i))
            .unwrap_or(self.record.steps.len())
    }
}

pub struct Journal {
    path: PathBuf,
    file: std::fs::File,
}

pub fn dir(home: &Path, app: &str) -> PathBuf {
    home.join("deploys").join(app)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> anyhow::Error + '_ {
    move |e| anyhow::Error::new(e).context(format!("deploy journal {}", path.display()))
}

impl Journal {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("journal.jsonl")
    }

    /// Starts a journal for `record`; fails if one exists (an interrupted
    /// deploy must be recovered first). A journal with no `begin` (its
    /// runner died before the first line was durable) recorded no action,
    /// so it is replaced. The caller holds the app's lock.
    pub fn begin(dir: &Path, record: &DeployRecord) -> anyhow::Result<Journal> {
        fs_err::create_dir_all(dir)?;
        super::window_now::clear(dir);
        // Journals and history are the user's own: not for other local users.
        {
            use std::os::unix::fs::PermissionsExt;
            fs_err::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        let path = Self::path(dir);
        if path.exists() && Self::read(dir)?.is_none() {
            std::fs::remove_file(&path).map_err(io(&path))?;
        }
        let file = std::fs::OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        let mut j = Journal { path, file };
        j.append(&Entry::Begin {
            deploy: Box::new(record.clone()),
        })?;
        // The new file's name must survive a crash too.
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))?;
        Ok(j)
    }

    /// Reopens an interrupted journal to carry on writing to it. A torn
    /// last line (the runner died mid-write) is cut off first, so what is
    /// appended now starts a line of its own and survives a second
    /// interruption.
    pub fn reopen(dir: &Path) -> anyhow::Result<Journal> {
        let path = Self::path(dir);
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        let whole = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        if whole < bytes.len() {
            file.set_len(whole as u64).map_err(io(&path))?;
            file.sync_data().map_err(io(&path))?;
        }
        Ok(Journal { path, file })
    }

    pub fn append(&mut self, entry: &Entry) -> anyhow::Result<()> {
        let mut line = serde_json::to_vec(entry)?;
        line.push(b'\n');
        self.file.write_all(&line).map_err(io(&self.path))?;
        self.file.sync_data().map_err(io(&self.path))
    }

    /// Reads the journal in `dir`, if there is one. A line that does not
    /// parse (torn by a crash mid-write) is skipped: entries after it were
    /// written by a later run and count. A journal with no `begin` reads as
    /// none (see `begin`).
    pub fn read(dir: &Path) -> anyhow::Result<Option<Replay>> {
        let path = Self::path(dir);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&path)(e)),
        };
        let mut replay: Option<Replay> = None;
        // Bytes, not text: a line torn inside a multi-byte character is not
        // UTF-8, and must not make the whole journal unreadable.
        for line in bytes.split(|b| *b == b'\n') {
            let Ok(entry) = serde_json::from_slice::<Entry>(line) else {
                continue;
            };
            match (entry, replay.as_mut()) {
                (Entry::Begin { deploy }, _) => {
                    // The executor relies on both colors' earlier state
                    // (one app's, natively).
                    let native = deploy.steps.iter().any(|s| matches!(s, Step::Native(_)));
                    let colors = if native { 1 } else { 2 };
                    if deploy.before.len() != colors {
                        anyhow::bail!(
                            "{}: its first record lacks a color's earlier state; it was not \
                             written by bluegreen (move it away, then `bluegreen unlock --force`)",
                            path.display()
                        );
                    }
                    replay = Some(Replay {
                        record: *deploy,
                        done: BTreeSet::new(),
                        scratch: BTreeMap::new(),
                        paused: None,
                        decisions: Vec::new(),
                    })
                }
                (Entry::Start { .. }, _) => {}
                // A step the plan does not have was not written by us.
                (Entry::Done { step }, Some(r)) if step < r.record.steps.len() => {
                    r.done.insert(step);
                }
                (Entry::Done { .. }, Some(_)) => {}
                (Entry::Droplet { color, guid }, Some(r)) => {
                    r.record.droplets.insert(color, guid);
                }
                (Entry::Deployment { guid }, Some(r)) => {
                    r.record.deployment = Some(guid);
                }
                (Entry::Override(_), Some(_)) => {}
                (Entry::Paused { at }, Some(r)) => r.paused = Some((r.resume_at(), at)),
                (e @ (Entry::Control(_) | Entry::Analysis(_) | Entry::Approval(_)), Some(r)) => {
                    r.decisions.push(e)
                }
                (Entry::Scratch(s), Some(r)) => {
                    match s.dropped {
                        true => r.scratch.remove(&s.database),
                        false => r.scratch.insert(s.database, s.color),
                    };
                }
                (_, None) => anyhow::bail!("{}: entries before `begin`", path.display()),
            }
        }
        Ok(replay)
    }

    pub fn dir(&self) -> &Path {
        self.path.parent().expect("journal in a directory")
    }

    /// Ends the deploy (its summary is in the history by now).
    pub fn close(self) -> anyhow::Result<()> {
        super::window_now::clear(self.dir());
        fs_err::remove_file(&self.path)?;
        std::fs::File::open(self.dir())
            .and_then(|d| d.sync_all())
            .map_err(io(self.dir()))
    }
}

/// One finished deploy or rollback.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub id: String,
    pub kind: Kind,
    pub release: String,
    pub previous_release: Option<String>,
    pub result: Outcome,
    pub started: String,
    pub finished: String,
    pub duration_ms: u64,
    /// What each color runs after this deploy.
    pub droplets: BTreeMap<Color, String>,
    pub releases: BTreeMap<Color, String>,
    pub migration_version: Option<String>,
    /// Every migration version applied after this deploy (what is pending
    /// next time is what is not in it).
    #[serde(default)]
    pub applied: Vec<String>,
    pub message: Option<String>,
    /// Set when `recover` finished it.
    #[serde(default)]
    pub recovered: bool,
    #[serde(default)]
    pub overrides: Vec<OverrideRecord>,
    /// What the `approval` plugins decided at the pauses (not their
    /// `retry-after`s, which the journal and `--json` show as they come).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<ApprovalRecord>,
    /// Contract-phase migrations this deploy ran (old code may not run on
    /// the schema after them: a rollback past them warns).
    #[serde(default)]
    pub contract: Vec<String>,
}

pub fn append_history(dir: &Path, entry: &HistoryEntry) -> anyhow::Result<()> {
    let path = dir.join("history.jsonl");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(io(&path))?;
    let mut line = serde_json::to_vec(entry)?;
    line.push(b'\n');
    f.write_all(&line).map_err(io(&path))?;
    f.sync_data().map_err(io(&path))
}

/// The history, oldest first.
pub fn history(dir: &Path) -> anyhow::Result<Vec<HistoryEntry>> {
    let path = dir.join("history.jsonl");
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io(&path)(e)),
    }
}

/// The last deploy that finished, for "the previous release" and migrations.
pub fn last_done(history: &[HistoryEntry]) -> Option<&HistoryEntry> {
    history.iter().rev().find(|h| h.result == Outcome::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> DeployRecord {
        DeployRecord {
            id: "d1".into(),
            kind: Kind::Deploy,
            app: "shop".into(),
            file: "/x/bluegreen.yaml".into(),
            release: "r2".into(),
            previous_release: Some("r1".into()),
            started: "2026-01-01T00:00:00Z".into(),
            host: "h".into(),
            pid: 1,
            order: [Color::Blue, Color::Green],
            steps: vec![Step::Validate, Step::AcquireLock, Step::RecordRelease],
            before: [Color::Blue, Color::Green]
                .into_iter()
                .map(|c| (c, ColorBefore::default()))
                .collect(),
            droplets: BTreeMap::new(),
            migration_version: None,
            applied: Vec::new(),
            contract: Vec::new(),
            deployment: None,
        }
    }

    #[test]
    fn replays_steps_and_droplets_and_ignores_a_torn_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::begin(dir.path(), &record()).unwrap();
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.path()).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o700, "private to the user");
        assert!(
            Journal::begin(dir.path(), &record()).is_err(),
            "one journal at a time"
        );
        j.append(&Entry::Start { step: 0 }).unwrap();
        j.append(&Entry::Done { step: 0 }).unwrap();
        j.append(&Entry::Droplet {
            color: Color::Blue,
            guid: "dr1".into(),
        })
        .unwrap();
        j.append(&Entry::Start { step: 1 }).unwrap();
        drop(j);
        let path = Journal::path(dir.path());
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"event\":\"done\",\"st");
        std::fs::write(&path, text).unwrap();
        let r = Journal::read(dir.path()).unwrap().unwrap();
        assert_eq!(r.resume_at(), 1);
        assert_eq!(r.record.droplets[&Color::Blue], "dr1");
    }

    /// Defect 8 of «7 · Hardening»: `recover` appended onto the torn line,
    /// and `read` stopped there, so a second interruption lost what the
    /// recovery had done.
    #[test]
    fn defect_8_a_second_interruption_keeps_what_the_recovery_did() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::begin(dir.path(), &record()).unwrap();
        j.append(&Entry::Done { step: 0 }).unwrap();
        drop(j);
        let path = Journal::path(dir.path());
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"event\":\"done\",\"st");
        std::fs::write(&path, text).unwrap();
        // The recovery carries on, then is interrupted in turn.
        let mut j = Journal::reopen(dir.path()).unwrap();
        j.append(&Entry::Done { step: 1 }).unwrap();
        drop(j);
        let r = Journal::read(dir.path()).unwrap().unwrap();
        assert_eq!(r.done, BTreeSet::from([0, 1]));
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .lines()
                .all(|l| serde_json::from_str::<Entry>(l).is_ok()),
            "no torn line is left inside the journal"
        );
    }

    /// Defect 8: an empty journal (killed before `begin` was durable) made
    /// every later deploy fail with "File exists".
    #[test]
    fn defect_8_an_empty_journal_does_not_block_the_next_deploy() {
        let dir = tempfile::tempdir().unwrap();
        for stale in ["", "{\"event\":\"beg"] {
            std::fs::write(Journal::path(dir.path()), stale).unwrap();
            assert!(Journal::read(dir.path()).unwrap().is_none());
            let j = Journal::begin(dir.path(), &record()).expect("a deploy can begin");
            drop(j);
            assert!(Journal::read(dir.path()).unwrap().is_some());
            std::fs::remove_file(Journal::path(dir.path())).unwrap();
        }
    }
}
