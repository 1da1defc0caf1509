//! The import's data and its rules, with no I/O: the config, the ledger's records and
//! pages, checkpoints, segments, file naming, schedules, the mapping spec and values.

pub mod alert;
pub mod checkpoint;
pub mod config;
pub mod ledger;
pub mod mapping_spec;
pub mod naming;
pub mod pages;
pub mod post_process;
pub mod schedule;
pub mod segment;
pub mod status;
pub mod values;
