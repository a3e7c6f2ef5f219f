//! Scenario tests of the overload policies: concurrency limits (fixed and adaptive), in paused
//! tokio time or on a manual clock, plus a multi-thread stress test.

mod concurrency;
mod stress;
#[cfg(feature = "tower")]
mod tower_layer;
