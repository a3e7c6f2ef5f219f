use std::sync::Arc;

use tower_layer::Layer;

use super::{Retry, RetryService};
use crate::classify::{AllTransient, Class};

/// Makes a copy of a request for another attempt, or `None` if it cannot be retried (a body
/// that was streamed, say). Implemented for [`CloneRequest`] (requests that are `Clone`) and for
/// every `Fn(&Req) -> Option<Req>`.
pub trait MakeRetryRequest<Req> {
    /// A copy of `request` to send again, or `None` to make the current attempt the last.
    fn retry_request(&self, request: &Req) -> Option<Req>;

    /// A copy of `request` to send while another attempt at it may still be in flight (a
    /// hedge, see [`HedgeLayer`](crate::hedge::HedgeLayer)), or `None` to send no hedge.
    ///
    /// Default: `None`. A copier that gates retries by the request (in
    /// [`Reclassify`], after a failure) cannot gate a hedge, which goes out before any
    /// answer, so a copier hedges only if it says so. [`CloneRequest`] and closures copy as
    /// for a retry; `staunch::http::IdempotencyGate` copies only requests that are safe to
    /// send twice.
    #[inline]
    fn hedge_request(&self, request: &Req) -> Option<Req> {
        let _ = request;
        None
    }
}

/// Adjusts the class of a failed attempt knowing the request, for rules that depend on the
/// request as well as the outcome: an HTTP method's idempotency (a POST that reached the server
/// must not be sent again; one that never did may be). See `staunch::http::IdempotencyGate`
/// (feature `http`).
///
/// [`RetryLayer`] asks its request copier `K` (a [`MakeRetryRequest`]) this question after the
/// policy's classifier has answered, whenever a copy of the request was kept for another
/// attempt. [`CloneRequest`] and closures keep the class unchanged; a custom
/// `MakeRetryRequest` type implements this trait too, usually with the default method:
///
/// ```
/// use staunch::retry::{MakeRetryRequest, Reclassify};
///
/// struct Copier;
/// impl MakeRetryRequest<String> for Copier {
///     fn retry_request(&self, request: &String) -> Option<String> {
///         Some(request.clone())
///     }
/// }
/// impl<T, E> Reclassify<String, T, E> for Copier {}
/// ```
pub trait Reclassify<Req, T, E> {
    /// The class of `result`, an attempt at `request` that the classifier called `class`.
    /// Default: `class`.
    #[inline]
    fn reclassify(&self, request: &Req, result: &Result<T, E>, class: Class) -> Class {
        let _ = (request, result);
        class
    }

    /// The class of an attempt at `request` that got no answer: it timed out, so the request
    /// may or may not have reached the server. Only a [`PipelineLayer`](crate::pipeline::PipelineLayer)
    /// asks, since only it times attempts out. Default: `class`.
    #[inline]
    fn reclassify_unanswered(&self, request: &Req, class: Class) -> Class {
        let _ = request;
        class
    }
}

impl<Req, T, E> Reclassify<Req, T, E> for CloneRequest {}

impl<Req, T, E, F> Reclassify<Req, T, E> for F where F: Fn(&Req) -> Option<Req> {}

/// Copies requests with `Clone` (the default of [`RetryLayer`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct CloneRequest;

impl<Req: Clone> MakeRetryRequest<Req> for CloneRequest {
    #[inline]
    fn retry_request(&self, request: &Req) -> Option<Req> {
        Some(request.clone())
    }

    #[inline]
    fn hedge_request(&self, request: &Req) -> Option<Req> {
        Some(request.clone())
    }
}

impl<Req, F> MakeRetryRequest<Req> for F
where
    F: Fn(&Req) -> Option<Req>,
{
    #[inline]
    fn retry_request(&self, request: &Req) -> Option<Req> {
        self(request)
    }

    #[inline]
    fn hedge_request(&self, request: &Req) -> Option<Req> {
        self(request)
    }
}

/// A tower [`Layer`] that retries a service's calls with a [`Retry`] policy.
///
/// The service's response and error are classified by the policy's classifier (so a `503`
/// response can be retried), and the request is copied before each attempt by `K`
/// ([`CloneRequest`] unless set with [`with_retry_request`](Self::with_retry_request)). Errors
/// come back boxed: a [`Stopped`](super::Stopped) whose source is the service's last error.
///
/// The layer holds configuration only; it is cheap to clone.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use staunch::backoff::Backoff;
/// use staunch::retry::RetryLayer;
/// use staunch::{Retry, RetryConfig};
/// use tower::{ServiceBuilder, service_fn};
///
/// let retry = Retry::new(
///     RetryConfig::new().with_backoff(Backoff::exponential(Duration::from_millis(10))),
/// )?;
/// let service = ServiceBuilder::new()
///     .layer(RetryLayer::new(retry))
///     .service(service_fn(|name: String| async move { Ok::<_, std::io::Error>(name.len()) }));
/// # Ok::<(), staunch::ConfigError>(())
/// ```
#[derive(Debug)]
pub struct RetryLayer<C = AllTransient, K = CloneRequest> {
    pub(crate) shared: Arc<Shared<C, K>>,
}

#[derive(Debug)]
pub(crate) struct Shared<C, K> {
    pub(crate) retry: Retry<C>,
    pub(crate) make_request: K,
}

impl<C> RetryLayer<C> {
    /// Retries with `retry`, copying requests with `Clone`.
    pub fn new(retry: Retry<C>) -> Self {
        Self {
            shared: Arc::new(Shared {
                retry,
                make_request: CloneRequest,
            }),
        }
    }
}

impl<C, K> RetryLayer<C, K> {
    /// Copies requests for another attempt with `make_request` instead of `Clone`; returning
    /// `None` makes the current attempt the last.
    pub fn with_retry_request<K2>(self, make_request: K2) -> RetryLayer<C, K2>
    where
        C: Clone,
    {
        RetryLayer {
            shared: Arc::new(Shared {
                retry: self.shared.retry.clone(),
                make_request,
            }),
        }
    }

    /// The retry policy.
    pub fn retry(&self) -> &Retry<C> {
        &self.shared.retry
    }
}

impl<C, K> Clone for RetryLayer<C, K> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S, C, K> Layer<S> for RetryLayer<C, K> {
    type Service = RetryService<S, C, K>;

    fn layer(&self, inner: S) -> Self::Service {
        RetryService::new(inner, self.clone())
    }
}
