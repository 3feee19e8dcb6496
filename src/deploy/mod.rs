//! The blue-green deploy: a pure plan of steps (`plan.rs`), which one
//! executor will carry out.

pub mod plan;
