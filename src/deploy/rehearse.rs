//! The migration rehearsal (`migrate.rehearse`): the release's migration run
//! first against a throwaway copy of the shared database's schema, on the
//! same server, while a second connection watches what it locks.
//!
//! Reading migration files (the `migration-guard` plugin) cannot see what a
//! helper defined in another file does, what dynamic SQL builds, or whether
//! a type change rewrites a table on this schema; PostgreSQL can, so the
//! rehearsal asks it. It cannot see production's data volume (times are
//! extrapolated from a sample, see `evidence`) or production's concurrent
//! load (nothing else runs on the copy).
//!
//! `target`: which database, and pointing the task at the copy;
//! `scratch`: making, filling and dropping the copy; `catalog`: snapshots
//! before and after; `sampler`: the lock sampler; `evidence`: the verdict
//! (`scale`: extrapolated to the real sizes, `show`: as it reads);
//! `combine`: with the static guard's findings. The executor's side is
//! `executor/rehearse.rs`.

pub mod catalog;
pub mod combine;
pub mod evidence;
pub mod sampler;
pub mod scale;
pub mod scratch;
pub mod show;
pub mod target;
