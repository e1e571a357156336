//! Medians and per-repetition ratios for the `compare` table.

/// The median of `values` (the mean of the two middle ones for an even count), or `None`
/// when there are none.
///
/// # Examples
///
/// ```
/// assert_eq!(magpie_benches::stats::median(&[3.0, 1.0, 2.0]), Some(2.0));
/// assert_eq!(magpie_benches::stats::median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
/// assert_eq!(magpie_benches::stats::median(&[]), None);
/// ```
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// The median over repetitions of `numerator[i] / denominator[i]`: each ratio is taken
/// within one repetition, so noise that hit that whole repetition cancels out.
///
/// # Panics
///
/// If the slices differ in length.
///
/// # Examples
///
/// ```
/// use magpie_benches::stats::median_ratio;
/// // The machine slowed down in the second repetition; the ratio is still 0.5.
/// assert_eq!(median_ratio(&[1.0, 10.0, 1.0], &[2.0, 20.0, 2.0]), Some(0.5));
/// ```
pub fn median_ratio(numerator: &[f64], denominator: &[f64]) -> Option<f64> {
    assert_eq!(
        numerator.len(),
        denominator.len(),
        "median_ratio: one sample per repetition on each side"
    );
    let ratios: Vec<f64> = numerator
        .iter()
        .zip(denominator)
        .map(|(n, d)| n / d)
        .collect();
    median(&ratios)
}

/// The element-wise minimum of two series (the best peer in each repetition).
///
/// # Panics
///
/// If the slices differ in length.
pub fn pairwise_min(a: &[f64], b: &[f64]) -> Vec<f64> {
    assert_eq!(
        a.len(),
        b.len(),
        "pairwise_min: series of different lengths"
    );
    a.iter().zip(b).map(|(x, y)| x.min(*y)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[5.0]), Some(5.0));
        assert_eq!(median(&[9.0, 1.0, 5.0, 7.0, 3.0]), Some(5.0));
        assert_eq!(median(&[1.0, 3.0]), Some(2.0));
    }

    #[test]
    fn ratio_is_taken_per_repetition() {
        // Medians alone would give 2/3; per repetition the ratio is 2 every time but once.
        let magpie = [2.0, 4.0, 100.0];
        let tokio = [1.0, 2.0, 300.0];
        assert_eq!(median_ratio(&magpie, &tokio), Some(2.0));
    }

    #[test]
    fn best_peer_is_the_faster_in_each_repetition() {
        assert_eq!(pairwise_min(&[1.0, 5.0], &[2.0, 3.0]), vec![1.0, 3.0]);
    }

    #[test]
    #[should_panic(expected = "one sample per repetition")]
    fn ratio_of_unequal_series_panics() {
        median_ratio(&[1.0], &[1.0, 2.0]);
    }
}
