//! The command line of `staunch-lab demo`: help, exit codes, and invalid input.

use crate::support::{staunch_lab, temp_path};

fn stderr_of(args: &[&str], code: i32) -> String {
    let output = staunch_lab(args);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(code), "{args:?}: {stderr}");
    stderr
}

#[test]
fn help_documents_every_flag_and_the_exit_codes() {
    let output = staunch_lab(&["demo", "--help"]);
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for needle in [
        "--duration",
        "--rate",
        "--seed",
        "--schedule",
        "--format",
        "--html",
        "--quiet",
        "Exit codes:",
        "0  the demo ran",
        "2  invalid arguments",
    ] {
        assert!(help.contains(needle), "{needle}\n{help}");
    }
}

#[test]
fn bad_flags_exit_2_before_running() {
    for bad in [
        &["--rate", "0"][..],
        &["--rate", "-1"],
        &["--rate", "many"],
        &["--rate", "5000"],
        &["--duration", "0"],
        &["--duration", "601"],
        &["--duration", "soon"],
        &["--format", "xml"],
        &["--seed", "-1"],
    ] {
        let args: Vec<&str> = ["demo"].iter().chain(bad).copied().collect();
        stderr_of(&args, 2);
    }
    // A run too short for even one request.
    let stderr = stderr_of(&["demo", "--duration", "10ms", "--rate", "1"], 2);
    assert!(stderr.contains("--rate"), "{stderr}");
}

#[test]
fn a_bad_schedule_exits_2_and_names_the_field() {
    let missing = temp_path("missing.json");
    let stderr = stderr_of(&["demo", "--schedule", missing.to_str().unwrap()], 2);
    assert!(stderr.contains("cannot read the schedule"), "{stderr}");

    let table = [
        ("not json", "not valid JSON"),
        (r#"{"phases": []}"#, "`phases`: needs at least one phase"),
        (
            r#"{"phases": [{"name": "x", "seconds": 1, "pricing": {"mode": "slow", "latency_ms": [5]}}]}"#,
            "`phases[0].pricing.latency_ms`",
        ),
        (
            r#"{"phases": [{"name": "x", "seconds": 1, "inventory": {"mode": "flaky", "error_rate": 2}}]}"#,
            "`phases[0].inventory.error_rate`: must be a number from 0 to 1",
        ),
    ];
    for (i, (text, expected)) in table.iter().enumerate() {
        let path = temp_path(&format!("schedule-{i}.json"));
        std::fs::write(&path, text).unwrap();
        let stderr = stderr_of(&["demo", "--schedule", path.to_str().unwrap()], 2);
        assert!(stderr.contains(expected), "{text}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        std::fs::remove_file(&path).unwrap();
    }
}

#[test]
fn a_tiny_run_prints_json_and_writes_html() {
    let html = temp_path("report.html");
    let output = staunch_lab(&[
        "demo",
        "--duration",
        "1.5",
        "--rate",
        "6",
        "--format",
        "json",
        "--quiet",
        "--html",
        html.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.is_empty(), "--quiet: {stderr}");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("valid JSON");
    assert_eq!(json["run"]["requests_per_build"], 9);
    assert_eq!(json["phases"].as_array().map(Vec::len), Some(5));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<svg") && !page.contains("http"));
    std::fs::remove_file(&html).unwrap();
}

#[test]
fn an_unwritable_html_path_exits_1_before_running() {
    let path = temp_path("no-such-dir/report.html");
    let stderr = stderr_of(&["demo", "--html", path.to_str().unwrap()], 1);
    assert!(stderr.contains("cannot create"), "{stderr}");
}
