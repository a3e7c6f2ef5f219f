//! [`ConcurrencyLimitService`]: a tower `Service` behind a concurrency limit.

use std::task::{Context, Poll};

use tower_service::Service;

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
    limit: ConcurrencyLimit,
    classify: C,
}

impl<S, C> ConcurrencyLimitService<S, C> {
    /// Wraps `inner` with `limit`, classifying outcomes with `classify`.
    pub fn new(inner: S, limit: ConcurrencyLimit, classify: C) -> Self {
        Self {
            inner,
            limit,
            classify,
        }
    }

    /// The limit.
    pub fn limit(&self) -> &ConcurrencyLimit {
        &self.limit
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
        match self.limit.try_acquire_owned() {
            Ok(permit) => ResponseFuture::called(self.inner.call(request), permit, classify),
            Err(refused) if self.limit.config().max_queue == 0 => {
                ResponseFuture::refused(refused, classify)
            }
            Err(_) => {
                // The ready service goes with the request; this one keeps a fresh clone.
                let fresh = self.inner.clone();
                let ready = std::mem::replace(&mut self.inner, fresh);
                ResponseFuture::waiting(self.limit.acquire_owned(), ready, request, classify)
            }
        }
    }
}
