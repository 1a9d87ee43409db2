//! Cross-modal retrieval recall@K by cosine similarity.
//!
//! Queries `[N, dim]` and keys `[N, dim]` are paired by row (query `i` belongs with key `i`).
//! Both sets are L2-normalised per row, every query ranks all `N` keys by cosine similarity, and
//! recall@K is the fraction of queries whose own key is among the first `K`. Audio-to-image and
//! image-to-audio retrieval are the same call with the arguments swapped.
//!
//! Ties are resolved against the true key: another key with a similarity equal to the true
//! key's is ranked ahead of it, so collapsed (all-identical) embeddings score recall `K / N`
//! at best rather than a perfect `1`.

use ndarray::{Array2, ArrayView2, Axis, s};

use super::{check_finite, check_non_empty};
use crate::error::TrainError;

/// Floor on a row's L2 norm during normalisation (as in `torch.nn.functional.normalize` and
/// [`sound2scene_models::L2_NORMALIZE_EPS`]):
/// an all-zero row stays zero and has similarity `0` to every key.
const NORM_EPS: f64 = sound2scene_models::L2_NORMALIZE_EPS;

/// Queries scored per matrix product; bounds the similarity block to `QUERY_BLOCK x N` values.
const QUERY_BLOCK: usize = 256;

/// Recall at the cut-offs reported in the paper; each is a fraction in `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecallAtK {
    /// Fraction of queries whose key is ranked first.
    pub r1: f64,
    /// Fraction of queries whose key is in the top 5.
    pub r5: f64,
    /// Fraction of queries whose key is in the top 10.
    pub r10: f64,
}

/// Recall@1/5/10 of retrieving `keys` `[N, dim]` from `queries` `[N, dim]` (row `i` of each is a
/// pair). With `N <= K` the recall@K is trivially `1`.
pub fn retrieval_recall(
    queries: ArrayView2<'_, f64>,
    keys: ArrayView2<'_, f64>,
) -> Result<RecallAtK, TrainError> {
    let recalls = recall_at_k(queries, keys, &[1, 5, 10])?;
    Ok(RecallAtK {
        r1: recalls[0],
        r5: recalls[1],
        r10: recalls[2],
    })
}

/// Recall at each cut-off in `ks` (each `>= 1`), in the order given, for queries `[N, dim]` and
/// keys `[N, dim]` paired by row. Each value is a fraction in `[0, 1]`.
pub fn recall_at_k(
    queries: ArrayView2<'_, f64>,
    keys: ArrayView2<'_, f64>,
    ks: &[usize],
) -> Result<Vec<f64>, TrainError> {
    let ranks = true_key_ranks(queries, keys)?;
    let n = ranks.len() as f64;
    ks.iter()
        .map(|&k| {
            if k == 0 {
                return Err(TrainError::InvalidK { k });
            }
            Ok(ranks.iter().filter(|&&rank| rank < k).count() as f64 / n)
        })
        .collect()
}

/// 0-based rank of each query's own key: the number of other keys at least as similar.
fn true_key_ranks(
    queries: ArrayView2<'_, f64>,
    keys: ArrayView2<'_, f64>,
) -> Result<Vec<usize>, TrainError> {
    const CONTEXT: &str = "retrieval recall";
    if queries.dim() != keys.dim() {
        return Err(TrainError::ShapeMismatch {
            context: CONTEXT,
            left_name: "queries",
            left: queries.shape().to_vec(),
            right_name: "keys",
            right: keys.shape().to_vec(),
        });
    }
    check_non_empty(CONTEXT, "queries", queries)?;
    check_finite(CONTEXT, "queries", queries)?;
    check_finite(CONTEXT, "keys", keys)?;
    let queries = l2_normalize_rows(queries);
    let keys_t = l2_normalize_rows(keys).reversed_axes();
    let n = queries.nrows();
    let mut ranks = Vec::with_capacity(n);
    for start in (0..n).step_by(QUERY_BLOCK) {
        let end = (start + QUERY_BLOCK).min(n);
        let similarity = queries.slice(s![start..end, ..]).dot(&keys_t);
        for (offset, row) in similarity.outer_iter().enumerate() {
            let own = start + offset;
            let own_similarity = row[own];
            let ahead = row
                .iter()
                .enumerate()
                .filter(|&(j, &sim)| j != own && sim >= own_similarity)
                .count();
            ranks.push(ahead);
        }
    }
    Ok(ranks)
}

/// Divides each row of `x` `[rows, dim]` by `max(||row||_2, NORM_EPS)`.
///
/// The same rule as the workspace's tensor [`sound2scene_models::normalize`] (PyTorch
/// `F.normalize`), kept here because this metric runs on the host in `f64` `ndarray`s: going
/// through a Burn tensor would round the features to `f32` and copy them twice.
fn l2_normalize_rows(x: ArrayView2<'_, f64>) -> Array2<f64> {
    let norms = x
        .map_axis(Axis(1), |row| row.dot(&row).sqrt().max(NORM_EPS))
        .insert_axis(Axis(1));
    &x / &norms
}
