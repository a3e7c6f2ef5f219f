//! staunch-lab: see what staunch does to an outage.
//!
//! The `staunch-lab` program runs experiments on the `staunch` library:
//!
//! - `staunch-lab demo` ([`demo`]): what staunch does to an outage, with real HTTP services on
//!   loopback: a naive checkout and a staunch one under the same load and the same faults.
//! - `staunch-lab jitter` ([`jitter`]): why backoff needs jitter, a virtual-time simulation of
//!   clients racing to update one row, driven by staunch's own backoff iterators.
//! - `staunch-lab simulate` ([`simulate`]): a policy (retry, budget, breaker, timeouts,
//!   fallback) against a failure scenario from a TOML file, run through staunch's real pipeline
//!   in virtual time.
//!
//! The experiments live in this library so that they can be tested; [`cli`] is the command line.

mod chart;
pub mod cli;
pub mod demo;
pub mod jitter;
pub mod progress;
pub mod simulate;
