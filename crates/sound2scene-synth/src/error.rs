//! The crate's single error type, [`SynthError`].

use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type Result<T, E = SynthError> = std::result::Result<T, E>;

/// Everything that can go wrong while configuring the world, rendering or writing a dataset.
///
/// Invalid user input (a zero frame rate, a zero image size, a non-finite gain, …) is reported
/// as [`SynthError::InvalidArgument`]; nothing in this crate panics on user input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SynthError {
    /// A configuration value or function argument is out of range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// A class or background name was not recognised by `FromStr`.
    #[error("unknown {kind} `{name}`; expected one of: {expected}")]
    UnknownName {
        /// What was being parsed ("sound class" or "background").
        kind: &'static str,
        /// The name that was given.
        name: String,
        /// The accepted names, comma-separated.
        expected: String,
    },

    /// Creating a directory or writing a file failed.
    #[error(
        "cannot write {path}: {source}; check that the directory is writable and the disk is not full"
    )]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// Reading a world description failed.
    #[error("cannot read {path}: {source}; check that the file exists and is readable")]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// A world description is not a JSON object of [`crate::WorldConfig`]'s fields.
    #[error(
        "cannot read the world description {path}: {source}; it must be a JSON object whose keys \
         are fields of WorldConfig (seed, clips, seconds, fps, image_size, max_sources, \
         empty_probability, gain_db_range, level_db_range, visible_fraction), each optional"
    )]
    WorldFile {
        /// The JSON file.
        path: PathBuf,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },

    /// Encoding a frame as JPEG failed.
    #[error("cannot encode frame {path}: {source}")]
    Image {
        /// The image file.
        path: PathBuf,
        /// The encoder's error.
        #[source]
        source: image::ImageError,
    },

    /// Serialising the ground truth failed.
    #[error("cannot write ground truth {path}: {source}")]
    Json {
        /// The JSON file.
        path: PathBuf,
        /// The serialiser's error.
        #[source]
        source: serde_json::Error,
    },
}
