//! The response future of [`ConcurrencyLimitService`](super::ConcurrencyLimitService).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tower_service::Service;

use super::{AcquireOwned, BoxError, OwnedPermit, Refused};
use crate::classify::Classify;

pin_project! {
    /// The response future of [`ConcurrencyLimitService`](super::ConcurrencyLimitService): a
    /// wait in the limit's queue, then the inner call holding its slot; or a refusal. Dropped
    /// at any point, it frees its slot (or leaves the queue) and gives no sample.
    pub struct ResponseFuture<S, Request, C>
    where
        S: Service<Request>,
    {
        #[pin]
        kind: Kind<S, Request>,
        permit: Option<OwnedPermit>,
        classify: C,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<S, Request>
    where
        S: Service<Request>,
    {
        // Boxed: a wait is rare and already costs a timer, while the future's size is paid by
        // every call (152 bytes inline made the common call ~40% slower).
        Waiting { acquire: Pin<Box<AcquireOwned>>, call: Option<(S, Request)> },
        Called { #[pin] future: S::Future },
        Refused { refused: Refused },
    }
}

impl<S: Service<Request>, Request, C> ResponseFuture<S, Request, C> {
    pub(crate) fn called(future: S::Future, permit: OwnedPermit, classify: C) -> Self {
        Self {
            kind: Kind::Called { future },
            permit: Some(permit),
            classify,
        }
    }

    pub(crate) fn refused(refused: Refused, classify: C) -> Self {
        Self {
            kind: Kind::Refused { refused },
            permit: None,
            classify,
        }
    }

    pub(crate) fn waiting(
        acquire: AcquireOwned,
        service: S,
        request: Request,
        classify: C,
    ) -> Self {
        Self {
            kind: Kind::Waiting {
                acquire: Box::pin(acquire),
                call: Some((service, request)),
            },
            permit: None,
            classify,
        }
    }
}

impl<S, Request, C> Future for ResponseFuture<S, Request, C>
where
    S: Service<Request>,
    S::Error: Into<BoxError>,
    C: Classify<S::Response, S::Error>,
{
    type Output = Result<S::Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.kind.as_mut().project() {
                KindProj::Waiting { acquire, call } => {
                    let permit = match ready!(acquire.as_mut().poll(cx)) {
                        Ok(permit) => permit,
                        Err(refused) => return Poll::Ready(Err(Box::new(refused))),
                    };
                    let Some((mut service, request)) = call.take() else {
                        return Poll::Ready(Err(Box::new(Refused::new(
                            super::Refusal::QueueTimeout,
                        ))));
                    };
                    *this.permit = Some(permit);
                    let future = service.call(request);
                    this.kind.set(Kind::Called { future });
                }
                KindProj::Called { future } => {
                    let result = ready!(future.poll(cx));
                    if let Some(permit) = this.permit.take() {
                        permit.record(this.classify.classify(&result));
                    }
                    return Poll::Ready(result.map_err(Into::into));
                }
                KindProj::Refused { refused } => return Poll::Ready(Err(Box::new(*refused))),
            }
        }
    }
}

impl<S: Service<Request>, Request, C> fmt::Debug for ResponseFuture<S, Request, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("permit", &self.permit)
            .finish_non_exhaustive()
    }
}
