//! Helpers shared by the retry and pipeline tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use staunch::backoff::{Backoff, Jitter};
use staunch::{Retry, RetryConfig};

/// An error type with a `source()` to check chains against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Boom(pub(crate) u32);

impl std::fmt::Display for Boom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "boom #{}", self.0)
    }
}

impl std::error::Error for Boom {}

/// Counts calls across clones.
#[derive(Clone, Debug, Default)]
pub(crate) struct Counter(Arc<AtomicU32>);

impl Counter {
    pub(crate) fn bump(&self) -> u32 {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }

    pub(crate) fn get(&self) -> u32 {
        self.0.load(Ordering::SeqCst)
    }
}

pub(crate) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Constant delays with no jitter, so timings are exact.
pub(crate) fn fixed(delay: Duration, max_attempts: u32) -> Retry {
    Retry::new(
        RetryConfig::new()
            .with_max_attempts(max_attempts)
            .with_backoff(Backoff::constant(delay).with_jitter(Jitter::None)),
    )
    .expect("valid config")
}
