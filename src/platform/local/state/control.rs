//! The operator's channel next to each app's lease (see
//! `platform::lease::control`): one record per app, each write merging the
//! half it carries in one store transaction, so the deploy's state and an
//! operator's command never overwrite each other.

use super::{ApiResult, Platform};
use crate::platform::lease::control::Control;

const CONTROL: &str = "control";

impl Platform {
    /// The control record of `app` (empty when nothing was written).
    pub fn control(&self, app: &str) -> ApiResult<Control> {
        self.transaction(|tx| Ok(tx.find(CONTROL, app)?.unwrap_or_default()))
    }

    /// Puts what `write` carries over `app`'s control record.
    pub fn write_control(&self, app: &str, write: Control) -> ApiResult<Control> {
        self.transaction(|tx| {
            let now = tx
                .find::<Control>(CONTROL, app)?
                .unwrap_or_default()
                .merged(write);
            tx.put(CONTROL, app, &now)?;
            Ok(now)
        })
    }
}
