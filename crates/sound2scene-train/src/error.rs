//! Error type shared by the loss and metric functions of this crate.

use std::path::PathBuf;

/// Everything that can go wrong when computing a training loss or an evaluation metric.
///
/// Every variant is caused by the caller's input (shapes, sample counts, arguments or files);
/// the functions of this crate return it instead of panicking.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Two inputs that must agree in shape do not.
    #[error(
        "shape mismatch in {context}: {left_name} has shape {left:?}, {right_name} has shape {right:?}"
    )]
    ShapeMismatch {
        /// The function or quantity whose inputs disagree.
        context: &'static str,
        /// Name of the first input.
        left_name: &'static str,
        /// Shape of the first input.
        left: Vec<usize>,
        /// Name of the second input.
        right_name: &'static str,
        /// Shape of the second input.
        right: Vec<usize>,
    },

    /// An input has no rows or no columns.
    #[error("{context}: {name} is empty (shape {shape:?})")]
    Empty {
        /// The function whose input is empty.
        context: &'static str,
        /// Name of the empty input.
        name: &'static str,
        /// Its shape.
        shape: Vec<usize>,
    },

    /// Too few samples to estimate a statistic (e.g. an unbiased covariance needs 2 rows).
    #[error("{context}: needs at least {required} samples, got {got}")]
    TooFewSamples {
        /// The statistic being estimated.
        context: &'static str,
        /// Minimum number of samples (rows).
        required: usize,
        /// Number of samples given.
        got: usize,
    },

    /// The Inception Score split count is zero or exceeds the number of samples.
    #[error(
        "inception score: {splits} splits is invalid for {samples} samples (need 1 <= splits <= samples)"
    )]
    InvalidSplits {
        /// Requested number of splits.
        splits: usize,
        /// Number of samples (rows of the logits).
        samples: usize,
    },

    /// A recall cut-off `K` of zero was requested.
    #[error("retrieval: recall@K needs K >= 1, got K = {k}")]
    InvalidK {
        /// The rejected cut-off.
        k: usize,
    },

    /// An input contains NaN or an infinity.
    #[error("{context}: {name} contains a non-finite value at index {index:?}")]
    NonFinite {
        /// The function whose input is not finite.
        context: &'static str,
        /// Name of the input.
        name: &'static str,
        /// Multi-index of the first non-finite element.
        index: Vec<usize>,
    },

    /// The symmetric eigensolver did not converge within its iteration budget.
    #[error("{context}: symmetric eigendecomposition of a {dim}x{dim} matrix did not converge")]
    EigenNotConverged {
        /// The quantity being computed.
        context: &'static str,
        /// Side of the square matrix.
        dim: usize,
    },

    /// A `.npy` file could not be read as a float array of the expected dimensionality.
    #[error("cannot read npy file {}: {source}", path.display())]
    Npy {
        /// The file that failed.
        path: PathBuf,
        /// The underlying reader error.
        #[source]
        source: ndarray_npy::ReadNpyError,
    },
}
