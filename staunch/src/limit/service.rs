//! [`ConcurrencyLimitService`]: a tower `Service` behind a concurrency limit.

use std::task::{Context, Poll};

use tower_service::Service;

use super::concurrency::Handle;
use super::future::ResponseFuture;
use super::{BoxError, ConcurrencyLimit};
use crate::classify::Classify;

/// A tower `Service` that takes a slot of a [`ConcurrencyLimit`] for every call. Made by
/// [`ConcurrencyLimitLayer`](super::ConcurrencyLimitLayer).
///
/// # `poll_ready` and admission
///
/// `poll_ready` only asks the inner service; the slot is taken in `call` (at once when one is
/// free), or waited for in the response future, in the limit's queue, for at most `max_wait`
/// and never past the deadline in scope. This is not tower's `ConcurrencyLimit`, which reserves
/// a slot in `poll_ready`: there a caller waits for capacity with no bound and no deadline, and
/// a service polled ready but never called holds its slot until it is dropped. A staunch limit
/// refuses instead, with a typed [`Refused`](super::Refused) (boxed; downcast it), which is
/// what protects a caller from a saturated dependency. A call that waits in the queue calls a
/// clone of the inner service once its slot comes (hence `S: Clone`, as tower's `Retry`);
/// a call that finds a slot free calls the inner service at once. A call that waits allocates
/// its wait (the queue's place and timer) once, so that the response future stays small for the
/// calls that do not wait.
///
/// # Errors
///
/// The service's error is a `BoxError`: the inner error, or a [`Refused`](super::Refused).
#[derive(Clone, Debug)]
pub struct ConcurrencyLimitService<S, C> {
    inner: S,
    limit: Handle,
    classify: C,
}

impl<S, C> ConcurrencyLimitService<S, C> {
    /// Wraps `inner` with `limit`, classifying outcomes with `classify`.
    pub fn new(inner: S, limit: ConcurrencyLimit, classify: C) -> Self {
        Self::with_handle(inner, Handle::Shared(limit), classify)
    }

    pub(crate) fn with_handle(inner: S, limit: Handle, classify: C) -> Self {
        Self {
            inner,
            limit,
            classify,
        }
    }

    /// The limit.
    pub fn limit(&self) -> &ConcurrencyLimit {
        self.limit.get()
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, C, Request> Service<Request> for ConcurrencyLimitService<S, C>
where
    S: Service<Request> + Clone,
    S::Error: Into<BoxError>,
    C: Classify<S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, Request, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Never reserve a slot here: see the type's docs.
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let classify = self.classify.clone();
        match self.limit.try_acquire() {
            Ok(permit) => ResponseFuture::called(self.inner.call(request), permit, classify),
            Err(refused) if self.limit.get().config().max_queue == 0 => {
                ResponseFuture::refused(refused, classify)
            }
            Err(_) => {
                // The ready service goes with the request; this one keeps a fresh clone.
                let fresh = self.inner.clone();
                let ready = std::mem::replace(&mut self.inner, fresh);
                ResponseFuture::waiting(self.limit.get().acquire_owned(), ready, request, classify)
            }
        }
    }
}

/// A tower `Service` behind an [`AdaptiveThrottle`](super::AdaptiveThrottle). Made by
/// [`ThrottleLayer`](super::ThrottleLayer). `poll_ready` only asks the inner service; the
/// throttle decides in `call`, at once.
///
/// # Errors
///
/// The inner error, or a [`Refused`](super::Refused) ([`Refusal::Throttled`](super::Refusal)),
/// boxed.
#[derive(Clone, Debug)]
pub struct ThrottleService<S, C> {
    inner: S,
    throttle: super::AdaptiveThrottle,
    classify: C,
}

impl<S, C> ThrottleService<S, C> {
    /// Wraps `inner` behind `throttle`, classifying outcomes with `classify`.
    pub fn new(inner: S, throttle: super::AdaptiveThrottle, classify: C) -> Self {
        Self {
            inner,
            throttle,
            classify,
        }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, C, Request> Service<Request> for ThrottleService<S, C>
where
    S: Service<Request>,
    S::Error: Into<BoxError>,
    C: Classify<S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = super::future::ThrottleFuture<S::Future, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match self.throttle.admit() {
            Ok(()) => super::future::ThrottleFuture::called(
                self.inner.call(request),
                self.throttle.clone(),
                self.classify.clone(),
            ),
            Err(refused) => super::future::ThrottleFuture::refused(refused, self.classify.clone()),
        }
    }
}

/// A tower `Service` under a `RateLimit` (feature `rate-limit`). Made by `RateLimitLayer`.
/// `poll_ready` only asks the inner service; a token is taken in `call`, or waited for in the
/// response future (on a clone of the ready inner service, hence `S: Clone`; the wait is
/// allocated once), never past `max_wait` or the deadline in scope.
///
/// # Errors
///
/// The inner error, or a [`Refused`](super::Refused), boxed.
#[cfg(feature = "rate-limit")]
#[derive(Clone, Debug)]
pub struct RateLimitService<S> {
    inner: S,
    rate: super::RateLimit,
}

#[cfg(feature = "rate-limit")]
impl<S> RateLimitService<S> {
    /// Wraps `inner` under `rate`.
    pub fn new(inner: S, rate: super::RateLimit) -> Self {
        Self { inner, rate }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

#[cfg(feature = "rate-limit")]
impl<S, Request> Service<Request> for RateLimitService<S>
where
    S: Service<Request> + Clone,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = super::future::RateFuture<S, Request>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let Some(wait) = self.rate.next_wait() else {
            return super::future::RateFuture::called(self.inner.call(request));
        };
        let deadline = crate::Deadline::current();
        match self.rate.plan(wait, std::time::Duration::ZERO, deadline) {
            Err(refused) => super::future::RateFuture::refused(refused),
            Ok(_) => {
                let fresh = self.inner.clone();
                let ready = std::mem::replace(&mut self.inner, fresh);
                let rate = self.rate.clone();
                let waiting = Box::pin(async move {
                    match deadline {
                        Some(deadline) => deadline.scope(rate.acquire()).await,
                        None => rate.acquire().await,
                    }
                });
                super::future::RateFuture::waiting(waiting, ready, request)
            }
        }
    }
}
