//! Fréchet Inception Distance, with the formula of pytorch-fid.
//!
//! `FID = ||mu_a - mu_b||^2 + tr(S_a) + tr(S_b) - 2 tr(sqrtm(S_a S_b))`, where `mu` and `S` are
//! the mean and unbiased covariance of each feature set (`[N, dim]`, one sample per row; `dim` is
//! 2048 for Inception-v3 pool features). pytorch-fid takes `scipy.linalg.sqrtm` of the
//! non-symmetric product `S_a S_b`; here `tr(sqrtm(S_a S_b))` is computed as
//! `sum_i sqrt(lambda_i)` over the eigenvalues of the symmetric positive semi-definite matrix
//! `sqrt(S_a) S_b sqrt(S_a)`, which has the same eigenvalues as `S_a S_b` and needs only
//! symmetric eigendecompositions.

use nalgebra::{DMatrix, SymmetricEigen};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};

use super::{check_finite, check_non_empty};
use crate::error::TrainError;

/// Iteration budget of the symmetric eigensolver, per row of the matrix.
///
/// Implicit symmetric QR needs a few iterations per eigenvalue; the budget only exists so that a
/// pathological input ends in [`TrainError::EigenNotConverged`] instead of a hang.
const EIGEN_ITERATIONS_PER_DIM: usize = 1000;

/// Mean `[dim]` and unbiased covariance `[dim, dim]` of a feature set: the sufficient statistics
/// of FID (what pytorch-fid caches as `mu` and `sigma`).
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureStatistics {
    mean: Array1<f64>,
    covariance: Array2<f64>,
}

impl FeatureStatistics {
    /// Mean and covariance of `features` `[N, dim]` (one sample per row), like
    /// `np.mean(x, axis=0)` and `np.cov(x, rowvar=False)` (normalised by `N - 1`).
    ///
    /// Needs `N >= 2` rows, `dim >= 1` and finite values.
    pub fn from_features(features: ArrayView2<'_, f64>) -> Result<Self, TrainError> {
        const CONTEXT: &str = "feature statistics";
        check_non_empty(CONTEXT, "features", features)?;
        check_finite(CONTEXT, "features", features)?;
        let n = features.nrows();
        if n < 2 {
            return Err(TrainError::TooFewSamples {
                context: "unbiased covariance",
                required: 2,
                got: n,
            });
        }
        let mean = features
            .mean_axis(Axis(0))
            .ok_or(TrainError::TooFewSamples {
                context: "feature mean",
                required: 1,
                got: 0,
            })?;
        let centered = &features - &mean;
        let covariance = centered.t().dot(&centered) / (n - 1) as f64;
        Ok(Self { mean, covariance })
    }

    /// Statistics from a precomputed mean `[dim]` and covariance `[dim, dim]` (e.g. a
    /// pytorch-fid `.npz` of a reference set). The covariance should be symmetric positive
    /// semi-definite; [`frechet_distance`] uses its symmetric part.
    pub fn from_parts(mean: Array1<f64>, covariance: Array2<f64>) -> Result<Self, TrainError> {
        const CONTEXT: &str = "feature statistics";
        let dim = mean.len();
        if covariance.dim() != (dim, dim) {
            return Err(TrainError::ShapeMismatch {
                context: CONTEXT,
                left_name: "mean",
                left: vec![dim],
                right_name: "covariance",
                right: covariance.shape().to_vec(),
            });
        }
        check_non_empty(CONTEXT, "covariance", covariance.view())?;
        check_finite(CONTEXT, "covariance", covariance.view())?;
        if let Some(i) = mean.iter().position(|v| !v.is_finite()) {
            return Err(TrainError::NonFinite {
                context: CONTEXT,
                name: "mean",
                index: vec![i],
            });
        }
        Ok(Self { mean, covariance })
    }

    /// Feature mean, `[dim]`.
    pub fn mean(&self) -> ArrayView1<'_, f64> {
        self.mean.view()
    }

    /// Unbiased feature covariance, `[dim, dim]`.
    pub fn covariance(&self) -> ArrayView2<'_, f64> {
        self.covariance.view()
    }

    /// Feature dimension `dim`.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }
}

/// Fréchet distance between two Gaussians given by their statistics (same `dim`), in squared
/// feature units. Non-negative up to rounding (identical statistics give about `0`, possibly a
/// tiny negative value, as in pytorch-fid).
pub fn frechet_distance(a: &FeatureStatistics, b: &FeatureStatistics) -> Result<f64, TrainError> {
    const CONTEXT: &str = "frechet distance";
    if a.dim() != b.dim() {
        return Err(TrainError::ShapeMismatch {
            context: CONTEXT,
            left_name: "covariance a",
            left: a.covariance.shape().to_vec(),
            right_name: "covariance b",
            right: b.covariance.shape().to_vec(),
        });
    }
    let mean_term: f64 = (&a.mean - &b.mean).mapv(|d| d * d).sum();
    let s_a = symmetric_part(a.covariance.view());
    let s_b = symmetric_part(b.covariance.view());
    let sqrt_s_a = psd_sqrt(s_a.clone())?;
    let product = &sqrt_s_a * &s_b * &sqrt_s_a;
    let tr_covmean: f64 = symmetric_eigenvalues(symmetrize(product))?
        .iter()
        .map(|&lambda| lambda.max(0.0).sqrt())
        .sum();
    Ok(mean_term + s_a.trace() + s_b.trace() - 2.0 * tr_covmean)
}

/// FID between two feature sets `[N_a, dim]` and `[N_b, dim]` (one sample per row, `N >= 2`):
/// [`FeatureStatistics::from_features`] of each, then [`frechet_distance`].
pub fn fid_from_features(
    a: ArrayView2<'_, f64>,
    b: ArrayView2<'_, f64>,
) -> Result<f64, TrainError> {
    if a.ncols() != b.ncols() {
        return Err(TrainError::ShapeMismatch {
            context: "fid",
            left_name: "features a",
            left: a.shape().to_vec(),
            right_name: "features b",
            right: b.shape().to_vec(),
        });
    }
    frechet_distance(
        &FeatureStatistics::from_features(a)?,
        &FeatureStatistics::from_features(b)?,
    )
}

/// `(m + m^T) / 2` of a square `ndarray` matrix, as an `nalgebra` matrix.
fn symmetric_part(m: ArrayView2<'_, f64>) -> DMatrix<f64> {
    let n = m.nrows();
    DMatrix::from_fn(n, n, |i, j| 0.5 * (m[[i, j]] + m[[j, i]]))
}

/// `(m + m^T) / 2`, removing the rounding asymmetry of a product of symmetric matrices.
fn symmetrize(m: DMatrix<f64>) -> DMatrix<f64> {
    (&m + m.transpose()) * 0.5
}

/// Symmetric decomposition of a symmetric matrix, with a bounded iteration count.
fn eigen(m: DMatrix<f64>) -> Result<SymmetricEigen<f64, nalgebra::Dyn>, TrainError> {
    let dim = m.nrows();
    SymmetricEigen::try_new(m, f64::EPSILON, dim.max(1) * EIGEN_ITERATIONS_PER_DIM).ok_or(
        TrainError::EigenNotConverged {
            context: "frechet distance",
            dim,
        },
    )
}

/// Eigenvalues of a symmetric matrix.
fn symmetric_eigenvalues(m: DMatrix<f64>) -> Result<nalgebra::DVector<f64>, TrainError> {
    Ok(eigen(m)?.eigenvalues)
}

/// Principal square root `V diag(sqrt(max(lambda, 0))) V^T` of a symmetric PSD matrix; negative
/// eigenvalues (rounding noise of a singular covariance) are clamped to `0`.
fn psd_sqrt(m: DMatrix<f64>) -> Result<DMatrix<f64>, TrainError> {
    let eig = eigen(m)?;
    let roots = eig.eigenvalues.map(|lambda| lambda.max(0.0).sqrt());
    let mut scaled = eig.eigenvectors.clone();
    for (mut column, root) in scaled.column_iter_mut().zip(roots.iter()) {
        column *= *root;
    }
    Ok(scaled * eig.eigenvectors.transpose())
}
