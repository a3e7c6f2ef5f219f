//! The async and blocking runners: thin shells that run attempts, sleep, and let
//! [`CallState`] decide.

#[cfg(feature = "tokio")]
use std::future::Future;

use super::state::{CallState, Next};
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
    pub async fn call<T, E, F, Fut>(&self, op: F) -> Result<T, Error<E>>
    where
        C: Classify<T, E>,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.run(None, None, op).await
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
        mut op: F,
    ) -> Result<T, Error<E>>
    where
        C: Classify<T, E>,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.run_classified(deadline, cancel, || {
            let attempt = op();
            async {
                let result = attempt.await;
                let class = self.classifier.classify(&result);
                (result, class)
            }
        })
        .await
    }

    /// The async retry loop over attempts that classify themselves (the pipeline's attempts
    /// classify timeouts and breaker rejections as well as the operation's outcome).
    #[cfg(feature = "tokio")]
    pub(crate) async fn run_classified<T, E, A, Fut>(
        &self,
        deadline: Option<Deadline>,
        cancel: Option<&CancellationToken>,
        mut attempt: A,
    ) -> Result<T, Error<E>>
    where
        A: FnMut() -> Fut,
        Fut: Future<Output = (Result<T, E>, Class)>,
    {
        let mut call = CallState::begin(self, deadline, is_cancelled(cancel))?;
        loop {
            let Some((result, class)) = until_cancelled(attempt(), cancel).await else {
                return call.stop(self, StopReason::Cancelled);
            };
            match call.settle_as(self, result, class) {
                Next::Done(outcome) => return outcome,
                Next::Wait(delay) => {
                    if until_cancelled(tokio::time::sleep(delay), cancel)
                        .await
                        .is_none()
                    {
                        return call.stop(self, StopReason::Cancelled);
                    }
                    if let Err(outcome) = call.resume(self, is_cancelled(cancel)) {
                        return outcome;
                    }
                }
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
        let mut call = CallState::begin(self, deadline, is_cancelled(cancel))?;
        loop {
            match call.settle(self, op()) {
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
        }
    }
}

#[inline]
fn is_cancelled(cancel: Option<&CancellationToken>) -> bool {
    cancel.is_some_and(CancellationToken::is_cancelled)
}

/// Runs `future` to completion, or until `cancel` fires (then `None`). The future is polled
/// first, so a result that is ready wins over a cancellation that is too.
#[cfg(feature = "tokio")]
async fn until_cancelled<F: Future>(
    future: F,
    cancel: Option<&CancellationToken>,
) -> Option<F::Output> {
    let Some(token) = cancel else {
        return Some(future.await);
    };
    let mut future = std::pin::pin!(future);
    let mut cancelled = std::pin::pin!(token.cancelled());
    std::future::poll_fn(|cx| {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(cx) {
            return std::task::Poll::Ready(Some(output));
        }
        cancelled.as_mut().poll(cx).map(|()| None)
    })
    .await
}
