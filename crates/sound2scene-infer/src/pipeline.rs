//! The sound-to-image pipeline: audio in, pictures out, with each step public so that
//! features can be cached, mixed and edited.
//!
//! The steps follow the paper's inference (Sec. 2): the log spectrogram of a 10 s clip goes
//! through the audio encoder f_A to z^A `[1, dim]` (dim 2048 for the released networks); z^A
//! is L2-normalized (as the official code does before calling G) and G draws `[n, 3, H, W]`
//! images from noise z and z^A.

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Int, Tensor, TensorData};
use image::RgbImage;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use sound2scene_audio::{Spectrogram, SpectrogramConfig, Waveform, load_audio, to_tensor};
use sound2scene_models::LoadOptions;
use sound2scene_models::ModelError;
use sound2scene_models::audio_encoder::{AudioEmbedding, AudioEncoder};
use sound2scene_models::biggan::{Generator, GeneratorConfig};
use sound2scene_models::checkpoint::{open_audio_encoder, open_generator, open_image_encoder};
use sound2scene_models::image_encoder::ImageEncoder;

use crate::draw::{DrawSettings, Noise};
use crate::error::{InferError, Result};
use crate::limits::{check_gain_db, check_mix_weight};

/// Where the networks' weights are.
#[derive(Debug, Clone)]
pub struct ModelPaths {
    /// The audio encoder: `sound2scene.pth` or a `.bpk`.
    pub audio_encoder: PathBuf,
    /// The generator: an IC-GAN experiment folder or a `.bpk`.
    pub generator: PathBuf,
    /// The image encoder (SwAV `.pth.tar` or `.bpk`), needed only for image features,
    /// composition and editing.
    pub image_encoder: Option<PathBuf>,
}

/// The three networks of Sound2Scene on one device.
pub struct SoundToScene {
    audio: Option<AudioEncoder>,
    generator: Generator,
    generator_config: GeneratorConfig,
    image: Option<ImageEncoder>,
    spectrogram: SpectrogramConfig,
    device: Device,
}

impl SoundToScene {
    /// Load the networks named in `paths` onto `device` (each loaded once).
    ///
    /// # Errors
    /// [`InferError::Model`] naming the file that failed to load.
    pub fn load(paths: &ModelPaths, device: &Device) -> Result<Self> {
        Self::load_parts(
            Some(&paths.audio_encoder),
            &paths.generator,
            paths.image_encoder.as_deref(),
            device,
        )
    }

    /// Load G and whichever encoders are named onto `device`: without f_A the pipeline draws
    /// from given features only ([`audio_features`](Self::audio_features) is refused).
    ///
    /// # Errors
    /// [`InferError::Model`] naming the file that failed to load.
    pub fn load_parts(
        audio_encoder: Option<&Path>,
        generator: &Path,
        image_encoder: Option<&Path>,
        device: &Device,
    ) -> Result<Self> {
        let options = LoadOptions::default();
        let audio = match audio_encoder {
            Some(path) => Some(open_audio_encoder(path, &options, device)?.0),
            None => None,
        };
        let (generator, generator_config) = open_generator(generator, &options, device)?;
        let image = match image_encoder {
            Some(path) => Some(open_image_encoder(path, &options, device)?.0),
            None => None,
        };
        let mut pipeline = Self::new_without_audio(generator, generator_config, image, device);
        pipeline.audio = audio;
        Ok(pipeline)
    }

    /// Assemble a pipeline from networks already in memory.
    pub fn new(
        audio: AudioEncoder,
        generator: Generator,
        generator_config: GeneratorConfig,
        image: Option<ImageEncoder>,
        device: &Device,
    ) -> Self {
        let mut pipeline = Self::new_without_audio(generator, generator_config, image, device);
        pipeline.audio = Some(audio);
        pipeline
    }

    fn new_without_audio(
        generator: Generator,
        generator_config: GeneratorConfig,
        image: Option<ImageEncoder>,
        device: &Device,
    ) -> Self {
        Self {
            audio: None,
            generator,
            generator_config,
            image,
            spectrogram: SpectrogramConfig::default(),
            device: device.clone(),
        }
    }

    /// Add (or replace) the image encoder.
    ///
    /// # Errors
    /// [`InferError::Model`] when the file does not load.
    pub fn with_image_encoder(mut self, path: impl AsRef<Path>) -> Result<Self> {
        let (image, _) = open_image_encoder(path, &LoadOptions::default(), &self.device)?;
        self.image = Some(image);
        Ok(self)
    }

    /// Use another spectrogram configuration (e.g. clips longer than 10 s).
    pub fn with_spectrogram(mut self, config: SpectrogramConfig) -> Self {
        self.spectrogram = config;
        self
    }

    /// The spectrogram configuration the audio goes through.
    pub fn spectrogram_config(&self) -> &SpectrogramConfig {
        &self.spectrogram
    }

    /// The audio encoder f_A, when one is loaded.
    pub fn audio_encoder(&self) -> Option<&AudioEncoder> {
        self.audio.as_ref()
    }

    /// Whether the audio encoder f_A is loaded (drawing from sounds needs it).
    pub fn has_audio_encoder(&self) -> bool {
        self.audio.is_some()
    }

    /// The device the networks run on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The generator's configuration (resolution, noise size).
    pub fn generator_config(&self) -> &GeneratorConfig {
        &self.generator_config
    }

    /// The generator G.
    pub fn generator_ref(&self) -> &Generator {
        &self.generator
    }

    /// The image encoder f_V, when one is loaded.
    pub fn image_encoder(&self) -> Option<&ImageEncoder> {
        self.image.as_ref()
    }

    /// The noise size of G.
    pub fn dim_z(&self) -> usize {
        self.generator_config.dim_z()
    }

    /// Audio features z^A `[n, dim]` of `waves` (not normalized). Clips under 1 s give
    /// narrower spectrograms (the official ten-fold tiling, see
    /// [`Tiling`](sound2scene_audio::Tiling)); they are encoded on their own, the rest in one batch.
    ///
    /// # Errors
    /// [`InferError::Invalid`] for an empty slice; [`InferError::NoAudioEncoder`] when the
    /// pipeline was loaded without f_A; the front end's and encoder's errors.
    pub fn audio_features(&self, waves: &[Waveform]) -> Result<Tensor<2>> {
        let encoder = self.audio.as_ref().ok_or(InferError::NoAudioEncoder)?;
        if waves.is_empty() {
            return Err(InferError::Invalid("no audio given".into()));
        }
        let specs = waves
            .iter()
            .map(|w| Spectrogram::compute_with(w, &self.spectrogram))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        encode_spectrograms(encoder, &specs, &self.device)
    }

    /// The audio feature z^A `[1, dim]` of one file.
    ///
    /// # Errors
    /// Decoding and encoding errors, naming the file.
    pub fn audio_feature_of_file(&self, path: impl AsRef<Path>) -> Result<Tensor<2>> {
        let wave = load_audio(path)?;
        self.audio_features(std::slice::from_ref(&wave))
    }

    /// Image features z^V `[n, dim]` of `images`, preprocessed as the encoder expects (the
    /// official 256 → 224 resizing for the released f_V).
    ///
    /// # Errors
    /// [`InferError::NoImageEncoder`] when no image encoder is loaded.
    pub fn image_features(&self, images: &[RgbImage]) -> Result<Tensor<2>> {
        let encoder = self.image.as_ref().ok_or(InferError::NoImageEncoder)?;
        let batch = encoder.preprocess(images, &self.device)?;
        Ok(encoder.try_forward(batch)?)
    }

    /// Noise `[count, dim_z]` drawn from N(0, z_var²) — the official code passes `z_var` as
    /// the standard deviation — the same for the same seed on every
    /// device (drawn on the CPU with ChaCha8, then uploaded).
    ///
    /// # Errors
    /// [`InferError::Invalid`] for a negative or non-finite `z_var`.
    pub fn noise(&self, count: usize, seed: u64, z_var: f32) -> Result<Tensor<2>> {
        sample_noise(count, self.dim_z(), seed, z_var, &self.device)
    }

    /// Draw images `[n, 3, H, W]` in `[-1, 1]` from features `[n, dim]` and noise
    /// `[n, dim_z]`; each feature is L2-normalized first, as the official code does.
    ///
    /// # Errors
    /// [`InferError::Model`] when the shapes do not fit G.
    pub fn generate_tensor(&self, features: Tensor<2>, noise: Tensor<2>) -> Result<Tensor<4>> {
        let features = l2_normalize(features);
        Ok(self.generator.try_forward(noise, features)?)
    }

    /// Draw `candidates` pictures per feature and keep, for each, the one the image encoder
    /// re-encodes closest to the feature (see [`generate_best_of`]).
    ///
    /// # Errors
    /// Those of [`generate_best_of`]; [`InferError::NoImageEncoder`] without f_V when
    /// `candidates` > 1.
    pub fn generate_reranked(
        &self,
        features: Tensor<2>,
        noise: Tensor<2>,
        candidates: usize,
    ) -> Result<Tensor<4>> {
        if candidates == 1 {
            return self.generate_tensor(features, noise);
        }
        let encoder = self.image.as_ref().ok_or(InferError::NoImageEncoder)?;
        generate_best_of(&self.generator, encoder, features, noise, candidates)
    }

    /// Draw `count` images of the scene that `wave` describes, with noise from `seed`.
    ///
    /// # Errors
    /// Those of [`audio_features`](Self::audio_features) and
    /// [`generate_tensor`](Self::generate_tensor).
    pub fn generate(&self, wave: &Waveform, count: usize, seed: u64) -> Result<Vec<RgbImage>> {
        let images = self.generate_batch(std::slice::from_ref(wave), count, seed, 1.0)?;
        Ok(images.into_iter().flatten().collect())
    }

    /// Draw `count` images for each of `waves` (the same noise for every sound, so the
    /// pictures differ only by the sound), noise scale `z_var` (1.0 in the official code).
    ///
    /// # Errors
    /// As [`generate`](Self::generate).
    pub fn generate_batch(
        &self,
        waves: &[Waveform],
        count: usize,
        seed: u64,
        z_var: f32,
    ) -> Result<Vec<Vec<RgbImage>>> {
        let features = self.audio_features(waves)?;
        let settings = DrawSettings {
            count,
            ..DrawSettings::default()
        };
        let drawn = self.draw(
            features,
            &Noise::Seeded { seed, z_var },
            &settings,
            |_, _| {},
        )?;
        let mut images = drawn.images.into_iter();
        Ok(waves
            .iter()
            .map(|_| images.by_ref().take(count).collect())
            .collect())
    }
}

/// Draw `candidates` pictures per feature with G and keep, for each, the one that the image
/// encoder f_V re-encodes closest (cosine) to the feature: "best of k" by the model's own image
/// encoder, an addition of this project (the official code draws once). Each feature is
/// L2-normalized first, as for a single draw; `candidates` 1 is that single draw.
///
/// # Shapes
/// - `features`: `[n, dim]`, in f_V's feature space (z^A or z^V)
/// - `noise`: `[n · candidates, dim_z]`; rows `i · candidates .. (i + 1) · candidates` are
///   feature `i`'s candidates
/// - output: `[n, 3, H, W]` in `[-1, 1]`
///
/// # Errors
/// [`InferError::Invalid`] for 0 candidates or a noise row count that is not
/// `n · candidates`; [`InferError::Model`] when the shapes do not fit the networks or f_V's
/// feature width is not `dim`.
pub fn generate_best_of(
    generator: &Generator,
    image_encoder: &ImageEncoder,
    features: Tensor<2>,
    noise: Tensor<2>,
    candidates: usize,
) -> Result<Tensor<4>> {
    let [n, dim] = features.dims();
    let [rows, _] = noise.dims();
    if candidates == 0 || rows != n * candidates {
        return Err(InferError::Invalid(format!(
            "best of k needs k >= 1 and n · k noise rows; got k = {candidates}, {n} features \
             and {rows} noise rows"
        )));
    }
    // [n · k, dim]: each feature repeated for its k candidates.
    let repeated = l2_normalize(features)
        .unsqueeze_dim::<3>(1)
        .repeat_dim(1, candidates)
        .reshape([n * candidates, dim]);
    let pictures = generator.try_forward(noise, repeated.clone())?; // [n · k, 3, H, W]
    if candidates == 1 {
        return Ok(pictures);
    }
    let encoded = image_encoder.try_forward_generated(pictures.clone())?; // [n · k, dim']
    let [_, width] = encoded.dims();
    if width != dim {
        return Err(ModelError::InputShape {
            expected: format!("[n, {width}] features, f_V's width, to compare its pictures with"),
            found: vec![n, dim],
        }
        .into());
    }
    let similarity = (l2_normalize(encoded) * repeated)
        .sum_dim(1)
        .reshape([n, candidates]);
    let best = similarity.argmax(1).reshape([n]); // [n], in 0..k
    let device = best.device();
    let offsets = Tensor::<1, Int>::arange(0..n as i64, &device) * candidates as i64;
    Ok(pictures.select(0, best + offsets))
}

/// Draw `[count, dim]` normal noise with standard deviation `z_var` (the official code's
/// `normal_(mean=0, std=z_var)`), deterministic in
/// `seed` and identical on every device.
///
/// # Errors
/// [`InferError::Invalid`] for a negative or non-finite `z_var`.
pub fn sample_noise(
    count: usize,
    dim: usize,
    seed: u64,
    z_var: f32,
    device: &Device,
) -> Result<Tensor<2>> {
    Ok(NoiseStream::new(dim, seed, z_var)?.next_rows(count, device))
}

/// The noise of [`sample_noise`] drawn a few rows at a time: the rows come in the same order
/// with the same values whatever the chunks, so a batched draw gives every picture the noise
/// that one large draw would give it.
pub struct NoiseStream {
    rng: ChaCha8Rng,
    normal: Normal<f32>,
    dim: usize,
}

impl NoiseStream {
    /// A stream of `dim`-wide rows from N(0, z_var²), seeded with `seed` (ChaCha8).
    ///
    /// # Errors
    /// [`InferError::Invalid`] for a negative or non-finite `z_var`.
    pub fn new(dim: usize, seed: u64, z_var: f32) -> Result<Self> {
        let invalid = || InferError::Invalid(format!("z_var must be finite and >= 0, got {z_var}"));
        if !z_var.is_finite() {
            return Err(invalid());
        }
        let normal = Normal::new(0.0f32, z_var).map_err(|_| invalid())?;
        Ok(Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
            normal,
            dim,
        })
    }

    /// The next `rows` rows, `[rows, dim]` on `device`.
    pub fn next_rows(&mut self, rows: usize, device: &Device) -> Tensor<2> {
        let values = self.next_values(rows);
        Tensor::from_data(TensorData::new(values, [rows, self.dim]), device)
    }

    /// The next `rows` rows on the host, row-major (`rows · dim` values).
    pub fn next_values(&mut self, rows: usize) -> Vec<f32> {
        (0..rows * self.dim)
            .map(|_| self.normal.sample(&mut self.rng))
            .collect()
    }
}

/// `wave` with `mix` (another sound and its weight in `[0, 1]`; `wave` gets `1 - weight`)
/// mixed in, then its volume changed by `gain_db` dB (within ±[`MAX_GAIN_DB`]), the order
/// `generate --mix --gain-db` applies them in.
///
/// [`MAX_GAIN_DB`]: crate::limits::MAX_GAIN_DB
///
/// # Errors
/// [`InferError::OutOfRange`] for a weight or gain out of range; the waveform's own errors.
pub fn mix_and_gain(
    wave: Waveform,
    mix: Option<(&Waveform, f32)>,
    gain_db: Option<f32>,
) -> Result<Waveform> {
    let mut wave = wave;
    if let Some((other, weight)) = mix {
        let weight = check_mix_weight("mix weight", weight)?;
        wave = Waveform::mix(&[(&wave, 1.0 - weight), (other, weight)])?;
    }
    if let Some(db) = gain_db {
        wave = wave.gain_db(check_gain_db("gain", db)?)?;
    }
    Ok(wave)
}

/// Each row of `[n, d]` divided by its L2 norm (PyTorch `F.normalize(x, dim=1)`, as IC-GAN and
/// Sound2Scene normalize the instance feature; rows of zeros stay zero): the workspace's one
/// [`sound2scene_models::normalize`], re-exported under the name this crate has always used.
pub use sound2scene_models::normalize::l2_normalize_rows as l2_normalize;

/// z^A `[n, dim]` of spectrograms that may differ in width: one batch per width, rows in the
/// order of `specs`.
///
/// # Errors
/// [`InferError::Invalid`] for no spectrogram; the encoder's errors.
pub fn encode_spectrograms(
    encoder: &AudioEncoder,
    specs: &[Spectrogram],
    device: &Device,
) -> Result<Tensor<2>> {
    Ok(embed_spectrograms(encoder, specs, device)?.feature)
}

/// The audio encoder's outputs (z^A `[n, dim]` and the pooled trunk `[n, 512]`) of
/// spectrograms that may differ in width: one batch when they all have one width (the usual
/// case), else one per spectrogram; rows in the order of `specs`.
///
/// # Errors
/// [`InferError::Invalid`] for no spectrogram; the encoder's errors.
pub fn embed_spectrograms(
    encoder: &AudioEncoder,
    specs: &[Spectrogram],
    device: &Device,
) -> Result<AudioEmbedding> {
    let Some(first) = specs.first() else {
        return Err(InferError::Invalid("no spectrogram given".into()));
    };
    if specs.iter().all(|s| s.shape() == first.shape()) {
        // [n, 1, 257, frames]
        return Ok(encoder.try_forward(to_tensor(specs, device)?)?);
    }
    let mut features = Vec::with_capacity(specs.len());
    let mut pooled = Vec::with_capacity(specs.len());
    for spec in specs {
        let out = encoder.try_forward(to_tensor(std::slice::from_ref(spec), device)?)?;
        features.push(out.feature);
        pooled.push(out.pooled);
    }
    Ok(AudioEmbedding {
        feature: Tensor::cat(features, 0),
        pooled: Tensor::cat(pooled, 0),
    })
}
