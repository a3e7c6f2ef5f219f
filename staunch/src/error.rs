//! Errors shared by every policy.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use crate::breaker::CircuitOpen;
use crate::classify::Class;
use crate::deadline::Elapsed;
use crate::limit::{Refusal, Refused};

/// An invalid configuration, found when a policy is built, never at call time.
///
/// The message names the setting and says what to change.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use staunch::backoff::Backoff;
///
/// let err = Backoff::exponential(Duration::from_millis(10))
///     .with_multiplier(0.5)
///     .validate()
///     .unwrap_err();
/// assert_eq!(err.field(), "multiplier");
/// assert!(err.to_string().contains("at least 1"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    field: &'static str,
    message: Cow<'static, str>,
}

impl ConfigError {
    pub(crate) fn new(field: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }

    /// The name of the offending setting, as its `with_*` setter spells it.
    pub fn field(&self) -> &'static str {
        self.field
    }

    /// What is wrong and what to change.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid `{}`: {}", self.field, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Why a call ended in an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StopReason {
    /// The last failure was not retriable (classified permanent or ignored).
    Permanent,
    /// Every allowed attempt ran and failed.
    Exhausted,
    /// The deadline has passed, or the next delay would end after it.
    Deadline,
    /// The retry budget refused another retry.
    Budget,
    /// The caller cancelled the call.
    Cancelled,
    /// The server's Retry-After hint asked for a longer wait than `max_retry_after` allows.
    RetryAfterTooLong,
    /// An attempt timed out and was not retried.
    Timeout,
    /// The circuit breaker rejected the attempt, and an open circuit is not retried.
    CircuitOpen,
    /// The fallback ran and failed too; the call's own error is [`Error::original`].
    FallbackFailed,
    /// The next sleep would have taken the call past its time limit for retrying,
    /// [`RetryConfig::with_max_duration`](crate::RetryConfig::with_max_duration).
    MaxDuration,
    /// A local admission check (a concurrency limit, throttling, a rate limit) refused the
    /// attempt, for this reason, and a refusal is not retried. Never a failure of the
    /// dependency: see [`Refused`].
    Refused(Refusal),
}

impl StopReason {
    /// A short lowercase name, as used in telemetry labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Permanent => "permanent",
            Self::Exhausted => "exhausted",
            Self::Deadline => "deadline",
            Self::Budget => "budget",
            Self::Cancelled => "cancelled",
            Self::RetryAfterTooLong => "retry_after_too_long",
            Self::Timeout => "timeout",
            Self::CircuitOpen => "circuit_open",
            Self::FallbackFailed => "fallback_failed",
            Self::MaxDuration => "max_duration",
            Self::Refused(Refusal::LimitFull) => "refused_limit_full",
            Self::Refused(Refusal::QueueTimeout) => "refused_queue_timeout",
            Self::Refused(Refusal::Deadline) => "refused_deadline",
            Self::Refused(Refusal::Throttled) => "refused_throttled",
            Self::Refused(Refusal::RateLimited) => "refused_rate_limited",
        }
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Permanent => "the failure is not retriable",
            Self::Exhausted => "attempts exhausted",
            Self::Deadline => "no time left before the deadline",
            Self::Budget => "the retry budget is spent",
            Self::Cancelled => "cancelled",
            Self::RetryAfterTooLong => "the server's Retry-After exceeds max_retry_after",
            Self::Timeout => "the attempt timed out",
            Self::CircuitOpen => "the circuit is open",
            Self::FallbackFailed => "the fallback failed",
            Self::MaxDuration => "retrying would outlast max_duration",
            Self::Refused(reason) => return write!(f, "refused locally: {reason}"),
        })
    }
}

/// What made an attempt fail: the operation's own error, or a policy that stopped it.
#[derive(Debug)]
#[non_exhaustive]
pub enum Failure<E> {
    /// The operation's own error.
    Inner(E),
    /// The attempt ran out of time.
    Timeout(Elapsed),
    /// The circuit breaker refused the attempt.
    CircuitOpen(CircuitOpen),
    /// A local admission check refused the attempt (see [`Refused`]).
    Refused(Refused),
}

impl<E> Failure<E> {
    /// The operation's error, if that is what failed.
    pub fn inner(&self) -> Option<&E> {
        match self {
            Self::Inner(e) => Some(e),
            _ => None,
        }
    }

    /// Takes the operation's error out, if that is what failed.
    pub fn into_inner(self) -> Option<E> {
        match self {
            Self::Inner(e) => Some(e),
            _ => None,
        }
    }
}

impl<E: fmt::Display> fmt::Display for Failure<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Inner(e) => e.fmt(f),
            Self::Timeout(elapsed) => elapsed.fmt(f),
            Self::CircuitOpen(open) => open.fmt(f),
            Self::Refused(refused) => refused.fmt(f),
        }
    }
}

/// One finished attempt of a call, as [`Error::attempt_log`] reports it: its number, how long
/// it took, and its class.
///
/// The duration is `None` when it was not measured: the first attempt's start is read only
/// when the call needs the time anyway (a deadline, a ratio budget, `max_duration`), when
/// [`RetryConfig::with_first_attempt_timed`](crate::RetryConfig::with_first_attempt_timed) asks,
/// or with the `metrics` feature, so that a call whose first attempt succeeds reads no clock.
/// A duration staunch did not measure is reported as unknown, never as a guess. Every later
/// attempt is timed: it follows a failure, which reads the clock anyway.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AttemptRecord {
    number: u32,
    duration: Option<Duration>,
    class: Class,
}

impl AttemptRecord {
    pub(crate) const fn new(number: u32, duration: Option<Duration>, class: Class) -> Self {
        Self {
            number,
            duration,
            class,
        }
    }

    /// The attempt's number: 1 for the first call, 2 for the first retry, ...
    pub const fn number(&self) -> u32 {
        self.number
    }

    /// How long the attempt took, from its start to its outcome, if that was measured.
    pub const fn duration(&self) -> Option<Duration> {
        self.duration
    }

    /// How the attempt's outcome was classified.
    pub const fn class(&self) -> Class {
        self.class
    }
}

/// The error of a call that did not succeed: why it stopped, how many attempts ran, for how long,
/// and what made the last attempt fail.
///
/// The last failure is the [`source`](std::error::Error::source); the operation's own error
/// comes back out with [`into_inner`](Self::into_inner). A call can end with no failure at all:
/// cancelled or out of time before its first attempt.
///
/// # Examples
///
/// ```
/// use staunch::{Retry, RetryConfig, StopReason};
///
/// let retry = Retry::new(RetryConfig::new().with_max_attempts(2))?;
/// let err = retry.call_blocking(|| Err::<(), _>("refused")).unwrap_err();
/// assert_eq!(err.reason(), StopReason::Exhausted);
/// assert_eq!(err.attempts(), 2);
/// assert_eq!(err.into_inner(), Some("refused"));
/// # Ok::<(), staunch::ConfigError>(())
/// ```
///
/// One pointer wide: the details sit behind a `Box`, allocated only when a call fails, so that
/// the `Result` of a call that succeeds stays as small as its value.
pub struct Error<E> {
    inner: Box<Details<E>>,
}

struct Details<E> {
    reason: StopReason,
    attempts: u32,
    elapsed: Duration,
    last: Option<Failure<E>>,
    /// Every attempt that finished, in order.
    log: Vec<AttemptRecord>,
    /// Set when a fallback failed: the error it was called for.
    original: Option<Error<E>>,
}

impl<E> Error<E> {
    pub(crate) fn new(
        reason: StopReason,
        attempts: u32,
        elapsed: Duration,
        inner: Option<E>,
    ) -> Self {
        Self::with_failure(reason, attempts, elapsed, inner.map(Failure::Inner))
    }

    pub(crate) fn with_failure(
        reason: StopReason,
        attempts: u32,
        elapsed: Duration,
        last: Option<Failure<E>>,
    ) -> Self {
        Self {
            inner: Box::new(Details {
                reason,
                attempts,
                elapsed,
                last,
                log: Vec::new(),
                original: None,
            }),
        }
    }

    /// The same error with the log of its attempts.
    pub(crate) fn with_log(mut self, log: Vec<AttemptRecord>) -> Self {
        self.inner.log = log;
        self
    }

    /// The error of a fallback that failed while handling `original`.
    pub(crate) fn fallback_failed(error: E, original: Self) -> Self {
        Self {
            inner: Box::new(Details {
                reason: StopReason::FallbackFailed,
                attempts: original.inner.attempts,
                elapsed: original.inner.elapsed,
                last: Some(Failure::Inner(error)),
                log: Vec::new(),
                original: Some(original),
            }),
        }
    }

    /// The same error with another reason.
    #[cfg(feature = "tokio")]
    pub(crate) fn with_reason(mut self, reason: StopReason) -> Self {
        self.inner.reason = reason;
        self
    }

    /// Why the call stopped.
    pub fn reason(&self) -> StopReason {
        self.inner.reason
    }

    /// How many attempts ran (0 if the call stopped before the first).
    pub fn attempts(&self) -> u32 {
        self.inner.attempts
    }

    /// Time from the end of the first attempt to the stop: the waits and every later attempt.
    /// The first attempt is not timed, so that a call that succeeds never reads the clock.
    pub fn elapsed(&self) -> Duration {
        self.inner.elapsed
    }

    /// Every attempt that finished, in order: how long each took (when measured; see
    /// [`AttemptRecord`]) and its class. Empty for a call that stopped before its first attempt;
    /// an attempt cut short by cancellation is not in it. For a failed fallback, the log of the
    /// call it was handling.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use staunch::{ManualClock, Retry, RetryConfig};
    ///
    /// let clock = ManualClock::new();
    /// let retry = Retry::new(RetryConfig::new().with_max_attempts(3).with_first_attempt_timed(true))?
    ///     .with_clock(clock.clone().into());
    /// let err = retry
    ///     .call_blocking(|| {
    ///         clock.advance(Duration::from_millis(40)); // each attempt takes 40 ms
    ///         Err::<(), _>("timeout")
    ///     })
    ///     .unwrap_err();
    /// for attempt in err.attempt_log() {
    ///     assert_eq!(attempt.duration(), Some(Duration::from_millis(40)));
    /// }
    /// assert_eq!(err.attempt_log().len(), 3);
    /// # Ok::<(), staunch::ConfigError>(())
    /// ```
    pub fn attempt_log(&self) -> &[AttemptRecord] {
        match &self.inner.original {
            Some(original) => original.attempt_log(),
            None => &self.inner.log,
        }
    }

    /// Takes the log of attempts out (for the tower error).
    #[cfg(feature = "tower")]
    pub(crate) fn take_log(&mut self) -> Vec<AttemptRecord> {
        match &mut self.inner.original {
            Some(original) => original.take_log(),
            None => std::mem::take(&mut self.inner.log),
        }
    }

    /// What made the last attempt fail, if one ran.
    pub fn last_failure(&self) -> Option<&Failure<E>> {
        self.inner.last.as_ref()
    }

    /// Takes out what made the last attempt fail.
    pub fn into_last_failure(self) -> Option<Failure<E>> {
        self.inner.last
    }

    /// The operation's own error from the last attempt, if that is what failed.
    pub fn inner(&self) -> Option<&E> {
        self.inner.last.as_ref().and_then(Failure::inner)
    }

    /// Takes the operation's own error out.
    pub fn into_inner(self) -> Option<E> {
        self.inner.last.and_then(Failure::into_inner)
    }

    /// The timeout, if the last attempt timed out.
    pub fn timeout(&self) -> Option<&Elapsed> {
        match &self.inner.last {
            Some(Failure::Timeout(elapsed)) => Some(elapsed),
            _ => None,
        }
    }

    /// The breaker's rejection, if the last attempt was refused by an open circuit: it says
    /// when the next probe is admitted.
    pub fn circuit_open(&self) -> Option<&CircuitOpen> {
        match &self.inner.last {
            Some(Failure::CircuitOpen(open)) => Some(open),
            _ => None,
        }
    }

    /// The local refusal, if the last attempt was refused by a concurrency limit, throttling or
    /// a rate limit: it says why and, when known, when to try again.
    pub fn refused(&self) -> Option<&Refused> {
        match &self.inner.last {
            Some(Failure::Refused(refused)) => Some(refused),
            _ => None,
        }
    }

    /// When a fallback failed: the error of the call it was handling.
    pub fn original(&self) -> Option<&Self> {
        self.inner.original.as_ref()
    }

    /// Whether the call stopped because the failure was not retriable.
    pub fn is_permanent(&self) -> bool {
        self.reason() == StopReason::Permanent
    }

    /// Whether every allowed attempt ran.
    pub fn is_exhausted(&self) -> bool {
        self.reason() == StopReason::Exhausted
    }

    /// Whether the deadline stopped the call.
    pub fn is_deadline(&self) -> bool {
        self.reason() == StopReason::Deadline
    }

    /// Whether the retry budget stopped the call.
    pub fn is_budget(&self) -> bool {
        self.reason() == StopReason::Budget
    }

    /// Whether the caller cancelled the call.
    pub fn is_cancelled(&self) -> bool {
        self.reason() == StopReason::Cancelled
    }

    /// Whether an open circuit stopped the call.
    pub fn is_circuit_open(&self) -> bool {
        self.reason() == StopReason::CircuitOpen
    }

    /// Whether a local admission check refused the call (see [`StopReason::Refused`]).
    pub fn is_refused(&self) -> bool {
        matches!(self.reason(), StopReason::Refused(_))
    }

    /// Whether the last attempt timed out (whatever then stopped the call).
    pub fn is_timeout(&self) -> bool {
        self.timeout().is_some()
    }

    /// Maps the operation's error, keeping the rest.
    pub fn map_inner<F>(self, mut f: impl FnMut(E) -> F) -> Error<F> {
        self.map_last(&mut |last| {
            Some(match last {
                Failure::Inner(e) => Failure::Inner(f(e)),
                Failure::Timeout(elapsed) => Failure::Timeout(elapsed),
                Failure::CircuitOpen(open) => Failure::CircuitOpen(open),
                Failure::Refused(refused) => Failure::Refused(refused),
            })
        })
    }

    /// Rebuilds the error (and the one a failed fallback was handling) around a new last failure.
    fn map_last<F>(self, f: &mut dyn FnMut(Failure<E>) -> Option<Failure<F>>) -> Error<F> {
        let Details {
            reason,
            attempts,
            elapsed,
            last,
            log,
            original,
        } = *self.inner;
        Error {
            inner: Box::new(Details {
                reason,
                attempts,
                elapsed,
                last: last.and_then(&mut *f),
                log,
                original: original.map(|original| original.map_last(f)),
            }),
        }
    }
}

impl<E> Error<Failure<E>> {
    /// Collapses the error of a retry around policies (whose failures are already
    /// [`Failure`]s) into an error of the operation.
    #[cfg(feature = "tokio")]
    pub(crate) fn flatten(self) -> Error<E> {
        self.map_last(&mut Failure::into_inner)
    }
}

impl<E: fmt::Debug> fmt::Debug for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let details = &self.inner;
        f.debug_struct("Error")
            .field("reason", &details.reason)
            .field("attempts", &details.attempts)
            .field("elapsed", &details.elapsed)
            .field("last", &details.last)
            .field("log", &details.log)
            .field("original", &details.original)
            .finish()
    }
}

impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let details = &self.inner;
        write!(f, "{} after {} attempt", details.reason, details.attempts)?;
        if details.attempts != 1 {
            f.write_str("s")?;
        }
        if details.log.len() > 1 {
            f.write_str(" (")?;
            for (i, class) in details.log.iter().map(AttemptRecord::class).enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                match class {
                    Class::Success => f.write_str("success")?,
                    Class::Ignored => f.write_str("ignored")?,
                    Class::Permanent => f.write_str("permanent")?,
                    Class::Transient => f.write_str("transient")?,
                    Class::RetryAfter(hint) => write!(f, "retry after {hint:?}")?,
                }
            }
            f.write_str(")")?;
        }
        if let Some(last) = &details.last {
            write!(f, "; last error: {last}")?;
        }
        if let Some(original) = &details.original {
            write!(f, "; while handling: {original}")?;
        }
        Ok(())
    }
}

impl<E: std::error::Error + 'static> std::error::Error for Error<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self.inner.last.as_ref()? {
            Failure::Inner(e) => Some(e),
            Failure::Timeout(elapsed) => Some(elapsed),
            Failure::CircuitOpen(open) => Some(open),
            Failure::Refused(refused) => Some(refused),
        }
    }
}
