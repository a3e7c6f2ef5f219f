//! [`Call`]: the future of a call through a chaos policy.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Sleep;

pin_project! {
    /// The future of [`Chaos::call`](super::Chaos::call), [`Chaos::apply`](super::Chaos::apply)
    /// and [`ChaosService`](super::ChaosService): the operation's own future, or the injected
    /// outcome, after the injected delay if there is one.
    ///
    /// With nothing injected it is the operation's future, and polling it polls the operation's
    /// future. Cancel safe: dropping it during an injected delay drops the operation's future
    /// unpolled.
    #[must_use = "futures do nothing unless polled"]
    pub struct Call<F>
    where
        F: Future,
    {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F>
    where
        F: Future,
    {
        // Nothing injected.
        Run { #[pin] future: F },
        // The injection, boxed so that it does not make every call's future larger; and the
        // operation, unless the injection replaced it.
        Injected { injected: Pin<Box<Injected<F::Output>>>, #[pin] future: Option<F> },
    }
}

pin_project! {
    /// An injected delay, and the injected error or substitute if the call was replaced.
    pub(super) struct Injected<O> {
        #[pin]
        sleep: Option<Sleep>,
        outcome: Option<O>,
    }
}

/// What a call carries of an injection: nothing, or the boxed injection.
pub(super) type Boxed<O> = Option<Pin<Box<Injected<O>>>>;

impl<O> Injected<O> {
    /// A delay of `delay` (none if zero) before `outcome`, or before the call if `None`; `None`
    /// when that injects nothing.
    pub(super) fn new(delay: Duration, outcome: Option<O>) -> Boxed<O> {
        let sleep = (!delay.is_zero()).then(|| tokio::time::sleep(delay));
        (sleep.is_some() || outcome.is_some()).then(|| Box::pin(Self { sleep, outcome }))
    }
}

impl<F: Future> Call<F> {
    /// The operation's future (`op`'s, called here), after `injected`; or, if `replaced`, the
    /// injected outcome alone (a replaced call always has its outcome in `injected`).
    #[inline]
    pub(super) fn new(injected: Boxed<F::Output>, replaced: bool, op: impl FnOnce() -> F) -> Self {
        let kind = match injected {
            None => Kind::Run { future: op() },
            Some(injected) => Kind::Injected {
                injected,
                future: (!replaced).then(op),
            },
        };
        Self { kind }
    }
}

impl<F: Future> Future for Call<F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Run { future } => future.poll(cx),
            KindProj::Injected { injected, future } => {
                if let Some(outcome) = ready!(injected.as_mut().poll_injected(cx)) {
                    return Poll::Ready(outcome);
                }
                match future.as_pin_mut() {
                    Some(future) => future.poll(cx),
                    None => panic!("`Call` polled after it completed"),
                }
            }
        }
    }
}

impl<O> Injected<O> {
    /// Waits out the delay, then returns the injected outcome if there is one. Out of line:
    /// the call with nothing injected stays small enough to inline.
    #[inline(never)]
    fn poll_injected(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<O>> {
        let mut this = self.project();
        if let Some(sleep) = this.sleep.as_mut().as_pin_mut() {
            ready!(sleep.poll(cx));
            this.sleep.set(None);
        }
        Poll::Ready(this.outcome.take())
    }
}

impl<F: Future> fmt::Debug for Call<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (delaying, replaced) = match &self.kind {
            Kind::Injected { injected, .. } => {
                (injected.sleep.is_some(), injected.outcome.is_some())
            }
            Kind::Run { .. } => (false, false),
        };
        f.debug_struct("Call")
            .field("delaying", &delaying)
            .field("replaced", &replaced)
            .finish_non_exhaustive()
    }
}
