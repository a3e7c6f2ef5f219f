//! Helpers shared by the demo tests.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;

use staunch_lab::demo::{DemoConfig, Progress, Report, Schedule};

/// A shortened version of the standard schedule: the same five phases in 5.6 s.
pub(crate) const SHORT_SCHEDULE: &str = r#"{"phases": [
  {"name": "healthy", "seconds": 0.6},
  {"name": "pricing slow", "seconds": 1.6, "pricing": {"mode": "slow", "latency_ms": [600, 2000]}},
  {"name": "pricing down", "seconds": 1.6, "pricing": "down"},
  {"name": "inventory flaky", "seconds": 1.2, "inventory": "flaky"},
  {"name": "recovery", "seconds": 0.6}
]}"#;

/// Phase numbers in [`SHORT_SCHEDULE`].
pub(crate) const SLOW: usize = 1;
pub(crate) const DOWN: usize = 2;

/// The shortened demo, run once for all the tests that read its report: 12 requests per
/// second, about 67 per build.
pub(crate) fn short_run() -> &'static Report {
    static REPORT: OnceLock<Report> = OnceLock::new();
    REPORT.get_or_init(|| {
        let config = DemoConfig {
            schedule: Schedule::from_json(SHORT_SCHEDULE).expect("a valid schedule"),
            rate: 12.0,
            seed: 7,
            progress: Progress::Off,
        };
        staunch_lab::demo::run_blocking(&config).expect("the demo runs on loopback")
    })
}

/// Runs the `staunch-lab` binary with `args` and waits for it.
pub(crate) fn staunch_lab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_staunch-lab"))
        .args(args)
        .output()
        .expect("the staunch-lab binary runs")
}

/// A fresh path in the target directory's temporary folder, named after `name`.
pub(crate) fn temp_path(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    dir.join(format!("demo-{}-{name}", std::process::id()))
}
