//! The shell that runs a hedged call's attempts side by side, without spawning: the first
//! attempt and the timer pinned inline, each later attempt in a box of its own, all polled by
//! the caller's task. [`Core`] decides; this only polls, reads the clock and starts attempts.
//!
//! # Why the hedges are boxed
//!
//! Attempts in flight are polled concurrently in one future, so each must be pinned in place.
//! The first lives inline (a call whose first attempt answers before the delay, nearly every
//! call, allocates nothing). Pinning a later attempt inline would need either a slot per
//! possible attempt (up to five copies of the attempt's future inline, moved and initialised on
//! every call, hedged or not) or `unsafe` projection into an array, which this crate forbids.
//! A hedge goes out for a few percent of calls and is a network call: one allocation for it
//! is noise beside it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use pin_project_lite::pin_project;
use tokio::time::Sleep;

use super::Hedge;
use super::config::MAX_ATTEMPTS;
use super::events::Trigger;
use super::state::{Core, Launch, Verdict};
use crate::classify::Class;
use crate::{Clock, Error, StopReason};

/// Slots for the attempts after the first.
const HEDGES: usize = MAX_ATTEMPTS as usize - 1;

/// An attempt's classified outcome: its result, its class, and, if a local check refused it
/// before it reached the dependency, why.
#[derive(Debug)]
pub(crate) struct Settled<T, E> {
    pub(crate) result: Result<T, E>,
    pub(crate) class: Class,
    pub(crate) refused: Option<StopReason>,
}

/// What a shell supplies to the race: how to settle an attempt's output and how to start the
/// next attempt.
pub(crate) trait Driver {
    /// What an attempt's future yields.
    type Output;
    /// The call's value.
    type Value;
    /// The call's error.
    type Error;
    /// The future of an attempt after the first.
    type Hedge: Future<Output = Self::Output>;

    /// Classifies an attempt's output.
    fn settle(&mut self, output: Self::Output) -> Settled<Self::Value, Self::Error>;

    /// Starts the next attempt; `last` is whether it is the call's last. `None` if it cannot
    /// (a request that could not be copied after all): the call makes no more attempts.
    fn launch(&mut self, last: bool) -> Option<Self::Hedge>;
}

pin_project! {
    /// The attempts of one hedged call, its timer and its decisions.
    pub(crate) struct Race<A, H, R> {
        #[pin]
        first: Option<A>,
        hedges: [Option<Pin<Box<H>>>; HEDGES],
        #[pin]
        timer: Option<Sleep>,
        core: Core,
        // The last failed result, kept in case the call ends on it.
        last: Option<R>,
    }
}

/// How to go on after an attempt settled.
enum Flow<T> {
    /// The call is over.
    Done(T),
    /// Start the next attempt now.
    Launch,
    /// Go on polling.
    Continue,
}

#[inline]
fn now() -> Instant {
    Clock::system().now()
}

impl<A, H, T, E> Race<A, H, Result<T, E>>
where
    A: Future,
    H: Future<Output = A::Output>,
{
    /// A race whose first attempt, `first`, has started.
    #[inline]
    pub(crate) fn new(core: Core, first: A) -> Self {
        Self {
            first: Some(first),
            hedges: [const { None }; HEDGES],
            timer: None,
            core,
            last: None,
        }
    }

    /// Polls every attempt in flight (in the order they started, so that of two answers ready
    /// together the older wins, and an answer ready together with the timer wins over it),
    /// then the timer.
    #[inline]
    pub(crate) fn poll_race<C, D>(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        hedge: &Hedge<C>,
        driver: &mut D,
    ) -> Poll<Result<T, Error<E>>>
    where
        D: Driver<Output = A::Output, Hedge = H, Value = T, Error = E>,
    {
        let mut this = self.project();
        loop {
            let mut launch = false;
            if let Some(first) = this.first.as_mut().as_pin_mut() {
                match first.poll(cx) {
                    Poll::Ready(output) => {
                        this.first.set(None);
                        let settled = driver.settle(output);
                        let at = (this.core.has_waited() && hedge.estimate.is_some()).then(now);
                        this.core.sample_first(hedge, at);
                        match this.core.settle(hedge, 0, settled.class, settled.refused) {
                            Verdict::Won => {
                                return Poll::Ready(won(
                                    hedge,
                                    this.core,
                                    settled.result,
                                    this.hedges,
                                    this.timer,
                                ));
                            }
                            verdict => {
                                match after(hedge, this.core, this.last, settled.result, verdict) {
                                    Flow::Done(outcome) => {
                                        return Poll::Ready(close(
                                            hedge,
                                            this.core,
                                            this.first,
                                            this.hedges,
                                            this.timer,
                                            outcome,
                                        ));
                                    }
                                    Flow::Launch => launch = true,
                                    Flow::Continue => {}
                                }
                            }
                        }
                    }
                    Poll::Pending => {
                        if !this.core.has_waited() && this.core.wants_start(hedge) {
                            this.core.first_pending(hedge, now());
                        }
                    }
                }
            }
            for index in 0..HEDGES {
                let Some(attempt) = this.hedges[index].as_mut() else {
                    continue;
                };
                let Poll::Ready(output) = attempt.as_mut().poll(cx) else {
                    continue;
                };
                this.hedges[index] = None;
                let settled = driver.settle(output);
                let verdict = this
                    .core
                    .settle(hedge, index + 1, settled.class, settled.refused);
                let outcome = match verdict {
                    Verdict::Won => Ok(settled.result),
                    verdict => match after(hedge, this.core, this.last, settled.result, verdict) {
                        Flow::Done(outcome) => Err(outcome),
                        Flow::Launch => {
                            launch = true;
                            continue;
                        }
                        Flow::Continue => continue,
                    },
                };
                let outcome = match outcome {
                    Ok(result) => win_result(hedge, this.core, result),
                    Err(outcome) => outcome,
                };
                return Poll::Ready(close(
                    hedge,
                    this.core,
                    this.first,
                    this.hedges,
                    this.timer,
                    outcome,
                ));
            }
            if launch {
                let launched = match this.core.launch(hedge, now(), Trigger::Failure) {
                    Launch::Go => start(this.core, this.hedges, driver),
                    other => other,
                };
                match launched {
                    Launch::Go => continue,
                    Launch::Hold => {}
                    Launch::End(reason) => {
                        let outcome = end(hedge, this.core, this.last, reason);
                        return Poll::Ready(close(
                            hedge,
                            this.core,
                            this.first,
                            this.hedges,
                            this.timer,
                            outcome,
                        ));
                    }
                }
            }
            let Some(at) = this.core.next_at() else {
                if this.timer.is_some() {
                    this.timer.set(None);
                }
                return Poll::Pending;
            };
            let at = tokio::time::Instant::from_std(at);
            match this.timer.as_mut().as_pin_mut() {
                Some(timer) if timer.deadline() == at => {}
                Some(timer) => timer.reset(at),
                None => this.timer.set(Some(tokio::time::sleep_until(at))),
            }
            let fired = this
                .timer
                .as_mut()
                .as_pin_mut()
                .is_some_and(|timer| timer.poll(cx).is_ready());
            if !fired {
                return Poll::Pending;
            }
            let launched = match this.core.timer_fired(hedge, now()) {
                Launch::Go => start(this.core, this.hedges, driver),
                other => other,
            };
            match launched {
                Launch::Go | Launch::Hold => {}
                Launch::End(reason) => {
                    let outcome = end(hedge, this.core, this.last, reason);
                    return Poll::Ready(close(
                        hedge,
                        this.core,
                        this.first,
                        this.hedges,
                        this.timer,
                        outcome,
                    ));
                }
            }
        }
    }

    /// Ends the call at once for the caller's cancellation: every attempt is dropped, and the
    /// error keeps the last failure, if any.
    pub(crate) fn cancel<C>(self: Pin<&mut Self>, hedge: &Hedge<C>) -> Error<E> {
        let mut this = self.project();
        this.first.set(None);
        for slot in this.hedges.iter_mut() {
            *slot = None;
        }
        this.timer.set(None);
        let now = now();
        match this.last.take() {
            Some(Err(e)) => {
                match this
                    .core
                    .finish(hedge, Err::<T, E>(e), StopReason::Cancelled, now)
                {
                    Err(error) => error,
                    Ok(_) => this.core.stop(hedge, StopReason::Cancelled, now),
                }
            }
            _ => this.core.stop(hedge, StopReason::Cancelled, now),
        }
    }
}

/// The first attempt won: the hedges (none, on the common path) and the timer are dropped.
#[inline]
fn won<C, H, T, E>(
    hedge: &Hedge<C>,
    core: &mut Core,
    result: Result<T, E>,
    hedges: &mut [Option<Pin<Box<H>>>; HEDGES],
    mut timer: Pin<&mut Option<Sleep>>,
) -> Result<T, Error<E>> {
    if core.started() > 1 {
        for slot in hedges.iter_mut() {
            *slot = None;
        }
    }
    if timer.is_some() {
        timer.set(None);
    }
    win_result(hedge, core, result)
}

/// The winner's result: a value as it is; an error the classifier ignored as permanent.
#[inline]
fn win_result<C, T, E>(
    hedge: &Hedge<C>,
    core: &mut Core,
    result: Result<T, E>,
) -> Result<T, Error<E>> {
    match result {
        Ok(value) => Ok(value),
        Err(e) => core.finish(hedge, Err(e), StopReason::Permanent, now()),
    }
}

/// What a settled failure means for the call: ends it, or keeps its result and goes on.
fn after<C, T, E>(
    hedge: &Hedge<C>,
    core: &mut Core,
    last: &mut Option<Result<T, E>>,
    result: Result<T, E>,
    verdict: Verdict,
) -> Flow<Result<T, Error<E>>> {
    match verdict {
        Verdict::End(reason) => Flow::Done(core.finish(hedge, result, reason, now())),
        Verdict::Launch => {
            *last = Some(result);
            Flow::Launch
        }
        Verdict::After(hint) => {
            *last = Some(result);
            match core.hint(hedge, now(), hint) {
                Launch::End(reason) => Flow::Done(end(hedge, core, last, reason)),
                Launch::Go | Launch::Hold => Flow::Continue,
            }
        }
        Verdict::Wait | Verdict::Won => {
            *last = Some(result);
            Flow::Continue
        }
    }
}

/// Ends the call on its last failure.
fn end<C, T, E>(
    hedge: &Hedge<C>,
    core: &mut Core,
    last: &mut Option<Result<T, E>>,
    reason: StopReason,
) -> Result<T, Error<E>> {
    let now = now();
    match last.take() {
        Some(result) => core.finish(hedge, result, reason, now),
        None => Err(core.stop(hedge, reason, now)),
    }
}

/// Starts the attempt the core just counted, in its slot; if it cannot start after all, the
/// call makes no more attempts, and ends if none is in flight.
fn start<D: Driver>(
    core: &mut Core,
    hedges: &mut [Option<Pin<Box<D::Hedge>>>; HEDGES],
    driver: &mut D,
) -> Launch {
    let index = core.started() as usize - 1;
    match driver.launch(core.started() == core.limit()) {
        Some(attempt) => {
            hedges[index - 1] = Some(Box::pin(attempt));
            Launch::Go
        }
        None => core.unlaunch(),
    }
}

/// The call is over with `outcome`: every attempt still in flight and the timer are dropped at
/// once, recording nothing, and a first attempt dropped for another's answer gives the time
/// it ran as a censored sample (see [`Core::sample_dropped_first`]).
fn close<A, H, C, R>(
    hedge: &Hedge<C>,
    core: &mut Core,
    mut first: Pin<&mut Option<A>>,
    hedges: &mut [Option<Pin<Box<H>>>; HEDGES],
    mut timer: Pin<&mut Option<Sleep>>,
    outcome: R,
) -> R {
    if first.is_some() {
        core.sample_dropped_first(hedge, hedge.estimate.is_some().then(now));
        first.set(None);
    }
    for slot in hedges.iter_mut() {
        *slot = None;
    }
    timer.set(None);
    outcome
}
