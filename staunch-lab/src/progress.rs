//! A progress bar on stderr for the runs that take a while.
//!
//! A run that ends within [`SHOW_AFTER`] prints nothing; a longer one shows a bar (`indicatif`),
//! and only when stderr is a terminal, so that a pipe or a log file never gets control
//! characters. The bar is cleared when the run ends. Progress reads the wall clock, which is
//! fine: it only decides what to draw, never what a run computes.

use std::cell::RefCell;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How long a run goes before its bar appears.
pub const SHOW_AFTER: Duration = Duration::from_secs(1);

/// Whether a bar should be drawn: stderr is a terminal and the work has taken long enough.
pub fn visible(terminal: bool, elapsed: Duration) -> bool {
    terminal && elapsed >= SHOW_AFTER
}

/// A progress bar that appears after [`SHOW_AFTER`] when stderr is a terminal; a no-op otherwise.
///
/// # Examples
///
/// ```
/// use staunch_lab::progress::Progress;
///
/// let progress = Progress::off(); // what tests and `--quiet` use
/// progress.set(10);
/// progress.finish();
/// ```
#[derive(Debug)]
pub struct Progress {
    state: Option<RefCell<State>>,
}

#[derive(Debug)]
struct State {
    started: Instant,
    total: u64,
    base: u64,
    message: String,
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A bar that never shows.
    pub const fn off() -> Self {
        Self { state: None }
    }

    /// A bar for `total` units of work, labelled `message`, on stderr if it is a terminal.
    pub fn stderr(total: u64, message: impl Into<String>) -> Self {
        if !std::io::stderr().is_terminal() {
            return Self::off();
        }
        Self {
            state: Some(RefCell::new(State {
                started: Instant::now(),
                total,
                base: 0,
                message: message.into(),
                bar: None,
            })),
        }
    }

    /// Counts every later [`set`](Self::set) from `base`: for work done in stages that each
    /// count from zero.
    pub fn set_base(&self, base: u64) {
        if let Some(state) = &self.state
            && let Ok(mut state) = state.try_borrow_mut()
        {
            state.base = base;
        }
    }

    /// Sets how many units are done (since the base).
    pub fn set(&self, done: u64) {
        let Some(state) = &self.state else { return };
        let Ok(mut state) = state.try_borrow_mut() else {
            return;
        };
        if state.bar.is_none() {
            if !visible(true, state.started.elapsed()) {
                return;
            }
            let bar =
                ProgressBar::with_draw_target(Some(state.total), ProgressDrawTarget::stderr());
            if let Ok(style) =
                ProgressStyle::with_template("{msg} [{wide_bar}] {pos}/{len} ({elapsed})")
            {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(state.message.clone());
            state.bar = Some(bar);
        }
        if let Some(bar) = &state.bar {
            bar.set_position(state.base + done);
        }
    }

    /// Changes the label (the next stage of the same work).
    pub fn set_message(&self, message: impl Into<String>) {
        let Some(state) = &self.state else { return };
        let Ok(mut state) = state.try_borrow_mut() else {
            return;
        };
        state.message = message.into();
        if let Some(bar) = &state.bar {
            bar.set_message(state.message.clone());
        }
    }

    /// Clears the bar, if it was drawn.
    pub fn finish(&self) {
        let Some(state) = &self.state else { return };
        if let Ok(state) = state.try_borrow()
            && let Some(bar) = &state.bar
        {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bar_shows_only_on_a_terminal_and_only_after_a_second() {
        assert!(!visible(false, Duration::from_secs(60)));
        assert!(!visible(true, Duration::from_millis(999)));
        assert!(visible(true, SHOW_AFTER));
    }

    #[test]
    fn off_does_nothing() {
        let progress = Progress::off();
        progress.set(1);
        progress.set_message("x");
        progress.finish();
        assert!(progress.state.is_none());
    }
}
