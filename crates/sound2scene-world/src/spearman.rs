//! Spearman's rank correlation with ties given their average rank.

/// Ranks `1..=n` of `values`, ties sharing the mean of the ranks they span (so `[10, 20, 20,
/// 30]` ranks `[1, 2.5, 2.5, 4]`). NaN values are ranked after every number, and tie only with
/// each other.
pub fn average_ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && same(values[order[end]], values[order[start]]) {
            end += 1;
        }
        // Positions start..end hold ranks start+1 ..= end; their mean:
        let rank = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = rank;
        }
        start = end;
    }
    ranks
}

/// Equal for ranking: numerically equal (so `-0.0` ties `0.0`), or both NaN.
fn same(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

/// Spearman's rank correlation of paired samples `x` and `y`: the Pearson correlation of their
/// [`average_ranks`], in `[-1, 1]` (what `scipy.stats.spearmanr` computes).
///
/// `None` when the lengths differ, there are fewer than two pairs, or either side is constant
/// (its ranks have no variance, so the correlation is undefined).
pub fn spearman(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() != y.len() || x.len() < 2 {
        return None;
    }
    let rx = average_ranks(x);
    let ry = average_ranks(y);
    let n = rx.len() as f64;
    let mean = (n + 1.0) / 2.0;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in rx.iter().zip(&ry) {
        let (da, db) = (a - mean, b - mean);
        sxy += da * db;
        sxx += da * da;
        syy += db * db;
    }
    if sxx <= 0.0 || syy <= 0.0 {
        return None;
    }
    Some((sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0))
}
