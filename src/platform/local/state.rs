//! The local platform's operations on its state: the v3 semantics over the
//! store, the supervisor and the router. The HTTP handlers (`*_api.rs`)
//! only parse, call a `Platform` method and shape the answer, so the rules
//! (what a metadata patch means, which hosts are taken, who holds a lease)
//! live in one place and hold whichever endpoint reaches them.
//!
//! This file holds the platform itself and its access to the store; the
//! operations are grouped by resource in `state/`.
//!
//! Every change to a stored record is a read-modify-write in one store
//! transaction (`update`, `transaction`): the store's mutex is held from the
//! read to the write, so two requests changing one record cannot lose each
//! other's change.

mod apps;
mod control;
mod deployments;
mod leases;
mod packages;
mod revisions;
mod routes;
mod run;

pub use deployments::{ACTIVE, FINALIZED};

pub use packages::partial_upload;

use super::router::Router;
use super::store::{Store, StoreError};
use super::supervisor::Supervisor;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// A v3 error: HTTP status, CF code and title, detail.
#[derive(Debug)]
pub struct ApiErr(pub u16, pub u64, pub &'static str, pub String);

impl ApiErr {
    pub fn not_found(what: &str) -> ApiErr {
        ApiErr(
            404,
            10010,
            "CF-ResourceNotFound",
            format!("{what} not found"),
        )
    }

    pub fn unprocessable(detail: String) -> ApiErr {
        ApiErr(422, 10008, "CF-UnprocessableEntity", detail)
    }

    pub fn internal(e: impl std::fmt::Display) -> ApiErr {
        ApiErr(500, 10001, "CF-ServerError", e.to_string())
    }
}

impl From<StoreError> for ApiErr {
    fn from(e: StoreError) -> ApiErr {
        ApiErr::internal(e)
    }
}

pub type ApiResult<T> = Result<T, ApiErr>;

pub struct Platform {
    /// Reach it through `Platform`'s methods: they hold the lock for one
    /// call or one transaction, never across an `.await`.
    pub store: Mutex<Store>,
    pub supervisor: Supervisor,
    pub router: Router,
    pub dir: PathBuf,
    pub api_url: String,
    pub router_port: u16,
    pub task_timeout: Duration,
    /// The largest package upload accepted, in bytes.
    pub max_upload: u64,
    /// Test-only fault injection (off unless the daemon's environment asks).
    pub faults: super::faults::Faults,
    /// The tasks rolling out deployments, one per app (`rollout.rs`).
    pub rollouts: super::rollout::Rollouts,
}

impl Platform {
    /// The API's origin as the current request reached it: links in an
    /// answer name it (see `tls::base_url`).
    pub fn base_url(&self) -> String {
        super::tls::base_url(&self.api_url)
    }

    /// A panic inside a transaction poisons the mutex, but the transaction
    /// rolled back as it unwound: the store is consistent, so the daemon
    /// carries on rather than failing every later request.
    fn store(&self) -> MutexGuard<'_, Store> {
        self.store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn get<T: serde::de::DeserializeOwned>(&self, kind: &str, guid: &str) -> ApiResult<T> {
        Tx(&self.store()).get(kind, guid)
    }

    pub fn all<T: serde::de::DeserializeOwned>(&self, kind: &str) -> ApiResult<Vec<T>> {
        Tx(&self.store()).all(kind)
    }

    pub fn put<T: serde::Serialize>(&self, kind: &str, guid: &str, v: &T) -> ApiResult<()> {
        Tx(&self.store()).put(kind, guid, v)
    }

    pub fn delete(&self, kind: &str, guid: &str) -> ApiResult<()> {
        Tx(&self.store()).delete(kind, guid)
    }

    /// Runs `f` in one store transaction, holding the store's mutex
    /// throughout: `f`'s writes all commit when it returns `Ok` and none
    /// when it fails. `f` must use `tx`, not `self`'s store methods (the
    /// mutex is not reentrant), and must not block on anything but the store.
    pub fn transaction<R>(&self, f: impl FnOnce(&Tx) -> ApiResult<R>) -> ApiResult<R> {
        self.store().transaction(|store| f(&Tx(store)))
    }

    /// Read-modify-write of one record in one transaction: `f` changes the
    /// record as it is now, and its change is written unless it fails.
    pub fn update<T, R>(
        &self,
        kind: &str,
        guid: &str,
        f: impl FnOnce(&mut T) -> ApiResult<R>,
    ) -> ApiResult<R>
    where
        T: serde::de::DeserializeOwned + serde::Serialize,
    {
        self.transaction(|tx| tx.update(kind, guid, f))
    }
}

/// The store inside a transaction (see `Platform::transaction`), with
/// `Platform`'s calls and errors.
pub struct Tx<'a>(&'a Store);

impl Tx<'_> {
    /// The record, or a CF 404 naming its kind.
    pub fn get<T: serde::de::DeserializeOwned>(&self, kind: &str, guid: &str) -> ApiResult<T> {
        self.find(kind, guid)?
            .ok_or_else(|| ApiErr::not_found(&kind.replace('_', " ")))
    }

    pub fn find<T: serde::de::DeserializeOwned>(
        &self,
        kind: &str,
        guid: &str,
    ) -> ApiResult<Option<T>> {
        Ok(self.0.get(kind, guid)?)
    }

    pub fn all<T: serde::de::DeserializeOwned>(&self, kind: &str) -> ApiResult<Vec<T>> {
        Ok(self.0.all(kind)?)
    }

    pub fn put<T: serde::Serialize>(&self, kind: &str, guid: &str, v: &T) -> ApiResult<()> {
        Ok(self.0.put(kind, guid, v)?)
    }

    pub fn delete(&self, kind: &str, guid: &str) -> ApiResult<()> {
        Ok(self.0.delete(kind, guid)?)
    }

    /// The next value of a named counter.
    pub fn next(&self, name: &str) -> ApiResult<u64> {
        Ok(self.0.next(name)?)
    }

    /// `Platform::update` within a wider transaction.
    pub fn update<T, R>(
        &self,
        kind: &str,
        guid: &str,
        f: impl FnOnce(&mut T) -> ApiResult<R>,
    ) -> ApiResult<R>
    where
        T: serde::de::DeserializeOwned + serde::Serialize,
    {
        let mut rec: T = self.get(kind, guid)?;
        let out = f(&mut rec)?;
        self.put(kind, guid, &rec)?;
        Ok(out)
    }
}

/// App and service names: they become host names and directory names.
pub fn check_name(what: &str, name: &str) -> ApiResult<()> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(ApiErr::unprocessable(format!(
            "{what} name `{name}` must be letters, digits and dashes"
        )));
    }
    Ok(())
}
