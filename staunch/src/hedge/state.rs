//! The per-call decisions of a hedged call, pure given `now`: when the next attempt is due,
//! whether it may go, and what an attempt's outcome means for the call. The shells (the
//! closure future, the tower future, the pipeline) own the attempts and the timer and ask this
//! core what to do; the core never reads the clock, so a call whose first attempt answers at
//! once reads none.

use std::time::{Duration, Instant};

use super::Hedge;
use super::events::{HedgeEvent, HedgeEventKind, Trigger};
use crate::classify::Class;
use crate::{AttemptRecord, Deadline, Error, StopReason, telemetry};

/// What to do after an attempt settled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The attempt's answer is the call's: return it, drop the others.
    Won,
    /// End the call with this attempt's failure, for this reason; drop the others.
    End(StopReason),
    /// Send the next attempt now if it may go ([`Core::launch`]).
    Launch,
    /// Send the next attempt after this hint, from now ([`Core::hint`]).
    After(Duration),
    /// Nothing to do: wait for the attempts in flight and the timer.
    Wait,
}

/// Whether the next attempt may go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Launch {
    /// Send it (counted as started).
    Go,
    /// Not now: wait for the attempts in flight (and the timer, if one is due).
    Hold,
    /// Nothing is in flight and nothing more may go: the call ends with its last failure.
    End(StopReason),
}

/// The state of one hedged call.
#[derive(Debug)]
pub(crate) struct Core {
    deadline: Option<Deadline>,
    /// When the first attempt was first seen pending: the start of the call's clock, for the
    /// latency sample and the error's `elapsed`. `None` while the call has not waited.
    started_at: Option<Instant>,
    /// When the next attempt is due, if one is.
    next_at: Option<Instant>,
    /// Attempts started, the first included.
    started: u8,
    /// Attempts started and not settled.
    in_flight: u8,
    /// The most attempts this call may start.
    limit: u8,
    /// Why no more attempts go out, once something decided it for the rest of the call.
    stopped: Option<StopReason>,
    /// The attempts that failed, in the order they settled (unmeasured durations: attempts
    /// overlap and are not timed one by one); filled only once one fails, so a call that
    /// succeeds allocates nothing.
    failed: Vec<AttemptRecord>,
}

/// A call whose first attempt has not settled: all that a call whose first attempt answers at
/// once needs (17 bytes). The closure runner builds the full [`Core`] only when the first
/// attempt waits or fails, as retry builds its `CallState` only after a failure: building it
/// on every call cost more than the rest of that path.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Begun {
    deadline: Option<Deadline>,
    limit: u8,
}

impl Begun {
    /// Starts a call, or refuses to: cancelled, or no time left before the first attempt. On
    /// success the first attempt counts as started.
    ///
    /// `copyable` is whether further attempts can be made at all (a tower request that cannot
    /// be copied makes the first attempt the only one).
    ///
    /// Always inlined, as is [`won_at_once`](Self::won_at_once): they are the whole cost of
    /// the common path, and shared by every operation type, the inliner would otherwise keep
    /// them out of line once two call them.
    #[inline(always)]
    pub(crate) fn begin<C, E>(
        hedge: &Hedge<C>,
        explicit: Option<Deadline>,
        cancelled: bool,
        copyable: bool,
    ) -> Result<Self, Error<E>> {
        let deadline = Deadline::effective(explicit);
        if cancelled {
            return Err(refuse(hedge, StopReason::Cancelled));
        }
        let needs_now = deadline.is_some()
            || hedge
                .budget
                .as_ref()
                .is_some_and(crate::retry::RetryBudget::needs_clock);
        let now = needs_now.then(|| crate::Clock::system().now());
        if let (Some(deadline), Some(now)) = (deadline, now)
            && deadline.is_expired_at(now)
        {
            return Err(refuse(hedge, StopReason::Deadline));
        }
        if let Some(budget) = &hedge.budget {
            budget.deposit(now);
        }
        Ok(Self {
            deadline,
            limit: if copyable {
                hedge.config.max_attempts as u8
            } else {
                1
            },
        })
    }

    /// The first attempt answered at its first poll with `result`, which is not a failure
    /// (`class`): the call is won, before it ever waited (no clock was read: the sample is
    /// zero).
    #[inline(always)]
    pub(crate) fn won_at_once<C, T, E>(
        self,
        hedge: &Hedge<C>,
        result: Result<T, E>,
        class: Class,
    ) -> Result<T, Error<E>> {
        if let Some(estimate) = &hedge.estimate {
            estimate.record(Duration::ZERO);
        }
        if let Some(budget) = &hedge.budget
            && class != Class::Ignored
        {
            budget.record(false);
        }
        match result {
            Ok(value) => Ok(value),
            Err(e) => Core::after(self).finish(
                hedge,
                Err(e),
                StopReason::Permanent,
                crate::Clock::system().now(),
            ),
        }
    }
}

impl Core {
    /// The state of a call whose first attempt has started.
    #[inline]
    pub(crate) fn after(begun: Begun) -> Self {
        Self {
            deadline: begun.deadline,
            started_at: None,
            next_at: None,
            started: 1,
            in_flight: 1,
            limit: begun.limit,
            stopped: None,
            failed: Vec::new(),
        }
    }

    /// Attempts started so far.
    pub(crate) fn started(&self) -> u32 {
        u32::from(self.started)
    }

    /// The most attempts this call may start.
    pub(crate) fn limit(&self) -> u32 {
        u32::from(self.limit)
    }

    /// When the next attempt is due, if one is: the instant to arm the timer for.
    #[inline]
    pub(crate) fn next_at(&self) -> Option<Instant> {
        self.next_at
    }

    /// Whether the call has waited (its first attempt was seen pending).
    #[inline]
    pub(crate) fn has_waited(&self) -> bool {
        self.started_at.is_some()
    }

    /// Whether the shell must read the clock when the first attempt is first pending: to time
    /// the next attempt, or the latency sample.
    #[inline]
    pub(crate) fn wants_start<C>(&self, hedge: &Hedge<C>) -> bool {
        self.limit > 1 || hedge.estimate.is_some()
    }

    /// The first attempt is pending at `now`: the call's clock starts, and the first hedge is
    /// due after the delay (if it can go before the deadline).
    pub(crate) fn first_pending<C>(&mut self, hedge: &Hedge<C>, now: Instant) {
        self.started_at = Some(now);
        if self.limit > 1 {
            self.schedule(hedge, now, hedge.delay());
        }
    }

    /// Sets the next attempt `after` from `now`, unless it would go at or past the deadline
    /// (then no attempt is due, and the refusal is reported).
    fn schedule<C>(&mut self, hedge: &Hedge<C>, now: Instant, after: Duration) {
        let at = now.checked_add(after);
        self.next_at = match (at, self.deadline) {
            (Some(at), Some(deadline)) if at >= deadline.instant() => {
                self.report(hedge, HedgeEventKind::Refused(StopReason::Deadline));
                None
            }
            (at, _) => at,
        };
    }

    /// The timer for [`next_at`](Self::next_at) fired at `now`.
    pub(crate) fn timer_fired<C>(&mut self, hedge: &Hedge<C>, now: Instant) -> Launch {
        self.next_at = None;
        self.launch(hedge, now, Trigger::Delay)
    }

    /// Decides whether the next attempt goes now, and counts it if so; the shell then starts
    /// it. A refusal by the budget is final for the call; one by the deadline is too, as time
    /// only moves on.
    pub(crate) fn launch<C>(&mut self, hedge: &Hedge<C>, now: Instant, trigger: Trigger) -> Launch {
        if let Some(reason) = self.stopped {
            return self.hold_or_end(reason);
        }
        if self.started >= self.limit {
            return self.hold_or_end(StopReason::Exhausted);
        }
        if self.deadline.is_some_and(|d| d.is_expired_at(now)) {
            self.stop_hedging(StopReason::Deadline);
            self.report(hedge, HedgeEventKind::Refused(StopReason::Deadline));
            return self.hold_or_end(StopReason::Deadline);
        }
        if let Some(budget) = &hedge.budget
            && !budget.try_retry(now)
        {
            self.stop_hedging(StopReason::Budget);
            self.report(hedge, HedgeEventKind::Refused(StopReason::Budget));
            return self.hold_or_end(StopReason::Budget);
        }
        self.started += 1;
        self.in_flight += 1;
        self.report(hedge, HedgeEventKind::Sent { trigger });
        if self.started < self.limit {
            self.schedule(hedge, now, hedge.delay());
        } else {
            self.next_at = None;
        }
        Launch::Go
    }

    /// No more attempts go out in this call, for `reason`.
    fn stop_hedging(&mut self, reason: StopReason) {
        self.stopped = Some(reason);
        self.next_at = None;
    }

    /// The attempt just counted could not start after all: no more attempts go out.
    pub(crate) fn unlaunch(&mut self) -> Launch {
        self.started -= 1;
        self.in_flight -= 1;
        self.limit = self.started;
        self.next_at = None;
        self.hold_or_end(StopReason::Exhausted)
    }

    fn hold_or_end(&self, reason: StopReason) -> Launch {
        if self.in_flight == 0 {
            Launch::End(reason)
        } else {
            Launch::Hold
        }
    }

    /// A failed attempt asked to wait `hint` before the next (a Retry-After, gRPC's
    /// pushback): the next attempt is due then, unless the hint is too long or ends past the
    /// deadline.
    pub(crate) fn hint<C>(&mut self, hedge: &Hedge<C>, now: Instant, hint: Duration) -> Launch {
        if self.stopped.is_none() && self.started < self.limit {
            if hint > hedge.config.max_retry_after {
                self.stop_hedging(StopReason::RetryAfterTooLong);
                self.report(
                    hedge,
                    HedgeEventKind::Refused(StopReason::RetryAfterTooLong),
                );
            } else {
                self.schedule(hedge, now, hint);
                if self.next_at.is_none() {
                    self.stop_hedging(StopReason::Deadline);
                }
            }
        }
        match (self.next_at, self.stopped) {
            (Some(_), None) => Launch::Hold,
            (_, reason) => self.hold_or_end(reason.unwrap_or(StopReason::Exhausted)),
        }
    }

    /// Attempt `index` (0 for the first) settled with `class`; `refused` is why it never
    /// reached the dependency (refused by a local check), if it did not.
    ///
    /// An answer that is not a failure wins. A permanent failure that reached the dependency
    /// ends the call; a transient one sends the next attempt at once; a hint delays it. A
    /// refused attempt ends nothing while others are in flight: it is a hedge not sent.
    #[inline]
    pub(crate) fn settle<C>(
        &mut self,
        hedge: &Hedge<C>,
        index: usize,
        class: Class,
        refused: Option<StopReason>,
    ) -> Verdict {
        self.in_flight -= 1;
        if refused.is_none()
            && let Some(budget) = &hedge.budget
            && class != Class::Ignored
        {
            budget.record(class.is_failure());
        }
        if !class.is_failure() {
            if index > 0 {
                self.report_attempt(hedge, index as u32 + 1, HedgeEventKind::Won);
            }
            return Verdict::Won;
        }
        self.failed(hedge, index, class, refused)
    }

    /// [`settle`](Self::settle) for a failure: out of line, as the common path never gets here.
    #[cold]
    #[inline(never)]
    fn failed<C>(
        &mut self,
        hedge: &Hedge<C>,
        index: usize,
        class: Class,
        refused: Option<StopReason>,
    ) -> Verdict {
        self.failed
            .push(AttemptRecord::new(index as u32 + 1, None, class));
        if let Some(reason) = refused {
            self.report_attempt(hedge, index as u32 + 1, HedgeEventKind::Refused(reason));
            if self.in_flight > 0 {
                return Verdict::Wait;
            }
        }
        match class {
            Class::RetryAfter(hint) => Verdict::After(hint),
            class if class.is_retriable() => Verdict::Launch,
            _ => Verdict::End(StopReason::Permanent),
        }
    }

    /// The latency sample of the first attempt, which settled at `now` (`None` if the clock was
    /// not read: it answered at its first poll, in no time).
    ///
    /// Only first attempts are sampled: a hedge is sent only for slow calls, so its latency
    /// is not a fair sample of the dependency's.
    #[inline]
    pub(crate) fn sample_first<C>(&self, hedge: &Hedge<C>, now: Option<Instant>) {
        if let Some(estimate) = &hedge.estimate {
            estimate.record(self.elapsed_at(now));
        }
    }

    /// The first attempt was dropped at `now`, still running, because another attempt ended
    /// the call: its latency would have been longer than it ran, a censored sample.
    pub(crate) fn sample_dropped_first<C>(&self, hedge: &Hedge<C>, now: Option<Instant>) {
        if let Some(estimate) = &hedge.estimate {
            estimate.record_censored(self.elapsed_at(now));
        }
    }

    fn elapsed_at(&self, now: Option<Instant>) -> Duration {
        match (self.started_at, now) {
            (Some(start), Some(now)) => now.saturating_duration_since(start),
            _ => Duration::ZERO,
        }
    }

    /// Ends the call with `result`, the last failure, for `reason`: an `Ok` the classifier
    /// called a failure comes back as it is; an error is wrapped with the reason, the attempts
    /// and the classes of the attempts that failed.
    pub(crate) fn finish<C, T, E>(
        &mut self,
        hedge: &Hedge<C>,
        result: Result<T, E>,
        reason: StopReason,
        now: Instant,
    ) -> Result<T, Error<E>> {
        self.next_at = None;
        telemetry::hedge_stopped(hedge.name, reason, self.started());
        result.map_err(|e| {
            Error::new(reason, self.started(), self.elapsed(now), Some(e))
                .with_log(std::mem::take(&mut self.failed))
        })
    }

    /// Ends the call with `reason` and no failure to show (cancelled before any failed).
    pub(crate) fn stop<C, E>(
        &mut self,
        hedge: &Hedge<C>,
        reason: StopReason,
        now: Instant,
    ) -> Error<E> {
        self.next_at = None;
        telemetry::hedge_stopped(hedge.name, reason, self.started());
        Error::new(reason, self.started(), self.elapsed(now), None)
            .with_log(std::mem::take(&mut self.failed))
    }

    fn elapsed(&self, now: Instant) -> Duration {
        self.started_at
            .map_or(Duration::ZERO, |start| now.saturating_duration_since(start))
    }

    fn report<C>(&self, hedge: &Hedge<C>, kind: HedgeEventKind) {
        let attempt =
            u32::from(self.started) + u32::from(!matches!(kind, HedgeEventKind::Sent { .. }));
        self.report_attempt(hedge, attempt, kind);
    }

    #[cold]
    fn report_attempt<C>(&self, hedge: &Hedge<C>, attempt: u32, kind: HedgeEventKind) {
        let event = HedgeEvent {
            policy: hedge.name,
            attempt,
            kind,
        };
        telemetry::hedge_event(&event);
        if let Some(hook) = &hedge.hook {
            hook(&event);
        }
    }
}

/// Why a call never made its first attempt; out of line, as the common path never gets here.
#[cold]
#[inline(never)]
fn refuse<C, E>(hedge: &Hedge<C>, reason: StopReason) -> Error<E> {
    telemetry::hedge_stopped(hedge.name, reason, 0);
    Error::new(reason, 0, Duration::ZERO, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hedge::{HedgeConfig, HedgeDelay};
    use crate::retry::{BudgetConfig, RetryBudget};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn hedge(max_attempts: u32) -> Hedge {
        Hedge::new(HedgeConfig::new(HedgeDelay::fixed(ms(10))).with_max_attempts(max_attempts))
            .unwrap()
    }

    fn core(hedge: &Hedge, deadline: Option<Deadline>) -> Core {
        Core::after(Begun::begin::<_, ()>(hedge, deadline, false, true).unwrap())
    }

    #[test]
    fn the_first_hedge_is_due_a_delay_after_the_first_attempt_waits() {
        let h = hedge(3);
        let t0 = Instant::now();
        let mut c = core(&h, None);
        assert_eq!(
            c.next_at(),
            None,
            "nothing is due before the first attempt waits"
        );
        c.first_pending(&h, t0);
        assert_eq!(c.next_at(), Some(t0 + ms(10)));
        assert_eq!(c.timer_fired(&h, t0 + ms(10)), Launch::Go);
        assert_eq!(c.next_at(), Some(t0 + ms(20)));
        assert_eq!(c.timer_fired(&h, t0 + ms(20)), Launch::Go);
        assert_eq!(c.next_at(), None, "three attempts in all");
        assert_eq!(c.started(), 3);
    }

    #[test]
    fn one_attempt_schedules_nothing() {
        let h = hedge(1);
        let mut c = core(&h, None);
        assert!(!c.wants_start(&h), "no clock to read for a single attempt");
        c.first_pending(&h, Instant::now());
        assert_eq!(c.next_at(), None);
    }

    #[test]
    fn no_hedge_is_due_at_or_past_the_deadline() {
        let h = hedge(3);
        let t0 = Instant::now();
        let mut c = core(&h, Some(Deadline::at(t0 + ms(10))));
        c.first_pending(&h, t0);
        assert_eq!(c.next_at(), None, "due exactly at the deadline: not sent");
        let mut c = core(&h, Some(Deadline::at(t0 + ms(11))));
        c.first_pending(&h, t0);
        assert_eq!(c.next_at(), Some(t0 + ms(10)));
        // A failure after the deadline sends nothing, and with nothing in flight ends the call.
        assert_eq!(c.settle(&h, 0, Class::Transient, None), Verdict::Launch);
        assert_eq!(
            c.launch(&h, t0 + ms(11), Trigger::Failure),
            Launch::End(StopReason::Deadline)
        );
    }

    #[test]
    fn outcomes_decide_the_call() {
        let h = hedge(3);
        let t0 = Instant::now();
        let mut c = core(&h, None);
        c.first_pending(&h, t0);
        assert_eq!(c.timer_fired(&h, t0 + ms(10)), Launch::Go);
        // Two in flight. A transient failure sends the next at once.
        assert_eq!(c.settle(&h, 1, Class::Transient, None), Verdict::Launch);
        assert_eq!(c.launch(&h, t0 + ms(12), Trigger::Failure), Launch::Go);
        // A permanent failure ends the call, whatever is in flight.
        assert_eq!(
            c.settle(&h, 2, Class::Permanent, None),
            Verdict::End(StopReason::Permanent)
        );

        let mut c = core(&h, None);
        assert_eq!(c.settle(&h, 0, Class::Success, None), Verdict::Won);
        let mut c = core(&h, None);
        assert_eq!(c.settle(&h, 0, Class::Ignored, None), Verdict::Won);
        let mut c = core(&h, None);
        assert_eq!(
            c.settle(&h, 0, Class::RetryAfter(ms(5)), None),
            Verdict::After(ms(5))
        );
        assert_eq!(c.hint(&h, t0, ms(5)), Launch::Hold);
        assert_eq!(c.next_at(), Some(t0 + ms(5)));
    }

    #[test]
    fn all_attempts_failing_exhausts_with_every_class() {
        let h = hedge(2);
        let t0 = Instant::now();
        let mut c = core(&h, None);
        c.first_pending(&h, t0);
        assert_eq!(c.timer_fired(&h, t0 + ms(10)), Launch::Go);
        assert_eq!(c.settle(&h, 0, Class::Transient, None), Verdict::Launch);
        assert_eq!(c.launch(&h, t0 + ms(11), Trigger::Failure), Launch::Hold);
        assert_eq!(
            c.settle(&h, 1, Class::RetryAfter(ms(1)), None),
            Verdict::After(ms(1))
        );
        assert_eq!(
            c.hint(&h, t0 + ms(12), ms(1)),
            Launch::End(StopReason::Exhausted)
        );
        let err = c
            .finish(&h, Err::<(), _>("down"), StopReason::Exhausted, t0 + ms(12))
            .unwrap_err();
        assert_eq!(err.attempts(), 2);
        assert_eq!(
            err.attempt_log()
                .iter()
                .map(|a| a.class())
                .collect::<Vec<_>>(),
            [Class::Transient, Class::RetryAfter(ms(1))]
        );
        assert_eq!(err.elapsed(), ms(12));
    }

    #[test]
    fn a_refused_hedge_waits_for_the_attempts_in_flight() {
        let budget = RetryBudget::new(BudgetConfig::token_bucket(2, 0.1)).unwrap();
        // Two failures drain the bucket to zero: no retry, no hedge.
        budget.record(true);
        budget.record(true);
        let h = hedge(3).with_budget(budget);
        let t0 = Instant::now();
        let mut c = core(&h, None);
        c.first_pending(&h, t0);
        assert_eq!(c.timer_fired(&h, t0 + ms(10)), Launch::Hold);
        assert_eq!(c.next_at(), None, "a refusal by the budget is final");
        // The attempt in flight fails: nothing else may go.
        assert_eq!(c.settle(&h, 0, Class::Transient, None), Verdict::Launch);
        assert_eq!(
            c.launch(&h, t0 + ms(20), Trigger::Failure),
            Launch::End(StopReason::Budget)
        );
    }

    #[test]
    fn an_attempt_refused_locally_ends_nothing_while_others_run() {
        let h = hedge(3);
        let t0 = Instant::now();
        let mut c = core(&h, None);
        c.first_pending(&h, t0);
        assert_eq!(c.timer_fired(&h, t0 + ms(10)), Launch::Go);
        assert_eq!(
            c.settle(&h, 1, Class::Permanent, Some(StopReason::CircuitOpen)),
            Verdict::Wait
        );
        // Alone, a refusal ends the call like the failure it is.
        let mut c = core(&h, None);
        assert_eq!(
            c.settle(&h, 0, Class::Permanent, Some(StopReason::CircuitOpen)),
            Verdict::End(StopReason::Permanent)
        );
    }

    #[test]
    fn a_hint_too_long_stops_hedging() {
        let h = hedge(3);
        let t0 = Instant::now();
        let mut c = core(&h, None);
        c.first_pending(&h, t0);
        assert_eq!(c.timer_fired(&h, t0 + ms(10)), Launch::Go);
        assert_eq!(
            c.settle(&h, 1, Class::RetryAfter(Duration::from_secs(61)), None),
            Verdict::After(Duration::from_secs(61))
        );
        assert_eq!(
            c.hint(&h, t0 + ms(11), Duration::from_secs(61)),
            Launch::Hold
        );
        assert_eq!(c.next_at(), None);
        assert_eq!(c.settle(&h, 0, Class::Transient, None), Verdict::Launch);
        assert_eq!(
            c.launch(&h, t0 + ms(12), Trigger::Failure),
            Launch::End(StopReason::RetryAfterTooLong)
        );
    }

    #[test]
    fn a_call_refuses_to_start_when_cancelled_or_out_of_time() {
        let h = hedge(2);
        let err = Begun::begin::<_, ()>(&h, None, true, true).unwrap_err();
        assert_eq!((err.reason(), err.attempts()), (StopReason::Cancelled, 0));
        let past = Deadline::at(Instant::now() - ms(1));
        let err = Begun::begin::<_, ()>(&h, Some(past), false, true).unwrap_err();
        assert_eq!(err.reason(), StopReason::Deadline);
        let c = Core::after(Begun::begin::<_, ()>(&h, None, false, false).unwrap());
        assert_eq!(c.limit, 1, "no copy of the request: no hedge");
    }
}
