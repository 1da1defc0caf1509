//! The `s3imports` binary run as an operator of the operator policy's group.
use super::*;
use std::path::{Path, PathBuf};

/// The operator policy's group of a CLI command.
pub(super) fn cli_group(command: &str) -> &'static str {
    match command {
        "config" => "config",
        "runs" | "report" | "status" => "history",
        "run" | "replay" => "run",
        "dry-run" => "dry-run",
        "keys" => "keys",
        "segments" => "segments",
        "tick" => "tick",
        "local" => "local",
        "console" => "console",
        "preview" => "preview",
        _ => "other",
    }
}

/// The `s3imports` binary built next to this test binary (`make test` builds it first).
pub fn cli_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/deps/<test> -> target/<profile>/s3imports
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .map_or_else(|| PathBuf::from("target/debug"), Path::to_path_buf);
    let bin = dir.join("s3imports");
    assert!(
        bin.exists(),
        "{} is missing: build it first (`cargo build -p s3imports-cli`; `make test` does)",
        bin.display()
    );
    bin
}

/// What a run of the `s3imports` binary printed.
pub struct CliRun {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the `s3imports` binary on `env`'s stack, as an operator holding the
/// operator policy's group for the command.
pub fn s3imports(env: &TestEnv, args: &[&str]) -> CliRun {
    let out = std::process::Command::new(cli_binary())
        .args(args)
        .envs(env.cli_env(args))
        .env_remove("S3IMPORTS_PREFIX")
        .output()
        .unwrap_or_else(|e| panic!("run s3imports: {e}"));
    CliRun {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    }
}

/// Writes `value` as pretty JSON to `dir/name` and returns the path.
pub fn write_json(dir: &Path, name: &str, value: &serde_json::Value) -> String {
    let path = dir.join(name);
    std::fs::write(
        &path,
        serde_json::to_string_pretty(value).unwrap_or_default(),
    )
    .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path.to_string_lossy().to_string()
}
