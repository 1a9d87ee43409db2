//! Evaluation metrics of Sound2Scene, computed in `f64` on the CPU.
//!
//! - [`fid`]: Fréchet Inception Distance (the pytorch-fid formula).
//! - [`inception`]: Inception Score (as BigGAN-PyTorch computes it).
//! - [`retrieval`]: cross-modal retrieval recall@K by cosine similarity.
//!
//! Inputs are `ndarray` views with one sample per row; `.npy` files (e.g. features dumped by a
//! Python pipeline) load with [`read_npy_f64`].

pub mod fid;
pub mod inception;
pub mod retrieval;

use std::path::Path;

use ndarray::{Array, ArrayView2, Dimension};
use ndarray_npy::{ReadNpyError, read_npy};

use crate::error::TrainError;

pub use fid::{FeatureStatistics, fid_from_features, frechet_distance};
pub use inception::{DEFAULT_IS_SPLITS, InceptionScore, inception_score};
pub use retrieval::{RecallAtK, recall_at_k, retrieval_recall};

/// Reads a little- or big-endian `float32` or `float64` `.npy` file of dimensionality `D`
/// (e.g. `Ix2` for `[N, dim]` features) into an `f64` array.
///
/// Errors name the file: missing file, bad header, another dtype, or another number of axes.
pub fn read_npy_f64<D: Dimension>(path: impl AsRef<Path>) -> Result<Array<f64, D>, TrainError> {
    let path = path.as_ref();
    let wrap = |source| TrainError::Npy {
        path: path.to_path_buf(),
        source,
    };
    match read_npy::<_, Array<f64, D>>(path) {
        Ok(array) => Ok(array),
        Err(ReadNpyError::WrongDescriptor(_)) => read_npy::<_, Array<f32, D>>(path)
            .map(|array| array.mapv(f64::from))
            .map_err(wrap),
        Err(err) => Err(wrap(err)),
    }
}

/// Rejects a `[rows, cols]` input with a NaN or infinite element, naming its position.
fn check_finite(
    context: &'static str,
    name: &'static str,
    x: ArrayView2<'_, f64>,
) -> Result<(), TrainError> {
    match x.indexed_iter().find(|(_, v)| !v.is_finite()) {
        Some(((row, col), _)) => Err(TrainError::NonFinite {
            context,
            name,
            index: vec![row, col],
        }),
        None => Ok(()),
    }
}

/// Rejects a `[rows, cols]` input with no rows or no columns.
fn check_non_empty(
    context: &'static str,
    name: &'static str,
    x: ArrayView2<'_, f64>,
) -> Result<(), TrainError> {
    if x.is_empty() {
        return Err(TrainError::Empty {
            context,
            name,
            shape: x.shape().to_vec(),
        });
    }
    Ok(())
}
