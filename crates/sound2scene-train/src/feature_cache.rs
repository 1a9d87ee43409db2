//! The image-feature cache: z^V of every training frame, computed once.
//!
//! During alignment the image encoder f_V is frozen (paper Sec. 2.1), so its features never
//! change; computing them once and reading them back makes an alignment step cost only the
//! audio encoder. A cache directory holds
//!
//! - `shard-00000.npy`, `shard-00001.npy`, …: `float32` arrays `[rows, dim]` (`dim` = 2048 for
//!   the SwAV ResNet-50), written to a temporary name, fsynced and renamed;
//! - `index.json`: a [`CacheIndex`]: the format version, the feature width, the encoder file
//!   the features came from, and per shard its file and the example of each row in order
//!   (name, image and audio paths). It is rewritten atomically after each shard, so an
//!   interrupted build keeps every finished shard.
//!
//! [`FeatureCache::build`] reuses what is there and encodes only the missing examples (a name
//! not in the index, or one whose image path changed; a later shard takes precedence over an
//! earlier one for the same name). A cache made with another encoder file is rebuilt.
//! [`FeatureCache::open`] reads all shards into memory: `4 · rows · dim` bytes (8 KiB a row
//! at width 2048).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sound2scene_models::image_encoder::{ImageEncoder, preprocess_image, preprocess_image_at};

use crate::checkpoint::{fsync_dir, write_file_atomic};
use crate::data::Pair;
use crate::error::TrainError;

/// File name of the cache index inside the cache directory.
pub const INDEX_FILE: &str = "index.json";
/// Version of the cache layout written by this crate.
pub const CACHE_FORMAT: u32 = 1;
/// Images decoded and encoded together while building (one forward pass of f_V).
pub const ENCODE_BATCH: usize = 16;

/// One cached example (one row of a shard).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheEntry {
    /// The example's name ([`Pair::name`]).
    pub name: String,
    /// The image the feature was computed from.
    pub image: String,
    /// The example's audio file (recorded for reference; not used by the cache).
    pub audio: String,
}

/// One shard file and the examples of its rows, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheShard {
    /// File name inside the cache directory, e.g. `shard-00000.npy`.
    pub file: String,
    /// The example of each row.
    pub entries: Vec<CacheEntry>,
}

/// The contents of `index.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheIndex {
    /// Layout version ([`CACHE_FORMAT`]).
    pub format: u32,
    /// Width of a feature row (2048 for SwAV ResNet-50).
    pub dim: usize,
    /// The image-encoder file the features were computed with, as given to
    /// [`FeatureCache::build`].
    pub encoder: String,
    /// The shards, in the order they were written.
    pub shards: Vec<CacheShard>,
}

/// The image features of a set of examples, in memory, looked up by name.
#[derive(Debug, Clone)]
pub struct FeatureCache {
    dir: PathBuf,
    index: CacheIndex,
    /// All rows of all shards, `[rows, dim]` row-major.
    features: Vec<f32>,
    /// Name → row in `features` (the last shard holding a name wins).
    rows: HashMap<String, usize>,
}

fn cache_error(path: &Path, reason: impl Into<String>) -> TrainError {
    TrainError::Cache {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

impl FeatureCache {
    /// Reads the cache in `dir`: its index and every shard.
    ///
    /// # Errors
    /// [`TrainError::Cache`] when `index.json` is missing or malformed, a shard is missing or
    /// its shape disagrees with the index, or a feature is not finite.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, TrainError> {
        let dir = dir.as_ref();
        let index_path = dir.join(INDEX_FILE);
        let text = std::fs::read_to_string(&index_path).map_err(|e| {
            cache_error(
                &index_path,
                format!("cannot read the index ({e}); build the cache first"),
            )
        })?;
        let index: CacheIndex = serde_json::from_str(&text)
            .map_err(|e| cache_error(&index_path, format!("malformed index: {e}")))?;
        if index.format != CACHE_FORMAT {
            return Err(cache_error(
                &index_path,
                format!(
                    "format {} is not the supported {CACHE_FORMAT}; delete the cache and rebuild it",
                    index.format
                ),
            ));
        }
        let mut cache = Self {
            dir: dir.to_path_buf(),
            index: CacheIndex {
                shards: Vec::new(),
                ..index.clone()
            },
            features: Vec::new(),
            rows: HashMap::new(),
        };
        for shard in index.shards {
            let path = dir.join(&shard.file);
            let array = sound2scene_audio::read_npy_f32(&path)
                .map_err(|e| cache_error(&path, e.to_string()))?;
            if array.shape != [shard.entries.len(), index.dim] {
                return Err(cache_error(
                    &path,
                    format!(
                        "shape {:?} does not match the index ([{}, {}]); delete the cache and \
                         rebuild it",
                        array.shape,
                        shard.entries.len(),
                        index.dim
                    ),
                ));
            }
            cache.append(shard, array.data, &path)?;
        }
        Ok(cache)
    }

    /// Adds a shard's rows (`[entries, dim]`) to the in-memory cache.
    fn append(&mut self, shard: CacheShard, data: Vec<f32>, path: &Path) -> Result<(), TrainError> {
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            return Err(cache_error(
                path,
                format!(
                    "row {} holds a NaN or infinite feature",
                    i / self.index.dim.max(1)
                ),
            ));
        }
        let first_row = self.features.len() / self.index.dim.max(1);
        for (i, entry) in shard.entries.iter().enumerate() {
            self.rows.insert(entry.name.clone(), first_row + i);
        }
        self.features.extend_from_slice(&data);
        self.index.shards.push(shard);
        Ok(())
    }

    /// Opens the cache in `dir` and adds the features of every pair it lacks, or builds it from
    /// scratch when there is none (or it was made with another `encoder_file`).
    ///
    /// Images are decoded and preprocessed ([`ImageEncoder::preprocess_image`]) in parallel on a loader
    /// thread, [`ENCODE_BATCH`] at a time, while `encoder` (frozen, in inference mode) runs on
    /// `device`; each `shard_size` new rows are written as one shard and recorded in the index.
    /// `encoder_file` names the encoder's checkpoint in the index. With `progress`, an
    /// indicatif bar on stderr counts the encoded images.
    ///
    /// # Errors
    /// [`TrainError::Config`] for a zero `shard_size`; [`TrainError::Cache`] for an unreadable
    /// existing cache, an undecodable image (naming it) or an encoder whose width differs from
    /// the cache's; [`TrainError::Io`] when the directory cannot be written;
    /// [`TrainError::Model`] when the encoder fails.
    pub fn build(
        pairs: &[Pair],
        encoder: &ImageEncoder,
        encoder_file: &str,
        dir: impl AsRef<Path>,
        shard_size: usize,
        device: &Device,
        progress: bool,
    ) -> Result<Self, TrainError> {
        let dir = dir.as_ref();
        if shard_size == 0 {
            return Err(TrainError::Config(
                "the feature-cache shard size must be at least 1".into(),
            ));
        }
        std::fs::create_dir_all(dir).map_err(|source| TrainError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let existing = if dir.join(INDEX_FILE).is_file() {
            let cache = Self::open(dir)?;
            (cache.index.encoder == encoder_file).then_some(cache)
        } else {
            None
        };
        let mut cache = existing.unwrap_or_else(|| Self {
            dir: dir.to_path_buf(),
            index: CacheIndex {
                format: CACHE_FORMAT,
                dim: 0,
                encoder: encoder_file.to_string(),
                shards: Vec::new(),
            },
            features: Vec::new(),
            rows: HashMap::new(),
        });

        let mut seen = HashSet::new();
        let missing: Vec<&Pair> = pairs
            .iter()
            .filter(|p| seen.insert(p.name.as_str()))
            .filter(|p| match cache.entry(&p.name) {
                Some(entry) => entry.image != p.image.to_string_lossy(),
                None => true,
            })
            .collect();
        if missing.is_empty() {
            return Ok(cache);
        }

        let bar = progress.then(|| {
            let bar = ProgressBar::new(missing.len() as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "caching image features {bar:30} {pos}/{len} images {per_sec} ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        });
        let encoder = encoder.valid();
        for chunk in missing.chunks(shard_size) {
            let data = encode_images(chunk, &encoder, device, bar.as_ref())?;
            let dim = data.len() / chunk.len();
            if cache.index.dim == 0 {
                cache.index.dim = dim;
            } else if cache.index.dim != dim {
                return Err(cache_error(
                    dir,
                    format!(
                        "the encoder gives {dim}-wide features but the cache holds {}-wide ones",
                        cache.index.dim
                    ),
                ));
            }
            let file = format!("shard-{:05}.npy", cache.index.shards.len());
            let path = dir.join(&file);
            write_npy_atomic(&path, &[chunk.len(), dim], &data)?;
            let shard = CacheShard {
                file,
                entries: chunk
                    .iter()
                    .map(|p| CacheEntry {
                        name: p.name.clone(),
                        image: p.image.to_string_lossy().into_owned(),
                        audio: p.audio.to_string_lossy().into_owned(),
                    })
                    .collect(),
            };
            cache.append(shard, data, &path)?;
            let json = serde_json::to_vec_pretty(&cache.index)
                .map_err(|e| cache_error(dir, format!("cannot serialize the index: {e}")))?;
            write_file_atomic(&dir.join(INDEX_FILE), &json)?;
        }
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        Ok(cache)
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The index as read or last written.
    pub fn index(&self) -> &CacheIndex {
        &self.index
    }

    /// Width of a feature row (2048 for SwAV ResNet-50; 0 for an empty cache).
    pub fn dim(&self) -> usize {
        self.index.dim
    }

    /// Number of distinct names cached.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no feature is cached.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The feature z^V of `name`, `[dim]`, if cached.
    pub fn feature(&self, name: &str) -> Option<&[f32]> {
        let row = *self.rows.get(name)?;
        let dim = self.index.dim;
        self.features.get(row * dim..(row + 1) * dim)
    }

    /// The index entry currently answering for `name`.
    fn entry(&self, name: &str) -> Option<&CacheEntry> {
        let mut row = *self.rows.get(name)?;
        for shard in &self.index.shards {
            if row < shard.entries.len() {
                return shard.entries.get(row);
            }
            row -= shard.entries.len();
        }
        None
    }
}

/// z^V of the images of `pairs`, `[pairs.len(), dim]` row-major: decoding and preprocessing of
/// the next [`ENCODE_BATCH`] images (in parallel, on a loader thread) overlaps the encoder's
/// forward pass on the current ones.
fn encode_images(
    pairs: &[&Pair],
    encoder: &ImageEncoder,
    device: &Device,
    bar: Option<&ProgressBar>,
) -> Result<Vec<f32>, TrainError> {
    let side = encoder.input_side();
    let input_side = encoder.input_side;
    std::thread::scope(|scope| {
        let (sender, receiver) = sync_channel::<Result<(usize, Vec<f32>), TrainError>>(2);
        scope.spawn(move || {
            for batch in pairs.chunks(ENCODE_BATCH) {
                let decoded: Result<Vec<Vec<f32>>, TrainError> = batch
                    .par_iter()
                    .map(|p| load_image(&p.image, input_side))
                    .collect();
                let message = decoded.map(|images| (images.len(), images.concat()));
                if sender.send(message).is_err() {
                    return;
                }
            }
        });
        let mut features = Vec::new();
        for message in receiver {
            let (count, pixels) = message?;
            let images =
                Tensor::<4>::from_data(TensorData::new(pixels, [count, 3, side, side]), device);
            // [count, dim]
            let z = encoder.forward(images)?;
            let values = z
                .into_data()
                .try_into_vec::<f32>()
                .map_err(|e| TrainError::Cache {
                    path: PathBuf::from("<image encoder output>"),
                    reason: format!("cannot read the features: {e:?}"),
                })?;
            features.extend(values);
            if let Some(bar) = bar {
                bar.inc(count as u64);
            }
        }
        Ok(features)
    })
}

/// Decodes one image and applies the preprocessing of an encoder with `input_side` (see
/// [`ImageEncoder::preprocess_image`]): `3 · side · side` values.
fn load_image(path: &Path, input_side: Option<usize>) -> Result<Vec<f32>, TrainError> {
    let image = image::open(path)
        .map_err(|e| cache_error(path, format!("cannot decode the image: {e}")))?
        .to_rgb8();
    Ok(match input_side {
        None => preprocess_image(&image)?,
        Some(side) => preprocess_image_at(&image, side)?,
    })
}

/// Writes a `float32` `.npy` file via a temporary name, fsynced, then renamed into place.
fn write_npy_atomic(path: &Path, shape: &[usize], data: &[f32]) -> Result<(), TrainError> {
    let tmp = path.with_extension("npy.tmp");
    sound2scene_audio::write_npy_f32(&tmp, shape, data)
        .map_err(|e| cache_error(&tmp, e.to_string()))?;
    let io = |source| TrainError::Io {
        path: tmp.clone(),
        source,
    };
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Some(parent) = path.parent() {
        fsync_dir(parent)?;
    }
    Ok(())
}
