//! Helpers shared by the unit tests.

/// A repeatable stream of pseudo-random numbers for the property tests.
pub fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}
