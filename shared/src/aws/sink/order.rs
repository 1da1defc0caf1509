//! What a file written out of order (its chunks at once) keeps on each user item, so
//! that the later row still wins attribute by attribute.

/// Where a file written out of order keeps, on each user item: the file that last
/// wrote it, the latest row of it, each attribute's row, and a version bumped on each
/// write.
pub const ORDER_FILE: &str = "s3i_src";
pub const ORDER_ROW: &str = "s3i_src_row";
pub const ORDER_VERSION: &str = "s3i_src_version";

/// The attribute holding the row that last set `name` (a file written out of order).
pub fn row_attribute(name: &str) -> String {
    format!("s3i_row:{name}")
}
