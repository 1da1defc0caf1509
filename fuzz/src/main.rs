//! `s3imports-fuzz --target <csv|json|config|manifest|sniff|all> --iterations N --seed S`
//! runs targets on generated inputs and prints, per target, the inputs run, the panics
//! and the rate. A panicking input is written to `target/fuzz-crash-<target>-<iteration>`
//! (`--crash-dir` elsewhere) and the exit status is 1. `--replay FILE` runs one saved
//! input again, with the panic printed.

use std::path::PathBuf;
use std::process::ExitCode;

use s3imports_fuzz::{Target, catch, run};

const USAGE: &str = "usage: s3imports-fuzz [--target csv|json|config|manifest|sniff|all] [--iterations N] [--seed S] [--crash-dir DIR]
       s3imports-fuzz --target T --replay FILE";

struct Args {
    targets: Vec<Target>,
    iterations: u64,
    seed: u64,
    crash_dir: PathBuf,
    replay: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        targets: Target::ALL.to_vec(),
        iterations: 100_000,
        seed: 1,
        crash_dir: PathBuf::from("target"),
        replay: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--target" => {
                args.targets = match value.as_str() {
                    "all" => Target::ALL.to_vec(),
                    name => {
                        vec![Target::from_name(name).ok_or_else(|| format!("no target `{name}`"))?]
                    }
                }
            }
            "--iterations" => {
                args.iterations = value
                    .replace('_', "")
                    .parse()
                    .map_err(|_| format!("--iterations: `{value}` is not a count"))?;
            }
            "--seed" => {
                args.seed = value
                    .parse()
                    .map_err(|_| format!("--seed: `{value}` is not a number"))?;
            }
            "--crash-dir" => args.crash_dir = PathBuf::from(value),
            "--replay" => args.replay = Some(PathBuf::from(value)),
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("{e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    if let Some(file) = &args.replay {
        return replay(&args.targets, file);
    }
    println!(
        "seed {}, {} iterations per target",
        args.seed, args.iterations
    );
    let mut failed = false;
    for target in &args.targets {
        let report = run(*target, args.iterations, args.seed);
        println!(
            "{:<9} inputs {:>9}  panics {:>3}  inputs/s {:>8.0}  ({:.1} s)",
            target.name(),
            report.inputs,
            report.panics,
            report.inputs_per_second(),
            report.elapsed.as_secs_f64()
        );
        for crash in &report.crashes {
            failed = true;
            let path =
                args.crash_dir
                    .join(format!("fuzz-crash-{}-{}", target.name(), crash.iteration));
            let saved = std::fs::create_dir_all(&args.crash_dir)
                .and_then(|()| std::fs::write(&path, &crash.input));
            match saved {
                Ok(()) => println!(
                    "  iteration {}: {} (input in {}; replay with --target {} --replay {})",
                    crash.iteration,
                    crash.message.replace('\n', " "),
                    path.display(),
                    target.name(),
                    path.display()
                ),
                Err(e) => println!(
                    "  iteration {}: {} (could not save the input to {}: {e})",
                    crash.iteration,
                    crash.message.replace('\n', " "),
                    path.display()
                ),
            }
        }
        failed |= report.panics > 0;
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn replay(targets: &[Target], file: &PathBuf) -> ExitCode {
    let [target] = targets else {
        eprintln!("--replay needs one --target");
        return ExitCode::from(2);
    };
    let input = match std::fs::read(file) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("{}: {e}", file.display());
            return ExitCode::from(2);
        }
    };
    match catch(*target, &input) {
        Ok(()) => {
            println!("{}: no panic", target.name());
            ExitCode::SUCCESS
        }
        Err(message) => {
            println!("{}: {message}", target.name());
            ExitCode::FAILURE
        }
    }
}
