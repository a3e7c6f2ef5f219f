//! [`ConcurrencyLimitLayer`]: a tower layer that puts a service behind a [`ConcurrencyLimit`].

use tower_layer::Layer;

use super::{ConcurrencyLimit, ConcurrencyLimitService};
use crate::classify::AllTransient;

/// A tower [`Layer`] that wraps services in [`ConcurrencyLimitService`], all sharing one
/// [`ConcurrencyLimit`]. It holds configuration only (the limit's handle and a classifier).
///
/// # Examples
///
/// ```
/// use staunch::limit::{ConcurrencyLimit, ConcurrencyLimitLayer, LimitConfig};
/// use tower::{ServiceBuilder, service_fn};
///
/// let limit = ConcurrencyLimit::new(LimitConfig::fixed(16).with_max_queue(32))?;
/// let svc = ServiceBuilder::new()
///     .layer(ConcurrencyLimitLayer::new(limit))
///     .service(service_fn(|req: u32| async move { Ok::<_, std::io::Error>(req * 2) }));
/// # let _ = svc;
/// # Ok::<(), staunch::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct ConcurrencyLimitLayer<C = AllTransient> {
    limit: ConcurrencyLimit,
    classify: C,
}

impl ConcurrencyLimitLayer {
    /// A layer whose adaptive limit takes `Ok` as a success and every `Err` as a drop.
    pub fn new(limit: ConcurrencyLimit) -> Self {
        Self {
            limit,
            classify: AllTransient,
        }
    }
}

impl<C> ConcurrencyLimitLayer<C> {
    /// Classifies outcomes with `classify` instead (a success or permanent failure is a sample,
    /// a transient failure a drop, an ignored outcome nothing).
    pub fn with_classifier<C2>(self, classify: C2) -> ConcurrencyLimitLayer<C2> {
        ConcurrencyLimitLayer {
            limit: self.limit,
            classify,
        }
    }
}

impl<S, C: Clone> Layer<S> for ConcurrencyLimitLayer<C> {
    type Service = ConcurrencyLimitService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        ConcurrencyLimitService::new(inner, self.limit.clone(), self.classify.clone())
    }
}
