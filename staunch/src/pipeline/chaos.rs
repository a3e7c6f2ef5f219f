//! Fault injection in the pipeline: innermost, just around the call.

use std::future::Future;

use super::{Pipeline, Recover};
use crate::Error;
use crate::chaos::{Chaos, Inject};
use crate::classify::Classify;

impl<C, F> Pipeline<C, F> {
    /// Runs `op` like [`call`](Self::call), with `chaos` around each attempt, innermost: an
    /// injected delay runs inside the attempt timeout (and can time out), and an injected error
    /// is classified, counted by the breaker, retried and covered by the fallback as a real one
    /// would be. Each attempt draws its own injection. Same as
    /// `self.call(|| chaos.call(&mut op))`.
    ///
    /// While `chaos` is off, an attempt pays one atomic load for it.
    ///
    /// # Errors
    ///
    /// As [`call`](Self::call).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use staunch::Pipeline;
    /// use staunch::chaos::{Chaos, ChaosConfig};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), staunch::ConfigError> {
    /// let chaos = Chaos::new(ChaosConfig::new().with_error(1.0, || "injected"))?;
    /// let pricing = Pipeline::new().fallback(|_err| async { 9.99 });
    /// let price = pricing.call_with_chaos(&chaos, || async { Ok(12.50) }).await;
    /// assert_eq!(price.unwrap(), 9.99);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn call_with_chaos<T, E, Op, Fut, Ei, Ri>(
        &self,
        chaos: &Chaos<Ei, Ri>,
        mut op: Op,
    ) -> Result<T, Error<E>>
    where
        C: Classify<T, E>,
        F: Recover<T, E>,
        Op: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        Ei: Inject<E>,
        Ri: Inject<T>,
    {
        self.call(|| chaos.call(&mut op)).await
    }
}

#[cfg(feature = "tower")]
impl<C: Clone, F: Clone> Pipeline<C, F> {
    /// This pipeline as a tower layer with `chaos` innermost, around the service: the
    /// pipeline's layer over a [`ChaosLayer`](crate::chaos::ChaosLayer), with the same effects
    /// as [`call_with_chaos`](Self::call_with_chaos). To set the layer's request copier too,
    /// stack them yourself: `.layer(pipeline.layer().with_retry_request(k))` then
    /// `.layer(ChaosLayer::new(chaos))`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use staunch::Pipeline;
    /// use staunch::chaos::{Chaos, ChaosConfig};
    /// use staunch::deadline::AttemptTimeout;
    /// use tower::{ServiceBuilder, service_fn};
    ///
    /// let chaos = Chaos::new(
    ///     ChaosConfig::new()
    ///         .with_delay(0.1, Duration::from_secs(2))
    ///         .with_enabled(false),
    /// )?;
    /// let pipeline =
    ///     Pipeline::new().attempt_timeout(AttemptTimeout::fixed(Duration::from_millis(200)))?;
    /// let client = ServiceBuilder::new()
    ///     .layer(pipeline.layer_with_chaos(chaos))
    ///     .service(service_fn(|sku: u32| async move { Ok::<_, std::io::Error>(sku * 2) }));
    /// # let _ = client;
    /// # Ok::<(), staunch::ConfigError>(())
    /// ```
    pub fn layer_with_chaos<Ei, Ri>(
        &self,
        chaos: Chaos<Ei, Ri>,
    ) -> tower_layer::Stack<crate::chaos::ChaosLayer<Ei, Ri>, super::PipelineLayer<C, F>> {
        tower_layer::Stack::new(crate::chaos::ChaosLayer::new(chaos), self.layer())
    }
}
