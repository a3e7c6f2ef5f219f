use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::config::DelayKind;
use super::estimate::LatencyEstimate;
use super::events::{Hook, HookDebug};
use super::{HedgeConfig, HedgeEvent};
use crate::ConfigError;
use crate::classify::{AllTransient, RetryIf};
use crate::retry::RetryBudget;

/// A hedging policy: a validated [`HedgeConfig`], a classifier, optionally a shared
/// [`RetryBudget`], and, for an adaptive delay, the latency estimate its calls share. Runs
/// async operations with [`call`](Self::call), or wraps a tower service through
/// [`HedgeLayer`](super::HedgeLayer); in a [`Pipeline`](crate::Pipeline) it takes retry's
/// place.
///
/// The classifier `C` decides what an answer is: the first attempt whose outcome is not a
/// failure wins; a transient failure sends the next attempt at once; a permanent one ends the
/// call. The default, [`AllTransient`], takes every `Ok` and treats every error as transient.
///
/// Cheap to clone: clones share the budget, the hook and the latency estimate.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use staunch::hedge::{Hedge, HedgeConfig, HedgeDelay};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), staunch::ConfigError> {
/// let hedge = Hedge::new(HedgeConfig::new(HedgeDelay::fixed(Duration::from_millis(20))))?;
///
/// let start = tokio::time::Instant::now();
/// let mut attempt = 0;
/// let replica = hedge
///     .call(|| {
///         attempt += 1;
///         // The first replica is stuck; the hedge, sent after 20 ms, answers in 5 ms.
///         let (latency, name) = if attempt == 1 { (1000, "a") } else { (5, "b") };
///         async move {
///             tokio::time::sleep(Duration::from_millis(latency)).await;
///             Ok::<_, std::io::Error>(name)
///         }
///     })
///     .await
///     .expect("the hedge answers");
/// assert_eq!(replica, "b");
/// assert_eq!(start.elapsed(), Duration::from_millis(25));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Hedge<C = AllTransient> {
    pub(crate) config: HedgeConfig,
    pub(crate) classifier: C,
    pub(crate) budget: Option<RetryBudget>,
    pub(crate) estimate: Option<Arc<LatencyEstimate>>,
    pub(crate) hook: Option<Hook>,
    pub(crate) name: &'static str,
}

impl Hedge {
    /// Builds a policy that takes every `Ok` and sends the next attempt on every error.
    ///
    /// # Errors
    ///
    /// The configuration is invalid (`max_attempts` outside `1..=5`, a percentile outside
    /// `(0, 100)`, a floor above the ceiling); the message names the setting.
    pub fn new(config: HedgeConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let estimate = match config.delay.kind {
            DelayKind::Fixed(_) => None,
            DelayKind::Percentile {
                percentile,
                min,
                max,
                min_samples,
            } => Some(Arc::new(LatencyEstimate::new(
                percentile,
                min,
                max,
                min_samples,
            ))),
        };
        Ok(Self {
            config,
            classifier: AllTransient,
            budget: None,
            estimate,
            hook: None,
            name: "default",
        })
    }
}

impl<C> Hedge<C> {
    /// Classifies outcomes with `classifier` (any `Fn(&Result<T, E>) -> Class`, or a
    /// [`Classify`](crate::classify::Classify) type).
    pub fn classify<C2>(self, classifier: C2) -> Hedge<C2> {
        Hedge {
            config: self.config,
            classifier,
            budget: self.budget,
            estimate: self.estimate,
            hook: self.hook,
            name: self.name,
        }
    }

    /// Takes the classifier out, leaving the rest of the policy (for the pipeline).
    pub(crate) fn split_classifier(self) -> (Hedge, C) {
        let Self {
            config,
            classifier,
            budget,
            estimate,
            hook,
            name,
        } = self;
        let rest = Hedge {
            config,
            classifier: AllTransient,
            budget,
            estimate,
            hook,
            name,
        };
        (rest, classifier)
    }

    /// Sends the next attempt after the errors for which `predicate` returns `true`; the
    /// others end the call.
    pub fn retry_if<F>(self, predicate: F) -> Hedge<RetryIf<F>> {
        self.classify(RetryIf::new(predicate))
    }

    /// Spends `budget`, shared with every retry and hedge policy that holds it, on every
    /// attempt after the first: a hedge it refuses is not sent, and the call waits for the
    /// attempts in flight. The budget also counts the call and its attempts' outcomes, as a
    /// retry's do.
    pub fn with_budget(mut self, budget: RetryBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Names the policy in hooks, `tracing` events and `metrics` labels (label `policy`).
    /// Default: `"default"`.
    pub fn with_name(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }

    /// Calls `hook` for every hedge sent, won or refused (see [`HedgeEvent`]), after any hook
    /// set before. Hooks run on the polling thread, never under a lock, and never for a call
    /// whose first attempt answers before the delay.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::time::Duration;
    /// use staunch::hedge::{Hedge, HedgeConfig, HedgeDelay, HedgeEventKind};
    ///
    /// let sent = Arc::new(AtomicU32::new(0));
    /// let hedge = Hedge::new(HedgeConfig::new(HedgeDelay::fixed(Duration::from_millis(20))))?
    ///     .on_hedge({
    ///         let sent = sent.clone();
    ///         move |event| {
    ///             if let HedgeEventKind::Sent { .. } = event.kind {
    ///                 sent.fetch_add(1, Ordering::Relaxed);
    ///             }
    ///         }
    ///     });
    /// # Ok::<(), staunch::ConfigError>(())
    /// ```
    pub fn on_hedge<F>(mut self, hook: F) -> Self
    where
        F: Fn(&HedgeEvent) + Send + Sync + 'static,
    {
        self.hook = Some(match self.hook.take() {
            None => Arc::new(hook),
            Some(before) => Arc::new(move |event: &HedgeEvent| {
                before(event);
                hook(event);
            }),
        });
        self
    }

    /// The configuration.
    pub fn config(&self) -> &HedgeConfig {
        &self.config
    }

    /// The budget, if any.
    pub fn budget(&self) -> Option<&RetryBudget> {
        self.budget.as_ref()
    }

    /// The delay the next call would wait before its first hedge: the fixed delay, or the
    /// adaptive estimate now (its ceiling until it has `min_samples` latencies).
    ///
    /// The estimate samples the first attempt of each call (a hedge is sent only for slow
    /// calls, so its latency is no fair sample): its latency; or, when another attempt ended
    /// the call first, the time it had run, as a censored sample (it would have taken longer),
    /// so that winning hedges do not hide the slow latencies that the delay must see. The
    /// percentile is a Kaplan–Meier estimate over both, from a log-bucketed histogram whose old
    /// samples fade; recording is one atomic increment, for one latency in four once the
    /// estimate has `min_samples`.
    pub fn delay(&self) -> Duration {
        match (&self.estimate, self.config.delay.kind) {
            (Some(estimate), _) => estimate.delay(),
            (None, DelayKind::Fixed(delay)) => delay,
            // Unreachable: an adaptive delay always has its estimate.
            (None, DelayKind::Percentile { max, .. }) => max,
        }
    }
}

impl<C> fmt::Debug for Hedge<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hedge")
            .field("name", &self.name)
            .field("config", &self.config)
            .field("budget", &self.budget)
            .field("estimate", &self.estimate)
            .field("hook", &HookDebug(&self.hook))
            .finish_non_exhaustive()
    }
}
