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
//!
//! [`FeatureCache::build_checked`] is the first read of every sample: a pair whose image (or,
//! with [`CacheOptions::check_audio`], audio) cannot be decoded is skipped with a warning under
//! the [`SkipPolicy`] and recorded in the index ([`CacheSkip`]), so a
//! later build (a resumed run) neither decodes it again nor reports it as new. A recorded file
//! whose size changed (repaired or downloaded again) is tried again.

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
use crate::skip::{SkipPolicy, SkipReport, SkippedSample, too_many};

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

/// A pair left out of the cache because it cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheSkip {
    /// The pair, as a cached row would name it.
    #[serde(flatten)]
    pub entry: CacheEntry,
    /// The file at fault (the image or the audio).
    pub file: String,
    /// Size in bytes of `file` when it was tried (`None`: it could not be read); a file whose
    /// size changed since is tried again.
    pub bytes: Option<u64>,
    /// Why it was skipped.
    pub cause: String,
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
    /// Pairs skipped because they cannot be decoded (none of them has a row).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<CacheSkip>,
}

/// Settings of [`FeatureCache::build_checked`].
#[derive(Debug, Clone)]
pub struct CacheOptions {
    /// New rows per shard file (at least 1).
    pub shard_size: usize,
    /// Draw an indicatif bar on stderr counting the decoded images.
    pub progress: bool,
    /// What to do with a pair that cannot be decoded.
    pub policy: SkipPolicy,
    /// Also decode each new pair's audio file (alignment trains on it); off for data whose
    /// audio is not used (the GAN's).
    pub check_audio: bool,
    /// Samples found broken before the cache was built (e.g.
    /// [`Discovery::skipped`](crate::data::Discovery::skipped)): they count towards the
    /// policy's limit and head the report.
    pub earlier: Vec<SkippedSample>,
    /// The data set's directory, named when too many samples are broken.
    pub data: PathBuf,
}

impl CacheOptions {
    /// `shard_size` rows per shard, no progress bar, the default [`SkipPolicy`], audio checked,
    /// nothing found broken earlier.
    pub fn new(shard_size: usize, data: impl Into<PathBuf>) -> Self {
        Self {
            shard_size,
            progress: false,
            policy: SkipPolicy::default(),
            check_audio: true,
            earlier: Vec::new(),
            data: data.into(),
        }
    }
}

/// What [`FeatureCache::build_checked`] returns.
#[derive(Debug, Clone)]
pub struct CacheBuild {
    /// The cache, holding a feature for every pair of `pairs`.
    pub cache: FeatureCache,
    /// The pairs to train on: the given ones (each name once) less the skipped ones, in the
    /// given order.
    pub pairs: Vec<Pair>,
    /// Every skipped sample with its cause (`earlier` first, then in pair order).
    pub report: SkipReport,
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
    TrainError::cache(path, reason)
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
            TrainError::cache_caused(
                &index_path,
                format!("cannot read the index ({e}); build the cache first"),
                e,
            )
        })?;
        let index: CacheIndex = serde_json::from_str(&text).map_err(|e| {
            TrainError::cache_caused(&index_path, format!("malformed index: {e}"), e)
        })?;
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
                .map_err(|e| TrainError::cache_caused(&path, e.to_string(), e))?;
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
        for skip in &cache.index.skipped {
            cache.rows.remove(&skip.entry.name);
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
    /// scratch when there is none (or it was made with another `encoder_file`); stops at the
    /// first image that cannot be decoded. [`build_checked`](Self::build_checked) skips such
    /// pairs instead.
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
    /// the cache's; [`TrainError::Data`] for a pair an earlier checked build recorded as
    /// broken; [`TrainError::Io`] when the directory cannot be written;
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
        let options = CacheOptions {
            progress,
            policy: SkipPolicy::strict(),
            check_audio: false,
            ..CacheOptions::new(shard_size, dir)
        };
        Self::build_checked(pairs, encoder, encoder_file, dir, device, &options).map(|b| b.cache)
    }

    /// [`build`](Self::build), checking every new pair: one whose image (or, with
    /// [`CacheOptions::check_audio`], audio file) cannot be decoded is skipped with a one-line
    /// warning on stderr and recorded in the index, unless the policy is strict. Pairs recorded
    /// as skipped by an earlier build are skipped again without being decoded or warned about
    /// (unless the file at fault changed size).
    ///
    /// Returns the cache, the pairs to train on and the [`SkipReport`]. The same pairs always
    /// give the same skipped set.
    ///
    /// # Errors
    /// Those of [`build`](Self::build); under a strict policy the first broken sample's error
    /// ([`TrainError::Cache`] for an image, [`TrainError::Audio`] for a sound,
    /// [`TrainError::Data`] for one of `earlier` or one recorded as broken);
    /// [`TrainError::TooManyBroken`] as soon as more samples are broken than the policy
    /// allows (what was encoded so far stays in the cache); [`TrainError::Config`] for a limit
    /// outside `[0, 1]`.
    pub fn build_checked(
        pairs: &[Pair],
        encoder: &ImageEncoder,
        encoder_file: &str,
        dir: impl AsRef<Path>,
        device: &Device,
        options: &CacheOptions,
    ) -> Result<CacheBuild, TrainError> {
        let dir = dir.as_ref();
        let policy = options.policy;
        policy.validate()?;
        if options.shard_size == 0 {
            return Err(TrainError::config(
                "the feature-cache shard size must be at least 1",
            ));
        }
        if policy.strict
            && let Some(first) = options.earlier.first()
        {
            return Err(broken_error(first));
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
                skipped: Vec::new(),
            },
            features: Vec::new(),
            rows: HashMap::new(),
        });

        let mut seen = HashSet::new();
        let unique: Vec<&Pair> = pairs
            .iter()
            .filter(|p| seen.insert(p.name.as_str()))
            .collect();
        let total = unique.len() + options.earlier.len();
        let mut broken: HashMap<String, SkippedSample> = HashMap::new();
        let mut recorded = 0;
        let mut missing = Vec::new();
        for &pair in &unique {
            let entry = cache_entry(pair);
            if cache
                .entry(&pair.name)
                .is_some_and(|e| e.image == entry.image)
            {
                continue;
            }
            if let Some(skip) = cache.index.skipped.iter().find(|s| still_broken(s, &entry)) {
                let sample = SkippedSample {
                    name: pair.name.clone(),
                    file: PathBuf::from(&skip.file),
                    cause: skip.cause.clone(),
                };
                if policy.strict {
                    return Err(broken_error(&sample));
                }
                broken.insert(pair.name.clone(), sample);
                recorded += 1;
                continue;
            }
            missing.push(pair);
        }
        let listed = |broken: &HashMap<String, SkippedSample>| -> Vec<SkippedSample> {
            let mut list = options.earlier.clone();
            list.extend(unique.iter().filter_map(|p| broken.get(&p.name).cloned()));
            list
        };

        let bar = (options.progress && !missing.is_empty()).then(|| {
            let bar = ProgressBar::new(missing.len() as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "caching image features {bar:30} {pos}/{len} images {per_sec} ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        });
        for sample in &options.earlier {
            warn(bar.as_ref(), sample);
        }
        let encoder = encoder.valid();
        let limits = Limits {
            check_audio: options.check_audio,
            strict: policy.strict,
        };
        for chunk in missing.chunks(options.shard_size) {
            let encoded = encode_images(chunk, &encoder, device, bar.as_ref(), limits)?;
            if !encoded.rows.is_empty() {
                let kept: Vec<&Pair> = encoded.rows.iter().map(|&i| chunk[i]).collect();
                cache.add_shard(&kept, encoded.features)?;
            }
            for (i, failure) in encoded.failed {
                let sample = SkippedSample {
                    name: chunk[i].name.clone(),
                    file: failure.file,
                    cause: failure.cause,
                };
                warn(bar.as_ref(), &sample);
                cache.record_skip(chunk[i], &sample);
                broken.insert(sample.name.clone(), sample);
            }
            cache.write_index()?;
            // Skips only grow: once over the limit, the whole run is.
            if options.earlier.len() + broken.len() > policy.allowed(total) {
                if let Some(bar) = &bar {
                    bar.abandon();
                }
                too_many(&policy, &options.data, &listed(&broken), total)?;
            }
        }
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        let report = SkipReport {
            total,
            checked: missing.len(),
            skipped: listed(&broken),
            recorded,
            listing: None,
        };
        report.guard(&policy, &options.data)?;
        let pairs = unique
            .into_iter()
            .filter(|p| !broken.contains_key(&p.name))
            .cloned()
            .collect();
        Ok(CacheBuild {
            cache,
            pairs,
            report,
        })
    }

    /// Writes `data` (`[pairs, dim]`) as the next shard and records it (in memory; see
    /// [`write_index`](Self::write_index)); the pairs are no longer recorded as skipped.
    fn add_shard(&mut self, pairs: &[&Pair], data: Vec<f32>) -> Result<(), TrainError> {
        let dim = data.len() / pairs.len();
        if self.index.dim == 0 {
            self.index.dim = dim;
        } else if self.index.dim != dim {
            return Err(cache_error(
                &self.dir,
                format!(
                    "the encoder gives {dim}-wide features but the cache holds {}-wide ones",
                    self.index.dim
                ),
            ));
        }
        let file = format!("shard-{:05}.npy", self.index.shards.len());
        let path = self.dir.join(&file);
        write_npy_atomic(&path, &[pairs.len(), dim], &data)?;
        let entries: Vec<CacheEntry> = pairs.iter().map(|p| cache_entry(p)).collect();
        self.index
            .skipped
            .retain(|s| entries.iter().all(|e| e.name != s.entry.name));
        self.append(CacheShard { file, entries }, data, &path)
    }

    /// Records `pair` as skipped for `sample`'s cause (replacing an older record of its name)
    /// and drops any older feature of its name.
    fn record_skip(&mut self, pair: &Pair, sample: &SkippedSample) {
        self.rows.remove(&pair.name);
        self.index.skipped.retain(|s| s.entry.name != pair.name);
        self.index.skipped.push(CacheSkip {
            entry: cache_entry(pair),
            file: sample.file.to_string_lossy().into_owned(),
            bytes: file_size(&sample.file),
            cause: sample.cause.clone(),
        });
    }

    /// Rewrites `index.json` atomically.
    fn write_index(&self) -> Result<(), TrainError> {
        let json = serde_json::to_vec_pretty(&self.index).map_err(|e| {
            TrainError::cache_caused(&self.dir, format!("cannot serialize the index: {e}"), e)
        })?;
        write_file_atomic(&self.dir.join(INDEX_FILE), &json)
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

/// The index entry of `pair`.
fn cache_entry(pair: &Pair) -> CacheEntry {
    CacheEntry {
        name: pair.name.clone(),
        image: pair.image.to_string_lossy().into_owned(),
        audio: pair.audio.to_string_lossy().into_owned(),
    }
}

/// Size of `path` in bytes, `None` when it cannot be read.
fn file_size(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.len())
}

/// Whether `skip` still answers for `entry`: the same pair, its file unchanged in size.
fn still_broken(skip: &CacheSkip, entry: &CacheEntry) -> bool {
    skip.entry == *entry && file_size(Path::new(&skip.file)) == skip.bytes
}

/// The error of a broken sample under a strict policy when only its record is at hand.
fn broken_error(sample: &SkippedSample) -> TrainError {
    TrainError::Data {
        path: sample.file.clone(),
        reason: format!(
            "{} (skip broken samples by leaving out --strict)",
            sample.cause
        ),
        source: None,
    }
}

/// Prints `sample`'s one-line warning on stderr, above the progress bar if there is one.
fn warn(bar: Option<&ProgressBar>, sample: &SkippedSample) {
    match bar {
        Some(bar) => bar.suspend(|| eprintln!("{}", sample.warning())),
        None => eprintln!("{}", sample.warning()),
    }
}

/// What [`encode_images`] checks and how it treats a failure.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// Decode the audio file too.
    check_audio: bool,
    /// Return the first failure as the error.
    strict: bool,
}

/// A sample that cannot be decoded.
#[derive(Debug)]
struct Failure {
    file: PathBuf,
    cause: String,
    error: Box<TrainError>,
}

/// The result of [`encode_images`].
#[derive(Debug, Default)]
struct Encoded {
    /// Indices (into the given pairs) of the encoded ones, ascending.
    rows: Vec<usize>,
    /// Their features, `[rows.len(), dim]` row-major.
    features: Vec<f32>,
    /// The pairs that cannot be decoded, ascending.
    failed: Vec<(usize, Failure)>,
}

/// z^V of the images of `pairs` that decode: decoding and preprocessing of the next
/// [`ENCODE_BATCH`] images (in parallel, on a loader thread) overlaps the encoder's forward
/// pass on the current ones. Under `limits.strict` the first failure (in order) is the error.
fn encode_images(
    pairs: &[&Pair],
    encoder: &ImageEncoder,
    device: &Device,
    bar: Option<&ProgressBar>,
    limits: Limits,
) -> Result<Encoded, TrainError> {
    let side = encoder.input_side();
    let input_side = encoder.input_side;
    std::thread::scope(|scope| {
        type Loaded = Vec<Result<Vec<f32>, Failure>>;
        let (sender, receiver) = sync_channel::<(usize, Loaded)>(2);
        scope.spawn(move || {
            for (b, batch) in pairs.chunks(ENCODE_BATCH).enumerate() {
                let loaded: Loaded = batch
                    .par_iter()
                    .map(|p| load_sample(p, input_side, limits.check_audio))
                    .collect();
                if sender.send((b * ENCODE_BATCH, loaded)).is_err() {
                    return;
                }
            }
        });
        let mut encoded = Encoded::default();
        for (offset, loaded) in receiver {
            let total = loaded.len();
            let mut pixels = Vec::new();
            let mut count = 0;
            for (i, result) in loaded.into_iter().enumerate() {
                match result {
                    Ok(values) => {
                        pixels.extend(values);
                        encoded.rows.push(offset + i);
                        count += 1;
                    }
                    Err(failure) if limits.strict => return Err(*failure.error),
                    Err(failure) => encoded.failed.push((offset + i, failure)),
                }
            }
            if count > 0 {
                let images =
                    Tensor::<4>::from_data(TensorData::new(pixels, [count, 3, side, side]), device);
                // [count, dim]
                let z = encoder.try_forward(images)?;
                let values =
                    z.into_data()
                        .try_into_vec::<f32>()
                        .map_err(|e| TrainError::Cache {
                            path: PathBuf::from("<image encoder output>"),
                            reason: format!("cannot read the features: {e}"),
                            source: Some(e.into()),
                        })?;
                encoded.features.extend(values);
            }
            if let Some(bar) = bar {
                bar.inc(total as u64);
            }
        }
        Ok(encoded)
    })
}

/// Decodes `pair`'s image and applies the preprocessing of an encoder with `input_side` (see
/// [`ImageEncoder::preprocess_image`]): `3 · side · side` values; with `check_audio`, then
/// decodes its audio file as training will.
fn load_sample(
    pair: &Pair,
    input_side: Option<usize>,
    check_audio: bool,
) -> Result<Vec<f32>, Failure> {
    let path = &pair.image;
    let image = image::open(path)
        .map_err(|e| {
            let cause = format!("cannot decode the image: {e}");
            Failure {
                file: path.clone(),
                error: Box::new(TrainError::cache_caused(path, cause.clone(), e)),
                cause,
            }
        })?
        .to_rgb8();
    let pixels = match input_side {
        None => preprocess_image(&image),
        Some(side) => preprocess_image_at(&image, side),
    }
    .map_err(|e| Failure {
        file: path.clone(),
        cause: format!("cannot prepare the image: {e}"),
        error: Box::new(e.into()),
    })?;
    if check_audio {
        sound2scene_audio::load_audio(&pair.audio).map_err(|e| Failure {
            file: pair.audio.clone(),
            cause: e.to_string(),
            error: Box::new(e.into()),
        })?;
    }
    Ok(pixels)
}

/// Writes a `float32` `.npy` file via a temporary name, fsynced, then renamed into place.
fn write_npy_atomic(path: &Path, shape: &[usize], data: &[f32]) -> Result<(), TrainError> {
    let tmp = path.with_extension("npy.tmp");
    sound2scene_audio::write_npy_f32(&tmp, shape, data)
        .map_err(|e| TrainError::cache_caused(&tmp, e.to_string(), e))?;
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
