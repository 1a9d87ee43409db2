//! The examples the alignment loop trains on: spectrogram inputs for f_A and the cached image
//! features z^V they are aligned to, assembled into batches ahead of the model.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::{Scope, ScopedJoinHandle};

use sound2scene_audio::{DecodeOptions, Spectrogram, SpectrogramConfig, Tiling};

use crate::data::Pair;
use crate::error::TrainError;
use crate::feature_cache::FeatureCache;
use crate::run::Fnv;

/// Batches prepared ahead of the one the model is working on.
pub const PREFETCH_BATCHES: usize = 2;

/// Where the audio encoder's input comes from.
#[derive(Debug, Clone)]
pub enum AudioInput {
    /// Audio files, decoded and turned into spectrograms for every batch (in parallel, on a
    /// loader thread, while the model works on the previous batch).
    Files {
        /// One file per example.
        paths: Vec<PathBuf>,
        /// The front end (`[257, 1004]` for the default 10 s clip); short clips are filled to
        /// the full length ([`Tiling::Fill`]) so that a batch has one width.
        spectrogram: SpectrogramConfig,
    },
    /// Spectrograms already in memory, all of one shape `[bins, frames]`.
    Spectrograms(Vec<Spectrogram>),
}

/// The alignment training set: per example a name, an audio input and an image feature.
#[derive(Debug, Clone)]
pub struct AlignData {
    names: Vec<String>,
    audio: AudioInput,
    /// `[len, dim]` row-major image features z^V.
    features: Vec<f32>,
    dim: usize,
}

/// One batch, as plain data, before it becomes tensors.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Indices of the examples (into [`AlignData`]).
    pub indices: Vec<usize>,
    /// Spectrograms `[batch, 1, bins, frames]` row-major.
    pub spectrograms: Vec<f32>,
    /// Shape of `spectrograms`.
    pub spectrogram_shape: [usize; 4],
    /// Image features z^V, `[batch, dim]` row-major.
    pub features: Vec<f32>,
    /// Width of a feature row.
    pub dim: usize,
}

impl Batch {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// Whether the batch holds no example.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }
}

fn data_error(reason: impl Into<String>) -> TrainError {
    TrainError::Data {
        path: PathBuf::from("<alignment data>"),
        reason: reason.into(),
        source: None,
    }
}

impl AlignData {
    /// Examples from files: each pair's audio (transformed with `spectrogram`) and its image
    /// feature from `cache`.
    ///
    /// Clips shorter than `spectrogram.seconds` are always repeated to the full length
    /// ([`Tiling::Fill`], whatever `spectrogram.tiling` says), so that every example of a batch
    /// has `spectrogram.frames()` columns. The official data loader tiles ten times only, which
    /// gives narrower spectrograms for clips under a tenth of the length and could not stack
    /// them into a batch; for longer clips the two cuts are the same.
    ///
    /// # Errors
    /// [`TrainError::Data`] for no pairs, [`TrainError::Cache`] when a pair is not in the cache
    /// (build it with [`FeatureCache::build`] first).
    pub fn from_pairs(
        pairs: &[Pair],
        cache: &FeatureCache,
        spectrogram: SpectrogramConfig,
    ) -> Result<Self, TrainError> {
        let spectrogram = SpectrogramConfig {
            tiling: Tiling::Fill,
            ..spectrogram
        };
        spectrogram.validate()?;
        let dim = cache.dim();
        let mut features = Vec::with_capacity(pairs.len() * dim);
        for pair in pairs {
            let row = cache.feature(&pair.name).ok_or_else(|| TrainError::Cache {
                path: cache.dir().to_path_buf(),
                reason: format!(
                    "no feature for '{}' ({}); build the cache for this data set",
                    pair.name,
                    pair.image.display()
                ),
                source: None,
            })?;
            features.extend_from_slice(row);
        }
        Self::new(
            pairs.iter().map(|p| p.name.clone()).collect(),
            AudioInput::Files {
                paths: pairs.iter().map(|p| p.audio.clone()).collect(),
                spectrogram,
            },
            features,
            dim,
        )
    }

    /// Examples held in memory: `names[i]` has spectrogram `spectrograms[i]` and image feature
    /// row `i` of `features` (`[names.len(), dim]` row-major).
    ///
    /// # Errors
    /// [`TrainError::Data`] when the lengths disagree, there is no example, the spectrograms
    /// differ in shape, or a feature is not finite.
    pub fn in_memory(
        names: Vec<String>,
        spectrograms: Vec<Spectrogram>,
        features: Vec<f32>,
        dim: usize,
    ) -> Result<Self, TrainError> {
        if let Some(first) = spectrograms.first()
            && let Some(bad) = spectrograms.iter().find(|s| s.shape() != first.shape())
        {
            return Err(data_error(format!(
                "spectrograms must share one shape: {:?} vs {:?}",
                first.shape(),
                bad.shape()
            )));
        }
        Self::new(names, AudioInput::Spectrograms(spectrograms), features, dim)
    }

    fn new(
        names: Vec<String>,
        audio: AudioInput,
        features: Vec<f32>,
        dim: usize,
    ) -> Result<Self, TrainError> {
        let n = names.len();
        let audio_len = match &audio {
            AudioInput::Files { paths, .. } => paths.len(),
            AudioInput::Spectrograms(specs) => specs.len(),
        };
        if n == 0 {
            return Err(data_error("no example to train on"));
        }
        if dim == 0 || audio_len != n || features.len() != n * dim {
            return Err(data_error(format!(
                "{n} names, {audio_len} audio inputs and {} feature values (width {dim}) do not \
                 describe the same examples",
                features.len()
            )));
        }
        if let Some(i) = features.iter().position(|v| !v.is_finite()) {
            return Err(data_error(format!(
                "the image feature of '{}' is not finite",
                names[i / dim]
            )));
        }
        Ok(Self {
            names,
            audio,
            features,
            dim,
        })
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there is no example (never true for a constructed value).
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Width of the image features (2048 in the paper).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The example names, in index order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The audio input.
    pub fn audio(&self) -> &AudioInput {
        &self.audio
    }

    /// A 64-bit FNV-1a fingerprint of the example names in order and the feature width, in hex:
    /// a checkpoint records it so a resume on other data is refused.
    pub fn fingerprint(&self) -> String {
        let mut hash = Fnv::new();
        hash.write(&(self.dim as u64).to_le_bytes());
        for name in &self.names {
            hash.write(name.as_bytes());
            hash.write(&[0]);
        }
        hash.hex()
    }

    /// Assembles the examples `indices` (decoding audio files in parallel when the input is
    /// files).
    ///
    /// # Errors
    /// [`TrainError::Audio`] when an audio file cannot be decoded; [`TrainError::Data`] for an
    /// empty or out-of-range index list or spectrograms of different shapes.
    pub fn batch(&self, indices: &[usize]) -> Result<Batch, TrainError> {
        if indices.is_empty() || indices.iter().any(|&i| i >= self.len()) {
            return Err(data_error(format!(
                "invalid batch indices {indices:?} for {} examples",
                self.len()
            )));
        }
        let loaded;
        let specs: Vec<&Spectrogram> = match &self.audio {
            AudioInput::Spectrograms(all) => indices.iter().map(|&i| &all[i]).collect(),
            AudioInput::Files { paths, spectrogram } => {
                let chosen: Vec<&PathBuf> = indices.iter().map(|&i| &paths[i]).collect();
                loaded = sound2scene_audio::spectrograms(
                    &chosen,
                    &DecodeOptions::default(),
                    spectrogram,
                )?;
                loaded.iter().collect()
            }
        };
        let [bins, frames] = specs[0].shape();
        if let Some(bad) = specs.iter().find(|s| s.shape() != [bins, frames]) {
            return Err(data_error(format!(
                "spectrograms in a batch must share one shape: {:?} vs {:?}",
                [bins, frames],
                bad.shape()
            )));
        }
        let mut spectrograms = Vec::with_capacity(indices.len() * bins * frames);
        let mut features = Vec::with_capacity(indices.len() * self.dim);
        for (spec, &i) in specs.iter().zip(indices) {
            spectrograms.extend_from_slice(spec.data());
            features.extend_from_slice(&self.features[i * self.dim..(i + 1) * self.dim]);
        }
        Ok(Batch {
            indices: indices.to_vec(),
            spectrograms,
            spectrogram_shape: [indices.len(), 1, bins, frames],
            features,
            dim: self.dim,
        })
    }

    /// Starts a loader thread in `scope` that assembles `batches` in order, keeping
    /// [`PREFETCH_BATCHES`] ready; the returned receiver yields them. Dropping the receiver
    /// stops the thread after its current batch.
    pub(crate) fn prefetch<'scope, 'env>(
        &'env self,
        scope: &'scope Scope<'scope, 'env>,
        batches: Vec<Vec<usize>>,
    ) -> (
        Receiver<Result<Batch, TrainError>>,
        ScopedJoinHandle<'scope, ()>,
    ) {
        let (sender, receiver) = sync_channel(PREFETCH_BATCHES);
        let handle = scope.spawn(move || {
            for indices in batches {
                if sender.send(self.batch(&indices)).is_err() {
                    return;
                }
            }
        });
        (receiver, handle)
    }
}
