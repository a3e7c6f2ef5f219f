//! [`ConcurrencyLimitLayer`]: a tower layer that puts a service behind a [`ConcurrencyLimit`].

use tower_layer::Layer;

use super::concurrency::Handle;
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
    limit: Handle,
    classify: C,
}

impl ConcurrencyLimitLayer {
    /// A layer whose adaptive limit takes `Ok` as a success and every `Err` as a drop. Each
    /// response future holds a clone of the limit's handle: a reference-count increment and
    /// decrement per call (see [`new_static`](Self::new_static)).
    pub fn new(limit: ConcurrencyLimit) -> Self {
        Self {
            limit: Handle::Shared(limit),
            classify: AllTransient,
        }
    }

    /// [`new`](Self::new) for a limit that lives as long as the process (one per dependency,
    /// built at startup, in a `static` or leaked once): response futures hold the `&'static`
    /// reference, so a call touches no reference count.
    ///
    /// ```
    /// use staunch::limit::{ConcurrencyLimit, ConcurrencyLimitLayer, LimitConfig};
    ///
    /// let limit: &'static ConcurrencyLimit =
    ///     Box::leak(Box::new(ConcurrencyLimit::new(LimitConfig::fixed(16))?));
    /// let layer = ConcurrencyLimitLayer::new_static(limit);
    /// # let _ = layer;
    /// # Ok::<(), staunch::ConfigError>(())
    /// ```
    pub fn new_static(limit: &'static ConcurrencyLimit) -> Self {
        Self {
            limit: Handle::Static(limit),
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
        ConcurrencyLimitService::with_handle(inner, self.limit.clone(), self.classify.clone())
    }
}

/// A tower [`Layer`] that puts services behind one [`AdaptiveThrottle`](super::AdaptiveThrottle):
/// a call is refused at once with the throttle's probability, else made, and its outcome counted
/// (by `classify`: a success or permanent failure is accepted, a transient one refused).
///
/// # Examples
///
/// ```
/// use staunch::limit::{AdaptiveThrottle, ThrottleConfig, ThrottleLayer};
/// use tower::{ServiceBuilder, service_fn};
///
/// let throttle = AdaptiveThrottle::new(ThrottleConfig::new())?;
/// let svc = ServiceBuilder::new()
///     .layer(ThrottleLayer::new(throttle))
///     .service(service_fn(|req: u32| async move { Ok::<_, std::io::Error>(req) }));
/// # let _ = svc;
/// # Ok::<(), staunch::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct ThrottleLayer<C = AllTransient> {
    throttle: super::AdaptiveThrottle,
    classify: C,
}

impl ThrottleLayer {
    /// A layer counting `Ok` as accepted and every `Err` as refused by the dependency.
    pub fn new(throttle: super::AdaptiveThrottle) -> Self {
        Self {
            throttle,
            classify: AllTransient,
        }
    }
}

impl<C> ThrottleLayer<C> {
    /// Classifies outcomes with `classify` instead.
    pub fn with_classifier<C2>(self, classify: C2) -> ThrottleLayer<C2> {
        ThrottleLayer {
            throttle: self.throttle,
            classify,
        }
    }
}

impl<S, C: Clone> Layer<S> for ThrottleLayer<C> {
    type Service = super::ThrottleService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        super::ThrottleService::new(inner, self.throttle.clone(), self.classify.clone())
    }
}

/// A tower [`Layer`] that puts services under one `RateLimit` (feature `rate-limit`): a call
/// takes a token in `call` at once, or waits for one in the response future as the limit's
/// `max_wait` and the deadline in scope allow, or is refused.
#[cfg(feature = "rate-limit")]
#[derive(Clone, Debug)]
pub struct RateLimitLayer {
    rate: super::RateLimit,
}

#[cfg(feature = "rate-limit")]
impl RateLimitLayer {
    /// A layer over `rate`, shared by every service it wraps.
    pub fn new(rate: super::RateLimit) -> Self {
        Self { rate }
    }
}

#[cfg(feature = "rate-limit")]
impl<S> Layer<S> for RateLimitLayer {
    type Service = super::RateLimitService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        super::RateLimitService::new(inner, self.rate.clone())
    }
}
