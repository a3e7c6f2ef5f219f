use std::borrow::Cow;
use std::fmt;

use super::{OnRetry, RetryEvent};
use crate::classify::{AllTransient, RetryIf};
use crate::retry::{RetryBudget, RetryConfig};
use crate::telemetry::Name;
use crate::{CancellationToken, Clock, ConfigError, Deadline};

/// A retry policy: a validated [`RetryConfig`], a classifier, and optionally a shared
/// [`RetryBudget`]. Runs operations with [`call`](Self::call) (async) and
/// [`call_blocking`](Self::call_blocking), or wraps a tower service through
/// [`RetryLayer`](super::RetryLayer).
///
/// The classifier `C` decides what is retried; the default, [`AllTransient`], retries every
/// error. Build one with [`Retry::new`], then [`retry_if`](Self::retry_if) or
/// [`classify`](Self::classify).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use staunch::backoff::Backoff;
/// use staunch::{Retry, RetryConfig};
///
/// #[derive(Debug)]
/// enum ApiError { Unavailable, NotFound }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), staunch::ConfigError> {
/// let retry = Retry::new(
///     RetryConfig::new()
///         .with_max_attempts(4)
///         .with_backoff(Backoff::exponential(Duration::from_millis(20))),
/// )?
/// .retry_if(|e: &ApiError| matches!(e, ApiError::Unavailable));
///
/// let mut calls = 0;
/// let value = retry
///     .call(|| {
///         calls += 1;
///         let outcome = if calls < 3 { Err(ApiError::Unavailable) } else { Ok(42) };
///         async move { outcome }
///     })
///     .await
///     .expect("the third attempt succeeds");
/// assert_eq!((value, calls), (42, 3));
///
/// let err = retry.call(|| async { Err::<(), _>(ApiError::NotFound) }).await.unwrap_err();
/// assert!(err.is_permanent());
/// assert_eq!(err.attempts(), 1);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Retry<C = AllTransient> {
    pub(crate) config: RetryConfig,
    pub(crate) classifier: C,
    pub(crate) budget: Option<RetryBudget>,
    pub(crate) clock: Clock,
    pub(crate) name: Name,
    /// Whether a call reads the clock at its start whatever its deadline: for the config
    /// (`max_duration`, a timed first attempt, `metrics`) or for a ratio budget. One flag, so
    /// that a call whose first attempt succeeds tests one byte to know.
    pub(crate) needs_start: bool,
}

impl Retry {
    /// Builds a policy that retries every error.
    ///
    /// # Errors
    ///
    /// The configuration is invalid (zero attempts, a bad backoff); the message says what to
    /// change.
    pub fn new(config: RetryConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self::from_valid(config))
    }

    /// A policy from a configuration known to be valid.
    pub(crate) const fn from_valid(config: RetryConfig) -> Self {
        Self {
            config,
            classifier: AllTransient,
            budget: None,
            clock: Clock::system(),
            name: Name::DEFAULT,
            needs_start: config.reads_start(),
        }
    }
}

impl<C> Retry<C> {
    /// Classifies outcomes with `classifier` (any `Fn(&Result<T, E>) -> Class`, or a
    /// [`Classify`](crate::classify::Classify) type), for hints, successes that are really
    /// failures, and ignored errors.
    pub fn classify<C2>(self, classifier: C2) -> Retry<C2> {
        Retry {
            config: self.config,
            classifier,
            budget: self.budget,
            clock: self.clock,
            name: self.name,
            needs_start: self.needs_start,
        }
    }

    /// Takes the classifier out, leaving the rest of the policy (for the pipeline).
    #[cfg(feature = "tokio")]
    pub(crate) fn split_classifier(self) -> (Retry, C) {
        let Self {
            config,
            classifier,
            budget,
            clock,
            name,
            needs_start,
        } = self;
        let rest = Retry {
            config,
            classifier: AllTransient,
            budget,
            clock,
            name,
            needs_start,
        };
        (rest, classifier)
    }

    /// Retries only the errors for which `predicate` returns `true`; the others are permanent.
    pub fn retry_if<F>(self, predicate: F) -> Retry<RetryIf<F>> {
        self.classify(RetryIf::new(predicate))
    }

    /// Shares `budget` with every other policy that holds it: a retry it refuses ends the call
    /// with [`StopReason::Budget`](crate::StopReason::Budget).
    pub fn with_budget(mut self, budget: RetryBudget) -> Self {
        self.needs_start = self.config.reads_start() || budget.needs_clock();
        self.budget = Some(budget);
        self
    }

    /// Reads time from `clock` (and sleeps on it in blocking calls). The async runners always
    /// sleep on tokio's timer. Default: [`Clock::system`].
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Names the policy in `tracing` events, `metrics` labels (label `policy`) and
    /// [`RetryEvent`]s: a `&'static str` or an owned `String` (see [`Name`]). Default:
    /// `"default"`.
    pub fn with_name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = Name::from(name.into());
        self
    }

    /// The policy's name.
    pub fn name(&self) -> &Name {
        &self.name
    }

    /// Calls `hook` for each retry this policy schedules, with the attempt that failed, its
    /// duration and class, the failure, and the wait before the next attempt: after the
    /// decision, before the wait, never under a lock (see [`RetryEvent`]). Without `tracing`,
    /// this is how code follows retries. Hooks added one after another all run, in that order.
    ///
    /// The hook is typed by the operation's outcome, `RetryEvent<'_, T, E>`; where the policy is
    /// built and called in the same function the types are inferred, elsewhere name them in
    /// the closure's argument.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use staunch::retry::RetryEvent;
    /// use staunch::{ManualClock, Retry, RetryConfig};
    ///
    /// static RETRIES: AtomicU32 = AtomicU32::new(0);
    ///
    /// let retry = Retry::new(RetryConfig::new().with_max_attempts(4))?
    ///     .with_clock(ManualClock::new().into()) // virtual sleeps, for this example
    ///     .on_retry(|event: &RetryEvent<'_, (), std::io::Error>| {
    ///         RETRIES.fetch_add(1, Ordering::Relaxed);
    ///         assert!(event.error().is_some());
    ///     });
    /// let _ = retry.call_blocking(|| Err::<(), _>(std::io::Error::other("reset")));
    /// assert_eq!(RETRIES.load(Ordering::Relaxed), 3);
    /// # Ok::<(), staunch::ConfigError>(())
    /// ```
    pub fn on_retry<T, E, F>(self, hook: F) -> Retry<OnRetry<C, F>>
    where
        F: Fn(&RetryEvent<'_, T, E>),
    {
        Retry {
            config: self.config,
            classifier: OnRetry::new(self.classifier, hook),
            budget: self.budget,
            clock: self.clock,
            name: self.name,
            needs_start: self.needs_start,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &RetryConfig {
        &self.config
    }

    /// The budget, if any.
    pub fn budget(&self) -> Option<&RetryBudget> {
        self.budget.as_ref()
    }
}

impl<C> fmt::Debug for Retry<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("name", &self.name)
            .field("config", &self.config)
            .field("budget", &self.budget)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

/// Per-call settings for [`Retry::call_with`] and [`Retry::call_blocking_with`]: an explicit
/// deadline (the tighter of it and the one in scope applies) and a cancellation token.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use staunch::retry::CallOptions;
/// use staunch::{CancellationToken, Deadline};
///
/// let token = CancellationToken::new();
/// let options = CallOptions::new()
///     .with_deadline(Deadline::after(Duration::from_secs(2)))
///     .with_cancellation(token.clone());
/// ```
#[derive(Clone, Debug, Default)]
pub struct CallOptions {
    pub(crate) deadline: Option<Deadline>,
    pub(crate) cancel: Option<CancellationToken>,
}

impl CallOptions {
    /// No explicit deadline, no token.
    pub const fn new() -> Self {
        Self {
            deadline: None,
            cancel: None,
        }
    }

    /// Sets an explicit deadline.
    pub fn with_deadline(mut self, deadline: Deadline) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Stops the call when `token` fires: the wait between attempts ends at once, an in-flight
    /// async attempt is dropped, and the call ends with
    /// [`StopReason::Cancelled`](crate::StopReason::Cancelled).
    pub fn with_cancellation(mut self, token: CancellationToken) -> Self {
        self.cancel = Some(token);
        self
    }
}
