use std::sync::Arc;

use tower_layer::Layer;

use super::{NoFallback, Pipeline, PipelineService};
use crate::classify::AllTransient;
use crate::retry::CloneRequest;

/// The [`Pipeline`] as a tower [`Layer`]: every policy around each call of the inner service, in
/// the same order and with the same rules as [`Pipeline::call`].
///
/// Requests are copied for retries by `K` ([`CloneRequest`] unless set with
/// [`with_retry_request`](Self::with_retry_request)); a hedging pipeline copies each request
/// once, up front, with `K`'s [`hedge_request`](crate::retry::MakeRetryRequest::hedge_request)
/// (with `IdempotencyGate`, only requests safe to send twice: a POST is never hedged). Errors come back boxed as a
/// [`Stopped`](crate::retry::Stopped) whose source is the last failure: the service's error,
/// an [`Elapsed`](crate::deadline::Elapsed) or a [`CircuitOpen`](crate::breaker::CircuitOpen).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use staunch::deadline::AttemptTimeout;
/// use staunch::{Pipeline, Retry, RetryConfig};
/// use tower::{ServiceBuilder, service_fn};
///
/// let pipeline = Pipeline::new()
///     .retry(Retry::new(RetryConfig::new().with_max_attempts(3))?)
///     .attempt_timeout(AttemptTimeout::fixed(Duration::from_millis(200)))?;
/// let client = ServiceBuilder::new()
///     .layer(pipeline.layer())
///     .service(service_fn(|sku: u32| async move { Ok::<_, std::io::Error>(sku * 2) }));
/// # Ok::<(), staunch::ConfigError>(())
/// ```
#[derive(Debug)]
pub struct PipelineLayer<C = AllTransient, F = NoFallback, K = CloneRequest> {
    pub(super) shared: Arc<Shared<C, F, K>>,
}

#[derive(Debug)]
pub(super) struct Shared<C, F, K> {
    pub(super) pipeline: Pipeline<C, F>,
    pub(super) make_request: K,
}

impl<C: Clone, F: Clone> Pipeline<C, F> {
    /// This pipeline as a tower layer (a clone; the breaker and budget stay shared).
    pub fn layer(&self) -> PipelineLayer<C, F> {
        self.clone().into_layer()
    }
}

impl<C, F> Pipeline<C, F> {
    /// This pipeline as a tower layer.
    pub fn into_layer(self) -> PipelineLayer<C, F> {
        PipelineLayer {
            shared: Arc::new(Shared {
                pipeline: self,
                make_request: CloneRequest,
            }),
        }
    }
}

impl<C: Clone, F: Clone, K> PipelineLayer<C, F, K> {
    /// Copies requests for another attempt with `make_request` instead of `Clone`; `None`
    /// makes the current attempt the last.
    pub fn with_retry_request<K2>(self, make_request: K2) -> PipelineLayer<C, F, K2> {
        PipelineLayer {
            shared: Arc::new(Shared {
                pipeline: self.shared.pipeline.clone(),
                make_request,
            }),
        }
    }
}

impl<C, F, K> PipelineLayer<C, F, K> {
    /// The pipeline.
    pub fn pipeline(&self) -> &Pipeline<C, F> {
        &self.shared.pipeline
    }
}

impl<C, F, K> Clone for PipelineLayer<C, F, K> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S, C, F, K> Layer<S> for PipelineLayer<C, F, K> {
    type Service = PipelineService<S, Self>;

    fn layer(&self, inner: S) -> Self::Service {
        PipelineService::new(inner, self.clone())
    }
}
