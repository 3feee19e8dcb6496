//! Promises the book (`docs/src/`) makes with a number, a limit, a default or
//! a variable, each checked end to end against the value the book states
//! (a literal here, never a constant read from the crate, so a change of
//! the code that the docs do not follow fails a test).

mod lease;
mod limits;
mod manifest;
mod router;
mod system_policy;
