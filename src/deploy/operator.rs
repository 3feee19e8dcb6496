//! The operator in the loop: a running deploy's ear for `bluegreen
//! promote`, `resume` and `abort` from any terminal or CI job. A background
//! task polls the control record next to the app's lease (the daemon
//! locally, the lock app's annotations on Cloud Foundry: see
//! `platform::lease::control`), acknowledges each command meant for this
//! deploy at once, and queues it for the executor, which acts on it between
//! steps, during a wait, or at a pause (`executor/pause.rs`). The same task
//! publishes whether the deploy is paused, so a command can say what it
//! will do before it is sent.

use super::lock::Store;
use crate::platform::client::CfClient;
use crate::platform::lease::control::{Command, Control, State, Verb};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// Where the control record is, and whose.
#[derive(Clone)]
pub struct Channel {
    pub client: CfClient,
    pub store: Store,
    pub app: String,
}

impl Channel {
    pub async fn read(&self) -> anyhow::Result<Control> {
        Ok(match &self.store {
            Store::Local => self.client.control_local(&self.app).await?,
            Store::Cf { space_guid } => self.client.control_cf(space_guid, &self.app).await?,
        })
    }

    /// Writes what `write` carries; false where nothing could hold it (no
    /// lock app on Cloud Foundry: no deploy runs).
    pub async fn write(&self, write: &Control) -> anyhow::Result<bool> {
        Ok(match &self.store {
            Store::Local => {
                self.client.write_control_local(&self.app, write).await?;
                true
            }
            Store::Cf { space_guid } => {
                self.client
                    .write_control_cf(space_guid, &self.app, write)
                    .await?
            }
        })
    }

    /// How often a deploy looks for commands: the daemon is local and
    /// cheap; a foundation's API is shared, and a command may take a second.
    pub fn interval(&self) -> Duration {
        match self.store {
            Store::Local => Duration::from_millis(250),
            Store::Cf { .. } => Duration::from_secs(1),
        }
    }
}

/// `user@host`, for the journal and the deploy's output.
pub fn who() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("{user}@{}", super::lock::hostname())
}

/// The deploy's side: commands queued for the executor (none until
/// `start`), and whether it is paused.
#[derive(Clone, Default)]
pub struct Operator {
    inner: Option<Arc<Inner>>,
    /// `promote` was taken: every later pause and analysis window is
    /// skipped.
    pub promoted: Option<Command>,
}

/// Commands taken and not yet acted on: the listening task's and the
/// executor's, shared from before the task starts (a `recover` finds its
/// command already waiting, so the task's first read may take it at once).
#[derive(Default)]
struct Queue {
    commands: Mutex<VecDeque<Command>>,
    arrived: Notify,
}

struct Inner {
    queue: Arc<Queue>,
    paused: watch::Sender<Option<String>>,
    /// The pause the control record says, once written.
    published: watch::Receiver<Option<String>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Operator {
    /// Starts listening for commands to deploy `id`. A command this deploy
    /// acknowledged before (a `recover` of it acted on it) is not taken
    /// again.
    pub fn start(channel: Channel, id: &str) -> Operator {
        let (paused, rx) = watch::channel(None);
        let (wrote, published) = watch::channel(None);
        let queue = Arc::new(Queue::default());
        let task = tokio::spawn(listen(channel, id.to_string(), rx, wrote, queue.clone()));
        let inner = Inner {
            queue,
            paused,
            published,
            task,
        };
        Operator {
            inner: Some(Arc::new(inner)),
            promoted: None,
        }
    }

    pub fn started(&self) -> bool {
        self.inner.is_some()
    }

    /// The next command taken, if one is waiting.
    pub fn next(&self) -> Option<Command> {
        self.inner
            .as_ref()?
            .queue
            .commands
            .lock()
            .unwrap()
            .pop_front()
    }

    /// Waits for the next command (forever where nothing listens).
    pub async fn wait(&self) -> Command {
        let Some(inner) = &self.inner else {
            return std::future::pending().await;
        };
        loop {
            let arrived = inner.queue.arrived.notified();
            if let Some(c) = self.next() {
                return c;
            }
            arrived.await;
        }
    }

    /// Says (to the next command) whether the deploy is paused, and where.
    pub fn set_paused(&self, at: Option<String>) {
        if let Some(inner) = &self.inner {
            inner.paused.send_replace(at);
        }
    }

    /// `set_paused`, then waits (up to `PUBLISH_WAIT`) until the control
    /// record says so: a pause shown before it is published would answer a
    /// `resume` sent at once with "not paused".
    pub async fn publish_paused(&self, at: Option<String>) {
        self.set_paused(at.clone());
        if let Some(inner) = &self.inner {
            let mut published = inner.published.clone();
            let _ = tokio::time::timeout(PUBLISH_WAIT, published.wait_for(|p| *p == at)).await;
        }
    }
}

/// How long a pause waits for its publication before it shows anyway: a
/// control record that cannot be written must not hold the deploy.
const PUBLISH_WAIT: Duration = Duration::from_secs(5);

/// The listening task: reads the control record every `interval`, takes a
/// new command for deploy `id` (acknowledging it in the state), and writes
/// the state whenever it changes.
async fn listen(
    channel: Channel,
    id: String,
    mut paused: watch::Receiver<Option<String>>,
    published: watch::Sender<Option<String>>,
    queue: Arc<Queue>,
) {
    let mut state = State {
        deploy: id.clone(),
        ..State::default()
    };
    let mut dirty = true;
    let mut first = true;
    loop {
        let now = paused.borrow_and_update().clone();
        if now != state.paused {
            state.paused = now;
            dirty = true;
        }
        if let Ok(control) = channel.read().await {
            if first && let Some(s) = control.state.filter(|s| s.deploy == id) {
                state.handled = s.handled;
            }
            first = false;
            if let Some(c) = control.command.filter(|c| c.deploy == id)
                && state.handled.as_deref() != Some(c.id.as_str())
            {
                state.handled = Some(c.id.clone());
                state.doing = Some(doing(&c, state.paused.as_deref()));
                dirty = true;
                queue.commands.lock().unwrap().push_back(c);
                queue.arrived.notify_waiters();
            }
        }
        if dirty {
            let write = Control {
                state: Some(state.clone()),
                command: None,
            };
            dirty = !matches!(channel.write(&write).await, Ok(true));
            if !dirty {
                published.send_replace(state.paused.clone());
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(channel.interval()) => {}
            changed = paused.changed() => if changed.is_err() { return },
        }
    }
}

/// What the deploy does about `c`, as the command's acknowledgement says.
pub fn doing(c: &Command, paused: Option<&str>) -> String {
    match (c.verb, paused) {
        (Verb::Promote, _) => "skipping every remaining pause and analysis window".into(),
        (Verb::Resume, Some(at)) => format!("going on from the pause ({at})"),
        (Verb::Resume, None) => "running, not paused: the next pause waits as planned".into(),
        (Verb::Abort, _) => "rolling back".into(),
    }
}
