use std::task::{Context, Poll};

use tower_service::Service;

use super::future::ResponseFuture;
use super::layer::{MakeRetryRequest, Reclassify};
use super::state::CallState;
use super::{BoxError, RetryLayer};
use crate::classify::Classify;

/// A tower [`Service`] that retries the inner service's calls; made by [`RetryLayer`].
///
/// Before each call it copies the request (for a possible retry) and clones the inner service;
/// a retry waits for the clone's `poll_ready` before calling it again. The deadline in scope
/// when the call is made bounds the whole call. Errors come back as a boxed
/// [`Stopped`](super::Stopped).
#[derive(Clone, Debug)]
pub struct RetryService<S, C, K> {
    inner: S,
    layer: RetryLayer<C, K>,
}

impl<S, C, K> RetryService<S, C, K> {
    /// Wraps `inner` with the policy of `layer`.
    pub fn new(inner: S, layer: RetryLayer<C, K>) -> Self {
        Self { inner, layer }
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

impl<S, C, K, Req> Service<Req> for RetryService<S, C, K>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
    C: Classify<S::Response, S::Error>,
    K: MakeRetryRequest<Req> + Reclassify<Req, S::Response, S::Error>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, Req, RetryLayer<C, K>>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    // Inlined, with the future's constructor and `poll`: kept out of line, the response future
    // (200 bytes for a small request) was built in a return slot and copied twice more on its
    // way into the caller's `.await`, which more than doubled the layer's cost.
    #[inline]
    fn call(&mut self, request: Req) -> Self::Future {
        let layer = self.layer.clone();
        let shared = &layer.shared;
        match CallState::begin(&shared.retry, None, false) {
            Ok(mut call) => {
                let copy = shared.make_request.retry_request(&request);
                if copy.is_none() {
                    call.make_final();
                }
                let service = self.inner.clone();
                let future = self.inner.call(request);
                ResponseFuture::called(future, service, copy, call, layer)
            }
            Err(refused) => ResponseFuture::refused(refused, self.inner.clone(), layer),
        }
    }
}
