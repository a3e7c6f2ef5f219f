use std::time::Duration;

use crate::ConfigError;
use crate::backoff::Backoff;

/// The settings of a [`Retry`](super::Retry): how many attempts, how long between them, and how
/// far to honour a server's Retry-After. `Copy`; validated once by
/// [`Retry::new`](super::Retry::new).
///
/// Defaults: 3 attempts (the first call and two retries), exponential backoff from 100 ms
/// doubling to at most 10 s with [full jitter](crate::backoff::Jitter::Full), Retry-After
/// hints honoured up to 60 s, and no limit on the time spent retrying (beyond the deadline's).
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
    pub(crate) max_duration: Option<Duration>,
    pub(crate) first_attempt_timed: bool,
}

impl RetryConfig {
    /// The defaults described on the type.
    pub const fn new() -> Self {
        Self {
            max_attempts: 3,
            backoff: Backoff::exponential(Duration::from_millis(100))
                .with_max_delay(Duration::from_secs(10)),
            max_retry_after: Duration::from_secs(60),
            max_duration: None,
            first_attempt_timed: false,
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

    /// Limits the time a call spends retrying, independent of any deadline (failsafe's and
    /// backon's max duration): counted from the start of the first attempt, a retry whose sleep
    /// would end after `max_duration` is not made, and the call stops with
    /// [`StopReason::MaxDuration`](crate::StopReason::MaxDuration) and the last failure. A sleep
    /// that ends exactly at the limit is allowed. Must not be zero.
    ///
    /// It bounds when the last retry may start, not how long that attempt runs: a deadline (or
    /// an attempt timeout in a [`Pipeline`](crate::Pipeline)) bounds that. Unlike a deadline it is
    /// this policy's own budget of time, invisible to the operation and to the services it
    /// calls. Setting it makes every call read the clock once at its start.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use staunch::{ManualClock, Retry, RetryConfig, StopReason};
    ///
    /// let retry = Retry::new(
    ///     RetryConfig::new()
    ///         .with_max_attempts(100)
    ///         .with_max_duration(Duration::from_secs(2)),
    /// )?
    /// .with_clock(ManualClock::new().into()); // virtual sleeps, for this example
    /// let err = retry.call_blocking(|| Err::<(), _>("unavailable")).unwrap_err();
    /// assert_eq!(err.reason(), StopReason::MaxDuration);
    /// assert!(err.attempts() < 100);
    /// # Ok::<(), staunch::ConfigError>(())
    /// ```
    pub const fn with_max_duration(mut self, max_duration: Duration) -> Self {
        self.max_duration = Some(max_duration);
        self
    }

    /// Times the first attempt of every call, so that its duration is known to the error's
    /// [`attempt_log`](crate::Error::attempt_log) and the retry hook. Default: off.
    ///
    /// Off, the first attempt is timed only when the call reads the clock at its start anyway
    /// (a deadline, a ratio budget, [`with_max_duration`](Self::with_max_duration)) or with the
    /// `metrics` feature; otherwise its duration is reported as unknown (`None`), never as a
    /// made-up number, and a call whose first attempt succeeds reads no clock at all. On, every
    /// call reads the clock once more at its start (~25 ns with the system clock). Later
    /// attempts are always timed: they follow a failure, which reads the clock anyway.
    pub const fn with_first_attempt_timed(mut self, timed: bool) -> Self {
        self.first_attempt_timed = timed;
        self
    }

    /// Whether every call times its first attempt.
    pub const fn first_attempt_timed(&self) -> bool {
        self.first_attempt_timed
    }

    /// Whether a call reads the clock at its start (for its own sake; a deadline or a ratio
    /// budget may ask too).
    pub(crate) const fn reads_start(&self) -> bool {
        self.first_attempt_timed || self.max_duration.is_some() || cfg!(feature = "metrics")
    }

    /// The limit on the time spent retrying, if any.
    pub const fn max_duration(&self) -> Option<Duration> {
        self.max_duration
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
    /// Zero attempts, a zero `max_duration`, or an invalid backoff (see
    /// [`Backoff::validate`]).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_attempts == 0 {
            return Err(ConfigError::new(
                "max_attempts",
                "0 attempts would never call the operation; max_attempts counts the first call, so use 1 for no retries",
            ));
        }
        if self.max_duration == Some(Duration::ZERO) {
            return Err(ConfigError::new(
                "max_duration",
                "0 would refuse every retry that waits at all; set the time retrying may take (such as 10s), or use max_attempts 1 for no retries",
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
