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
    /// With nothing injected it polls the operation's future and adds nothing else. Cancel
    /// safe: dropping it during an injected delay drops the operation's future unpolled.
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
        // The operation, after the delay if any. The timer is boxed so that a call with nothing
        // injected carries one word for it, not a whole `Sleep`.
        Run { sleep: Option<Pin<Box<Sleep>>>, #[pin] future: F },
        // An injected error or substitute, after the delay if any; taken when returned.
        Injected { sleep: Option<Pin<Box<Sleep>>>, outcome: Option<F::Output> },
    }
}

/// A timer for `delay`, or none for a zero delay.
fn timer(delay: Duration) -> Option<Pin<Box<Sleep>>> {
    (!delay.is_zero()).then(|| Box::pin(tokio::time::sleep(delay)))
}

impl<F: Future> Call<F> {
    /// The operation's future, polled at once.
    #[inline]
    pub(super) fn run(future: F) -> Self {
        Self {
            kind: Kind::Run {
                sleep: None,
                future,
            },
        }
    }

    /// The operation's future, polled after `delay`.
    pub(super) fn delayed(delay: Duration, future: F) -> Self {
        Self {
            kind: Kind::Run {
                sleep: timer(delay),
                future,
            },
        }
    }

    /// `outcome` instead of the operation, after `delay`.
    pub(super) fn injected(delay: Duration, outcome: F::Output) -> Self {
        Self {
            kind: Kind::Injected {
                sleep: timer(delay),
                outcome: Some(outcome),
            },
        }
    }
}

/// Waits out the injected delay, if any is left.
#[inline]
fn wait(sleep: &mut Option<Pin<Box<Sleep>>>, cx: &mut Context<'_>) -> Poll<()> {
    if let Some(timer) = sleep {
        ready!(timer.as_mut().poll(cx));
        *sleep = None;
    }
    Poll::Ready(())
}

impl<F: Future> Future for Call<F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Run { sleep, future } => {
                ready!(wait(sleep, cx));
                future.poll(cx)
            }
            KindProj::Injected { sleep, outcome } => {
                ready!(wait(sleep, cx));
                match outcome.take() {
                    Some(outcome) => Poll::Ready(outcome),
                    None => panic!("`Call` polled after it completed"),
                }
            }
        }
    }
}

impl<F: Future> fmt::Debug for Call<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, sleep) = match &self.kind {
            Kind::Run { sleep, .. } => ("run", sleep),
            Kind::Injected { sleep, .. } => ("injected", sleep),
        };
        f.debug_struct("Call")
            .field("kind", &kind)
            .field("delaying", &sleep.is_some())
            .finish_non_exhaustive()
    }
}
