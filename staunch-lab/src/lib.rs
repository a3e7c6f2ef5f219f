//! staunch-lab: see what staunch does to an outage.
//!
//! The `staunch-lab` program runs experiments on the `staunch` library. For now it has one:
//!
//! - `staunch-lab jitter` ([`jitter`]): why backoff needs jitter, a virtual-time simulation of
//!   clients racing to update one row, driven by staunch's own backoff iterators.
//!
//! The simulation lives in this library so that it can be tested; [`cli`] is the command line.

pub mod cli;
pub mod demo;
pub mod jitter;
