//! The async and blocking runners: thin shells that run attempts, sleep, and let
//! [`CallState`] decide.

#[cfg(feature = "tokio")]
use std::future::Future;

use super::event::Direct;
#[cfg(feature = "tokio")]
use super::event::Observe;
use super::state::{CallState, Failed, FirstAttempt, Next};
use super::{CallOptions, Retry};
#[cfg(feature = "tokio")]
use crate::classify::Class;
use crate::classify::Classify;
use crate::{CancellationToken, Deadline, Error, StopReason};

impl<C> Retry<C> {
    /// Runs `op` until it succeeds or retrying stops, sleeping on tokio's timer between attempts.
    ///
    /// `op` is called once per attempt. The deadline in scope ([`Deadline::scope`]) bounds the
    /// whole call. Dropping the returned future cancels it at once, mid-attempt or mid-sleep.
    /// For attempts that need state of their own between attempts (a connection to reuse,
    /// mutably), see [`call_with_context`](Self::call_with_context).
    ///
    /// An `Ok` that the classifier calls a failure is retried like an error; if retrying stops
    /// on it, it is returned as is.
    ///
    /// # Errors
    ///
    /// [`Error`] with the [`StopReason`](crate::StopReason), the attempts made and the last
    /// error.
    #[cfg(feature = "tokio")]
    pub async fn call<T, E, F, Fut>(&self, mut op: F) -> Result<T, Error<E>>
    where
        C: Classify<T, E>,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        // `run(None, None, op)`, written out so that the first attempt is compiled with no
        // token and no explicit deadline to check, and the loop with no token to watch.
        let first = FirstAttempt::begin(self, None, false)?;
        let failed = match first.settle(self, op().await) {
            Ok(value) => return Ok(value),
            Err(failed) => failed,
        };
        let observe = Direct(&self.classifier);
        let (call, next) = self.after_first(first, failed, &observe);
        let attempt = move |()| Classified::new(self, Unit::new(op()));
        let (_, outcome) = self
            .retry_loop(call, next, NoCancel, (), attempt, &observe)
            .await;
        outcome
    }

    /// [`call`](Self::call) with an explicit deadline and/or cancellation token.
    ///
    /// # Errors
    ///
    /// As [`call`](Self::call), plus [`StopReason::Cancelled`](StopReason::Cancelled)
    /// when the token fires.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use staunch::retry::CallOptions;
    /// use staunch::{CancellationToken, Retry, RetryConfig, StopReason};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), staunch::ConfigError> {
    /// let retry = Retry::new(RetryConfig::new().with_max_attempts(10))?;
    /// let token = CancellationToken::new();
    /// let options = CallOptions::new().with_cancellation(token.clone());
    /// token.cancel();
    /// let err = retry.call_with(&options, || async { Err::<(), _>("down") }).await.unwrap_err();
    /// assert_eq!(err.reason(), StopReason::Cancelled);
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "tokio")]
    pub async fn call_with<T, E, F, Fut>(
        &self,
        options: &CallOptions,
        mut op: F,
    ) -> Result<T, Error<E>>
    where
        C: Classify<T, E>,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let observe = Direct(&self.classifier);
        let attempt = move |()| Classified::new(self, Unit::new(op()));
        let cancel = options.cancel.as_ref();
        let (_, outcome) = self
            .run_classified(options.deadline, cancel, (), attempt, &observe)
            .await;
        outcome
    }

    /// [`call`](Self::call) for attempts that need state between them: `context` is handed to
    /// the first attempt, which hands it back with its result, for the next attempt or for the
    /// caller. A connection can be reused (or repaired) from one attempt to the next, or a
    /// `&mut` borrowed through the whole call: what backon calls `RetryableWithContext`, the
    /// answer to retrying an operation that needs `&mut self`.
    ///
    /// Why not an async closure that borrows its state (`async || conn.query().await`)? rustc
    /// (as of 1.95) cannot prove the future of a generic async closure `Send`, so such a call
    /// could not be spawned on a multi-threaded runtime; a context passed by value can.
    ///
    /// The deadline in scope bounds the call, as for [`call`](Self::call). Dropping the future
    /// drops the context with it.
    ///
    /// # Errors
    ///
    /// As [`call`](Self::call); the context comes back either way.
    ///
    /// # Examples
    ///
    /// Each attempt uses the same connection, through a `&mut`, and repairs it after a failure.
    ///
    /// ```
    /// use staunch::{Retry, RetryConfig};
    ///
    /// struct Connection {
    ///     healthy: bool,
    ///     queries: u32,
    /// }
    ///
    /// impl Connection {
    ///     async fn query(&mut self) -> Result<u32, &'static str> {
    ///         self.queries += 1;
    ///         if self.healthy { Ok(42) } else { Err("broken pipe") }
    ///     }
    ///
    ///     async fn reconnect(&mut self) {
    ///         self.healthy = true;
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), staunch::ConfigError> {
    /// let retry = Retry::new(RetryConfig::new().with_max_attempts(3))?;
    /// let mut conn = Connection { healthy: false, queries: 0 };
    /// let (_, answer) = retry
    ///     .call_with_context(&mut conn, |conn: &mut Connection| async move {
    ///         let result = conn.query().await;
    ///         if result.is_err() {
    ///             conn.reconnect().await;
    ///         }
    ///         (conn, result)
    ///     })
    ///     .await;
    /// assert_eq!(answer.unwrap(), 42);
    /// assert_eq!(conn.queries, 2);
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "tokio")]
    pub async fn call_with_context<X, T, E, F, Fut>(
        &self,
        context: X,
        mut op: F,
    ) -> (X, Result<T, Error<E>>)
    where
        C: Classify<T, E>,
        F: FnMut(X) -> Fut,
        Fut: Future<Output = (X, Result<T, E>)>,
    {
        let observe = Direct(&self.classifier);
        let attempt = move |context| Classified::new(self, op(context));
        let (context, outcome) = self
            .run_classified(None, NoCancel, context, attempt, &observe)
            .await;
        // With no token to watch, no attempt is cut short: the context always comes back.
        let Ok(context) = context;
        (context, outcome)
    }

    /// The async retry loop over attempts that classify themselves (the pipeline's attempts
    /// classify timeouts and breaker rejections as well as the operation's outcome) and say
    /// whether they reached the dependency. Each attempt takes the state `S` and hands it back
    /// (`()` but for [`call_with_context`](Self::call_with_context)); the state comes back
    /// unless `cancel` cut an attempt short. `observe` reports retries to the classifier's
    /// hook; `cancel` is a token, or [`NoCancel`] for a loop with none to watch.
    #[cfg(feature = "tokio")]
    #[allow(clippy::manual_async_fn)] // See `retry_loop`.
    pub(crate) fn run_classified<T, E, S, A, Fut, O, K>(
        &self,
        deadline: Option<Deadline>,
        cancel: K,
        state: S,
        mut attempt: A,
        observe: &O,
    ) -> impl Future<Output = (Result<S, K::Cancelled>, Result<T, Error<E>>)>
    where
        A: FnMut(S) -> Fut,
        Fut: Future<Output = (S, Settled<T, E>)>,
        O: Observe<T, E>,
        K: Cancel,
    {
        async move {
            // The first attempt needs no more than `FirstAttempt`; the full state is built only
            // if it fails.
            let first = match FirstAttempt::begin(self, deadline, cancel.is_cancelled()) {
                Ok(first) => first,
                Err(refused) => return (Ok(state), Err(refused)),
            };
            let (state, (result, class, reached)) = match cancel.until(attempt(state)).await {
                Ok(settled) => settled,
                Err(cancelled) => {
                    return (Err(cancelled), first.stop(self, StopReason::Cancelled));
                }
            };
            let failed = match first.settle_as(self, result, class, reached) {
                Ok(value) => return (Ok(state), Ok(value)),
                Err(failed) => failed,
            };
            let (call, next) = self.after_first(first, failed, observe);
            self.retry_loop(call, next, cancel, state, attempt, observe)
                .await
        }
    }

    /// The state of a call whose first attempt did not succeed, and what to do next.
    #[cfg(feature = "tokio")]
    fn after_first<T, E>(
        &self,
        first: FirstAttempt,
        failed: Failed<T, E>,
        observe: &impl Observe<T, E>,
    ) -> (CallState<T, E>, Next<T, E>) {
        let mut call = CallState::after(self, first);
        let next = call.settle_failed(self, failed, observe);
        (call, next)
    }

    /// The rest of a call whose first attempt did not succeed. A plain function returning an
    /// `async` block, not an `async fn`: the block keeps `call` and `next` where they were
    /// moved in, where an `async fn` would keep its arguments and a copy of each.
    #[cfg(feature = "tokio")]
    #[allow(clippy::too_many_arguments, clippy::manual_async_fn)]
    fn retry_loop<T, E, S, A, Fut, O, K>(
        &self,
        mut call: CallState<T, E>,
        mut next: Next<T, E>,
        cancel: K,
        mut state: S,
        mut attempt: A,
        observe: &O,
    ) -> impl Future<Output = (Result<S, K::Cancelled>, Result<T, Error<E>>)>
    where
        A: FnMut(S) -> Fut,
        Fut: Future<Output = (S, Settled<T, E>)>,
        O: Observe<T, E>,
        K: Cancel,
    {
        async move {
            loop {
                match next {
                    Next::Done(outcome) => return (Ok(state), outcome),
                    Next::Wait(delay) => {
                        if cancel.until(tokio::time::sleep(delay)).await.is_err() {
                            return (Ok(state), call.stop(self, StopReason::Cancelled));
                        }
                        if let Err(outcome) = call.resume(self, cancel.is_cancelled()) {
                            return (Ok(state), outcome);
                        }
                    }
                }
                let (result, class, reached);
                (state, (result, class, reached)) = match cancel.until(attempt(state)).await {
                    Ok(settled) => settled,
                    Err(cancelled) => {
                        return (Err(cancelled), call.stop(self, StopReason::Cancelled));
                    }
                };
                next = call.settle_as(self, result, class, reached, observe);
            }
        }
    }

    /// Runs the blocking `op` until it succeeds or retrying stops, sleeping the thread between
    /// attempts, with the same rules as [`call`](Self::call). The deadline in scope
    /// ([`Deadline::scope_sync`]) bounds the whole call.
    ///
    /// # Errors
    ///
    /// As [`call`](Self::call).
    ///
    /// # Examples
    ///
    /// ```
    /// use staunch::{ManualClock, Retry, RetryConfig};
    ///
    /// // A manual clock makes the sleeps virtual.
    /// let retry = Retry::new(RetryConfig::new().with_max_attempts(3))?.with_clock(ManualClock::new().into());
    /// let mut attempt = 0;
    /// let value = retry.call_blocking(|| {
    ///     attempt += 1;
    ///     if attempt < 3 { Err("busy") } else { Ok(attempt) }
    /// });
    /// assert_eq!(value.unwrap(), 3);
    /// # Ok::<(), staunch::ConfigError>(())
    /// ```
    pub fn call_blocking<T, E, F>(&self, op: F) -> Result<T, Error<E>>
    where
        C: Classify<T, E>,
        F: FnMut() -> Result<T, E>,
    {
        self.run_blocking(None, None, op)
    }

    /// [`call_blocking`](Self::call_blocking) with an explicit deadline and/or cancellation
    /// token. A token fired from another thread wakes the sleeping thread at once.
    ///
    /// # Errors
    ///
    /// As [`call_with`](Self::call_with).
    pub fn call_blocking_with<T, E, F>(&self, options: &CallOptions, op: F) -> Result<T, Error<E>>
    where
        C: Classify<T, E>,
        F: FnMut() -> Result<T, E>,
    {
        self.run_blocking(options.deadline, options.cancel.as_ref(), op)
    }

    #[inline]
    fn run_blocking<T, E, F>(
        &self,
        deadline: Option<Deadline>,
        cancel: Option<&CancellationToken>,
        mut op: F,
    ) -> Result<T, Error<E>>
    where
        C: Classify<T, E>,
        F: FnMut() -> Result<T, E>,
    {
        // As in `run_classified`: the full state only after a failure.
        let first = FirstAttempt::begin(self, deadline, is_cancelled(cancel))?;
        match first.settle(self, op()) {
            Ok(value) => Ok(value),
            Err(failed) => self.retry_blocking_after(first, failed, cancel, op),
        }
    }

    /// The rest of a blocking call whose first attempt did not succeed.
    fn retry_blocking_after<T, E, F>(
        &self,
        first: FirstAttempt,
        failed: Failed<T, E>,
        cancel: Option<&CancellationToken>,
        mut op: F,
    ) -> Result<T, Error<E>>
    where
        C: Classify<T, E>,
        F: FnMut() -> Result<T, E>,
    {
        let mut call = CallState::after(self, first);
        let mut next = call.settle_failed(self, failed, &Direct(&self.classifier));
        loop {
            match next {
                Next::Done(outcome) => return outcome,
                Next::Wait(delay) => {
                    if !self.clock.sleep_blocking(delay, cancel) {
                        return call.stop(self, StopReason::Cancelled);
                    }
                    if let Err(outcome) = call.resume(self, is_cancelled(cancel)) {
                        return outcome;
                    }
                }
            }
            next = call.settle(self, op());
        }
    }
}

#[inline]
fn is_cancelled(cancel: Option<&CancellationToken>) -> bool {
    cancel.is_some_and(CancellationToken::is_cancelled)
}

/// An attempt's result, its class, and whether it reached the dependency.
#[cfg(feature = "tokio")]
pub(crate) type Settled<T, E> = (Result<T, E>, Class, bool);

#[cfg(feature = "tokio")]
pin_project_lite::pin_project! {
    /// An attempt with no state to hand back: its output, with `()` for the state.
    pub(crate) struct Unit<F> {
        #[pin]
        future: F,
    }
}

#[cfg(feature = "tokio")]
impl<F> Unit<F> {
    pub(crate) fn new(future: F) -> Self {
        Self { future }
    }
}

#[cfg(feature = "tokio")]
impl<F: Future> Future for Unit<F> {
    type Output = ((), F::Output);

    #[inline]
    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        self.project().future.poll(cx).map(|output| ((), output))
    }
}

#[cfg(feature = "tokio")]
pin_project_lite::pin_project! {
    /// An attempt that classifies its result by its policy's classifier when it settles, with
    /// the state it hands back.
    struct Classified<'a, C, Fut> {
        retry: &'a Retry<C>,
        #[pin]
        attempt: Fut,
    }
}

#[cfg(feature = "tokio")]
impl<'a, C, Fut> Classified<'a, C, Fut> {
    #[inline]
    fn new(retry: &'a Retry<C>, attempt: Fut) -> Self {
        Self { retry, attempt }
    }
}

#[cfg(feature = "tokio")]
impl<C, S, T, E, Fut> Future for Classified<'_, C, Fut>
where
    C: Classify<T, E>,
    Fut: Future<Output = (S, Result<T, E>)>,
{
    type Output = (S, Settled<T, E>);

    #[inline]
    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = self.project();
        this.attempt.poll(cx).map(|(state, result)| {
            let class = this.retry.classifier.classify(&result);
            (state, (result, class, true))
        })
    }
}

/// What the async loop watches for cancellation: a token, or nothing at all ([`NoCancel`],
/// so that a loop with no token to watch is compiled without the watching).
#[cfg(feature = "tokio")]
pub(crate) trait Cancel: Copy {
    /// What a cancellation yields: nothing for a token, and no value at all for [`NoCancel`],
    /// which never fires.
    type Cancelled;

    /// Whether it has fired.
    fn is_cancelled(self) -> bool;

    /// `future`'s output, or what it yields if it fires first. The future is polled first, so
    /// a result that is ready wins over a cancellation that is too.
    fn until<F: Future>(
        self,
        future: F,
    ) -> impl Future<Output = Result<F::Output, Self::Cancelled>>;
}

/// No token: nothing to watch.
#[cfg(feature = "tokio")]
#[derive(Clone, Copy, Debug)]
pub(crate) struct NoCancel;

#[cfg(feature = "tokio")]
impl Cancel for NoCancel {
    type Cancelled = std::convert::Infallible;

    #[inline]
    fn is_cancelled(self) -> bool {
        false
    }

    #[inline]
    fn until<F: Future>(
        self,
        future: F,
    ) -> impl Future<Output = Result<F::Output, Self::Cancelled>> {
        Until {
            future,
            cancelled: None::<std::future::Pending<std::convert::Infallible>>,
        }
    }
}

#[cfg(feature = "tokio")]
impl Cancel for Option<&CancellationToken> {
    type Cancelled = ();

    #[inline]
    fn is_cancelled(self) -> bool {
        is_cancelled(self)
    }

    #[inline]
    fn until<F: Future>(
        self,
        future: F,
    ) -> impl Future<Output = Result<F::Output, Self::Cancelled>> {
        Until {
            future,
            cancelled: self.map(CancellationToken::cancelled),
        }
    }
}

#[cfg(feature = "tokio")]
pin_project_lite::pin_project! {
    /// A future raced against a cancellation, if there is one; made by [`Cancel::until`].
    struct Until<F, K> {
        #[pin]
        future: F,
        #[pin]
        cancelled: Option<K>,
    }
}

#[cfg(feature = "tokio")]
impl<F: Future, K: Future> Future for Until<F, K> {
    type Output = Result<F::Output, K::Output>;

    #[inline]
    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = self.project();
        if let std::task::Poll::Ready(output) = this.future.poll(cx) {
            return std::task::Poll::Ready(Ok(output));
        }
        match this.cancelled.as_pin_mut() {
            Some(cancelled) => cancelled.poll(cx).map(Err),
            None => std::task::Poll::Pending,
        }
    }
}
