//! The async runner for closures: [`Hedge::call`] and [`Hedge::call_with`].

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::task::{Context, Poll};

use super::Hedge;
use super::race::{Driver, Race, Seen, Settled};
use super::state::{Begun, Core};
use crate::classify::Classify;
use crate::retry::CallOptions;
use crate::{CancellationToken, Deadline, Error};

impl<C> Hedge<C> {
    /// Runs `op`, and again, side by side, whenever the attempts in flight have not answered
    /// after the delay or one fails transiently, up to `max_attempts` in all; the first
    /// answer that is not a failure wins, and the attempts still in flight are dropped at once.
    ///
    /// `op` is called once per attempt, on the polling task: nothing is spawned. The deadline
    /// in scope ([`Deadline::scope`]) bounds the call: no attempt starts at or past it (an
    /// attempt already running is not cut short; in a [`Pipeline`](crate::Pipeline) every
    /// attempt is clipped to it). Dropping the returned future drops every attempt in flight.
    ///
    /// Only hedge operations that are safe to run more than once at the same time (reads,
    /// idempotent writes): a hedge is sent before the first attempt has answered.
    ///
    /// # Errors
    ///
    /// [`Error`] with the [`StopReason`](crate::StopReason): [`Permanent`](crate::StopReason::Permanent) for a
    /// permanent failure, which ends the call at once; [`Exhausted`](crate::StopReason::Exhausted)
    /// when every attempt failed ([`Error::attempt_log`] has each one's class);
    /// [`Budget`](crate::StopReason::Budget) or [`Deadline`](crate::StopReason::Deadline) when the attempts
    /// in flight failed and no other could go. The last failure is kept.
    pub async fn call<T, E, F, Fut>(&self, op: F) -> Result<T, Error<E>>
    where
        C: Classify<T, E>,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.drive(None, None, Calls { hedge: self, op }).await
    }

    /// [`call`](Self::call) with an explicit deadline (the tighter of it and the one in scope
    /// applies) and/or a cancellation token, which ends the call at once, dropping every
    /// attempt, with [`StopReason::Cancelled`](crate::StopReason::Cancelled).
    ///
    /// # Errors
    ///
    /// As [`call`](Self::call), plus [`StopReason::Cancelled`](crate::StopReason::Cancelled).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use staunch::hedge::{Hedge, HedgeConfig, HedgeDelay};
    /// use staunch::retry::CallOptions;
    /// use staunch::Deadline;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), staunch::ConfigError> {
    /// let hedge = Hedge::new(HedgeConfig::new(HedgeDelay::fixed(Duration::from_millis(50))))?;
    /// // 30 ms left: the hedge would be due after the deadline, so it is not sent.
    /// let options = CallOptions::new().with_deadline(Deadline::after(Duration::from_millis(30)));
    /// let mut attempts = 0;
    /// let slow = hedge
    ///     .call_with(&options, || {
    ///         attempts += 1;
    ///         async {
    ///             tokio::time::sleep(Duration::from_millis(100)).await;
    ///             Ok::<_, std::io::Error>(())
    ///         }
    ///     })
    ///     .await;
    /// assert!(slow.is_ok());
    /// assert_eq!(attempts, 1);
    /// # Ok(()) }
    /// ```
    pub async fn call_with<T, E, F, Fut>(&self, options: &CallOptions, op: F) -> Result<T, Error<E>>
    where
        C: Classify<T, E>,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.drive(
            options.deadline,
            options.cancel.as_ref(),
            Calls { hedge: self, op },
        )
        .await
    }

    /// The hedged call over attempts that classify themselves (the pipeline's classify
    /// timeouts and breaker rejections as well as the operation's outcome).
    pub(crate) async fn run_classified<T, E, A, Fut>(
        &self,
        deadline: Option<Deadline>,
        cancel: Option<&CancellationToken>,
        attempt: A,
    ) -> Result<T, Error<E>>
    where
        A: FnMut() -> Fut,
        Fut: Future<Output = Settled<T, E>>,
    {
        self.drive(deadline, cancel, Attempts(attempt)).await
    }

    /// The hedged call over the attempts `driver` starts and settles.
    async fn drive<D, T, E>(
        &self,
        deadline: Option<Deadline>,
        cancel: Option<&CancellationToken>,
        mut driver: D,
    ) -> Result<T, Error<E>>
    where
        D: Driver<Value = T, Error = E> + First,
    {
        let cancelled = cancel.is_some_and(CancellationToken::is_cancelled);
        let begun = Begun::begin(self, deadline, cancelled, true)?;
        // The first attempt, pinned here and polled once before anything else is built: a
        // call whose first attempt answers at once needs no race, timer or token.
        let mut first = pin!(driver.first());
        let seen = match poll_fn(|cx| Poll::Ready(first.as_mut().poll(cx))).await {
            Poll::Ready(output) => {
                let settled = driver.settle(output);
                if !settled.class.is_failure() {
                    return begun.won_at_once(self, settled.result, settled.class);
                }
                Seen::Settled(settled)
            }
            Poll::Pending => Seen::Pending,
        };
        self.race(Core::after(begun), first, seen, cancel, driver)
            .await
    }

    /// The rest of a call whose first attempt did not answer at once: the race. An `async fn`
    /// of its own, so that the code of the common path above stays small.
    async fn race<D, A, T, E>(
        &self,
        core: Core,
        first: A,
        seen: Seen<T, E>,
        cancel: Option<&CancellationToken>,
        mut driver: D,
    ) -> Result<T, Error<E>>
    where
        D: Driver<Value = T, Error = E>,
        A: Future<Output = D::Output>,
    {
        let mut race = pin!(Race::new(core, first));
        let mut seen = Some(seen);
        match cancel {
            None => poll_fn(|cx| step(race.as_mut(), cx, self, &mut driver, &mut seen)).await,
            Some(token) => {
                let mut fired = pin!(token.cancelled());
                poll_fn(|cx| {
                    // The attempts first: an answer ready together with the cancellation wins.
                    let polled = step(race.as_mut(), cx, self, &mut driver, &mut seen);
                    if polled.is_ready() {
                        return polled;
                    }
                    fired
                        .as_mut()
                        .poll(cx)
                        .map(|()| Err(race.as_mut().cancel(self)))
                })
                .await
            }
        }
    }
}

/// A closure driver's first attempt, which always starts (a later one may not).
trait First: Driver {
    fn first(&mut self) -> Self::Hedge;
}

/// Polls the race, the first time with what was `seen` of the first attempt.
#[inline]
fn step<C, A, D, T, E>(
    race: Pin<&mut Race<A, D::Hedge, Result<T, E>>>,
    cx: &mut Context<'_>,
    hedge: &Hedge<C>,
    driver: &mut D,
    seen: &mut Option<Seen<T, E>>,
) -> Poll<Result<T, Error<E>>>
where
    A: Future<Output = D::Output>,
    D: Driver<Value = T, Error = E>,
{
    match seen.take() {
        Some(seen) => race.poll_after(cx, hedge, driver, seen),
        None => race.poll_race(cx, hedge, driver),
    }
}

/// The attempts of a closure that classify themselves: each call of `A` starts one.
struct Attempts<A>(A);

impl<A, Fut, T, E> Driver for Attempts<A>
where
    A: FnMut() -> Fut,
    Fut: Future<Output = Settled<T, E>>,
{
    type Output = Settled<T, E>;
    type Value = T;
    type Error = E;
    type Hedge = Fut;

    #[inline]
    fn settle(&mut self, output: Settled<T, E>) -> Settled<T, E> {
        output
    }

    #[inline]
    fn launch(&mut self, _last: bool) -> Option<Fut> {
        Some((self.0)())
    }
}

impl<A, Fut, T, E> First for Attempts<A>
where
    A: FnMut() -> Fut,
    Fut: Future<Output = Settled<T, E>>,
{
    #[inline]
    fn first(&mut self) -> Fut {
        (self.0)()
    }
}

/// The attempts of `op`, each classified by the policy's classifier once it settles.
struct Calls<'a, C, F> {
    hedge: &'a Hedge<C>,
    op: F,
}

impl<C, F, Fut, T, E> Driver for Calls<'_, C, F>
where
    C: Classify<T, E>,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    type Output = Result<T, E>;
    type Value = T;
    type Error = E;
    type Hedge = Fut;

    #[inline]
    fn settle(&mut self, result: Result<T, E>) -> Settled<T, E> {
        let class = self.hedge.classifier.classify(&result);
        Settled {
            result,
            class,
            refused: None,
        }
    }

    #[inline]
    fn launch(&mut self, _last: bool) -> Option<Fut> {
        Some((self.op)())
    }
}

impl<C, F, Fut, T, E> First for Calls<'_, C, F>
where
    C: Classify<T, E>,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    #[inline]
    fn first(&mut self) -> Fut {
        (self.op)()
    }
}
