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
                    // In place: moved out, the permit was read back with wide loads right after
                    // `call` wrote it narrowly (a store-forwarding stall, ~20 ns a call).
                    if let Some(permit) = this.permit {
                        permit.record_in_place(this.classify.classify(&result));
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

pin_project! {
    /// The response future of [`ThrottleService`](super::ThrottleService): the inner call, whose
    /// outcome the throttle counts, or a refusal. Dropped before it ends, it counts nothing.
    pub struct ThrottleFuture<F, C> {
        #[pin]
        future: Option<F>,
        refused: Option<Refused>,
        throttle: Option<super::AdaptiveThrottle>,
        classify: C,
    }
}

impl<F, C> ThrottleFuture<F, C> {
    pub(crate) fn called(future: F, throttle: super::AdaptiveThrottle, classify: C) -> Self {
        Self {
            future: Some(future),
            refused: None,
            throttle: Some(throttle),
            classify,
        }
    }

    pub(crate) fn refused(refused: Refused, classify: C) -> Self {
        Self {
            future: None,
            refused: Some(refused),
            throttle: None,
            classify,
        }
    }
}

impl<F, C, T, E> Future for ThrottleFuture<F, C>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
    C: Classify<T, E>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some(future) = this.future.as_pin_mut() else {
            let refused = this
                .refused
                .take()
                .unwrap_or(Refused::new(super::Refusal::Throttled));
            return Poll::Ready(Err(Box::new(refused)));
        };
        let result = ready!(future.poll(cx));
        if let Some(throttle) = this.throttle.take() {
            throttle.record_class(this.classify.classify(&result));
        }
        Poll::Ready(result.map_err(Into::into))
    }
}

impl<F, C> fmt::Debug for ThrottleFuture<F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThrottleFuture").finish_non_exhaustive()
    }
}

/// A rate limit's wait for a token, boxed: rare, and already a timer.
#[cfg(feature = "rate-limit")]
type RateWait = Pin<Box<dyn Future<Output = Result<(), Refused>> + Send>>;

#[cfg(feature = "rate-limit")]
pin_project! {
    /// The response future of [`RateLimitService`](super::RateLimitService): a wait for a
    /// token, then the inner call; or a refusal.
    pub struct RateFuture<S, Request>
    where
        S: Service<Request>,
    {
        #[pin]
        kind: RateKind<S, Request>,
    }
}

#[cfg(feature = "rate-limit")]
pin_project! {
    #[project = RateKindProj]
    enum RateKind<S, Request>
    where
        S: Service<Request>,
    {
        Waiting { wait: RateWait, call: Option<(S, Request)> },
        Called { #[pin] future: S::Future },
        Refused { refused: Refused },
    }
}

#[cfg(feature = "rate-limit")]
impl<S: Service<Request>, Request> RateFuture<S, Request> {
    pub(crate) fn called(future: S::Future) -> Self {
        Self {
            kind: RateKind::Called { future },
        }
    }

    pub(crate) fn refused(refused: Refused) -> Self {
        Self {
            kind: RateKind::Refused { refused },
        }
    }

    pub(crate) fn waiting(wait: RateWait, service: S, request: Request) -> Self {
        Self {
            kind: RateKind::Waiting {
                wait,
                call: Some((service, request)),
            },
        }
    }
}

#[cfg(feature = "rate-limit")]
impl<S, Request> Future for RateFuture<S, Request>
where
    S: Service<Request>,
    S::Error: Into<BoxError>,
{
    type Output = Result<S::Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.kind.as_mut().project() {
                RateKindProj::Waiting { wait, call } => {
                    if let Err(refused) = ready!(wait.as_mut().poll(cx)) {
                        return Poll::Ready(Err(Box::new(refused)));
                    }
                    let Some((mut service, request)) = call.take() else {
                        return Poll::Ready(Err(Box::new(Refused::new(
                            super::Refusal::RateLimited,
                        ))));
                    };
                    let future = service.call(request);
                    this.kind.set(RateKind::Called { future });
                }
                RateKindProj::Called { future } => {
                    return future.poll(cx).map_err(Into::into);
                }
                RateKindProj::Refused { refused } => return Poll::Ready(Err(Box::new(*refused))),
            }
        }
    }
}

#[cfg(feature = "rate-limit")]
impl<S: Service<Request>, Request> fmt::Debug for RateFuture<S, Request> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateFuture").finish_non_exhaustive()
    }
}
