use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use super::NoFallback;
use super::admission::Admission;
use crate::breaker::{CircuitBreaker, CircuitOpen};
use crate::classify::{AllTransient, Class, RetryIf};
use crate::deadline::{AttemptTimeout, Elapsed};
use crate::fallback::{Fallback, FromFn, TryFromFn, Value};
use crate::hedge::Hedge;
use crate::limit::{AdaptiveThrottle, ConcurrencyLimit};
use crate::retry::{OnRetry, RetryEvent};
use crate::telemetry::Name;
use crate::{ConfigError, Deadline, Error, Failure, Retry, RetryConfig, StopReason};

/// Every policy in one value, applied in the one correct order (see the [module docs](super)).
///
/// Build it once per dependency and share it (it is `Clone`; the breaker and budget inside are
/// shared handles). `C` classifies the operation's outcomes for retry and the breaker alike;
/// `F` is the fallback ([`NoFallback`] unless set).
///
/// | setting | default |
/// |---|---|
/// | [`retry`](Self::retry) or [`hedge`](Self::hedge) | none: one attempt |
/// | [`breaker`](Self::breaker) | none |
/// | [`attempt_timeout`](Self::attempt_timeout) | none, but every attempt is clipped to the deadline in scope |
/// | [`timeout`](Self::timeout) | none: the caller's deadline, if any, applies |
/// | [`wait_for_probe`](Self::wait_for_probe) | off: an open circuit ends the call at once |
/// | [`throttle`](Self::throttle), `rate_limit`, [`limit`](Self::limit) | none |
/// | fallback | none |
/// | [`with_name`](Self::with_name) | its retry's name (`"default"` without one) |
/// | [`on_retry`](Self::on_retry) | none |
#[derive(Clone)]
pub struct Pipeline<C = AllTransient, F = NoFallback> {
    pub(super) classifier: C,
    /// The retry loop; with no retry configured, one attempt. Its name is the pipeline's.
    pub(super) retry: Retry,
    pub(super) has_retry: bool,
    /// Hedging in retry's place, if set.
    pub(super) hedge: Option<Hedge>,
    /// Whether the name was set with `with_name`, so that a retry added later keeps it.
    pub(super) named: bool,
    pub(super) breaker: Option<CircuitBreaker>,
    pub(super) attempt_timeout: Option<AttemptTimeout>,
    pub(super) timeout: Option<Duration>,
    pub(super) wait_for_probe: bool,
    /// The local admission checks, per attempt, before the breaker.
    pub(super) admission: Admission,
    pub(super) fallback: F,
}

impl Pipeline {
    /// An empty pipeline: one attempt, every error a failure, nothing else.
    pub fn new() -> Self {
        Self {
            classifier: AllTransient,
            retry: single_attempt(),
            has_retry: false,
            hedge: None,
            named: false,
            breaker: None,
            attempt_timeout: None,
            timeout: None,
            wait_for_probe: false,
            admission: Admission::default(),
            fallback: NoFallback,
        }
    }
}

impl Default for Pipeline {
    fn default() -> Self {
        Self::new()
    }
}

fn single_attempt() -> Retry {
    // One attempt with the default backoff: valid by construction.
    Retry::from_valid(RetryConfig::new().with_max_attempts(1))
}

impl<C, F> Pipeline<C, F> {
    /// Retries with `retry`'s attempts, backoff, budget and clock; its classifier becomes the
    /// pipeline's (the breaker counts what it classifies), with any hook it has. Its name
    /// becomes the pipeline's, unless the pipeline was named with [`with_name`](Self::with_name).
    /// Replaces a [`hedge`](Self::hedge).
    pub fn retry<C2>(self, retry: Retry<C2>) -> Pipeline<C2, F> {
        let (mut retry, classifier) = retry.split_classifier();
        if self.named {
            retry.name = self.retry.name;
        }
        Pipeline {
            classifier,
            retry,
            has_retry: true,
            hedge: None,
            named: self.named,
            admission: self.admission,
            breaker: self.breaker,
            attempt_timeout: self.attempt_timeout,
            timeout: self.timeout,
            wait_for_probe: self.wait_for_probe,
            fallback: self.fallback,
        }
    }

    /// Hedges in retry's place (a pipeline retries or hedges, as in gRPC): each attempt,
    /// first and hedges alike, goes through the admission checks, the breaker and its attempt
    /// timeout, so no hedge is sent while a limit or the breaker refuses and none outlives the
    /// deadline; a dropped attempt records nothing. Through the tower layer, a hedged attempt's
    /// admission checks do not wait: one that cannot be admitted at once is not sent. `hedge`'s classifier becomes the pipeline's. Replaces a
    /// [`retry`](Self::retry).
    ///
    /// ```
    /// use std::time::Duration;
    /// use staunch::breaker::{BreakerConfig, CircuitBreaker};
    /// use staunch::deadline::AttemptTimeout;
    /// use staunch::hedge::{Hedge, HedgeConfig, HedgeDelay};
    /// use staunch::Pipeline;
    ///
    /// let reads = Pipeline::new()
    ///     .hedge(Hedge::new(HedgeConfig::new(HedgeDelay::percentile(95.0)))?)
    ///     .breaker(CircuitBreaker::new(BreakerConfig::consecutive_failures(5))?)
    ///     .attempt_timeout(AttemptTimeout::fixed(Duration::from_millis(300)))?;
    /// # Ok::<(), staunch::ConfigError>(())
    /// ```
    pub fn hedge<C2>(self, hedge: Hedge<C2>) -> Pipeline<C2, F> {
        let (hedge, classifier) = hedge.split_classifier();
        let mut retry = single_attempt();
        if self.named {
            retry.name = self.retry.name;
        }
        Pipeline {
            classifier,
            retry,
            has_retry: false,
            hedge: Some(hedge),
            named: self.named,
            breaker: self.breaker,
            attempt_timeout: self.attempt_timeout,
            timeout: self.timeout,
            wait_for_probe: self.wait_for_probe,
            admission: self.admission,
            fallback: self.fallback,
        }
    }

    /// Classifies the operation's outcomes with `classifier` (for the breaker, and for retry).
    pub fn classify<C2>(self, classifier: C2) -> Pipeline<C2, F> {
        self.map_classifier(|_| classifier)
    }

    /// The same pipeline with the classifier `f` makes of this one's.
    fn map_classifier<C2>(self, f: impl FnOnce(C) -> C2) -> Pipeline<C2, F> {
        Pipeline {
            classifier: f(self.classifier),
            retry: self.retry,
            has_retry: self.has_retry,
            hedge: self.hedge,
            named: self.named,
            breaker: self.breaker,
            attempt_timeout: self.attempt_timeout,
            timeout: self.timeout,
            wait_for_probe: self.wait_for_probe,
            admission: self.admission,
            fallback: self.fallback,
        }
    }

    /// Names the pipeline in `tracing` events and `metrics` labels (label `policy`): its retry
    /// loop and its fallback report under this name; its breaker, which other pipelines may
    /// share, under its own. A `&'static str` or an owned `String` (see [`Name`]). Default: the
    /// name of its retry, `"default"` without one.
    pub fn with_name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.retry.name = Name::from(name.into());
        self.named = true;
        self
    }

    /// The pipeline's name.
    pub fn name(&self) -> &Name {
        &self.retry.name
    }

    /// Calls `hook` for each retry the pipeline schedules (see [`Retry::on_retry`]): the event's
    /// failure is the operation's error or value, or the attempt's
    /// [`timeout`](RetryEvent::timeout), or the breaker's
    /// [`refusal`](RetryEvent::circuit_open) (with [`wait_for_probe`](Self::wait_for_probe)).
    /// Called outside any lock: the hook may ask the pipeline's breaker for its state.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use staunch::deadline::AttemptTimeout;
    /// use staunch::retry::RetryEvent;
    /// use staunch::{Pipeline, Retry, RetryConfig};
    ///
    /// let pipeline = Pipeline::new()
    ///     .retry(Retry::new(RetryConfig::new().with_max_attempts(3))?)
    ///     .attempt_timeout(AttemptTimeout::fixed(Duration::from_millis(200)))?
    ///     .with_name("pricing")
    ///     .on_retry(|event: &RetryEvent<'_, f64, std::io::Error>| {
    ///         if let Some(elapsed) = event.timeout() {
    ///             eprintln!("{}: attempt {} timed out ({elapsed})", event.policy(), event.attempt());
    ///         }
    ///     });
    /// # Ok::<(), staunch::ConfigError>(())
    /// ```
    pub fn on_retry<T, E, H>(self, hook: H) -> Pipeline<OnRetry<C, H>, F>
    where
        H: Fn(&RetryEvent<'_, T, E>),
    {
        self.map_classifier(|classifier| OnRetry::new(classifier, hook))
    }

    /// Counts only the errors for which `predicate` is `true` as (transient) failures; the
    /// others are permanent.
    pub fn retry_if<P>(self, predicate: P) -> Pipeline<RetryIf<P>, F> {
        self.classify(RetryIf::new(predicate))
    }

    /// Puts `breaker` around each attempt (inside retry, outside the attempt timeout).
    pub fn breaker(mut self, breaker: CircuitBreaker) -> Self {
        self.breaker = Some(breaker);
        self
    }

    /// Puts each attempt under the concurrency limit `limit` (inside retry, before the
    /// breaker): an attempt takes a slot, or waits in its queue as its config allows, or is
    /// refused. See the [module docs](super#overload-protection) for the order and why.
    pub fn limit(mut self, limit: ConcurrencyLimit) -> Self {
        self.admission.limit = Some(limit);
        self
    }

    /// Puts each attempt behind client-side adaptive throttling (first of the admission
    /// checks): the dependency's refusals make this client refuse calls itself.
    pub fn throttle(mut self, throttle: AdaptiveThrottle) -> Self {
        self.admission.throttle = Some(throttle);
        self
    }

    /// Puts each attempt under the rate limit `rate` (after throttling, before the concurrency
    /// limit). Feature `rate-limit`.
    #[cfg(feature = "rate-limit")]
    pub fn rate_limit(mut self, rate: crate::limit::RateLimit) -> Self {
        self.admission.rate = Some(rate);
        self
    }

    /// The concurrency limit, if any.
    pub fn get_limit(&self) -> Option<&ConcurrencyLimit> {
        self.admission.limit.as_ref()
    }

    /// Limits each attempt with `timeout`, cut from the deadline in scope.
    ///
    /// # Errors
    ///
    /// An invalid timeout (see [`AttemptTimeout::validate`]).
    pub fn attempt_timeout(mut self, timeout: AttemptTimeout) -> Result<Self, ConfigError> {
        timeout.validate()?;
        self.attempt_timeout = Some(timeout);
        Ok(self)
    }

    /// Gives every call an overall deadline `timeout` from its start (the tighter of it and
    /// the caller's deadline applies).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Opt-in: when the breaker rejects an attempt, retry waits for its next probe window if
    /// that fits within the remaining deadline (and the retry's attempts and
    /// `max_retry_after`), instead of ending the call at once. When it does not fit, the call
    /// ends at once with [`StopReason::CircuitOpen`].
    pub fn wait_for_probe(mut self) -> Self {
        self.wait_for_probe = true;
        self
    }

    /// Falls back to what the async function `f` produces from the error, for an open circuit,
    /// a timeout or exhausted retries.
    pub fn fallback<G, Fut, E>(self, f: G) -> Pipeline<C, Fallback<FromFn<G>>>
    where
        G: Fn(&Error<E>) -> Fut,
        Fut: Future,
    {
        self.with_fallback(Fallback::from_fn(f))
    }

    /// Falls back to a clone of `value`, for an open circuit, a timeout or exhausted retries.
    pub fn fallback_value<T>(self, value: T) -> Pipeline<C, Fallback<Value<T>>> {
        self.with_fallback(Fallback::value(value))
    }

    /// Falls back to the async function `f`, which may fail too.
    pub fn try_fallback<G, Fut, T, E>(self, f: G) -> Pipeline<C, Fallback<TryFromFn<G>>>
    where
        G: Fn(&Error<E>) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.with_fallback(Fallback::try_from_fn(f))
    }

    /// Falls back with `fallback`, for the failures it covers.
    pub fn with_fallback<S>(self, fallback: Fallback<S>) -> Pipeline<C, Fallback<S>> {
        Pipeline {
            classifier: self.classifier,
            retry: self.retry,
            has_retry: self.has_retry,
            hedge: self.hedge,
            named: self.named,
            breaker: self.breaker,
            attempt_timeout: self.attempt_timeout,
            timeout: self.timeout,
            wait_for_probe: self.wait_for_probe,
            admission: self.admission,
            fallback,
        }
    }

    /// The breaker, if any.
    pub fn get_breaker(&self) -> Option<&CircuitBreaker> {
        self.breaker.as_ref()
    }

    /// Starts an attempt: the breaker's permit and the attempt's limit, or the failure that
    /// stops the attempt before it calls anything. `acquire` takes the permit: borrowed for the
    /// closure API, owned for the tower future.
    #[allow(clippy::type_complexity)]
    pub(super) fn start_attempt<'a, E, P>(
        &'a self,
        acquire: impl FnOnce(&'a CircuitBreaker) -> Result<P, CircuitOpen>,
    ) -> Result<(Option<P>, Option<Limit>), (Failure<E>, Class)> {
        let deadline = Deadline::current();
        let limit = if deadline.is_some() || self.attempt_timeout.is_some() {
            let now = self.retry.clock.now();
            let limit = match self.attempt_timeout {
                Some(timeout) => timeout.timeout_at(now, deadline),
                None => deadline.and_then(|d| (!d.is_expired_at(now)).then(|| d.remaining_at(now))),
            };
            let Some(limit) = limit else {
                // The deadline has passed: do not call anything.
                return Err((
                    Failure::Timeout(Elapsed::new(Duration::ZERO, true)),
                    Class::Transient,
                ));
            };
            let clipped = deadline.is_some_and(|d| limit == d.remaining_at(now));
            Some(Limit {
                elapsed: Elapsed::new(limit, clipped),
                deadline: Deadline::after_from(now, limit),
            })
        } else {
            None
        };
        let permit = match &self.breaker {
            Some(breaker) => match acquire(breaker) {
                Ok(permit) => Some(permit),
                Err(open) => {
                    let class = self.open_class(&open, deadline);
                    return Err((Failure::CircuitOpen(open), class));
                }
            },
            None => None,
        };
        Ok((permit, limit))
    }

    /// The class of an attempt that timed out: a failure (transient), unless the caller's
    /// deadline cut the attempt shorter than its own timeout, which says nothing about the
    /// dependency: then it is ignored, so callers arriving with little time left cannot trip the
    /// breaker of a healthy dependency (and retry stops, with no time left anyway).
    pub(super) fn timeout_class(&self, elapsed: &Elapsed) -> Class {
        if self.attempt_timeout.is_some() && elapsed.is_deadline() {
            Class::Ignored
        } else {
            Class::Transient
        }
    }

    /// An open circuit is not retriable, unless the caller opted in to waiting for the next
    /// probe and it comes before the deadline.
    fn open_class(&self, open: &CircuitOpen, deadline: Option<Deadline>) -> Class {
        if !self.wait_for_probe {
            return Class::Permanent;
        }
        let now = self.retry.clock.now();
        match open.retry_after() {
            Some(wait) if fits(now, wait, deadline) => Class::RetryAfter(wait),
            _ => Class::Permanent,
        }
    }

    /// The call's error, with an unretried timeout or rejection named as the reason.
    pub(super) fn finish<E>(&self, error: Error<Failure<E>>) -> Error<E> {
        let error = error.flatten();
        match (error.last_failure(), error.reason()) {
            // An open circuit ends the call as such, whatever stopped the loop on it (not
            // retriable; with `wait_for_probe`, a probe too far away or no attempts left).
            (
                Some(Failure::CircuitOpen(_)),
                StopReason::Permanent | StopReason::RetryAfterTooLong | StopReason::Exhausted,
            ) => error.with_reason(StopReason::CircuitOpen),
            // A local refusal is not retried: it ends the call as such.
            (
                Some(Failure::Refused(refused)),
                StopReason::Permanent | StopReason::RetryAfterTooLong | StopReason::Exhausted,
            ) => {
                let reason = StopReason::Refused(refused.reason());
                error.with_reason(reason)
            }
            // A timeout that was not retried (or with no retry policy, the only attempt).
            (Some(Failure::Timeout(_)), StopReason::Permanent) => {
                error.with_reason(StopReason::Timeout)
            }
            (Some(Failure::Timeout(_)), StopReason::Exhausted)
                if !self.has_retry && self.hedge.is_none() =>
            {
                error.with_reason(StopReason::Timeout)
            }
            _ => error,
        }
    }
}

/// An attempt's time limit.
#[derive(Clone, Copy, Debug)]
pub(super) struct Limit {
    /// The error if it passes.
    pub(super) elapsed: Elapsed,
    /// When it passes: the deadline in scope for the attempt, so that whatever the attempt
    /// calls (and the deadline header it sends) sees the attempt's limit, not only the
    /// request's.
    pub(super) deadline: Deadline,
}

fn fits(now: Instant, wait: Duration, deadline: Option<Deadline>) -> bool {
    deadline.is_none_or(|deadline| wait < deadline.remaining_at(now))
}

impl<C, F> fmt::Debug for Pipeline<C, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field("name", &self.retry.name)
            .field("retry", &self.has_retry.then_some(&self.retry))
            .field("hedge", &self.hedge)
            .field("breaker", &self.breaker)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("timeout", &self.timeout)
            .field("wait_for_probe", &self.wait_for_probe)
            .field("admission", &self.admission)
            .finish_non_exhaustive()
    }
}
