//! The k-nearest-neighbour index of IC-GAN: for every instance, the instances closest to it in
//! the feature space of f_V. A real image for instance `i` is drawn from `i`'s neighbourhood.
//!
//! IC-GAN (`data_utils/datasets_common.py`, `_obtain_nns`) searches exact L2 neighbours of the
//! L2-normalized features with faiss, which orders them as cosine similarity does. Here the
//! search is exact cosine similarity by chunked matrix products on a Burn device (a few
//! seconds for tens of thousands of instances on a CPU) followed by a partial sort per row.
//!
//! The neighbourhood of an instance includes the instance itself, in first place, as in the
//! IC-GAN paper's definition of `A_i`; the official code searches `k + 1` neighbours and drops
//! the instance. With the default `k = 50` the two differ by one image in fifty-one; keeping
//! the instance lets a data set with fewer than `k + 1` images (or a single one) train.

use burn::tensor::{Device, Tensor, TensorData};

use crate::error::TrainError;

/// Rows of the similarity matrix computed at once (`CHUNK_ROWS · n` floats in memory).
pub const CHUNK_ROWS: usize = 512;

/// For each of `n` instances, the indices of its `k` nearest instances by cosine similarity,
/// itself first, then by decreasing similarity (ties by increasing index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnnIndex {
    k: usize,
    /// `[n, k]` row-major.
    neighbours: Vec<u32>,
}

impl KnnIndex {
    /// Neighbourhood size (the requested `k`, at most the number of instances).
    pub fn k(&self) -> usize {
        self.k
    }

    /// Number of instances.
    pub fn len(&self) -> usize {
        self.neighbours.len() / self.k.max(1)
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.neighbours.is_empty()
    }

    /// The neighbourhood of instance `i`, `[k]` indices (itself first); empty when `i` is out
    /// of range.
    pub fn neighbours(&self, i: usize) -> &[u32] {
        self.neighbours
            .get(i * self.k..(i + 1) * self.k)
            .unwrap_or(&[])
    }
}

/// The exact cosine `k`-nearest neighbours of every row of `features` (`[n, dim]` row-major),
/// computed on `device`. `k` is capped at `n`. Rows of zeros are similar to nothing (cosine 0).
///
/// # Errors
/// [`TrainError::Config`] when `k` is 0, `dim` is 0 or `features` is empty or not a multiple
/// of `dim`; [`TrainError::NonFinite`] for a NaN or infinite feature.
pub fn knn_cosine(
    features: &[f32],
    dim: usize,
    k: usize,
    device: &Device,
) -> Result<KnnIndex, TrainError> {
    if k == 0 || dim == 0 || features.is_empty() || !features.len().is_multiple_of(dim) {
        return Err(TrainError::config(format!(
            "k-NN needs k >= 1 and a non-empty [n, dim] feature matrix, got k = {k}, dim = \
             {dim} and {} values",
            features.len()
        )));
    }
    if let Some(i) = features.iter().position(|v| !v.is_finite()) {
        return Err(TrainError::NonFinite {
            context: "k-NN",
            name: "features",
            index: vec![i / dim, i % dim],
        });
    }
    let n = features.len() / dim;
    let k = k.min(n);
    let unit = normalized_rows(features, dim);
    let all = Tensor::<2>::from_data(TensorData::new(unit, [n, dim]), device); // [n, dim]
    let all_t = all.clone().transpose(); // [dim, n]
    let mut neighbours = Vec::with_capacity(n * k);
    let mut order: Vec<u32> = Vec::with_capacity(n);
    for start in (0..n).step_by(CHUNK_ROWS) {
        let end = (start + CHUNK_ROWS).min(n);
        let sims = all
            .clone()
            .slice([start..end, 0..dim])
            .matmul(all_t.clone()); // [rows, n]
        let sims: Vec<f32> = sims.try_into_vec_as::<f32>().map_err(|e| {
            TrainError::config_caused(format!("cannot read the similarities: {e}"), e)
        })?;
        for (r, row) in sims.chunks_exact(n).enumerate() {
            let i = start + r;
            let better = |a: &u32, b: &u32| {
                let (a, b) = (*a as usize, *b as usize);
                // The instance itself first, then by similarity, then by index.
                (b == i)
                    .cmp(&(a == i))
                    .then(row[b].total_cmp(&row[a]))
                    .then(a.cmp(&b))
            };
            order.clear();
            order.extend(0..n as u32);
            if k < n {
                order.select_nth_unstable_by(k - 1, better);
                order.truncate(k);
            }
            order.sort_unstable_by(better);
            neighbours.extend_from_slice(&order);
        }
    }
    Ok(KnnIndex { k, neighbours })
}

/// Rows divided by their L2 norm (rows of zeros stay zero).
fn normalized_rows(features: &[f32], dim: usize) -> Vec<f32> {
    features
        .chunks_exact(dim)
        .flat_map(|row| {
            let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
            let scale = if norm > 0.0 { 1.0 / norm } else { 0.0 };
            row.iter().map(move |v| v * scale)
        })
        .collect()
}
