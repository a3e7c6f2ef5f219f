//! [`CircuitBreakerLayer`]: wraps a tower `Service` in a breaker.

use tower_layer::Layer;

use super::{CircuitBreaker, CircuitBreakerService};
use crate::classify::AllTransient;

/// A tower [`Layer`] that wraps services in [`CircuitBreakerService`], all sharing one
/// [`CircuitBreaker`]. It holds configuration only (the breaker handle and a classifier).
///
/// # Examples
///
/// ```
/// use staunch::breaker::{BreakerConfig, CircuitBreaker, CircuitBreakerLayer};
/// use tower::{ServiceBuilder, service_fn};
///
/// let breaker = CircuitBreaker::new(BreakerConfig::consecutive_failures(5))?;
/// let svc = ServiceBuilder::new()
///     .layer(CircuitBreakerLayer::new(breaker.clone()))
///     .service(service_fn(|req: u32| async move { Ok::<_, std::io::Error>(req * 2) }));
/// # let _ = svc;
/// # Ok::<(), staunch::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct CircuitBreakerLayer<C = AllTransient> {
    breaker: CircuitBreaker,
    classify: C,
}

impl CircuitBreakerLayer {
    /// A layer counting `Ok` as success and every `Err` as failure.
    pub fn new(breaker: CircuitBreaker) -> Self {
        Self {
            breaker,
            classify: AllTransient,
        }
    }
}

impl<C> CircuitBreakerLayer<C> {
    /// Classifies responses and errors with `classify` (a
    /// [`Classify`](crate::classify::Classify), usually a closure over
    /// `&Result<Response, Error>`) instead.
    pub fn with_classifier<C2>(self, classify: C2) -> CircuitBreakerLayer<C2> {
        CircuitBreakerLayer {
            breaker: self.breaker,
            classify,
        }
    }
}

impl<S, C: Clone> Layer<S> for CircuitBreakerLayer<C> {
    type Service = CircuitBreakerService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreakerService::new(inner, self.breaker.clone(), self.classify.clone())
    }
}
