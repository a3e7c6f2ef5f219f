use std::task::{Context, Poll};

use tower_service::Service;

use super::HedgeLayer;
use super::future::ResponseFuture;
use crate::classify::Classify;
use crate::retry::{BoxError, MakeRetryRequest};

/// A tower [`Service`] that hedges the inner service's calls; made by [`HedgeLayer`].
///
/// Each call copies the request (for hedges) and clones the inner service; a hedge waits for
/// its clone's `poll_ready` before calling it. The deadline in scope when the call is made
/// bounds the whole call, and is in scope for every attempt. Errors come back as a boxed
/// [`Stopped`](crate::retry::Stopped).
#[derive(Clone, Debug)]
pub struct HedgeService<S, C, K> {
    inner: S,
    layer: HedgeLayer<C, K>,
}

impl<S, C, K> HedgeService<S, C, K> {
    /// Wraps `inner` with the policy of `layer`.
    pub fn new(inner: S, layer: HedgeLayer<C, K>) -> Self {
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

impl<S, C, K, Req> Service<Req> for HedgeService<S, C, K>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
    C: Classify<S::Response, S::Error>,
    K: MakeRetryRequest<Req>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, Req, HedgeLayer<C, K>>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    // Inlined with the future's constructor, as `RetryService::call` is, so that the response
    // future is built in place.
    #[inline]
    fn call(&mut self, request: Req) -> Self::Future {
        let layer = self.layer.clone();
        let template = layer.shared.make_request.hedge_request(&request);
        let service = self.inner.clone();
        ResponseFuture::start(&mut self.inner, service, request, template, layer)
    }
}
