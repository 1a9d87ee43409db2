//! Broken samples: skipped with a warning and a report, not the end of a run.
//!
//! Data sets fetched from the web (VGGSound: 200k clips) always hold some files that cannot be
//! decoded: truncated videos, empty audio, undecodable frames. The readers of this crate check
//! every sample the first time they read it; under the default [`SkipPolicy`] a sample that
//! fails is left out with a one-line warning naming the file and the cause, and the run goes
//! on. At the end a [`SkipReport`] lists every skipped file with its cause.
//!
//! Two things still stop a run:
//!
//! - more than [`SkipPolicy::max_bad_fraction`] of the samples are broken
//!   ([`TrainError::TooManyBroken`]): that is a wrong folder or a wrong layout rather than a
//!   few broken files;
//! - [`SkipPolicy::strict`]: the first broken sample is an error, as before skipping existed.
//!
//! What was skipped is recorded (in the feature cache's index for alignment, in the run's
//! [`SKIPPED_FILE`] for image folders), so a resumed run neither decodes those files again nor
//! reports them as new, and the same data always gives the same skipped set, the same training
//! examples and therefore the same weights.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::checkpoint::write_file_atomic;
use crate::error::TrainError;

/// The skipping limit of [`SkipPolicy::default`]: 5 % of the samples.
pub const DEFAULT_MAX_BAD_FRACTION: f64 = 0.05;

/// File name of the skip report in a run's output directory.
pub const SKIPPED_FILE: &str = "skipped.json";

/// How a reader treats samples that cannot be decoded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SkipPolicy {
    /// Stop at the first broken sample with its error instead of skipping it.
    pub strict: bool,
    /// The largest fraction of broken samples, in `[0, 1]`, a run tolerates; more stops it
    /// with [`TrainError::TooManyBroken`].
    pub max_bad_fraction: f64,
}

impl Default for SkipPolicy {
    /// Skip broken samples, up to [`DEFAULT_MAX_BAD_FRACTION`] of them.
    fn default() -> Self {
        Self {
            strict: false,
            max_bad_fraction: DEFAULT_MAX_BAD_FRACTION,
        }
    }
}

impl SkipPolicy {
    /// Stop at the first broken sample (no skipping).
    pub fn strict() -> Self {
        Self {
            strict: true,
            ..Self::default()
        }
    }

    /// Skip broken samples, up to `max_bad_fraction` of them.
    pub fn tolerating(max_bad_fraction: f64) -> Self {
        Self {
            strict: false,
            max_bad_fraction,
        }
    }

    /// Checks the limit.
    ///
    /// # Errors
    /// [`TrainError::Config`] when `max_bad_fraction` is not in `[0, 1]`.
    pub fn validate(&self) -> Result<(), TrainError> {
        if (0.0..=1.0).contains(&self.max_bad_fraction) {
            Ok(())
        } else {
            Err(TrainError::config(format!(
                "the largest fraction of broken samples must be in [0, 1], got {}",
                self.max_bad_fraction
            )))
        }
    }

    /// How many of `total` samples may be broken: `⌊total · max_bad_fraction⌋`.
    pub fn allowed(&self, total: usize) -> usize {
        (total as f64 * self.max_bad_fraction).floor() as usize
    }
}

/// One sample left out of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedSample {
    /// The sample's name (the example name, or the image file's path for image folders).
    pub name: String,
    /// The file (or folder) at fault.
    pub file: PathBuf,
    /// Why it cannot be used, as the decoder said it.
    pub cause: String,
}

impl std::fmt::Display for SkippedSample {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.cause)
    }
}

impl SkippedSample {
    /// The one-line warning printed when the sample is skipped.
    pub fn warning(&self) -> String {
        format!("warning: skipping {self}")
    }
}

/// Every sample a reader left out, and how many it looked at.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SkipReport {
    /// Samples of the data set, broken ones included.
    pub total: usize,
    /// Samples decoded (checked) by this run; those known from an earlier run are not.
    pub checked: usize,
    /// The skipped samples, in data-set order.
    pub skipped: Vec<SkippedSample>,
    /// How many of `skipped` were known from an earlier run's record (not tried again and not
    /// warned about again).
    pub recorded: usize,
    /// For image folders: the fingerprint of the listing (paths and sizes) the check covered,
    /// so a later run on the same files can reuse it without decoding them again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listing: Option<String>,
}

impl SkipReport {
    /// Samples kept: `total − skipped`.
    pub fn kept(&self) -> usize {
        self.total.saturating_sub(self.skipped.len())
    }

    /// Fails when more samples are broken than `policy` allows.
    ///
    /// # Errors
    /// [`TrainError::TooManyBroken`] naming `data` (the data set's folder).
    pub fn guard(&self, policy: &SkipPolicy, data: &Path) -> Result<(), TrainError> {
        too_many(policy, data, &self.skipped, self.total)
    }

    /// A one-line summary, e.g. `skipped 3 of 120 samples that cannot be read (1 recorded by an
    /// earlier run)`, or `all 120 samples are readable`.
    pub fn summary(&self) -> String {
        if self.skipped.is_empty() {
            return format!("all {} samples are readable", self.total);
        }
        let earlier = if self.recorded > 0 {
            format!(" ({} recorded by an earlier run)", self.recorded)
        } else {
            String::new()
        };
        format!(
            "skipped {} of {} samples that cannot be read{earlier}",
            self.skipped.len(),
            self.total
        )
    }

    /// Writes the report as JSON to `path`, atomically.
    ///
    /// # Errors
    /// [`TrainError::Checkpoint`] when the file cannot be written.
    pub fn write(&self, path: &Path) -> Result<(), TrainError> {
        let json = serde_json::to_vec_pretty(self).map_err(|e| TrainError::Data {
            path: path.to_path_buf(),
            reason: format!("cannot serialize the skip report: {e}"),
            source: Some(e.into()),
        })?;
        write_file_atomic(path, &json)
    }

    /// Reads a report written by [`write`](Self::write); `None` when the file does not exist.
    ///
    /// # Errors
    /// [`TrainError::Io`] when it cannot be read, [`TrainError::Data`] when it is malformed.
    pub fn read(path: &Path) -> Result<Option<Self>, TrainError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(TrainError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| TrainError::Data {
                path: path.to_path_buf(),
                reason: format!("malformed skip report ({e}); delete it to check the data again"),
                source: Some(e.into()),
            })
    }
}

/// [`TrainError::TooManyBroken`] when `skipped` exceeds what `policy` allows of `total`.
pub(crate) fn too_many(
    policy: &SkipPolicy,
    data: &Path,
    skipped: &[SkippedSample],
    total: usize,
) -> Result<(), TrainError> {
    if skipped.len() <= policy.allowed(total) {
        return Ok(());
    }
    Err(TrainError::TooManyBroken {
        path: data.to_path_buf(),
        broken: skipped.len(),
        total,
        limit: policy.max_bad_fraction,
        first: skipped.first().map(ToString::to_string).unwrap_or_default(),
    })
}
