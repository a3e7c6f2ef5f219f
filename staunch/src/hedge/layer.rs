use std::sync::Arc;

use tower_layer::Layer;

use super::{Hedge, HedgeService};
use crate::classify::AllTransient;
use crate::retry::CloneRequest;

/// A tower [`Layer`] that hedges a service's calls with a [`Hedge`] policy.
///
/// Each call copies the request once, up front, with `K`'s
/// [`hedge_request`](crate::retry::MakeRetryRequest::hedge_request) ([`CloneRequest`] unless set
/// with [`with_hedge_request`](Self::with_hedge_request)); `None` means the request may not be
/// sent twice, and the call makes one attempt. Each hedge calls a clone of the inner service
/// once it is ready. Responses and errors are classified by the policy's classifier, so a `503`
/// can send the next attempt at once. Errors come back boxed: a
/// [`Stopped`](crate::retry::Stopped) whose source is the last error.
///
/// For HTTP clients, copy with `staunch::http::IdempotencyGate` (feature `http`): it copies
/// only requests that are safe to send twice (GET, HEAD, OPTIONS, TRACE, PUT, DELETE, or a
/// request marked `Replay::Safe`), so a POST is never hedged.
///
/// The layer holds configuration only; it is cheap to clone.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use staunch::hedge::{Hedge, HedgeConfig, HedgeDelay, HedgeLayer};
/// use tower::{ServiceBuilder, service_fn};
///
/// let hedge = Hedge::new(HedgeConfig::new(HedgeDelay::fixed(Duration::from_millis(20))))?;
/// let service = ServiceBuilder::new()
///     .layer(HedgeLayer::new(hedge))
///     .service(service_fn(|key: String| async move { Ok::<_, std::io::Error>(key.len()) }));
/// # Ok::<(), staunch::ConfigError>(())
/// ```
#[derive(Debug)]
pub struct HedgeLayer<C = AllTransient, K = CloneRequest> {
    pub(crate) shared: Arc<Shared<C, K>>,
}

#[derive(Debug)]
pub(crate) struct Shared<C, K> {
    pub(crate) hedge: Hedge<C>,
    pub(crate) make_request: K,
}

impl<C> HedgeLayer<C> {
    /// Hedges with `hedge`, copying requests with `Clone`.
    pub fn new(hedge: Hedge<C>) -> Self {
        Self {
            shared: Arc::new(Shared {
                hedge,
                make_request: CloneRequest,
            }),
        }
    }
}

impl<C, K> HedgeLayer<C, K> {
    /// Copies requests for hedges with `make_request`'s
    /// [`hedge_request`](crate::retry::MakeRetryRequest::hedge_request) instead of `Clone`.
    pub fn with_hedge_request<K2>(self, make_request: K2) -> HedgeLayer<C, K2>
    where
        C: Clone,
    {
        HedgeLayer {
            shared: Arc::new(Shared {
                hedge: self.shared.hedge.clone(),
                make_request,
            }),
        }
    }

    /// The hedging policy.
    pub fn hedge(&self) -> &Hedge<C> {
        &self.shared.hedge
    }
}

impl<C, K> Clone for HedgeLayer<C, K> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S, C, K> Layer<S> for HedgeLayer<C, K> {
    type Service = HedgeService<S, C, K>;

    fn layer(&self, inner: S) -> Self::Service {
        HedgeService::new(inner, self.clone())
    }
}
