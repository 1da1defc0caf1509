//! Fuzzing on stable Rust: the parsers that take outside input (the CSV and JSON
//! readers, configs, mapping files, file sniffing) run on generated inputs under
//! `catch_unwind`, and any panic is caught, counted and kept with its input.
//!
//! Inputs come from a seeded RNG, so a run repeats exactly: random bytes, random
//! strings of each format's tokens, generated tables and JSON files, and mutations of
//! valid samples (see [`mutate`] and [`seeds`]). Besides panics inside the library, a
//! few invariants are checked and reported the same way, their messages starting
//! `invariant:` (a reader ends; a valid config or mapping reads back from its own JSON).
//!
//! `make fuzz` runs every target a million times in release; `cargo test -p
//! s3imports-fuzz` a few thousand.

pub mod mutate;
pub mod seeds;
pub mod targets;

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;

/// What is fuzzed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `open_reader` on CSV, every row read and each cell parsed as a value.
    Csv,
    /// `open_reader` on NDJSON or a JSON array, likewise.
    Json,
    /// `ImportConfig::from_json` and `for_preview`; a valid config's file pattern,
    /// schedule and JSON round trip.
    Config,
    /// `mapping::parse_manifest`; a mapping that parses is checked for every kind and
    /// maps a sample file.
    Manifest,
    /// `pgp::looks_like_pgp`, `sniff::binary_kind` and `sniff::describe`.
    Sniff,
}

impl Target {
    pub const ALL: [Target; 5] = [
        Target::Csv,
        Target::Json,
        Target::Config,
        Target::Manifest,
        Target::Sniff,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Json => "json",
            Self::Config => "config",
            Self::Manifest => "manifest",
            Self::Sniff => "sniff",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    /// A new input for this target.
    pub fn generate(self, rng: &mut StdRng) -> Vec<u8> {
        match self {
            Self::Csv => targets::generate_rows(rng, false),
            Self::Json => targets::generate_rows(rng, true),
            Self::Config => targets::generate_config(rng),
            Self::Manifest => targets::generate_manifest(rng),
            Self::Sniff => targets::generate_sniff(rng),
        }
    }

    /// Runs the library on `input`; a bug panics.
    pub fn exec(self, input: &[u8]) {
        match self {
            Self::Csv => targets::exec_rows(false, input),
            Self::Json => targets::exec_rows(true, input),
            Self::Config => targets::exec_config(input),
            Self::Manifest => targets::exec_manifest(input),
            Self::Sniff => targets::exec_sniff(input),
        }
    }
}

/// An input that panicked.
#[derive(Debug, Clone)]
pub struct Crash {
    /// The iteration that generated it (with the seed, it regenerates).
    pub iteration: u64,
    pub input: Vec<u8>,
    /// The panic's location and message.
    pub message: String,
}

/// One target's run.
#[derive(Debug, Clone)]
pub struct Report {
    pub target: Target,
    pub inputs: u64,
    pub panics: u64,
    /// The first [`KEPT_CRASHES`] panics.
    pub crashes: Vec<Crash>,
    pub elapsed: Duration,
}

impl Report {
    pub fn inputs_per_second(&self) -> f64 {
        self.inputs as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// How many crashing inputs a run keeps (it counts them all).
pub const KEPT_CRASHES: usize = 20;

/// Runs `target` on `iterations` inputs from `seed`. Each target draws from its own
/// stream, so a target's inputs are the same alone or in `--target all`.
pub fn run(target: Target, iterations: u64, seed: u64) -> Report {
    let index = Target::ALL.iter().position(|t| *t == target).unwrap_or(0) as u64;
    let mut rng = StdRng::seed_from_u64(seed ^ (index + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut report = Report {
        target,
        inputs: 0,
        panics: 0,
        crashes: Vec::new(),
        elapsed: Duration::ZERO,
    };
    let start = Instant::now();
    for iteration in 0..iterations {
        let input = target.generate(&mut rng);
        report.inputs += 1;
        if let Err(message) = catch(target, &input) {
            report.panics += 1;
            if report.crashes.len() < KEPT_CRASHES {
                report.crashes.push(Crash {
                    iteration,
                    input,
                    message,
                });
            }
        }
    }
    report.elapsed = start.elapsed();
    report
}

/// Runs `target` on `input`, catching a panic: `Err` holds its location and message.
pub fn catch(target: Target, input: &[u8]) -> Result<(), String> {
    install_hook();
    QUIET.with(|q| q.set(true));
    let result = panic::catch_unwind(AssertUnwindSafe(|| target.exec(input)));
    QUIET.with(|q| q.set(false));
    result.map_err(|payload| {
        LAST_PANIC
            .with(|p| p.borrow_mut().take())
            .unwrap_or_else(|| {
                payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "panic without a message".into())
            })
    })
}

thread_local! {
    /// This thread is running an input: its panics are recorded, not printed.
    static QUIET: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// A panic hook that records panics of threads running an input and leaves every other
/// panic to the hook before it (test failures still print).
fn install_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if QUIET.with(Cell::get) {
                LAST_PANIC.with(|p| *p.borrow_mut() = Some(info.to_string()));
            } else {
                previous(info);
            }
        }));
    });
}
