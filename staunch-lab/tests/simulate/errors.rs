//! Bad input: a message naming the field and the problem, exit code 2, never a panic.

use std::path::Path;

use crate::support::{scenario, staunch_lab, temp_dir};

const GOOD_LOAD: &str =
    "[load]\nrate = 10\nduration = \"5s\"\n\n[dependency]\nlatency = \"10ms\"\n\n";

/// Runs `simulate` on `text` written to a temp file; checks exit code 2 and returns stderr.
fn rejected(dir: &Path, name: &str, text: &str) -> String {
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(&file, text).expect("the temp file can be written");
    let output = staunch_lab(&["simulate", &file.to_string_lossy()]);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{name}: {stderr}");
    assert!(!stderr.contains("panicked"), "{name}: {stderr}");
    assert!(output.stdout.is_empty(), "{name}: printed a report");
    assert!(
        stderr.contains(&format!("{name}.toml")),
        "{name}: no file name in {stderr}"
    );
    stderr
}

#[test]
fn bad_files_name_the_field_and_exit_2() {
    let dir = temp_dir("bad-files");
    let policy = |p: &str| format!("{GOOD_LOAD}[policy]\n{p}\n");
    let cases: Vec<(&str, String, &[&str])> = vec![
        ("not-toml", "[load\nrate = ".to_owned(), &["TOML parse error"]),
        ("no-load", "[dependency]\nlatency = \"1ms\"\n[policy]\n".to_owned(), &["[load]"]),
        ("no-policy", GOOD_LOAD.to_owned(), &["missing field `policy`"]),
        ("unknown-key", policy("retries = 3"), &["unknown field `retries`"]),
        ("zero-attempts", policy("retry = { max_attempts = 0 }"), &["policy.retry", "max_attempts"]),
        ("negative-attempts", policy("retry = { max_attempts = -2 }"), &["-2"]),
        ("bad-duration", policy("timeout = \"5 seconds\""), &["\"5 seconds\"", "invalid duration"]),
        ("negative-duration", policy("timeout = \"-1s\""), &["\"-1s\""]),
        ("bad-multiplier", policy("retry = { backoff = { kind = \"exponential\", initial = \"10ms\", multiplier = 0.5 } }"), &["policy.retry", "multiplier"]),
        ("bad-jitter", policy("retry = { backoff = { kind = \"constant\", initial = \"10ms\", jitter = \"lots\" } }"), &["unknown jitter \"lots\""]),
        ("bad-breaker", policy("breaker = { rule = \"consecutive_failures\", failures = 0 }"), &["policy.breaker", "consecutive_failures"]),
        ("breaker-rule-mix", policy("breaker = { rule = \"consecutive_failures\", failures = 3, window = \"1s\" }"), &["`window` does not apply"]),
        ("bad-rate", policy("breaker = { rule = \"failure_rate_count\", failure_rate = 1.5, window_size = 10 }"), &["policy.breaker", "failure_rate"]),
        ("bad-budget", policy("retry = {}\nbudget = { kind = \"token_bucket\", max_tokens = 0, token_ratio = 0.1 }"), &["policy.budget", "max_tokens"]),
        ("budget-without-retry", policy("budget = { kind = \"ratio\", ratio = 0.1 }"), &["policy.budget", "[policy.retry]"]),
        ("retry-and-hedge", policy("retry = {}\nhedge = { delay = \"20ms\" }"), &["policy.hedge", "retries or hedges"]),
        ("too-many-hedges", policy("hedge = { max_attempts = 6, delay = \"20ms\" }"), &["policy.hedge", "max_attempts"]),
        ("hedge-without-delay", policy("hedge = { max_attempts = 2 }"), &["missing field `delay`"]),
        ("bad-percentile", policy("hedge = { delay = { percentile = 100 } }"), &["policy.hedge", "percentile"]),
        ("floor-above-ceiling", policy("hedge = { delay = { percentile = 95, min = \"50ms\", max = \"10ms\" } }"), &["policy.hedge", "`min`"]),
        ("bad-attempt-timeout", policy("attempt_timeout = { fraction = 2.0 }"), &["policy.attempt_timeout", "fraction"]),
        ("zero-rate", "[load]\nrate = 0\nduration = \"5s\"\n[dependency]\nlatency = \"1ms\"\n[policy]\n".to_owned(), &["load.rate"]),
        ("huge-load", "[load]\nrate = 1e9\nduration = \"1h\"\n[dependency]\nlatency = \"1ms\"\n[policy]\n".to_owned(), &["load.rate", "more than"]),
        ("bad-error-rate", "[load]\nrate = 1\nduration = \"5s\"\n[dependency]\nlatency = \"1ms\"\nerror_rate = 1.5\n[policy]\n".to_owned(), &["dependency.error_rate"]),
        ("bad-latency", "[load]\nrate = 1\nduration = \"5s\"\n[dependency]\nlatency = { distribution = \"lognormal\", mean = \"10ms\" }\n[policy]\n".to_owned(), &["needs `sd`"]),
        ("uniform-backwards", "[load]\nrate = 1\nduration = \"5s\"\n[dependency]\nlatency = { distribution = \"uniform\", min = \"15ms\", max = \"5ms\" }\n[policy]\n".to_owned(), &["dependency.latency", "min (15ms) is above its max (5ms)"]),
        ("uniform-half", "[load]\nrate = 1\nduration = \"5s\"\n[dependency]\nlatency = { distribution = \"uniform\", min = \"15ms\" }\n[policy]\n".to_owned(), &["a uniform latency needs `max`"]),
        ("constant-with-mean", "[load]\nrate = 1\nduration = \"5s\"\n[dependency]\nlatency = { distribution = \"constant\", value = \"1ms\", mean = \"1ms\" }\n[policy]\n".to_owned(), &["`mean` does not apply to a constant latency"]),
        ("mixture-zero-weight", "[load]\nrate = 1\nduration = \"5s\"\n[dependency]\nlatency = { distribution = \"mixture\", parts = [ { weight = 0, distribution = \"constant\", value = \"1ms\" } ] }\n[policy]\n".to_owned(), &["parts[0].weight"]),
        ("mixture-empty", "[load]\nrate = 1\nduration = \"5s\"\n[dependency]\nlatency = { distribution = \"mixture\", parts = [] }\n[policy]\n".to_owned(), &["a mixture needs `parts`"]),
        ("mixture-nested", "[load]\nrate = 1\nduration = \"5s\"\n[dependency]\nlatency = { distribution = \"mixture\", parts = [ { weight = 1, distribution = \"mixture\" } ] }\n[policy]\n".to_owned(), &["parts[0]", "cannot hold a mixture"]),
        ("mixture-bad-part", "[load]\nrate = 1\nduration = \"5s\"\n[dependency]\nlatency = { distribution = \"mixture\", parts = [ { weight = 1, distribution = \"uniform\", min = \"2ms\", max = \"1ms\" } ] }\n[policy]\n".to_owned(), &["dependency.latency.parts[0]", "above its max"]),
        ("bad-outage", "[load]\nrate = 1\nduration = \"5s\"\n[dependency]\nlatency = \"1ms\"\noutage = \"sometimes\"\n[policy]\n".to_owned(), &["sometimes"]),
        ("phase-backwards", ("[load]\nrate = 1\nduration = \"5s\"\n[dependency]\nlatency = \"1ms\"\n[[dependency.phase]]\nname = \"x\"\nstart = \"3s\"\nend = \"2s\"\n[policy]\n").to_owned(), &["dependency.phase[0]", "`end`"]),
        ("fanout-unknown", "[load]\nrate = 1\nduration = \"5s\"\n[dependencies.a]\nlatency = \"1ms\"\n[request]\nsequence = [\"b\"]\n[policy]\n".to_owned(), &["request", "no dependency \"b\""]),
        ("fanout-policy", "[load]\nrate = 1\nduration = \"5s\"\n[dependencies.a]\nlatency = \"1ms\"\n[policy]\n[policy.a]\nbreaker = { rule = \"consecutive_failures\", failures = 0 }\n".to_owned(), &["policy.a.breaker"]),
        ("fanout-both", "[load]\nrate = 1\nduration = \"5s\"\n[dependency]\nlatency = \"1ms\"\n[dependencies.a]\nlatency = \"1ms\"\n[policy]\n".to_owned(), &["[dependencies]", "not both"]),
        ("phase-overlap", ("[load]\nrate = 1\nduration = \"5s\"\n[dependency]\nlatency = \"1ms\"\n[[dependency.phase]]\nname = \"a\"\nstart = \"0s\"\nend = \"3s\"\n[[dependency.phase]]\nname = \"b\"\nstart = \"2s\"\nend = \"4s\"\n[policy]\n").to_owned(), &["dependency.phase[1]", "overlap"]),
    ];
    for (name, text, needles) in &cases {
        let stderr = rejected(&dir, name, text);
        for needle in *needles {
            assert!(stderr.contains(needle), "{name}: no {needle:?} in {stderr}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_compare_file_is_rejected_too() {
    let dir = temp_dir("bad-compare");
    let file = dir.join("other.toml");
    std::fs::write(&file, "[policy]\nretry = { max_attempts = 0 }\n").unwrap();
    let output = staunch_lab(&[
        "simulate",
        &scenario("flaky"),
        "--compare",
        &file.to_string_lossy(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("other.toml") && stderr.contains("max_attempts"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_file_or_bad_flag_exits_2() {
    let output = staunch_lab(&["simulate", "/nonexistent/scenario.toml"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot read"));
    for bad in [
        &["simulate"][..],
        &["simulate", "x.toml", "--seed", "-1"],
        &["simulate", "x.toml", "--format", "xml"],
    ] {
        assert_eq!(staunch_lab(bad).status.code(), Some(2), "{bad:?}");
    }
}

#[test]
fn a_policy_only_file_works_with_compare() {
    let dir = temp_dir("policy-only");
    let file = dir.join("tight.toml");
    std::fs::write(
        &file,
        "[policy]\nname = \"tight\"\nattempt_timeout = { fixed = \"20ms\" }\n",
    )
    .unwrap();
    let output = staunch_lab(&[
        "simulate",
        &scenario("flaky"),
        "--compare",
        &file.to_string_lossy(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("tight"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_policy_per_dependency_compares_only_with_a_scenario_that_has_them() {
    let dir = temp_dir("fanout-compare");
    let file = dir.join("per-dependency.toml");
    std::fs::write(
        &file,
        "[policy]\nname = \"tight\"\n[policy.pricing]\nattempt_timeout = { fixed = \"20ms\" }\n",
    )
    .unwrap();
    // A [dependency] scenario has no pricing.
    let output = staunch_lab(&[
        "simulate",
        &scenario("flaky"),
        "--compare",
        &file.to_string_lossy(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("unknown field `pricing`"), "{stderr}");
    // The checkout has: the table names it.
    let output = staunch_lab(&[
        "simulate",
        &scenario("checkout"),
        "--compare",
        &file.to_string_lossy(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("tight: "));
    let _ = std::fs::remove_dir_all(&dir);
}
