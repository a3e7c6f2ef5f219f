//! The response future of [`CircuitBreakerService`](super::CircuitBreakerService).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use super::{BoxError, CircuitOpen, OwnedPermit};
use crate::classify::Classify;

pin_project! {
    /// The response future of [`CircuitBreakerService`](super::CircuitBreakerService): the inner
    /// call with its permit, or an immediate rejection. Dropping it before it completes counts
    /// as nothing and returns a probe slot.
    pub struct ResponseFuture<F, C> {
        #[pin]
        kind: Kind<F>,
        permit: Option<OwnedPermit>,
        classify: C,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Called { #[pin] future: F },
        Rejected { open: CircuitOpen },
    }
}

impl<F, C> ResponseFuture<F, C> {
    pub(crate) fn admitted(future: F, permit: OwnedPermit, classify: C) -> Self {
        Self {
            kind: Kind::Called { future },
            permit: Some(permit),
            classify,
        }
    }

    pub(crate) fn rejected(open: CircuitOpen, classify: C) -> Self {
        Self {
            kind: Kind::Rejected { open },
            permit: None,
            classify,
        }
    }
}

impl<F, C, T, E> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
    C: Classify<T, E>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match this.kind.project() {
            KindProj::Called { future } => {
                let result = ready!(future.poll(cx));
                if let Some(permit) = this.permit {
                    permit.record_in_place(this.classify.classify(&result));
                }
                Poll::Ready(result.map_err(Into::into))
            }
            KindProj::Rejected { open } => Poll::Ready(Err(Box::new(*open))),
        }
    }
}

impl<F, C> fmt::Debug for ResponseFuture<F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("permit", &self.permit)
            .finish_non_exhaustive()
    }
}
