//! The retry hook: what a policy tells the code around it each time it schedules a retry.

use std::fmt;
use std::time::Duration;

use crate::AttemptRecord;
#[cfg(feature = "tokio")]
use crate::Failure;
use crate::breaker::CircuitOpen;
use crate::classify::{Class, Classify};
use crate::deadline::Elapsed;
use crate::limit::Refused;

/// A retry a policy has just scheduled: the attempt that failed, its facts, and the wait before
/// the next. Passed to the hook added with [`Retry::on_retry`](super::Retry::on_retry) or
/// [`Pipeline::on_retry`](crate::Pipeline::on_retry), or to a classifier's own
/// [`Classify::on_retry`].
///
/// `T` and `E` are the operation's success and error types: the hook sees the failure as it
/// is, an error or a value classified as a failure (an HTTP 503 that arrived as `Ok`), or, in
/// a pipeline, the attempt's timeout or the breaker's refusal.
///
/// # When it is called
///
/// Once per retry, after the policy has decided to retry (the budget has agreed) and before it
/// waits, on the thread that ran the attempt and never under a lock: the hook may call back
/// into the policy, its breaker or its budget. Not for the attempt that ends the call (that
/// one is in the error's [`attempt_log`](crate::Error::attempt_log)). A hook that blocks delays
/// the retry; one that panics unwinds through the call, as the operation's own panic would.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use staunch::retry::RetryEvent;
/// use staunch::{ManualClock, Retry, RetryConfig};
///
/// #[derive(Debug)]
/// struct Unavailable;
///
/// let retry = Retry::new(RetryConfig::new().with_max_attempts(3))?
///     .with_name("inventory")
///     .with_clock(ManualClock::new().into()) // virtual sleeps, for this example
///     .on_retry(|event: &RetryEvent<'_, u32, Unavailable>| {
///         eprintln!(
///             "{}: attempt {} failed ({:?}, {:?}); retrying in {:?}",
///             event.policy(),
///             event.attempt(),
///             event.error(),
///             event.class(),
///             event.delay(),
///         );
///     });
/// let err = retry.call_blocking(|| Err::<u32, _>(Unavailable)).unwrap_err();
/// assert_eq!(err.attempts(), 3); // two events, then the error
/// # Ok::<(), staunch::ConfigError>(())
/// ```
///
/// # The same kind of hook for other policies
///
/// A hook is a closure of one event type, called by a classifier method with a default that
/// does nothing, so that it sees the outcome's own types without a type parameter for it on
/// every policy. Policies that act on other occasions (a hedged attempt sent, a call refused
/// locally) report the same way: an event of their own, through a method of the same shape.
pub struct RetryEvent<'a, T, E> {
    policy: &'a str,
    record: AttemptRecord,
    delay: Duration,
    failure: Failed<'a, T, E>,
}

/// What made the attempt fail, borrowed.
enum Failed<'a, T, E> {
    Value(&'a T),
    Error(&'a E),
    // Only a pipeline's attempts (feature `tokio`) time out or meet a breaker.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    Timeout(&'a Elapsed),
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    CircuitOpen(&'a CircuitOpen),
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    Refused(&'a Refused),
}

impl<T, E> Clone for Failed<'_, T, E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T, E> Copy for Failed<'_, T, E> {}

impl<'a, T, E> RetryEvent<'a, T, E> {
    /// The name of the policy that retries (see [`Retry::with_name`](super::Retry::with_name)).
    pub fn policy(&self) -> &'a str {
        self.policy
    }

    /// The attempt that failed: 1 for the first call. The next attempt is this plus one.
    pub fn attempt(&self) -> u32 {
        self.record.number()
    }

    /// The wait before the next attempt.
    pub fn delay(&self) -> Duration {
        self.delay
    }

    /// How the failed attempt was classified.
    pub fn class(&self) -> Class {
        self.record.class()
    }

    /// How long the failed attempt took, if measured (see [`AttemptRecord`]).
    pub fn duration(&self) -> Option<Duration> {
        self.record.duration()
    }

    /// The failed attempt's record, as the error's log will hold it.
    pub fn record(&self) -> AttemptRecord {
        self.record
    }

    /// The operation's error, if that is what failed.
    pub fn error(&self) -> Option<&'a E> {
        match self.failure {
            Failed::Error(error) => Some(error),
            _ => None,
        }
    }

    /// The operation's value, if the classifier called a success a failure.
    pub fn value(&self) -> Option<&'a T> {
        match self.failure {
            Failed::Value(value) => Some(value),
            _ => None,
        }
    }

    /// The attempt's timeout, if it ran out of time (in a pipeline with an attempt timeout or
    /// a deadline).
    pub fn timeout(&self) -> Option<&'a Elapsed> {
        match self.failure {
            Failed::Timeout(elapsed) => Some(elapsed),
            _ => None,
        }
    }

    /// The breaker's refusal, if an open circuit refused the attempt (in a pipeline that waits
    /// for the breaker's next probe).
    pub fn circuit_open(&self) -> Option<&'a CircuitOpen> {
        match self.failure {
            Failed::CircuitOpen(open) => Some(open),
            _ => None,
        }
    }

    /// The local refusal, if an admission check (a concurrency limit, throttling, a rate limit)
    /// refused the attempt. The pipeline does not retry a refusal today (its class is
    /// permanent), so its hook sees none; this keeps the event complete should that change.
    pub fn refused(&self) -> Option<&'a Refused> {
        match self.failure {
            Failed::Refused(refused) => Some(refused),
            _ => None,
        }
    }
}

impl<T, E> fmt::Debug for RetryEvent<'_, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryEvent")
            .field("policy", &self.policy)
            .field("attempt", &self.attempt())
            .field("delay", &self.delay)
            .field("class", &self.class())
            .field("duration", &self.duration())
            .finish_non_exhaustive()
    }
}

/// What the state machine knows of a scheduled retry, before it is dressed as an event.
#[derive(Clone, Copy)]
pub(crate) struct Scheduled<'a> {
    pub(crate) policy: &'a str,
    pub(crate) record: AttemptRecord,
    pub(crate) delay: Duration,
}

/// Hands a scheduled retry and the failed result to a classifier's hook: the retry loops of a
/// [`Retry`](super::Retry) see `Result<T, E>`, the pipeline's `Result<T, Failure<E>>`.
pub(crate) trait Observe<T, E> {
    fn retrying(&self, scheduled: Scheduled<'_>, result: &Result<T, E>);
}

/// The hook of a classifier of the operation's own results.
pub(crate) struct Direct<'a, C>(pub(crate) &'a C);

impl<T, E, C: Classify<T, E>> Observe<T, E> for Direct<'_, C> {
    #[inline]
    fn retrying(&self, scheduled: Scheduled<'_>, result: &Result<T, E>) {
        let failure = match result {
            Ok(value) => Failed::Value(value),
            Err(error) => Failed::Error(error),
        };
        self.0.on_retry(&event(scheduled, failure));
    }
}

/// The hook of a pipeline's classifier, whose attempts can also time out or be refused.
#[cfg(feature = "tokio")]
pub(crate) struct ViaFailure<'a, C>(pub(crate) &'a C);

#[cfg(feature = "tokio")]
impl<T, E, C: Classify<T, E>> Observe<T, Failure<E>> for ViaFailure<'_, C> {
    #[inline]
    fn retrying(&self, scheduled: Scheduled<'_>, result: &Result<T, Failure<E>>) {
        let failure = match result {
            Ok(value) => Failed::Value(value),
            Err(Failure::Inner(error)) => Failed::Error(error),
            Err(Failure::Timeout(elapsed)) => Failed::Timeout(elapsed),
            Err(Failure::CircuitOpen(open)) => Failed::CircuitOpen(open),
            Err(Failure::Refused(refused)) => Failed::Refused(refused),
        };
        self.0.on_retry(&event(scheduled, failure));
    }
}

fn event<'a, T, E>(scheduled: Scheduled<'a>, failure: Failed<'a, T, E>) -> RetryEvent<'a, T, E> {
    RetryEvent {
        policy: scheduled.policy,
        record: scheduled.record,
        delay: scheduled.delay,
        failure,
    }
}

/// A classifier with a retry hook: made by [`Retry::on_retry`](super::Retry::on_retry) and
/// [`Pipeline::on_retry`](crate::Pipeline::on_retry). It classifies as `C` does, and after
/// `C`'s own hook calls `F` with each [`RetryEvent`].
#[derive(Clone, Copy)]
pub struct OnRetry<C, F> {
    classifier: C,
    hook: F,
}

impl<C, F> OnRetry<C, F> {
    /// `classifier`, with `hook` called for each retry.
    pub const fn new(classifier: C, hook: F) -> Self {
        Self { classifier, hook }
    }

    /// The classifier it wraps.
    pub fn classifier(&self) -> &C {
        &self.classifier
    }
}

impl<T, E, C, F> Classify<T, E> for OnRetry<C, F>
where
    C: Classify<T, E>,
    F: Fn(&RetryEvent<'_, T, E>),
{
    #[inline]
    fn classify(&self, result: &Result<T, E>) -> Class {
        self.classifier.classify(result)
    }

    fn on_retry(&self, event: &RetryEvent<'_, T, E>) {
        self.classifier.on_retry(event);
        (self.hook)(event);
    }
}

impl<C: fmt::Debug, F> fmt::Debug for OnRetry<C, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnRetry")
            .field("classifier", &self.classifier)
            .finish_non_exhaustive()
    }
}
