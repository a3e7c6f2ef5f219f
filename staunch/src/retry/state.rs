//! The per-call state machine shared by the async, blocking and tower runners. It reads the
//! policy's clock only when a decision needs the time, and never on the success path of a call
//! without a deadline or ratio budget.

use std::time::{Duration, Instant};

use crate::backoff::DelayState;
use crate::classify::{Class, Classify};
use crate::retry::{Retry, RetryBudget};
use crate::{Deadline, Error, StopReason, telemetry};

/// What the runner does next.
pub(crate) enum Next<T, E> {
    /// Sleep this long, then [`CallState::resume`] and make the next attempt.
    Wait(Duration),
    /// The call is over.
    Done(Result<T, Error<E>>),
}

pub(crate) struct CallState<T, E> {
    deadline: Option<Deadline>,
    /// Attempts started so far.
    attempts: u32,
    /// Attempts this call may make: the config's, or fewer when a request cannot be cloned.
    limit: u32,
    /// Set at the first failure: the delays and when the first failure was seen.
    retrying: Option<(DelayState, Instant)>,
    /// The last failed result, kept through the wait so that a later stop can return it.
    last: Option<Result<T, E>>,
}

/// A call whose first attempt has not settled yet: all that a call whose first attempt succeeds
/// needs (16 bytes). The async and blocking runners build the full [`CallState`] (with its
/// backoff iterator, over 150 bytes) only after a failure, so the success path neither builds
/// nor moves it: moving it cost more than the rest of that path.
#[derive(Clone, Copy)]
pub(crate) struct FirstAttempt {
    deadline: Option<Deadline>,
}

/// An attempt's classified result when it was not a success, for
/// [`CallState::settle_failed`].
pub(crate) struct Failed<T, E> {
    class: Class,
    result: Result<T, E>,
}

impl FirstAttempt {
    /// Starts a call, or refuses to: cancelled, or no time left before the first attempt.
    #[inline]
    pub(crate) fn begin<C, E>(
        retry: &Retry<C>,
        explicit: Option<Deadline>,
        cancelled: bool,
    ) -> Result<Self, Error<E>> {
        let deadline = Deadline::effective(explicit);
        if cancelled {
            return Err(refuse(retry, StopReason::Cancelled));
        }
        let needs_now =
            deadline.is_some() || retry.budget.as_ref().is_some_and(RetryBudget::needs_clock);
        let now = needs_now.then(|| retry.clock.now());
        if let (Some(deadline), Some(now)) = (deadline, now)
            && deadline.is_expired_at(now)
        {
            return Err(refuse(retry, StopReason::Deadline));
        }
        if let Some(budget) = &retry.budget {
            budget.deposit(now);
        }
        telemetry::retry_attempt(retry.name);
        Ok(Self { deadline })
    }

    /// Settles the first attempt's result: the value of a success, or what
    /// [`CallState::settle_failed`] needs to go on.
    #[inline]
    pub(crate) fn settle<C: Classify<T, E>, T, E>(
        self,
        retry: &Retry<C>,
        result: Result<T, E>,
    ) -> Result<T, Failed<T, E>> {
        let class = retry.classifier.classify(&result);
        self.settle_as(retry, result, class, true)
    }

    /// [`settle`](Self::settle) for a result that the caller has already classified. An
    /// attempt that never `reached` the dependency (refused by a breaker, or out of time before
    /// the call) is not counted by the budget: it put no load on the dependency.
    #[inline]
    pub(crate) fn settle_as<C, T, E>(
        self,
        retry: &Retry<C>,
        result: Result<T, E>,
        class: Class,
        reached: bool,
    ) -> Result<T, Failed<T, E>> {
        if reached {
            record(retry, class);
        }
        match result {
            Ok(value) if !class.is_failure() => {
                telemetry::retry_succeeded(retry.name, 1);
                Ok(value)
            }
            result => Err(Failed { class, result }),
        }
    }

    /// Ends the call during its first attempt with `reason`.
    #[cfg(feature = "tokio")]
    pub(crate) fn stop<C, T, E>(self, retry: &Retry<C>, reason: StopReason) -> Result<T, Error<E>> {
        CallState::after(retry, self).stop(retry, reason)
    }
}

/// Records an attempt's class in the budget.
#[inline]
fn record<C>(retry: &Retry<C>, class: Class) {
    if let Some(budget) = &retry.budget {
        match class {
            Class::Ignored => {}
            class => budget.record(class.is_failure()),
        }
    }
}

/// Why a call never made its first attempt; out of line, as the common path never gets here.
#[cold]
#[inline(never)]
fn refuse<C, E>(retry: &Retry<C>, reason: StopReason) -> Error<E> {
    telemetry::retry_stopped(retry.name, reason, 0);
    Error::new(reason, 0, Duration::ZERO, None)
}

impl<T, E> CallState<T, E> {
    /// Starts a call, or refuses to: cancelled, or no time left before the first attempt.
    #[cfg(feature = "tower")]
    #[inline]
    pub(crate) fn begin<C>(
        retry: &Retry<C>,
        explicit: Option<Deadline>,
        cancelled: bool,
    ) -> Result<Self, Error<E>> {
        FirstAttempt::begin(retry, explicit, cancelled).map(|first| Self::after(retry, first))
    }

    /// The state of a call whose first attempt has started.
    #[inline]
    pub(crate) fn after<C>(retry: &Retry<C>, first: FirstAttempt) -> Self {
        Self {
            deadline: first.deadline,
            attempts: 1,
            limit: retry.config.max_attempts,
            retrying: None,
            last: None,
        }
    }

    /// Makes the current attempt the last one (a request that cannot be cloned).
    #[cfg(feature = "tower")]
    pub(crate) fn make_final(&mut self) {
        self.limit = self.attempts;
    }

    /// Settles an attempt's result: done, or wait and retry.
    #[inline]
    pub(crate) fn settle<C: Classify<T, E>>(
        &mut self,
        retry: &Retry<C>,
        result: Result<T, E>,
    ) -> Next<T, E> {
        let class = retry.classifier.classify(&result);
        self.settle_as(retry, result, class, true)
    }

    /// Settles an attempt's result that the caller has already classified. A success is
    /// handled inline; anything else goes to [`settle_failed`](Self::settle_failed). As for
    /// [`FirstAttempt::settle_as`], an attempt that never `reached` the dependency is not
    /// budgeted.
    #[inline]
    pub(crate) fn settle_as<C>(
        &mut self,
        retry: &Retry<C>,
        result: Result<T, E>,
        class: Class,
        reached: bool,
    ) -> Next<T, E> {
        if reached {
            record(retry, class);
        }
        match result {
            Ok(value) if !class.is_failure() => {
                telemetry::retry_succeeded(retry.name, self.attempts);
                Next::Done(Ok(value))
            }
            result => self.settle_failed(retry, Failed { class, result }),
        }
    }

    /// [`settle_as`](Self::settle_as) for anything but a success, once the budget has recorded
    /// it: an error that is not a failure (returned as permanent), or a failure (retried or
    /// stopped). Out of line, so that the success path stays small; a failure is followed by a
    /// sleep anyway.
    #[cold]
    #[inline(never)]
    pub(crate) fn settle_failed<C>(
        &mut self,
        retry: &Retry<C>,
        failed: Failed<T, E>,
    ) -> Next<T, E> {
        let Failed { class, result } = failed;
        if !class.is_failure() {
            return Next::Done(self.finish(retry, result, StopReason::Permanent));
        }
        let now = retry.clock.now();
        let decision = self.decide(retry, class, now);
        match decision {
            Ok(delay) => {
                telemetry::retry_scheduled(retry.name, self.attempts, delay, class);
                self.last = Some(result);
                Next::Wait(delay)
            }
            Err(reason) => Next::Done(self.finish(retry, result, reason)),
        }
    }

    /// Before the next attempt, after the wait: stops if cancelled or out of time.
    pub(crate) fn resume<C>(
        &mut self,
        retry: &Retry<C>,
        cancelled: bool,
    ) -> Result<(), Result<T, Error<E>>> {
        let stop = if cancelled {
            Some(StopReason::Cancelled)
        } else {
            let now = self.deadline.map(|_| retry.clock.now());
            self.deadline
                .zip(now)
                .filter(|(deadline, now)| deadline.is_expired_at(*now))
                .map(|_| StopReason::Deadline)
        };
        if let Some(reason) = stop {
            return Err(self.stop(retry, reason));
        }
        self.attempts += 1;
        telemetry::retry_attempt(retry.name);
        Ok(())
    }

    /// Ends the call with `reason`, returning the last result kept through the wait.
    pub(crate) fn stop<C>(&mut self, retry: &Retry<C>, reason: StopReason) -> Result<T, Error<E>> {
        match self.last.take() {
            Some(last) if reason != StopReason::Cancelled => self.finish(retry, last, reason),
            Some(Err(e)) => self.finish(retry, Err(e), reason),
            _ => {
                telemetry::retry_stopped(retry.name, reason, self.attempts);
                Err(Error::new(reason, self.attempts, self.elapsed(retry), None))
            }
        }
    }

    /// The final outcome: an `Ok` the classifier called a failure is returned as is once no
    /// retry follows; an error is wrapped with why retrying stopped.
    fn finish<C>(
        &self,
        retry: &Retry<C>,
        result: Result<T, E>,
        reason: StopReason,
    ) -> Result<T, Error<E>> {
        telemetry::retry_stopped(retry.name, reason, self.attempts);
        result.map_err(|e| Error::new(reason, self.attempts, self.elapsed(retry), Some(e)))
    }

    fn elapsed<C>(&self, retry: &Retry<C>) -> Duration {
        self.retrying.as_ref().map_or(Duration::ZERO, |(_, first)| {
            retry.clock.now().saturating_duration_since(*first)
        })
    }
    /// The decision after a failed attempt, pure given `now`: the delay before the next
    /// attempt, or why there is none.
    fn decide<C>(
        &mut self,
        retry: &Retry<C>,
        class: Class,
        now: Instant,
    ) -> Result<Duration, StopReason> {
        if !class.is_retriable() {
            return Err(StopReason::Permanent);
        }
        if self.attempts >= self.limit {
            return Err(StopReason::Exhausted);
        }
        let config = &retry.config;
        let (delays, _) = self
            .retrying
            .get_or_insert_with(|| (DelayState::new(&config.backoff), now));
        let mut delay = delays.next(&config.backoff);
        if let Some(hint) = class.retry_after() {
            if hint > config.max_retry_after {
                return Err(StopReason::RetryAfterTooLong);
            }
            delay = delay.max(hint);
        }
        if let Some(deadline) = self.deadline {
            // Waking at or after the deadline would leave no time for the attempt.
            if delay >= deadline.remaining_at(now) {
                return Err(StopReason::Deadline);
            }
        }
        if let Some(budget) = &retry.budget
            && !budget.try_retry(now)
        {
            return Err(StopReason::Budget);
        }
        Ok(delay)
    }
}
