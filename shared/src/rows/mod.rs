//! A row's way from the reader to a write: the mapping to typed attributes, the write
//! it becomes, and the failed-rows report.

pub mod mapping;
pub mod report;
pub mod sink;
