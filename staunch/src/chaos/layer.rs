//! [`ChaosLayer`]: a chaos policy around a tower `Service`.

use std::fmt;

use tower_layer::Layer;

use super::{Chaos, ChaosService, NoInjection};

/// A tower [`Layer`] that wraps services in [`ChaosService`], all sharing one [`Chaos`] policy
/// (and its switch). It holds the policy only.
///
/// Put it innermost, directly around the service that calls the dependency, so that the
/// policies above it meet the injected faults as they would meet real ones.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use staunch::chaos::{Chaos, ChaosConfig, ChaosLayer};
/// use tower::{ServiceBuilder, service_fn};
///
/// let chaos = Chaos::new(
///     ChaosConfig::new()
///         .with_error(0.01, || std::io::Error::other("injected"))
///         .with_delay(0.05, Duration::from_millis(800))
///         .with_enabled(false),
/// )?;
/// let switch = chaos.switch(); // for the test, or the admin endpoint, that turns it on
/// let svc = ServiceBuilder::new()
///     .layer(ChaosLayer::new(chaos))
///     .service(service_fn(|sku: u32| async move { Ok::<_, std::io::Error>(sku * 2) }));
/// # let _ = (svc, switch);
/// # Ok::<(), staunch::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct ChaosLayer<E = NoInjection, R = NoInjection> {
    chaos: Chaos<E, R>,
}

impl<E, R> ChaosLayer<E, R> {
    /// A layer injecting with `chaos`.
    pub fn new(chaos: Chaos<E, R>) -> Self {
        Self { chaos }
    }

    /// The policy.
    pub fn chaos(&self) -> &Chaos<E, R> {
        &self.chaos
    }
}

impl<S, E: Clone, R: Clone> Layer<S> for ChaosLayer<E, R> {
    type Service = ChaosService<S, E, R>;

    fn layer(&self, inner: S) -> Self::Service {
        ChaosService::new(inner, self.chaos.clone())
    }
}

// By hand: the makers are closures, which are not `Debug`.
impl<E, R> fmt::Debug for ChaosLayer<E, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ChaosLayer").field(&self.chaos).finish()
    }
}
