//! The `staunch-lab` binary: output formats, exit codes, determinism.

use std::io::Read;
use std::process::{Command, Stdio};

use crate::support::staunch_lab;

const ALGORITHMS: [&str; 5] = ["none", "exponential", "full", "equal", "decorrelated"];

fn stdout_of(args: &[&str]) -> String {
    let output = staunch_lab(args);
    assert!(
        output.status.success(),
        "{args:?}: {:?}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

#[test]
fn json_is_one_array_of_the_documented_objects() {
    let text = stdout_of(&[
        "jitter",
        "--clients",
        "8,3",
        "--runs",
        "3",
        "--format",
        "json",
    ]);
    let value: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let array = value.as_array().expect("a JSON array");
    assert_eq!(array.len(), 2 * ALGORITHMS.len());
    for (i, item) in array.iter().enumerate() {
        let object = item.as_object().expect("an object");
        let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["algorithm", "calls", "clients", "time_ms"]);

        // Client counts come sorted, algorithms in the documented order.
        let clients = if i < ALGORITHMS.len() { 3 } else { 8 };
        assert_eq!(object["clients"].as_u64(), Some(clients), "{item}");
        assert_eq!(
            object["algorithm"],
            ALGORITHMS[i % ALGORITHMS.len()],
            "{item}"
        );
        let calls = object["calls"].as_f64().expect("calls is a number");
        let time_ms = object["time_ms"].as_f64().expect("time_ms is a number");
        assert!(calls >= clients as f64, "{item}");
        assert!(time_ms > 0.0, "{item}");
    }
}

#[test]
fn the_default_table_explains_itself() {
    let text = stdout_of(&["jitter", "--runs", "2"]);
    for needle in [
        "write calls the server handled",
        "until the last client",
        "Means of 2 runs",
        "seed 2015",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    for algorithm in ALGORITHMS {
        assert!(text.contains(algorithm), "missing {algorithm} in\n{text}");
    }
    for clients in ["10", "50", "100", "190"] {
        let rows = text
            .lines()
            .filter(|line| line.split_whitespace().next() == Some(clients))
            .count();
        assert_eq!(
            rows, 2,
            "one row per table for {clients} clients in\n{text}"
        );
    }
}

#[test]
fn the_same_seed_prints_the_same_output() {
    let args = ["jitter", "--clients", "12", "--runs", "3", "--seed", "99"];
    assert_eq!(stdout_of(&args), stdout_of(&args));
    let other = ["jitter", "--clients", "12", "--runs", "3", "--seed", "100"];
    assert_ne!(stdout_of(&args), stdout_of(&other));
}

#[test]
fn bad_arguments_exit_with_code_2_and_say_why() {
    for (args, says) in [
        (&["jitter", "--clients", "0"][..], "from 1 to 1000"),
        (&["jitter", "--clients", "10,0,20"], "from 1 to 1000"),
        (&["jitter", "--clients", "5000"], "from 1 to 1000"),
        (&["jitter", "--clients", "lots"], "from 1 to 1000"),
        (&["jitter", "--runs", "0"], "number of runs"),
        (&["jitter", "--seed", "x"], "--seed"),
        (&["jitter", "--format", "xml"], "--format"),
        (&["jitter", "--nope"], "--nope"),
        (&["frobnicate"], "frobnicate"),
        (&[], "Usage"),
    ] {
        let output = staunch_lab(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn help_documents_every_flag_and_version_works() {
    let help = stdout_of(&["jitter", "--help"]);
    for flag in ["--clients", "--runs", "--seed", "--format", "table", "json"] {
        assert!(help.contains(flag), "missing {flag} in\n{help}");
    }
    let version = stdout_of(&["--version"]);
    assert_eq!(
        version.trim(),
        format!("staunch-lab {}", env!("CARGO_PKG_VERSION"))
    );
    let top = stdout_of(&["--help"]);
    assert!(top.contains("jitter"), "{top}");
}

#[test]
fn a_closed_pipe_is_not_a_crash() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_staunch-lab"))
        .args(["jitter", "--clients", "2", "--runs", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the staunch-lab binary runs");
    // Close our end before reading anything: the program's write fails with a broken pipe
    // (or succeeds first if it was quicker; either way it must exit cleanly).
    drop(child.stdout.take());
    let status = child.wait().expect("the program exits");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{status:?}: {stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn runs_past_the_ceiling_are_refused_or_stopped_by_counting_messages() {
    // 4 billion runs: refused before any work, whatever the machine.
    let output = staunch_lab(&["jitter", "--runs", "4000000000"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("at least") && stderr.contains("--max-events"),
        "{stderr}"
    );
    // Possible in principle, but past a small ceiling: stopped with a message.
    let output = staunch_lab(&[
        "jitter",
        "--clients",
        "100",
        "--runs",
        "50",
        "--max-events",
        "100000",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("stopped after 100000 events"), "{stderr}");
    assert!(output.stdout.is_empty());
    // The default run is well within the default ceiling, and prints no progress to a pipe.
    let output = staunch_lab(&["jitter", "--runs", "5"]);
    assert!(output.status.success());
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = staunch_lab(&["jitter", "--max-events=0"]);
    assert_eq!(output.status.code(), Some(2));
}
