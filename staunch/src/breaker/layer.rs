//! [`CircuitBreakerLayer`]: wraps a tower `Service` in a breaker.

use tower_layer::Layer;

use super::permit::Handle;
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
    breaker: Handle,
    classify: C,
}

impl CircuitBreakerLayer {
    /// A layer counting `Ok` as success and every `Err` as failure. Each response future holds
    /// a clone of the breaker's handle: a reference-count increment and decrement per call,
    /// a shared write when threads share the breaker (see [`new_static`](Self::new_static)).
    pub fn new(breaker: CircuitBreaker) -> Self {
        Self {
            breaker: Handle::Shared(breaker),
            classify: AllTransient,
        }
    }

    /// [`new`](Self::new) for a breaker that lives as long as the process (the usual case: one
    /// per dependency, built at startup). Response futures hold the `&'static` reference, so a
    /// call touches no reference count and, in closed, writes nothing shared.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::LazyLock;
    /// use staunch::breaker::{BreakerConfig, CircuitBreaker, CircuitBreakerLayer};
    /// use tower::{ServiceBuilder, service_fn};
    ///
    /// static PRICING: LazyLock<CircuitBreaker> = LazyLock::new(|| {
    ///     CircuitBreaker::new(BreakerConfig::consecutive_failures(5)).expect("a valid config")
    /// });
    ///
    /// let svc = ServiceBuilder::new()
    ///     .layer(CircuitBreakerLayer::new_static(&PRICING))
    ///     .service(service_fn(|req: u32| async move { Ok::<_, std::io::Error>(req * 2) }));
    /// # let _ = svc;
    /// // Built at run time instead: leak it once.
    /// let breaker: &'static CircuitBreaker = Box::leak(Box::new(
    ///     CircuitBreaker::new(BreakerConfig::consecutive_failures(5))?,
    /// ));
    /// let layer = CircuitBreakerLayer::new_static(breaker);
    /// # let _ = layer;
    /// # Ok::<(), staunch::ConfigError>(())
    /// ```
    pub fn new_static(breaker: &'static CircuitBreaker) -> Self {
        Self {
            breaker: Handle::Static(breaker),
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
        CircuitBreakerService::with_handle(inner, self.breaker.clone(), self.classify.clone())
    }
}
