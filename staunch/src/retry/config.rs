use std::time::Duration;

use crate::ConfigError;
use crate::backoff::Backoff;

/// The settings of a [`Retry`](super::Retry): how many attempts, how long between them, and how
/// far to honour a server's Retry-After. `Copy`; validated once by
/// [`Retry::new`](super::Retry::new).
///
/// Defaults: 3 attempts (the first call and two retries), exponential backoff from 100 ms
/// doubling to at most 10 s with [full jitter](crate::backoff::Jitter::Full), and Retry-After
/// hints honoured up to 60 s.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use staunch::backoff::{Backoff, Jitter};
/// use staunch::{Retry, RetryConfig};
///
/// let config = RetryConfig::new()
///     .with_max_attempts(5)
///     .with_backoff(
///         Backoff::exponential(Duration::from_millis(50))
///             .with_max_delay(Duration::from_secs(2))
///             .with_jitter(Jitter::Full),
///     )
///     .with_max_retry_after(Duration::from_secs(30));
/// let retry = Retry::new(config)?;
/// # Ok::<(), staunch::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryConfig {
    pub(crate) max_attempts: u32,
    pub(crate) backoff: Backoff,
    pub(crate) max_retry_after: Duration,
}

impl RetryConfig {
    /// The defaults described on the type.
    pub const fn new() -> Self {
        Self {
            max_attempts: 3,
            backoff: Backoff::exponential(Duration::from_millis(100))
                .with_max_delay(Duration::from_secs(10)),
            max_retry_after: Duration::from_secs(60),
        }
    }

    /// Sets how many attempts a call may make, counting the first (gRPC's convention): 1 means
    /// no retries. Must be at least 1.
    pub const fn with_max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts;
        self
    }

    /// Sets the delays between attempts.
    pub const fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Sets the longest Retry-After hint to honour. The wait before a retry is at least the
    /// server's hint; a hint longer than this stops retrying with
    /// [`StopReason::RetryAfterTooLong`](crate::StopReason::RetryAfterTooLong) rather than
    /// calling again before the server asked. After a hinted wait, the backoff restarts from
    /// its initial delay (gRPC A6).
    pub const fn with_max_retry_after(mut self, max_retry_after: Duration) -> Self {
        self.max_retry_after = max_retry_after;
        self
    }

    /// The maximum number of attempts.
    pub const fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The backoff between attempts.
    pub const fn backoff(&self) -> Backoff {
        self.backoff
    }

    /// The longest Retry-After hint honoured.
    pub const fn max_retry_after(&self) -> Duration {
        self.max_retry_after
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// Zero attempts, or an invalid backoff (see [`Backoff::validate`]).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_attempts == 0 {
            return Err(ConfigError::new(
                "max_attempts",
                "0 attempts would never call the operation; max_attempts counts the first call, so use 1 for no retries",
            ));
        }
        self.backoff.validate()
    }
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self::new()
    }
}
