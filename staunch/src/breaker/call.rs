//! [`Call`]: the future of [`CircuitBreaker::call`](super::CircuitBreaker::call).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use super::Error;
use super::permit::{Permit, RawPermit};
use super::shared::{Shared, outcome_of, unlikely};
use super::state::Outcome;
use crate::classify::Classify;

pin_project! {
    /// The future of [`call`](super::CircuitBreaker::call) and
    /// [`call_with`](super::CircuitBreaker::call_with): asks the breaker at its first poll, then
    /// runs the call and records its outcome.
    ///
    /// Cancel safe: dropped before the call ends, it records nothing and returns a probe slot.
    ///
    /// (Written out rather than an `async fn`: it keeps the permit as one word beside the
    /// breaker it already borrows, where an `async fn` would keep a second copy of the
    /// reference, and it stores less state on the way through a call that is ready at once.)
    #[must_use = "futures do nothing unless polled"]
    pub struct Call<'a, C, F, Fut> {
        shared: &'a Shared,
        classify: C,
        // Taken at the first poll.
        f: Option<F>,
        // The admitted call's permit, while `fut` is `Some`.
        raw: RawPermit,
        #[pin]
        fut: Option<Fut>,
    }

    impl<C, F, Fut> PinnedDrop for Call<'_, C, F, Fut> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if this.fut.is_some() {
                // Cancelled (or the call panicked): count nothing, return a probe slot.
                this.shared.complete(*this.raw, Outcome::Ignored);
            }
        }
    }
}

impl<'a, C, F, Fut> Call<'a, C, F, Fut> {
    #[inline]
    pub(crate) fn new(shared: &'a Shared, classify: C, f: F) -> Self {
        Self {
            shared,
            classify,
            f: Some(f),
            raw: RawPermit::normal(0, 0),
            fut: None,
        }
    }
}

impl<C, F, Fut, T, E> Future for Call<'_, C, F, Fut>
where
    C: Classify<T, E>,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    type Output = Result<T, Error<E>>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Some(f) = this.f.take() {
            // Admission at the first poll, so that a future built early and awaited later
            // neither holds a probe slot nor starts its slow-call timer in between. A rejection
            // returns from within the slow arm, so the closed path tests no `Result`.
            let raw = match this.shared.admit_untimed() {
                Ok(raw) => raw,
                Err(word) => {
                    unlikely();
                    match this.shared.acquire_slow(word) {
                        Ok(raw) => raw,
                        Err(open) => return Poll::Ready(Err(Error::Open(open))),
                    }
                }
            };
            // Held while `f` runs: if it panics, the guard returns a probe slot.
            let permit = Permit::new(this.shared, raw);
            this.fut.set(Some(f()));
            *this.raw = permit.into_raw();
        }
        let Some(fut) = this.fut.as_mut().as_pin_mut() else {
            panic!("`Call` polled after it completed");
        };
        let result = ready!(fut.poll(cx));
        // Classified before the call counts as finished: a panicking classifier leaves the
        // drop guard to return a probe slot.
        let outcome = outcome_of(this.classify.classify(&result));
        this.fut.set(None);
        this.shared.complete(*this.raw, outcome);
        Poll::Ready(result.map_err(Error::Inner))
    }
}

impl<C, F, Fut> fmt::Debug for Call<'_, C, F, Fut> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stage = match (&self.f, &self.fut) {
            (Some(_), _) => "not polled",
            (None, Some(_)) => "running",
            (None, None) => "finished",
        };
        f.debug_struct("Call")
            .field("stage", &stage)
            .finish_non_exhaustive()
    }
}
