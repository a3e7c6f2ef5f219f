//! The state every clone of a [`Chaos`](super::Chaos) shares, and [`ChaosSwitch`], the handle
//! that turns it on and off and changes its rates at run time.

use std::fmt;

use super::config::check_rate;
use super::decide::{self, DelayRange, Injection, Rates};
use crate::ConfigError;
use crate::loom::{Arc, AtomicBool, AtomicU64, Ordering};

/// The shared state: the switch, the rates, and the count of calls that drew.
pub(crate) struct Shared {
    /// Read first, and alone, by every call. `Release` when set and `Acquire` when read, so
    /// that a call that sees the policy on also sees the rates set before it was turned on.
    enabled: AtomicBool,
    /// The rates, as `f64` bits.
    error_rate: AtomicU64,
    delay_rate: AtomicU64,
    result_rate: AtomicU64,
    /// The key of the next call that draws without one of its own.
    next_key: AtomicU64,
    seed: u64,
    delay: DelayRange,
    has_error: bool,
    has_result: bool,
    name: &'static str,
}

impl Shared {
    /// The state of a validated config.
    pub(crate) fn new<E, R>(config: &super::ChaosConfig<E, R>) -> Self {
        let rates = config.rates();
        Self {
            enabled: AtomicBool::new(config.enabled),
            error_rate: AtomicU64::new(rates.error.to_bits()),
            delay_rate: AtomicU64::new(rates.delay.to_bits()),
            result_rate: AtomicU64::new(rates.result.to_bits()),
            next_key: AtomicU64::new(0),
            seed: config.seed.unwrap_or_else(|| fastrand::u64(..)),
            delay: config.delay,
            has_error: config.has_error,
            has_result: config.has_result,
            name: config.name,
        }
    }

    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    /// Whether the policy is on: one atomic load, all a call pays while it is off.
    #[inline]
    pub(crate) fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Acquire)
    }

    /// The next call's injection: nothing (and no draw, no key used) while off.
    #[inline]
    pub(crate) fn decide(&self) -> Injection {
        if !self.is_enabled() {
            return Injection::None;
        }
        self.decide_enabled(None)
    }

    /// The injection of the call with `key`: nothing while off.
    #[inline]
    pub(crate) fn decide_keyed(&self, key: u64) -> Injection {
        if !self.is_enabled() {
            return Injection::None;
        }
        self.decide_enabled(Some(key))
    }

    // Out of line, so that the check above inlines into every call as one load and a branch.
    #[inline(never)]
    pub(crate) fn decide_enabled(&self, key: Option<u64>) -> Injection {
        let key = key.unwrap_or_else(|| self.next_key.fetch_add(1, Ordering::Relaxed));
        let mut rng = fastrand::Rng::with_seed(decide::call_seed(self.seed, key));
        decide::decide(self.rates(), self.delay, &mut rng)
    }

    fn rates(&self) -> Rates {
        let load = |rate: &AtomicU64| f64::from_bits(rate.load(Ordering::Acquire));
        Rates {
            error: load(&self.error_rate),
            delay: load(&self.delay_rate),
            result: load(&self.result_rate),
        }
    }

    fn set_enabled(&self, enabled: bool) {
        self.enabled.store(enabled, Ordering::Release);
    }
}

/// The run-time switch of a [`Chaos`](super::Chaos) policy: on, off, and its rates. Cheap to
/// clone (a reference count); every clone, and every clone of the policy, shares one state.
///
/// A call reads the switch once, with one atomic load; while it is off, that is all it pays: no
/// draw, no allocation. Each setting changes on its own: a call that runs while a test changes
/// two rates sees each one either before or after its change, and a call that sees the policy
/// turned on sees every rate set before [`enable`](Self::enable).
///
/// # Examples
///
/// ```
/// use staunch::chaos::{Chaos, ChaosConfig, Injection};
///
/// let chaos = Chaos::new(
///     ChaosConfig::new()
///         .with_error(1.0, || std::io::Error::other("injected"))
///         .with_enabled(false),
/// )?;
/// let switch = chaos.switch();
/// assert_eq!(chaos.decide(), Injection::None);
/// switch.enable();
/// assert_eq!(chaos.decide(), Injection::Error);
/// switch.set_error_rate(0.0)?;
/// assert_eq!(chaos.decide(), Injection::None);
/// # Ok::<(), staunch::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct ChaosSwitch {
    pub(super) shared: Arc<Shared>,
}

impl ChaosSwitch {
    /// Turns injection on.
    pub fn enable(&self) {
        self.shared.set_enabled(true);
    }

    /// Turns injection off: calls run as if the policy were not there.
    pub fn disable(&self) {
        self.shared.set_enabled(false);
    }

    /// Turns injection on or off.
    pub fn set_enabled(&self, enabled: bool) {
        self.shared.set_enabled(enabled);
    }

    /// Whether injection is on.
    pub fn is_enabled(&self) -> bool {
        self.shared.is_enabled()
    }

    /// Sets the share of calls replaced by an error.
    ///
    /// # Errors
    ///
    /// `rate` is not in `[0, 1]`, or the policy has no error to inject (a rate above zero needs
    /// [`ChaosConfig::with_error`](super::ChaosConfig::with_error)). The rate is then unchanged.
    pub fn set_error_rate(&self, rate: f64) -> Result<(), ConfigError> {
        self.set_rate(
            "error_rate",
            &self.shared.error_rate,
            rate,
            self.shared.has_error,
        )
    }

    /// Sets the share of calls delayed (by a delay from the configured range).
    ///
    /// # Errors
    ///
    /// `rate` is not in `[0, 1]`. The rate is then unchanged.
    pub fn set_delay_rate(&self, rate: f64) -> Result<(), ConfigError> {
        self.set_rate("delay_rate", &self.shared.delay_rate, rate, true)
    }

    /// Sets the share of calls replaced by a substitute.
    ///
    /// # Errors
    ///
    /// `rate` is not in `[0, 1]`, or the policy has no substitute to inject (a rate above zero
    /// needs [`ChaosConfig::with_result`](super::ChaosConfig::with_result)). The rate is then
    /// unchanged.
    pub fn set_result_rate(&self, rate: f64) -> Result<(), ConfigError> {
        self.set_rate(
            "result_rate",
            &self.shared.result_rate,
            rate,
            self.shared.has_result,
        )
    }

    /// The share of calls replaced by an error.
    pub fn error_rate(&self) -> f64 {
        self.shared.rates().error
    }

    /// The share of calls delayed.
    pub fn delay_rate(&self) -> f64 {
        self.shared.rates().delay
    }

    /// The share of calls replaced by a substitute.
    pub fn result_rate(&self) -> f64 {
        self.shared.rates().result
    }

    /// The policy's name.
    pub fn name(&self) -> &'static str {
        self.shared.name
    }

    fn set_rate(
        &self,
        field: &'static str,
        slot: &AtomicU64,
        rate: f64,
        has_maker: bool,
    ) -> Result<(), ConfigError> {
        check_rate(field, rate)?;
        if rate > 0.0 && !has_maker {
            return Err(ConfigError::new(
                field,
                format!(
                    "this policy has nothing to inject for `{field}`; build it with a value to \
                     inject (ChaosConfig::with_{}) to set a rate above 0",
                    field.trim_end_matches("_rate")
                ),
            ));
        }
        slot.store(rate.to_bits(), Ordering::Release);
        Ok(())
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rates = self.rates();
        f.debug_struct("Chaos")
            .field("name", &self.name)
            .field("enabled", &self.is_enabled())
            .field("error_rate", &rates.error)
            .field("delay_rate", &rates.delay)
            .field("delay", &(self.delay.min..=self.delay.max))
            .field("result_rate", &rates.result)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for ChaosSwitch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ChaosSwitch").field(&*self.shared).finish()
    }
}
