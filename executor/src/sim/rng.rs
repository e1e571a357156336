//! The simulation's pseudo-random numbers: SplitMix64, seeded by the user's seed. Small, fast
//! and good enough to spread schedules; what matters here is that one seed gives one sequence
//! on every machine and every run.

use std::cell::RefCell;

/// A SplitMix64 generator.
#[derive(Debug, Clone)]
pub(crate) struct Rng {
    state: u64,
}

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`), by multiply-and-shift: no division, and a bias of at
    /// most `n / 2^64`, far below anything a schedule could show.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        debug_assert!(n > 0);
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

thread_local! {
    /// The running simulation's generator, on its thread.
    static CURRENT: RefCell<Option<Rng>> = const { RefCell::new(None) };
}

/// Installs `rng` as this thread's simulation generator until the guard drops.
pub(crate) fn install(rng: Rng) -> Installed {
    CURRENT.with(|current| {
        let previous = current.borrow_mut().replace(rng);
        assert!(
            previous.is_none(),
            "a magpie::sim run is already in progress on this thread: runs do not nest"
        );
    });
    Installed(())
}

/// Removes the thread's generator when dropped.
pub(crate) struct Installed(());

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = CURRENT.try_with(|current| current.borrow_mut().take());
    }
}

/// Runs `f` with the simulation's generator; `None` outside a simulation.
pub(crate) fn with<R>(f: impl FnOnce(&mut Rng) -> R) -> Option<R> {
    CURRENT
        .try_with(|current| current.borrow_mut().as_mut().map(f))
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn one_seed_gives_one_sequence_and_seeds_differ() {
        let a: Vec<u64> = (0..8)
            .scan(Rng::new(7), |r, _| Some(r.next_u64()))
            .collect();
        let b: Vec<u64> = (0..8)
            .scan(Rng::new(7), |r, _| Some(r.next_u64()))
            .collect();
        let c: Vec<u64> = (0..8)
            .scan(Rng::new(8), |r, _| Some(r.next_u64()))
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn below_stays_in_range_and_reaches_every_value() {
        let mut rng = Rng::new(1);
        let mut seen = [0u32; 5];
        for _ in 0..10_000 {
            seen[rng.below(5)] += 1;
        }
        // 2 000 expected each; a fair generator lands within a few percent.
        assert!(
            seen.iter().all(|&n| (1_700..2_300).contains(&n)),
            "{seen:?}"
        );
    }
}
