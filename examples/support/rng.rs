//! splitmix64: a tiny, good-enough seeded generator for the soak examples (no dependency needed
//! for this), so that `--seed N` replays a run's program mix. Included by `soak.rs` and
//! `net_soak.rs` with `#[path]`.

/// A splitmix64 generator.
#[derive(Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A new generator for a task, derived from this one's stream.
    pub fn fork(&mut self) -> Rng {
        Rng(self.next())
    }
}
