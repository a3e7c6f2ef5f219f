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
        // token and no explicit deadline to check.
        let first = FirstAttempt::begin(self, None, false)?;
        match first.settle(self, op().await) {
            Ok(value) => Ok(value),
            Err(failed) => {
                let observe = Direct(&self.classifier);
                self.retry_after(first, failed, None, classified(self, op), &observe)
                    .await
            }
        }
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
    pub async fn call_with<T, E, F, Fut>(&self, options: &CallOptions, op: F) -> Result<T, Error<E>>
    where
        C: Classify<T, E>,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.run(options.deadline, options.cancel.as_ref(), op)
            .await
    }

    #[cfg(feature = "tokio")]
    async fn run<T, E, F, Fut>(
        &self,
        deadline: Option<Deadline>,
        cancel: Option<&CancellationToken>,
        op: F,
    ) -> Result<T, Error<E>>
    where
        C: Classify<T, E>,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let observe = Direct(&self.classifier);
        self.run_classified(deadline, cancel, classified(self, op), &observe)
            .await
    }

    /// The async retry loop over attempts that classify themselves (the pipeline's attempts
    /// classify timeouts and breaker rejections as well as the operation's outcome) and say
    /// whether they reached the dependency. `observe` reports retries to the classifier's hook.
    #[cfg(feature = "tokio")]
    pub(crate) async fn run_classified<T, E, A, Fut, O>(
        &self,
        deadline: Option<Deadline>,
        cancel: Option<&CancellationToken>,
        mut attempt: A,
        observe: &O,
    ) -> Result<T, Error<E>>
    where
        A: FnMut() -> Fut,
        Fut: Future<Output = (Result<T, E>, Class, bool)>,
        O: Observe<T, E>,
    {
        // The first attempt needs no more than `FirstAttempt`; the full state is built only if
        // it fails.
        let first = FirstAttempt::begin(self, deadline, is_cancelled(cancel))?;
        let (result, class, reached) = await_unless_cancelled!(
            attempt(),
            cancel,
            return first.stop(self, StopReason::Cancelled)
        );
        match first.settle_as(self, result, class, reached) {
            Ok(value) => Ok(value),
            Err(failed) => {
                self.retry_after(first, failed, cancel, attempt, observe)
                    .await
            }
        }
    }

    /// The rest of a call whose first attempt did not succeed.
    #[cfg(feature = "tokio")]
    async fn retry_after<T, E, A, Fut, O>(
        &self,
        first: FirstAttempt,
        failed: Failed<T, E>,
        cancel: Option<&CancellationToken>,
        mut attempt: A,
        observe: &O,
    ) -> Result<T, Error<E>>
    where
        A: FnMut() -> Fut,
        Fut: Future<Output = (Result<T, E>, Class, bool)>,
        O: Observe<T, E>,
    {
        let mut call = CallState::after(self, first);
        let mut next = call.settle_failed(self, failed, observe);
        loop {
            match next {
                Next::Done(outcome) => return outcome,
                Next::Wait(delay) => {
                    await_unless_cancelled!(
                        tokio::time::sleep(delay),
                        cancel,
                        return call.stop(self, StopReason::Cancelled)
                    );
                    if let Err(outcome) = call.resume(self, is_cancelled(cancel)) {
                        return outcome;
                    }
                }
            }
            let (result, class, reached) = await_unless_cancelled!(
                attempt(),
                cancel,
                return call.stop(self, StopReason::Cancelled)
            );
            next = call.settle_as(self, result, class, reached, observe);
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

/// The attempts of `op`, each classified by `retry`'s classifier once it settles.
#[cfg(feature = "tokio")]
fn classified<'a, C, T, E, F, Fut>(
    retry: &'a Retry<C>,
    mut op: F,
) -> impl FnMut() -> Classified<'a, C, Fut>
where
    C: Classify<T, E>,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    move || Classified {
        retry,
        attempt: op(),
    }
}

#[cfg(feature = "tokio")]
pin_project_lite::pin_project! {
    /// An attempt that classifies its result; made by [`classified`].
    struct Classified<'a, C, Fut> {
        retry: &'a Retry<C>,
        #[pin]
        attempt: Fut,
    }
}

#[cfg(feature = "tokio")]
impl<C, T, E, Fut> Future for Classified<'_, C, Fut>
where
    C: Classify<T, E>,
    Fut: Future<Output = Result<T, E>>,
{
    type Output = (Result<T, E>, Class, bool);

    #[inline]
    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = self.project();
        this.attempt.poll(cx).map(|result| {
            let class = this.retry.classifier.classify(&result);
            (result, class, true)
        })
    }
}

/// `$future.await`, or `$on_cancel` (which leaves the function) if the token `$cancel` fires
/// first. Without a token the future is awaited as it is, so the success path pays for no
/// wrapper.
#[cfg(feature = "tokio")]
macro_rules! await_unless_cancelled {
    ($future:expr, $cancel:expr, $on_cancel:expr) => {
        match $cancel {
            None => $future.await,
            Some(token) => match until_cancelled($future, token).await {
                Some(output) => output,
                None => $on_cancel,
            },
        }
    };
}
#[cfg(feature = "tokio")]
use await_unless_cancelled;

/// Runs `future` to completion, or until `cancel` fires (then `None`). The future is polled
/// first, so a result that is ready wins over a cancellation that is too.
#[cfg(feature = "tokio")]
async fn until_cancelled<F: Future>(future: F, cancel: &CancellationToken) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut cancelled = std::pin::pin!(cancel.cancelled());
    std::future::poll_fn(|cx| {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(cx) {
            return std::task::Poll::Ready(Some(output));
        }
        cancelled.as_mut().poll(cx).map(|()| None)
    })
    .await
}
