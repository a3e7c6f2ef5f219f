//! Automatic half-open ([`BreakerConfig::with_automatic_half_open`](super::BreakerConfig::with_automatic_half_open)):
//! one tokio task per open period ends the period on time, so that the callers rejected
//! meanwhile need no clock.
//!
//! The task only ever acts on the generation it was armed for, through `Shared`'s compare-
//! exchanges (`open_timer_tick`), so a reset, a force, or a caller that ends the period first
//! leaves it nothing to do but stop. Dropped without finishing (its runtime shut down, or the
//! spawn found it shutting down), it clears the word's timer flag: rejections then read the
//! clock again and the period ends at the first call after it, as without the setting.

use std::sync::Weak;

use super::shared::Shared;

/// Spawns the timer of the open period of `generation` on `runtime`. The word already carries
/// the timer flag, so that a drop of the task at any point after this finds it to clear.
pub(crate) fn spawn(runtime: &tokio::runtime::Handle, shared: Weak<Shared>, generation: u32) {
    let timer = Timer { shared, generation };
    runtime.spawn(async move {
        // Moved in whole, so that dropping the future, even unpolled, drops the timer.
        let timer = timer;
        while let Some(wait) = timer.tick() {
            tokio::time::sleep(wait).await;
        }
    });
}

/// The timer of one open period.
struct Timer {
    /// Weak, so that a pending timer does not keep a dropped breaker alive.
    shared: Weak<Shared>,
    generation: u32,
}

impl Timer {
    /// How long to sleep before the next tick; `None` when the timer is done (the period is
    /// over, or the breaker has left it, or is gone).
    fn tick(&self) -> Option<std::time::Duration> {
        self.shared.upgrade()?.open_timer_tick(self.generation)
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.upgrade() {
            // A no-op when the timer is done: the word has left its generation.
            shared.disarm_timer(self.generation);
        }
    }
}
