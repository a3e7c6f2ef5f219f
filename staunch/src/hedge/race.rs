//! The shell that runs a hedged call's attempts side by side, without spawning: the first
//! attempt and the timer pinned inline, the later attempts in one box, all polled by the
//! caller's task. [`Core`] decides; this only polls, reads the clock and starts attempts.
//!
//! # Why the later attempts are boxed
//!
//! Attempts in flight are polled concurrently in one future, so each must be pinned in place.
//! The first lives inline: a call whose first attempt answers before the delay, nearly every
//! call, allocates nothing, and its future holds nothing for the attempts it never makes.
//! Keeping the four possible later attempts inline would put four more copies of the attempt's
//! future in every call's future, initialised and dropped on every call, hedged or not (and
//! pinning them in an array would take `unsafe`, which this crate forbids). So they live in one
//! box, with the last failure, made when the call first needs it (its first hedge, or its first
//! failure): one allocation for a call that hedges, beside a network call.

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
    #[project = RaceProj]
    pub(crate) struct Race<A, H, R> {
        #[pin]
        first: Option<A>,
        #[pin]
        timer: Option<Sleep>,
        core: Core,
        // The later attempts and the last failure, once the call needs them.
        rest: Option<Pin<Box<Rest<H, R>>>>,
    }
}

pin_project! {
    /// A call's attempts after the first, in the order they started, and its last failure.
    struct Rest<H, R> {
        #[pin]
        second: Option<H>,
        #[pin]
        third: Option<H>,
        #[pin]
        fourth: Option<H>,
        #[pin]
        fifth: Option<H>,
        // The last failed result, kept in case the call ends on it.
        last: Option<R>,
    }
}

impl<H, R> Rest<H, R> {
    fn new() -> Self {
        Self {
            second: None,
            third: None,
            fourth: None,
            fifth: None,
            last: None,
        }
    }

    /// The slot of attempt `index` (1 to 4: the attempts after the first).
    fn slot(self: Pin<&mut Self>, index: usize) -> Pin<&mut Option<H>> {
        let this = self.project();
        match index {
            1 => this.second,
            2 => this.third,
            3 => this.fourth,
            _ => this.fifth,
        }
    }

    fn last(self: Pin<&mut Self>) -> &mut Option<R> {
        self.project().last
    }

    /// Drops every attempt in flight.
    fn clear(mut self: Pin<&mut Self>) {
        for index in 1..=HEDGES {
            self.as_mut().slot(index).set(None);
        }
    }
}

/// What was already seen of the first attempt in this poll, before the race takes over.
pub(crate) enum Seen<T, E> {
    /// Not polled in this poll yet.
    Unpolled,
    /// Polled: not ready.
    Pending,
    /// Polled: settled, and not a win.
    Settled(Settled<T, E>),
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

type Outcome<T, E> = Result<T, Error<E>>;

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
            timer: None,
            core,
            rest: None,
        }
    }

    /// Polls the call. The common case, a first attempt alone that answers, is handled here,
    /// inline; everything else in [`poll_after`](Self::poll_after).
    #[inline]
    pub(crate) fn poll_race<C, D>(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        hedge: &Hedge<C>,
        driver: &mut D,
    ) -> Poll<Outcome<T, E>>
    where
        D: Driver<Output = A::Output, Hedge = H, Value = T, Error = E>,
    {
        let mut this = self.as_mut().project();
        if this.rest.is_some() || this.timer.is_some() {
            return self.poll_after(cx, hedge, driver, Seen::Unpolled);
        }
        let Some(first) = this.first.as_mut().as_pin_mut() else {
            return self.poll_after(cx, hedge, driver, Seen::Unpolled);
        };
        let Poll::Ready(output) = first.poll(cx) else {
            return self.poll_after(cx, hedge, driver, Seen::Pending);
        };
        let settled = driver.settle(output);
        if settled.class.is_failure() {
            return self.poll_after(cx, hedge, driver, Seen::Settled(settled));
        }
        this.first.set(None);
        let at = (this.core.has_waited() && hedge.estimate.is_some()).then(now);
        this.core.sample_first(hedge, at);
        this.core.settle(hedge, 0, settled.class, settled.refused);
        Poll::Ready(win_result(hedge, this.core, settled.result))
    }

    /// Polls every attempt in flight (in the order they started, so that of two answers ready
    /// together the older wins, and an answer ready together with the timer wins over it),
    /// then the timer. `first` is what [`poll_race`](Self::poll_race) already saw of the
    /// first attempt in this poll.
    #[inline(never)]
    pub(crate) fn poll_after<C, D>(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        hedge: &Hedge<C>,
        driver: &mut D,
        mut first: Seen<T, E>,
    ) -> Poll<Outcome<T, E>>
    where
        D: Driver<Output = A::Output, Hedge = H, Value = T, Error = E>,
    {
        let mut this = self.project();
        loop {
            let mut launch = false;
            // The first attempt.
            let settled = match std::mem::replace(&mut first, Seen::Unpolled) {
                Seen::Settled(settled) => Some(settled),
                Seen::Pending => None,
                Seen::Unpolled => match this.first.as_mut().as_pin_mut().map(|f| f.poll(cx)) {
                    Some(Poll::Ready(output)) => Some(driver.settle(output)),
                    _ => None,
                },
            };
            match settled {
                Some(settled) => {
                    this.first.set(None);
                    let at = (this.core.has_waited() && hedge.estimate.is_some()).then(now);
                    this.core.sample_first(hedge, at);
                    match this.on_settled(hedge, 0, settled) {
                        Flow::Done(outcome) => return Poll::Ready(outcome),
                        Flow::Launch => launch = true,
                        Flow::Continue => {}
                    }
                }
                None => {
                    if this.first.is_some()
                        && !this.core.has_waited()
                        && this.core.wants_start(hedge)
                    {
                        this.core.first_pending(hedge, now());
                    }
                }
            }
            // The attempts after it.
            for index in 1..=HEDGES {
                let Some(rest) = this.rest.as_mut() else {
                    break;
                };
                let mut slot = rest.as_mut().slot(index);
                let Some(attempt) = slot.as_mut().as_pin_mut() else {
                    continue;
                };
                let Poll::Ready(output) = attempt.poll(cx) else {
                    continue;
                };
                slot.set(None);
                let settled = driver.settle(output);
                match this.on_settled(hedge, index, settled) {
                    Flow::Done(outcome) => return Poll::Ready(outcome),
                    Flow::Launch => launch = true,
                    Flow::Continue => {}
                }
            }
            if launch {
                let launched = match this.core.launch(hedge, now(), Trigger::Failure) {
                    Launch::Go => this.start(driver),
                    other => other,
                };
                match launched {
                    Launch::Go => continue,
                    Launch::Hold => {}
                    Launch::End(reason) => return Poll::Ready(this.end(hedge, reason)),
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
                Launch::Go => this.start(driver),
                other => other,
            };
            if let Launch::End(reason) = launched {
                return Poll::Ready(this.end(hedge, reason));
            }
        }
    }

    /// Ends the call at once for the caller's cancellation: every attempt is dropped, and the
    /// error keeps the last failure, if any.
    pub(crate) fn cancel<C>(self: Pin<&mut Self>, hedge: &Hedge<C>) -> Error<E> {
        let mut this = self.project();
        this.first.set(None);
        this.timer.set(None);
        let last = this.rest.as_mut().and_then(|rest| {
            let mut rest = rest.as_mut();
            rest.as_mut().clear();
            rest.last().take()
        });
        let now = now();
        match last {
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

impl<A, H, T, E> RaceProj<'_, A, H, Result<T, E>>
where
    A: Future,
    H: Future<Output = A::Output>,
{
    /// The rest of the call's state, made at its first need.
    fn rest(&mut self) -> Pin<&mut Rest<H, Result<T, E>>> {
        self.rest
            .get_or_insert_with(|| Box::pin(Rest::new()))
            .as_mut()
    }

    /// What attempt `index`'s outcome means for the call.
    fn on_settled<C>(
        &mut self,
        hedge: &Hedge<C>,
        index: usize,
        settled: Settled<T, E>,
    ) -> Flow<Outcome<T, E>> {
        let verdict = self
            .core
            .settle(hedge, index, settled.class, settled.refused);
        let result = settled.result;
        match verdict {
            Verdict::Won => {
                let outcome = win_result(hedge, self.core, result);
                Flow::Done(self.close(hedge, outcome))
            }
            Verdict::End(reason) => {
                let outcome = self.core.finish(hedge, result, reason, now());
                Flow::Done(self.close(hedge, outcome))
            }
            Verdict::Launch => {
                *self.rest().last() = Some(result);
                Flow::Launch
            }
            Verdict::After(hint) => {
                *self.rest().last() = Some(result);
                match self.core.hint(hedge, now(), hint) {
                    Launch::End(reason) => Flow::Done(self.end(hedge, reason)),
                    Launch::Go | Launch::Hold => Flow::Continue,
                }
            }
            Verdict::Wait => {
                *self.rest().last() = Some(result);
                Flow::Continue
            }
        }
    }

    /// Starts the attempt the core just counted, in its slot; if it cannot start after all,
    /// the call makes no more attempts, and ends if none is in flight.
    fn start<D>(&mut self, driver: &mut D) -> Launch
    where
        D: Driver<Hedge = H>,
    {
        let index = self.core.started() as usize - 1;
        match driver.launch(self.core.started() == self.core.limit()) {
            Some(attempt) => {
                self.rest().slot(index).set(Some(attempt));
                Launch::Go
            }
            None => self.core.unlaunch(),
        }
    }

    /// Ends the call on its last failure.
    fn end<C>(&mut self, hedge: &Hedge<C>, reason: StopReason) -> Outcome<T, E> {
        let now = now();
        let last = self
            .rest
            .as_mut()
            .and_then(|rest| rest.as_mut().last().take());
        let outcome = match last {
            Some(result) => self.core.finish(hedge, result, reason, now),
            None => Err(self.core.stop(hedge, reason, now)),
        };
        self.close(hedge, outcome)
    }

    /// The call is over with `outcome`: every attempt still in flight and the timer are
    /// dropped at once, recording nothing, and a first attempt dropped for another's answer
    /// gives the time it ran as a censored sample (see [`Core::sample_dropped_first`]).
    fn close<O>(&mut self, hedge: &Hedge<impl Sized>, outcome: O) -> O {
        if self.first.is_some() {
            self.core
                .sample_dropped_first(hedge, hedge.estimate.is_some().then(now));
            self.first.set(None);
        }
        if let Some(rest) = self.rest.as_mut() {
            rest.as_mut().clear();
        }
        self.timer.set(None);
        outcome
    }
}

/// The winner's result: a value as it is; an error the classifier ignored as permanent.
#[inline]
fn win_result<C, T, E>(hedge: &Hedge<C>, core: &mut Core, result: Result<T, E>) -> Outcome<T, E> {
    match result {
        Ok(value) => Ok(value),
        Err(e) => core.finish(hedge, Err(e), StopReason::Permanent, now()),
    }
}
