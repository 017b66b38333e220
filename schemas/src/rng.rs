//! SplitMix64 (Steele, Lea & Flood 2014, as in Java's `SplittableRandom`), written once.
//!
//! It is part of the contracts because numbers that outlive a process depend on it: the FFHQ
//! train/test split recorded in the manifest (`split_rule`), the loader's shuffle and flip
//! decisions restored from a checkpoint's data cursor, and the per-chain Langevin noise streams
//! of `ncsn sample --seed`. Changing a constant here changes all of them.

/// The increment of the SplitMix64 state: 2⁶⁴/φ, odd.
pub const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function (Stafford's "Mix13"): a bijection of `u64` whose output bits
/// each depend on every input bit. [`SplitMix64::next_u64`] is `mix64(state += GOLDEN_GAMMA)`.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The first output of a SplitMix64 seeded with `seed`: one call decorrelates a word (seed,
/// epoch, position) into a well-mixed one.
pub fn splitmix64(seed: u64) -> u64 {
    SplitMix64::new(seed).next_u64()
}

/// The generator: a 64-bit counter stepped by [`GOLDEN_GAMMA`], each state mixed by [`mix64`].
/// Tiny on purpose, so anyone can reimplement it to check a split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix64(self.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_outputs() {
        // The reference implementation (Vigna's splitmix64.c) seeded with 0.
        let mut g = SplitMix64::new(0);
        assert_eq!(g.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(g.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(g.next_u64(), 0x06c4_5d18_8009_454f);
    }

    #[test]
    fn one_step_is_the_first_output_and_mix_is_its_output_function() {
        assert_eq!(splitmix64(0), 0xe220_a839_7b1d_cdaf);
        assert_eq!(splitmix64(GOLDEN_GAMMA), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(mix64(GOLDEN_GAMMA.wrapping_mul(3)), 0x06c4_5d18_8009_454f);
        assert_eq!(mix64(0), 0);
    }
}
