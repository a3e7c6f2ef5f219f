//! Bounded work: a run that would take minutes and gigabytes is refused or stopped, counted in
//! events (arrivals and dependency calls), never timed.

use crate::support::{staunch_lab, temp_dir};

/// A policy that retries a billion times, with no backoff, against a dependency that fails at
/// once: without a ceiling it never ends, and never advances virtual time.
const RUNAWAY: &str = "[load]\nrate = 100\nduration = \"60s\"\n\
    [dependency]\nlatency = \"0s\"\nerror_rate = 1.0\n\
    [policy]\nname = \"billion\"\n\
    retry = { max_attempts = 1000000000, backoff = { kind = \"constant\", initial = \"0s\", jitter = \"none\" } }\n";

#[test]
fn a_runaway_policy_is_stopped_at_the_ceiling_with_a_message() {
    let dir = temp_dir("runaway");
    let file = dir.join("runaway.toml");
    std::fs::write(&file, RUNAWAY).unwrap();
    let output = staunch_lab(&["simulate", &file.to_string_lossy(), "--max-events", "20000"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(output.stdout.is_empty(), "a report from a stopped run");
    for needle in [
        "policy billion",
        "stopped",
        "20000 events",
        "--max-events",
        "max_attempts",
    ] {
        assert!(stderr.contains(needle), "no {needle:?} in {stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_load_with_more_arrivals_than_the_ceiling_is_refused_before_it_starts() {
    let dir = temp_dir("refused");
    let file = dir.join("big.toml");
    std::fs::write(
        &file,
        "[load]\nrate = 100\nduration = \"10s\"\narrivals = \"uniform\"\n[dependency]\nlatency = \"10ms\"\n[policy]\n",
    )
    .unwrap();
    let path = file.to_string_lossy();
    let output = staunch_lab(&["simulate", &path, "--max-events", "999"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("1000 requests") && stderr.contains("--max-events"),
        "{stderr}"
    );
    // 1000 arrivals and 1000 calls fit a ceiling of 2000 exactly.
    let output = staunch_lab(&["simulate", &path, "--max-events", "2000"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = staunch_lab(&["simulate", &path, "--max-events", "1999"]);
    assert_eq!(output.status.code(), Some(1));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_ceiling_flag_validates() {
    for bad in ["0", "-5", "many", ""] {
        let flag = format!("--max-events={bad}");
        let output = staunch_lab(&["simulate", "x.toml", &flag]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{bad}: {stderr}");
        assert!(stderr.contains("--max-events"), "{bad}: {stderr}");
    }
}

#[test]
fn no_progress_bar_when_stderr_is_not_a_terminal() {
    // The test harness captures stderr: a pipe, so not a byte of progress.
    let output = staunch_lab(&["simulate", &crate::support::scenario("flaky")]);
    assert!(output.status.success());
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn requests_that_never_end_are_stopped_at_the_in_flight_ceiling() {
    let dir = temp_dir("in-flight");
    let file = dir.join("hole.toml");
    std::fs::write(
        &file,
        "[load]\nrate = 1000\nduration = \"16m\"\n[dependency]\nlatency = \"40ms\"\noutage = \"blackhole\"\n[policy]\nname = \"bare\"\n",
    )
    .unwrap();
    let output = staunch_lab(&[
        "simulate",
        &file.to_string_lossy(),
        "--max-in-flight",
        "1000",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    for needle in [
        "policy bare",
        "1000 requests in flight",
        "--max-in-flight",
        "timeout",
    ] {
        assert!(stderr.contains(needle), "no {needle:?} in {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
