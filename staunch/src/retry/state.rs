//! The per-call state machine shared by the async, blocking and tower runners. It reads the
//! policy's clock only when a decision needs the time, and never on the success path of a call
//! without a deadline or ratio budget.

use std::time::{Duration, Instant};

use super::event::{Direct, Observe, Scheduled};
use super::log::AttemptLog;
use crate::backoff::DelayState;
use crate::classify::{Class, Classify};
use crate::retry::Retry;
use crate::{AttemptRecord, Deadline, Error, StopReason, telemetry};

/// What the runner does next.
pub(crate) enum Next<T, E> {
    /// Sleep this long, then [`CallState::resume`] and make the next attempt.
    Wait(Duration),
    /// The call is over.
    Done(Result<T, Error<E>>),
}

pub(crate) struct CallState<T, E> {
    deadline: Option<Deadline>,
    /// When the first attempt started, if the clock was read then.
    start: Option<Instant>,
    /// Attempts started so far.
    attempts: u32,
    /// Attempts this call may make: the config's, or fewer when a request cannot be cloned.
    limit: u32,
    /// Set at the first failure, so that a call whose first attempt succeeds (in the tower
    /// service, which builds this state before its first attempt) neither builds nor drops it.
    retrying: Option<Retrying>,
    /// The last failed result, kept through the wait so that a later stop can return it.
    last: Option<Result<T, E>>,
}

/// What a call keeps once an attempt has failed.
struct Retrying {
    delays: DelayState,
    /// When the first failure was seen: where [`Error::elapsed`] starts.
    first_failure: Instant,
    /// When the current attempt started (always read after the first).
    attempt_start: Option<Instant>,
    /// Every attempt that finished, for the error.
    log: AttemptLog,
}

/// A call whose first attempt has not settled yet: all that a call whose first attempt succeeds
/// needs (32 bytes). The async and blocking runners build the full [`CallState`] (with its
/// backoff iterator, over 150 bytes) only after a failure, so the success path neither builds
/// nor moves it: moving it cost more than the rest of that path.
#[derive(Clone, Copy)]
pub(crate) struct FirstAttempt {
    deadline: Option<Deadline>,
    /// When the first attempt started: read only when something needs the time (a deadline, a
    /// ratio budget, `max_duration`, the first attempt's duration), never just in case.
    start: Option<Instant>,
}

/// An attempt's classified result when it was not a success, for
/// [`CallState::settle_failed`].
pub(crate) struct Failed<T, E> {
    class: Class,
    result: Result<T, E>,
    /// Whether the attempt reached the dependency (see [`FirstAttempt::settle_as`]).
    reached: bool,
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
        let needs_now = deadline.is_some() || retry.needs_start;
        let now = needs_now.then(|| retry.clock.now());
        if let (Some(deadline), Some(now)) = (deadline, now)
            && deadline.is_expired_at(now)
        {
            return Err(refuse(retry, StopReason::Deadline));
        }
        if let Some(budget) = &retry.budget {
            budget.deposit(now);
        }
        telemetry::retry_attempt(&retry.name);
        Ok(Self {
            deadline,
            start: now,
        })
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
                telemetry::retry_succeeded(&retry.name, 1, self.start, self.start, &retry.clock);
                Ok(value)
            }
            result => Err(Failed {
                class,
                result,
                reached,
            }),
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
    telemetry::retry_stopped(&retry.name, reason, 0, None, &retry.clock);
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
            start: first.start,
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
        self.settle_as(retry, result, class, true, &Direct(&retry.classifier))
    }

    /// Settles an attempt's result that the caller has already classified. A success is
    /// handled inline; anything else goes to [`settle_failed`](Self::settle_failed). As for
    /// [`FirstAttempt::settle_as`], an attempt that never `reached` the dependency is not
    /// budgeted. `observe` reports a retry to the classifier's hook.
    #[inline]
    pub(crate) fn settle_as<C>(
        &mut self,
        retry: &Retry<C>,
        result: Result<T, E>,
        class: Class,
        reached: bool,
        observe: &impl Observe<T, E>,
    ) -> Next<T, E> {
        if reached {
            record(retry, class);
        }
        match result {
            Ok(value) if !class.is_failure() => {
                let attempt_start = match &self.retrying {
                    Some(retrying) => retrying.attempt_start,
                    None => self.start,
                };
                telemetry::retry_succeeded(
                    &retry.name,
                    self.attempts,
                    attempt_start,
                    self.start,
                    &retry.clock,
                );
                Next::Done(Ok(value))
            }
            result => self.settle_failed(
                retry,
                Failed {
                    class,
                    result,
                    reached,
                },
                observe,
            ),
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
        observe: &impl Observe<T, E>,
    ) -> Next<T, E> {
        let Failed {
            class,
            result,
            reached,
        } = failed;
        let now = retry.clock.now();
        let (start, backoff) = (self.start, &retry.config.backoff);
        let retrying = self.retrying.get_or_insert_with(|| Retrying {
            delays: DelayState::new(backoff),
            first_failure: now,
            // The first attempt started with the call.
            attempt_start: start,
            log: AttemptLog::new(),
        });
        let duration = retrying
            .attempt_start
            .map(|start| now.saturating_duration_since(start));
        let record = AttemptRecord::new(self.attempts, duration, class);
        retrying.log.push(record);
        telemetry::attempt_failed(&retry.name, &record, reached);
        if !class.is_failure() {
            return Next::Done(self.finish(retry, result, StopReason::Permanent));
        }
        match self.decide(retry, class, now) {
            Ok(delay) => {
                telemetry::retry_scheduled(&retry.name, &record, delay);
                let scheduled = Scheduled {
                    policy: &retry.name,
                    record,
                    delay,
                };
                // No lock is held anywhere in the retry loop: the hook may call back into the
                // policy, its budget or a breaker.
                observe.retrying(scheduled, &result);
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
        if cancelled {
            return Err(self.stop(retry, StopReason::Cancelled));
        }
        // The next attempt's start: after a failure, reading the time costs nothing worth
        // saving.
        let now = retry.clock.now();
        if self
            .deadline
            .is_some_and(|deadline| deadline.is_expired_at(now))
        {
            return Err(self.stop(retry, StopReason::Deadline));
        }
        if let Some(retrying) = &mut self.retrying {
            retrying.attempt_start = Some(now);
        }
        self.attempts += 1;
        telemetry::retry_attempt(&retry.name);
        Ok(())
    }

    /// Ends the call with `reason`, returning the last result kept through the wait.
    pub(crate) fn stop<C>(&mut self, retry: &Retry<C>, reason: StopReason) -> Result<T, Error<E>> {
        match self.last.take() {
            Some(last) if reason != StopReason::Cancelled => self.finish(retry, last, reason),
            Some(Err(e)) => self.finish(retry, Err(e), reason),
            _ => {
                telemetry::retry_stopped(
                    &retry.name,
                    reason,
                    self.attempts,
                    self.start,
                    &retry.clock,
                );
                Err(Error::new(reason, self.attempts, self.elapsed(retry), None)
                    .with_log(self.take_log()))
            }
        }
    }

    /// The final outcome: an `Ok` the classifier called a failure is returned as is once no
    /// retry follows; an error is wrapped with why retrying stopped.
    fn finish<C>(
        &mut self,
        retry: &Retry<C>,
        result: Result<T, E>,
        reason: StopReason,
    ) -> Result<T, Error<E>> {
        telemetry::retry_stopped(&retry.name, reason, self.attempts, self.start, &retry.clock);
        result.map_err(|e| {
            Error::new(reason, self.attempts, self.elapsed(retry), Some(e))
                .with_log(self.take_log())
        })
    }

    fn elapsed<C>(&self, retry: &Retry<C>) -> Duration {
        self.retrying.as_ref().map_or(Duration::ZERO, |retrying| {
            retry
                .clock
                .now()
                .saturating_duration_since(retrying.first_failure)
        })
    }

    /// The log of attempts, for the error that ends the call.
    fn take_log(&mut self) -> Vec<AttemptRecord> {
        self.retrying
            .as_mut()
            .map_or_else(Vec::new, |retrying| retrying.log.take())
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
        // `settle_failed` sets it before it decides; were it missing, no delay could be drawn.
        let Some(Retrying { delays, .. }) = &mut self.retrying else {
            return Err(StopReason::Exhausted);
        };
        let mut delay = delays.next(&config.backoff);
        if let Some(hint) = class.retry_after() {
            if hint > config.max_retry_after {
                return Err(StopReason::RetryAfterTooLong);
            }
            delay = delay.max(hint);
            // The server set the pace: if the next attempt fails too, back off from the
            // initial delay again (gRPC A6), not from where the sequence had grown to.
            delays.restart(&config.backoff);
        }
        if let Some(deadline) = self.deadline {
            // Waking at or after the deadline would leave no time for the attempt.
            if delay >= deadline.remaining_at(now) {
                return Err(StopReason::Deadline);
            }
        }
        // Set together: the start is read whenever there is a limit.
        if let (Some(limit), Some(start)) = (config.max_duration, self.start)
            && now.saturating_duration_since(start).saturating_add(delay) > limit
        {
            return Err(StopReason::MaxDuration);
        }
        if let Some(budget) = &retry.budget
            && !budget.try_retry(now)
        {
            return Err(StopReason::Budget);
        }
        Ok(delay)
    }
}
