//! A short fuzz run of every target, so `cargo test` catches a parser that panics on
//! inputs the generators reach quickly; `make fuzz` runs a million inputs per target.

use s3imports_fuzz::{Target, run};

const ITERATIONS: u64 = 2_000;

fn smoke(target: Target) {
    let report = run(target, ITERATIONS, 1);
    assert_eq!(report.inputs, ITERATIONS);
    let crashes: Vec<String> = report
        .crashes
        .iter()
        .map(|c| {
            format!(
                "iteration {}: {}\n  input: {:?}",
                c.iteration,
                c.message,
                String::from_utf8_lossy(&c.input)
            )
        })
        .collect();
    assert_eq!(
        report.panics,
        0,
        "{}:\n{}",
        target.name(),
        crashes.join("\n")
    );
}

#[test]
fn csv() {
    smoke(Target::Csv);
}

#[test]
fn json() {
    smoke(Target::Json);
}

#[test]
fn config() {
    smoke(Target::Config);
}

#[test]
fn manifest() {
    smoke(Target::Manifest);
}

#[test]
fn sniff() {
    smoke(Target::Sniff);
}

/// The same seed gives the same inputs: a crash found once is found again.
#[test]
fn runs_repeat() {
    use rand::SeedableRng;
    for target in Target::ALL {
        let inputs = |seed| {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            (0..50)
                .map(|_| target.generate(&mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(inputs(7), inputs(7), "{}", target.name());
        assert_ne!(inputs(7), inputs(8), "{}", target.name());
    }
}

/// The seeds are what mutations start from: configs and mapping files that the library
/// takes as they are, so most mutations land one step from a valid input.
#[test]
fn config_and_mapping_seeds_are_valid() {
    for (i, text) in s3imports_fuzz::seeds::CONFIG.iter().enumerate() {
        if let Err(e) = s3imports::model::config::ImportConfig::from_json(text) {
            panic!("config seed {i}: {e}");
        }
    }
    for (i, text) in s3imports_fuzz::seeds::MANIFEST.iter().enumerate() {
        if let Err(e) = s3imports::rows::mapping::parse_manifest(text) {
            panic!("mapping seed {i}: {e}");
        }
    }
}
