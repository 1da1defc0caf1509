//! The operator's use cases over the ports: preview, dry run and key generation.

pub mod dry_run;
pub mod keygen;
pub mod preview;
