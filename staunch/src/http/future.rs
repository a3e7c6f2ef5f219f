//! Response futures of the HTTP layers.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::Deadline;

pin_project! {
    /// The response future of [`ReceiveDeadline`](super::ReceiveDeadline): the inner future,
    /// polled with the request's deadline in scope (when it sent one).
    #[must_use = "futures do nothing unless polled"]
    pub struct ReceiveDeadlineFuture<F> {
        #[pin]
        inner: F,
        deadline: Option<Deadline>,
    }
}

impl<F> ReceiveDeadlineFuture<F> {
    pub(crate) fn new(inner: F, deadline: Option<Deadline>) -> Self {
        Self { inner, deadline }
    }

    /// The deadline the request runs under, if its caller sent one.
    pub fn deadline(&self) -> Option<Deadline> {
        self.deadline
    }
}

impl<F: Future> Future for ReceiveDeadlineFuture<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        match this.deadline {
            Some(deadline) => deadline.scope_sync(|| this.inner.poll(cx)),
            None => this.inner.poll(cx),
        }
    }
}

impl<F> fmt::Debug for ReceiveDeadlineFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceiveDeadlineFuture")
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}
