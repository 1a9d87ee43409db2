//! The one error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong while reading a checkpoint file.
///
/// Every variant names the file, so a message printed to a user says which checkpoint to fix
/// or replace. `sound2scene-models` turns each into its `ModelError` variant of the same name.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// The file does not exist or cannot be read.
    #[error("cannot read {path}: {source}; check the path and its permissions")]
    Io {
        /// The file that failed.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// The PyTorch reader refused the file (not a checkpoint, corrupt, truncated, or a
    /// pickle that asks to run code).
    #[error("{path} is not a readable PyTorch checkpoint: {reason}")]
    Checkpoint {
        /// The checkpoint.
        path: PathBuf,
        /// What the reader said.
        reason: String,
    },

    /// A weight holds NaN or infinity.
    #[error(
        "{path}: tensor '{key}' holds {count} NaN or infinite values; the checkpoint is damaged \
         (pass allow_non_finite to load it anyway)"
    )]
    NonFinite {
        /// The checkpoint.
        path: PathBuf,
        /// The tensor's key.
        key: String,
        /// How many values are not finite.
        count: usize,
    },

    /// A tensor is stored in an element type that is not a float.
    #[error("{path}: tensor '{key}' has element type {dtype}, expected a float type")]
    DType {
        /// The checkpoint.
        path: PathBuf,
        /// The tensor's key.
        key: String,
        /// The stored element type.
        dtype: String,
    },

    /// A burnpack file cannot be read or was not written by this project.
    #[error("burnpack file {path}: {reason}")]
    Burnpack {
        /// The burnpack file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, WeightsError>;
