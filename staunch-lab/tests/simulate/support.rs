//! Helpers shared by the simulate tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The shipped scenarios directory.
pub(crate) fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

/// A shipped scenario file by stem.
pub(crate) fn scenario(stem: &str) -> String {
    scenarios_dir()
        .join(format!("{stem}.toml"))
        .to_string_lossy()
        .into_owned()
}

/// Every shipped scenario file, sorted.
pub(crate) fn all_scenarios() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(scenarios_dir())
        .expect("the scenarios directory exists")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    files
}

/// Runs the `staunch-lab` binary with `args` and waits for it.
pub(crate) fn staunch_lab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_staunch-lab"))
        .args(args)
        .output()
        .expect("the staunch-lab binary runs")
}

/// The stdout of a successful run, as text.
pub(crate) fn stdout_of(args: &[&str]) -> String {
    let output = staunch_lab(args);
    assert!(
        output.status.success(),
        "{args:?}: {:?}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// A fresh directory under the system's temp dir for one test's files.
pub(crate) fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "staunch-lab-simulate-{test}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("the temp dir can be created");
    dir
}
