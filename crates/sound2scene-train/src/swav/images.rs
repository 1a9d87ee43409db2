//! The unlabeled images SwAV trains on, and the order it visits them in.
//!
//! As SwAV's `DistributedSampler` with `drop_last=True` on one process: every epoch visits
//! the images in a fresh random order, in `⌊n / B⌋` batches of B, leaving the remainder out.
//! The order of epoch `e` is a function of `(seed, e)` only, so the batch of any step is known
//! without replaying the run.

use std::borrow::Cow;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

use image::RgbImage;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::augment::{CropBatch, MultiCropConfig, multi_crop_batch};
use crate::error::TrainError;
use crate::init::splitmix;
use crate::run::Fnv;
use crate::skip::{SkipPolicy, SkipReport, SkippedSample};

/// `path` decoded as RGB.
fn decode_file(path: &Path) -> Result<RgbImage, TrainError> {
    let image = image::open(path)
        .map_err(|e| TrainError::data_caused(path, format!("cannot decode the image: {e}"), e))?
        .to_rgb8();
    if image.width() == 0 || image.height() == 0 {
        return Err(data_error(path, "the image has no pixels"));
    }
    Ok(image)
}

/// Every image file under `dir`, recursively, sorted.
fn list_images(dir: &Path) -> Result<Vec<PathBuf>, TrainError> {
    if !dir.is_dir() {
        return Err(data_error(dir, "not a directory; pass a folder of images"));
    }
    let mut paths = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        let entries = std::fs::read_dir(&folder)
            .map_err(|e| TrainError::data_caused(&folder, format!("cannot list: {e}"), e))?;
        for entry in entries {
            let path = entry
                .map_err(|e| TrainError::data_caused(&folder, format!("cannot list: {e}"), e))?
                .path();
            if path.is_dir() {
                pending.push(path);
            } else if path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
            {
                paths.push(path);
            }
        }
    }
    paths.sort();
    if paths.is_empty() {
        return Err(data_error(
            dir,
            format!("holds no image ({})", IMAGE_EXTENSIONS.join(", ")),
        ));
    }
    Ok(paths)
}

/// A 64-bit FNV-1a fingerprint (hex) of `paths` (relative to `dir`) and their sizes.
fn listing_fingerprint(dir: &Path, paths: &[PathBuf]) -> String {
    let mut hash = Fnv::new();
    for path in paths {
        let relative = path.strip_prefix(dir).unwrap_or(path);
        hash.write(relative.to_string_lossy().as_bytes());
        hash.write(&[0]);
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        hash.write(&size.to_le_bytes());
    }
    hash.hex()
}

/// File extensions (lower case) read as images.
pub const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

#[derive(Debug)]
enum Source {
    Files { paths: Vec<PathBuf> },
    Memory(Vec<RgbImage>),
}

/// A set of RGB images: files decoded when a batch needs them, or images in memory.
#[derive(Debug)]
pub struct SwavImages {
    source: Source,
    fingerprint: String,
}

fn data_error(path: &Path, reason: impl std::fmt::Display) -> TrainError {
    TrainError::data(path, reason.to_string())
}

impl SwavImages {
    /// Every `.png`, `.jpg` and `.jpeg` file under `dir` (recursively, in sorted path order),
    /// decoded only when a batch needs it (an undecodable one then stops the run; see
    /// [`from_dir_checked`](Self::from_dir_checked)).
    ///
    /// # Errors
    /// [`TrainError::Data`] when `dir` is not a readable directory or holds no image.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self, TrainError> {
        let dir = dir.as_ref();
        let paths = list_images(dir)?;
        Ok(Self {
            fingerprint: listing_fingerprint(dir, &paths),
            source: Source::Files { paths },
        })
    }

    /// [`from_dir`](Self::from_dir), decoding every image once first (in parallel): one that
    /// cannot be decoded, or has no pixels, is left out with a one-line warning on stderr, up
    /// to `policy`'s limit. Returns the readable images and the [`SkipReport`].
    ///
    /// With `record` (the run's [`SKIPPED_FILE`](crate::skip::SKIPPED_FILE)), a report written
    /// there by an earlier check of the same listing (paths and sizes) is reused without
    /// decoding anything, and the report of a new check is written there: a resumed run neither
    /// decodes the images again nor reports the broken ones as new. The set (and so its
    /// fingerprint and every batch) depends only on the files.
    ///
    /// # Errors
    /// Those of [`from_dir`](Self::from_dir); under a strict policy [`TrainError::Data`]
    /// naming the first image (in path order) that cannot be decoded;
    /// [`TrainError::TooManyBroken`] when more images are broken than the policy allows;
    /// [`TrainError::Data`] when no image is readable; [`TrainError::Config`] for a limit
    /// outside `[0, 1]`; [`TrainError::Checkpoint`] when `record` cannot be written.
    pub fn from_dir_checked(
        dir: impl AsRef<Path>,
        policy: &SkipPolicy,
        record: Option<&Path>,
    ) -> Result<(Self, SkipReport), TrainError> {
        let dir = dir.as_ref();
        policy.validate()?;
        let paths = list_images(dir)?;
        let listing = listing_fingerprint(dir, &paths);
        let earlier = match record {
            Some(path) => {
                SkipReport::read(path)?.filter(|r| r.listing.as_deref() == Some(listing.as_str()))
            }
            None => None,
        };
        let report = match earlier {
            Some(earlier) => {
                if policy.strict
                    && let Some(first) = earlier.skipped.first()
                {
                    return Err(data_error(&first.file, &first.cause));
                }
                SkipReport {
                    checked: 0,
                    recorded: earlier.skipped.len(),
                    ..earlier
                }
            }
            None => {
                let failures: Vec<Option<TrainError>> = paths
                    .par_iter()
                    .map(|path| decode_file(path).err())
                    .collect();
                let mut skipped = Vec::new();
                for (path, failure) in paths.iter().zip(failures) {
                    let Some(error) = failure else { continue };
                    if policy.strict {
                        return Err(error);
                    }
                    let cause = match error {
                        TrainError::Data { reason, .. } => reason,
                        other => other.to_string(),
                    };
                    let sample = SkippedSample {
                        name: path.to_string_lossy().into_owned(),
                        file: path.clone(),
                        cause,
                    };
                    eprintln!("{}", sample.warning());
                    skipped.push(sample);
                }
                let report = SkipReport {
                    total: paths.len(),
                    checked: paths.len(),
                    skipped,
                    recorded: 0,
                    listing: Some(listing),
                };
                if let Some(path) = record {
                    report.write(path)?;
                }
                report
            }
        };
        report.guard(policy, dir)?;
        let broken: HashSet<&Path> = report.skipped.iter().map(|s| s.file.as_path()).collect();
        let kept: Vec<PathBuf> = paths
            .iter()
            .filter(|p| !broken.contains(p.as_path()))
            .cloned()
            .collect();
        if kept.is_empty() {
            return Err(data_error(dir, "holds no readable image"));
        }
        let images = Self {
            fingerprint: listing_fingerprint(dir, &kept),
            source: Source::Files { paths: kept },
        };
        Ok((images, report))
    }

    /// Images already in memory.
    ///
    /// # Errors
    /// [`TrainError::Data`] for an empty list or an image without pixels.
    pub fn in_memory(images: Vec<RgbImage>) -> Result<Self, TrainError> {
        let here = Path::new("<memory>");
        if images.is_empty() {
            return Err(data_error(here, "no images"));
        }
        let mut hash = Fnv::new();
        for (i, image) in images.iter().enumerate() {
            if image.width() == 0 || image.height() == 0 {
                return Err(data_error(here, format!("image {i} has no pixels")));
            }
            hash.write(&image.width().to_le_bytes());
            hash.write(&image.height().to_le_bytes());
            hash.write(image.as_raw());
        }
        Ok(Self {
            source: Source::Memory(images),
            fingerprint: hash.hex(),
        })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        match &self.source {
            Source::Files { paths } => paths.len(),
            Source::Memory(images) => images.len(),
        }
    }

    /// Whether there are no images (never true for a constructed set).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A 64-bit FNV-1a fingerprint (hex) of the set: relative paths and file sizes, or the
    /// pixels of in-memory images.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Image `index`, decoded as RGB.
    ///
    /// # Errors
    /// [`TrainError::Data`] naming a file that cannot be decoded or has no pixels, or an
    /// index out of range.
    pub fn image(&self, index: usize) -> Result<Cow<'_, RgbImage>, TrainError> {
        match &self.source {
            Source::Memory(images) => images
                .get(index)
                .map(Cow::Borrowed)
                .ok_or_else(|| data_error(Path::new("<memory>"), format!("no image {index}"))),
            Source::Files { paths } => {
                let path = paths
                    .get(index)
                    .ok_or_else(|| data_error(Path::new("<files>"), format!("no image {index}")))?;
                decode_file(path).map(Cow::Owned)
            }
        }
    }

    /// Batches in an epoch: `⌊len / batch⌋`.
    pub fn steps_per_epoch(&self, batch: usize) -> u64 {
        (self.len() / batch.max(1)) as u64
    }

    /// The data-set indices of the batch of optimizer step `step` (1-based): position
    /// `(step − 1) mod steps_per_epoch` of the order of epoch `(step − 1) / steps_per_epoch`,
    /// a ChaCha8 shuffle seeded from `(seed, epoch)`. Empty when `batch` exceeds the set.
    pub fn batch_indices(&self, batch: usize, seed: u64, step: u64) -> Vec<usize> {
        let per_epoch = self.steps_per_epoch(batch);
        if per_epoch == 0 || step == 0 {
            return Vec::new();
        }
        let (epoch, position) = ((step - 1) / per_epoch, ((step - 1) % per_epoch) as usize);
        let mut order: Vec<usize> = (0..self.len()).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(splitmix(seed ^ splitmix(epoch)));
        order.shuffle(&mut rng);
        order[position * batch..(position + 1) * batch].to_vec()
    }

    /// The augmented crops of step `step` (1-based): its batch's images decoded in parallel,
    /// then [`multi_crop_batch`].
    ///
    /// # Errors
    /// [`TrainError::Data`] for an undecodable image or a batch larger than the set;
    /// [`TrainError::Config`] for an invalid crop configuration.
    pub fn crops(
        &self,
        config: &MultiCropConfig,
        batch: usize,
        seed: u64,
        step: u64,
    ) -> Result<CropBatch, TrainError> {
        let indices = self.batch_indices(batch, seed, step);
        if indices.is_empty() {
            return Err(data_error(
                Path::new("<images>"),
                format!(
                    "{} images cannot fill a batch of {batch}; lower the batch size",
                    self.len()
                ),
            ));
        }
        let images: Vec<Cow<'_, RgbImage>> = indices
            .par_iter()
            .map(|&i| self.image(i))
            .collect::<Result<_, _>>()?;
        let refs: Vec<&RgbImage> = images.iter().map(AsRef::as_ref).collect();
        multi_crop_batch(&refs, indices, config, seed, step)
    }
}
