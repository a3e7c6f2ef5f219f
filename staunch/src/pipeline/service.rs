use std::task::{Context, Poll};

use tower_service::Service;

use super::future::ResponseFuture;
use super::{PipelineLayer, RecoverBoxed};
use crate::classify::Classify;
use crate::retry::{BoxError, MakeRetryRequest, Reclassify};

/// The service of [`PipelineLayer`].
#[derive(Clone, Debug)]
pub struct PipelineService<S, L> {
    inner: S,
    layer: L,
}

impl<S, L> PipelineService<S, L> {
    /// Wraps `inner` with the policies of `layer`.
    pub fn new(inner: S, layer: L) -> Self {
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

impl<S, C, F, K, Req> Service<Req> for PipelineService<S, PipelineLayer<C, F, K>>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
    C: Classify<S::Response, S::Error>,
    F: RecoverBoxed<S::Response, S::Error>,
    K: MakeRetryRequest<Req> + Reclassify<Req, S::Response, S::Error>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, Req, PipelineLayer<C, F, K>>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    // Inlined, with the future's `start` and `poll`, so the caller's `.await` receives the
    // response future in place: out of line it was copied twice more (as `RetryService::call`).
    #[inline]
    fn call(&mut self, request: Req) -> Self::Future {
        let service = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, service);
        if self.layer.shared.pipeline.hedge.is_some() {
            return ResponseFuture::start_hedged(ready, request, self.layer.clone());
        }
        ResponseFuture::start(ready, request, self.layer.clone())
    }
}
