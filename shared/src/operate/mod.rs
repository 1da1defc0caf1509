//! The operator's use cases over the ports: preview, dry run, the history and key
//! generation.

pub mod dry_run;
pub mod history;
pub mod keygen;
pub mod preview;
