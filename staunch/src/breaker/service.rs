//! [`CircuitBreakerService`]: a tower `Service` behind a breaker.

use std::task::{Context, Poll};

use tower_service::Service;

use super::future::ResponseFuture;
use super::permit::Handle;
use super::{BoxError, CircuitBreaker};
use crate::classify::Classify;

/// A tower `Service` that asks a [`CircuitBreaker`] before every call. Made by
/// [`CircuitBreakerLayer`](super::CircuitBreakerLayer).
///
/// (Named `CircuitBreakerService` rather than tower's usual bare policy name because
/// `CircuitBreaker` is the shared handle.)
///
/// # `poll_ready` and admission
///
/// `poll_ready` only asks the inner service; the breaker is asked in `call`. A reservation made
/// in `poll_ready` would leak: tower lets a caller poll a service ready and then drop it without
/// calling, which would hold a half-open probe slot forever. So a ready service may still
/// reject: the response future then resolves at once to a [`CircuitOpen`](super::CircuitOpen)
/// error (boxed; downcast it), and the inner service is not called. When open, the inner
/// service's readiness is spent unused, as with any tower service whose call fails early.
///
/// # Errors
///
/// The service's error is a `BoxError`: the inner error, or a [`CircuitOpen`](super::CircuitOpen).
/// It composes with an inner service whose error is already a `BoxError`.
#[derive(Clone, Debug)]
pub struct CircuitBreakerService<S, C> {
    inner: S,
    breaker: Handle,
    classify: C,
}

impl<S, C> CircuitBreakerService<S, C> {
    /// Wraps `inner` with `breaker`, classifying outcomes with `classify`. Each response
    /// future holds a clone of the handle (see [`new_static`](Self::new_static)).
    pub fn new(inner: S, breaker: CircuitBreaker, classify: C) -> Self {
        Self::with_handle(inner, Handle::Shared(breaker), classify)
    }

    /// Wraps `inner` with a breaker that lives as long as the process: response futures hold
    /// the `&'static` reference, so a call touches no reference count. See
    /// [`CircuitBreakerLayer::new_static`](super::CircuitBreakerLayer::new_static).
    pub fn new_static(inner: S, breaker: &'static CircuitBreaker, classify: C) -> Self {
        Self::with_handle(inner, Handle::Static(breaker), classify)
    }

    pub(crate) fn with_handle(inner: S, breaker: Handle, classify: C) -> Self {
        Self {
            inner,
            breaker,
            classify,
        }
    }

    /// The breaker.
    pub fn breaker(&self) -> &CircuitBreaker {
        self.breaker.get()
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

impl<S, C, Request> Service<Request> for CircuitBreakerService<S, C>
where
    S: Service<Request>,
    S::Error: Into<BoxError>,
    C: Classify<S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Never reserve a probe slot here: see the type's docs.
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match self.breaker.try_acquire() {
            Ok(permit) => {
                ResponseFuture::admitted(self.inner.call(request), permit, self.classify.clone())
            }
            Err(open) => ResponseFuture::rejected(open, self.classify.clone()),
        }
    }
}
