//! The blue-green deploy: a pure plan of steps (`plan.rs`) carried out by one
//! executor (`executor.rs`) that journals every step, holds the app's lock,
//! probes each color's own URL and rolls a failing color back.

pub mod analysis;
pub mod executor;
pub mod health;
pub mod interrupt;
pub mod journal;
pub mod lock;
pub mod operator;
pub mod plan;
pub mod plugins;
pub mod progress;
pub mod rehearse;
pub mod release;
pub mod rollback;
pub mod session;
pub mod site;
pub mod standby;
pub mod window_now;
