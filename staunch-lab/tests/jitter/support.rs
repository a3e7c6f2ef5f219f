//! Helpers shared by the jitter tests.

use std::num::{NonZeroU32, NonZeroUsize};
use std::process::{Command, Output};

/// `n` as a client count.
pub(crate) fn clients(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).expect("a client count is at least 1")
}

/// `n` as a number of runs.
pub(crate) fn runs(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).expect("at least one run")
}

/// Runs the `staunch-lab` binary with `args` and waits for it.
pub(crate) fn staunch_lab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_staunch-lab"))
        .args(args)
        .output()
        .expect("the staunch-lab binary runs")
}
