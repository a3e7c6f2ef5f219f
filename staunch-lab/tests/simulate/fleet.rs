//! `--clients` and `[fleet]`: N client instances, each with its own breaker, against one
//! dependency; the fleet's total load and how synchronised the instances were.

use crate::support::{scenario, staunch_lab, stdout_of, temp_dir};

#[test]
fn a_fleet_reports_its_total_load_and_how_together_its_breakers_opened() {
    let file = scenario("hard-outage");
    let json = stdout_of(&["simulate", &file, "--clients", "10", "--format", "json"]);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let policy = &value["policies"][0];
    let fleet = &policy["fleet"];
    assert_eq!(fleet["clients"], 10);
    let breaker = &fleet["breakers"][0];
    assert_eq!(breaker["dependency"], "dependency");
    // A hard outage trips every instance's breaker: at some instant all were open.
    assert_eq!(breaker["peak_open_share"].as_f64(), Some(1.0), "{fleet}");
    let together = breaker["open_together"].as_f64().expect("a share");
    assert!((0.1..=1.0).contains(&together), "{fleet}");
    assert!(fleet["retry_peak_to_mean"].as_f64().expect("retries") >= 1.0);
    // Each instance has its own breaker: at least ten openings, stamped with their client.
    let opened: Vec<u64> = policy["breaker"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["to"] == "open")
        .map(|t| t["client"].as_u64().expect("a client"))
        .collect();
    for client in 0..10 {
        assert!(opened.contains(&client), "client {client} in {opened:?}");
    }
    // The same load in all: the fleet sees every request.
    let alone = stdout_of(&["simulate", &file, "--format", "json"]);
    let alone: serde_json::Value = serde_json::from_str(&alone).unwrap();
    assert_eq!(value["requests"], alone["requests"]);
    assert!(alone["policies"][0]["fleet"].is_null());

    let table = stdout_of(&["simulate", &file, "--clients", "10"]);
    assert!(table.contains("spread over 10 clients in turn"), "{table}");
    assert!(table.contains("Fleet of 10 clients"), "{table}");
    assert!(table.contains("of clients open at once"), "{table}");
    let table = stdout_of(&["simulate", &file]);
    assert!(!table.contains("Fleet of"), "{table}");
}

#[test]
fn a_fleet_table_in_the_file_and_the_flag_over_it() {
    let dir = temp_dir("fleet");
    let file = dir.join("fleet.toml");
    let text = "[load]\nrate = 20\nduration = \"5s\"\n[dependency]\nlatency = \"10ms\"\n\
                [fleet]\nclients = 4\n[policy]\nbreaker = { rule = \"consecutive_failures\", failures = 3 }\n";
    std::fs::write(&file, text).unwrap();
    let path = file.to_string_lossy();
    assert!(stdout_of(&["simulate", &path]).contains("spread over 4 clients"));
    assert!(stdout_of(&["simulate", &path, "--clients", "3"]).contains("spread over 3 clients"));
    // One client is no fleet.
    assert!(!stdout_of(&["simulate", &path, "--clients", "1"]).contains("Fleet of"));
    for (bad, needle) in [
        ("[fleet]\nclients = 0\n", "fleet.clients"),
        ("[fleet]\nclients = 1001\n", "fleet.clients"),
        ("[fleet]\nclients = \"many\"\n", "clients"),
        ("[fleet]\nclients = 2\nsize = 3\n", "unknown field `size`"),
    ] {
        let text = text.replace("[fleet]\nclients = 4\n", bad);
        std::fs::write(&file, &text).unwrap();
        let output = staunch_lab(&["simulate", &path]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{bad}: {stderr}");
        assert!(stderr.contains(needle), "{bad}: no {needle:?} in {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    for bad in ["0", "1001", "x", "-2"] {
        let output = staunch_lab(&["simulate", &path, &format!("--clients={bad}")]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{bad}: {stderr}");
        assert!(stderr.contains("--clients"), "{bad}: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
