//! Bytes to rows: PGP, compression sniffing, the CSV and JSON readers, content
//! fingerprints and the limits that bound them. Leaves: they import only `error`.

pub mod fingerprint;
pub mod limits;
pub mod mime;
pub mod pgp;
pub mod reader;
pub mod sniff;
