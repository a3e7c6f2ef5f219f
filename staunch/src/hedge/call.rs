//! The async runner for closures: [`Hedge::call`] and [`Hedge::call_with`].

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::Hedge;
use super::race::{Driver, First, Race, Settled};
use super::state::Core;
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
    /// when every attempt failed ([`Error::classes`] has each one's class);
    /// [`Budget`](crate::StopReason::Budget) or [`Deadline`](crate::StopReason::Deadline) when the attempts
    /// in flight failed and no other could go. The last failure is kept.
    pub async fn call<T, E, F, Fut>(&self, op: F) -> Result<T, Error<E>>
    where
        C: Classify<T, E>,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.run_classified(None, None, classified(self, op)).await
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
        self.run_classified(
            options.deadline,
            options.cancel.as_ref(),
            classified(self, op),
        )
        .await
    }

    /// The hedged call over attempts that classify themselves (the pipeline's classify
    /// timeouts and breaker rejections as well as the operation's outcome).
    pub(crate) async fn run_classified<T, E, A, Fut>(
        &self,
        deadline: Option<Deadline>,
        cancel: Option<&CancellationToken>,
        mut attempt: A,
    ) -> Result<T, Error<E>>
    where
        A: FnMut() -> Fut,
        Fut: Future<Output = Settled<T, E>>,
    {
        let cancelled = cancel.is_some_and(CancellationToken::is_cancelled);
        let mut core = Core::begin(self, deadline, cancelled, true)?;
        // The first attempt, pinned here and polled once before anything else is built: a
        // call whose first attempt answers at once needs no race, timer or token.
        let mut first = pin!(attempt());
        let seen = match poll_fn(|cx| Poll::Ready(first.as_mut().poll(cx))).await {
            Poll::Ready(settled) if !settled.class.is_failure() => {
                return core.won_at_once(self, settled.result, settled.class);
            }
            Poll::Ready(settled) => First::Settled(settled),
            Poll::Pending => First::Pending,
        };
        let mut race = pin!(Race::new(core, first));
        let mut driver = Attempts(attempt);
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

/// Polls the race, the first time with what was `seen` of the first attempt.
#[inline]
fn step<C, A, D, T, E>(
    race: Pin<&mut Race<A, D::Hedge, Result<T, E>>>,
    cx: &mut Context<'_>,
    hedge: &Hedge<C>,
    driver: &mut D,
    seen: &mut Option<First<T, E>>,
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

/// The attempts of a closure: each call of `A` starts one.
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

/// The attempts of `op`, each classified by `hedge`'s classifier once it settles.
fn classified<'a, C, T, E, F, Fut>(
    hedge: &'a Hedge<C>,
    mut op: F,
) -> impl FnMut() -> Classified<'a, C, Fut>
where
    C: Classify<T, E>,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    move || Classified {
        hedge,
        attempt: op(),
    }
}

pin_project! {
    /// An attempt that classifies its result; made by [`classified`].
    struct Classified<'a, C, Fut> {
        hedge: &'a Hedge<C>,
        #[pin]
        attempt: Fut,
    }
}

impl<C, T, E, Fut> Future for Classified<'_, C, Fut>
where
    C: Classify<T, E>,
    Fut: Future<Output = Result<T, E>>,
{
    type Output = Settled<T, E>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        this.attempt.poll(cx).map(|result| {
            let class = this.hedge.classifier.classify(&result);
            Settled {
                result,
                class,
                refused: None,
            }
        })
    }
}
