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

use crate::audio::{AudioError, Spectrogram, SpectrogramConfig, Waveform, load_audio, to_tensor};
use crate::models::audio_encoder::AudioEncoder;
use crate::models::biggan::{Generator, GeneratorConfig};
use crate::models::checkpoint::{open_audio_encoder, open_generator, open_image_encoder};
use crate::models::image_encoder::ImageEncoder;
use crate::models::{LoadOptions, ModelError};
use crate::visual::tensor_to_images;

/// Errors of the pipeline: from the audio front end or from the networks.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Decoding or the spectrogram failed.
    #[error(transparent)]
    Audio(#[from] AudioError),
    /// Loading or running a network failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The request itself is invalid (e.g. zero images, a weight that is not finite).
    #[error("{0}")]
    Invalid(String),
    /// An operation needs the image encoder, which was not loaded.
    #[error("this needs the image encoder: load one with `SoundToScene::with_image_encoder`")]
    NoImageEncoder,
}

/// Result of the pipeline.
pub type Result<T> = std::result::Result<T, PipelineError>;

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
    audio: AudioEncoder,
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
    /// [`PipelineError::Model`] naming the file that failed to load.
    pub fn load(paths: &ModelPaths, device: &Device) -> Result<Self> {
        let options = LoadOptions::default();
        let (audio, _) = open_audio_encoder(&paths.audio_encoder, &options, device)?;
        let (generator, generator_config) = open_generator(&paths.generator, &options, device)?;
        let image = match &paths.image_encoder {
            Some(path) => Some(open_image_encoder(path, &options, device)?.0),
            None => None,
        };
        Ok(Self::new(audio, generator, generator_config, image, device))
    }

    /// Assemble a pipeline from networks already in memory.
    pub fn new(
        audio: AudioEncoder,
        generator: Generator,
        generator_config: GeneratorConfig,
        image: Option<ImageEncoder>,
        device: &Device,
    ) -> Self {
        Self {
            audio,
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
    /// [`PipelineError::Model`] when the file does not load.
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

    /// The noise size of G.
    pub fn dim_z(&self) -> usize {
        self.generator_config.dim_z()
    }

    /// Audio features z^A `[n, dim]` of `waves` (not normalized). Clips under 1 s give
    /// narrower spectrograms (the official ten-fold tiling, see
    /// [`Tiling`](crate::audio::Tiling)); they are encoded on their own, the rest in one batch.
    ///
    /// # Errors
    /// [`PipelineError::Invalid`] for an empty slice; the front end's and encoder's errors.
    pub fn audio_features(&self, waves: &[Waveform]) -> Result<Tensor<2>> {
        if waves.is_empty() {
            return Err(PipelineError::Invalid("no audio given".into()));
        }
        let specs = waves
            .iter()
            .map(|w| Spectrogram::compute_with(w, &self.spectrogram))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        encode_spectrograms(&self.audio, &specs, &self.device)
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
    /// [`PipelineError::NoImageEncoder`] when no image encoder is loaded.
    pub fn image_features(&self, images: &[RgbImage]) -> Result<Tensor<2>> {
        let encoder = self.image.as_ref().ok_or(PipelineError::NoImageEncoder)?;
        let batch = encoder.preprocess(images, &self.device)?;
        Ok(encoder.forward(batch)?)
    }

    /// Noise `[count, dim_z]` drawn from N(0, z_var²) — the official code passes `z_var` as
    /// the standard deviation — the same for the same seed on every
    /// device (drawn on the CPU with ChaCha8, then uploaded).
    ///
    /// # Errors
    /// [`PipelineError::Invalid`] for a negative or non-finite `z_var`.
    pub fn noise(&self, count: usize, seed: u64, z_var: f32) -> Result<Tensor<2>> {
        sample_noise(count, self.dim_z(), seed, z_var, &self.device)
    }

    /// Draw images `[n, 3, H, W]` in `[-1, 1]` from features `[n, dim]` and noise
    /// `[n, dim_z]`; each feature is L2-normalized first, as the official code does.
    ///
    /// # Errors
    /// [`PipelineError::Model`] when the shapes do not fit G.
    pub fn generate_tensor(&self, features: Tensor<2>, noise: Tensor<2>) -> Result<Tensor<4>> {
        let features = l2_normalize(features);
        Ok(self.generator.try_forward(noise, features)?)
    }

    /// Draw `candidates` pictures per feature and keep, for each, the one the image encoder
    /// re-encodes closest to the feature (see [`generate_best_of`]).
    ///
    /// # Errors
    /// Those of [`generate_best_of`]; [`PipelineError::NoImageEncoder`] without f_V when
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
        let encoder = self.image.as_ref().ok_or(PipelineError::NoImageEncoder)?;
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
        if count == 0 {
            return Err(PipelineError::Invalid("count must be at least 1".into()));
        }
        let features = self.audio_features(waves)?;
        let noise = self.noise(count, seed, z_var)?;
        let mut out = Vec::with_capacity(waves.len());
        for i in 0..waves.len() {
            let feature = features.clone().narrow(0, i, 1).repeat_dim(0, count);
            let images = self.generate_tensor(feature, noise.clone())?;
            out.push(tensor_to_images(images));
        }
        Ok(out)
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
/// [`PipelineError::Invalid`] for 0 candidates or a noise row count that is not
/// `n · candidates`; [`PipelineError::Model`] when the shapes do not fit the networks or f_V's
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
        return Err(PipelineError::Invalid(format!(
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
    let encoded = image_encoder.forward_generated(pictures.clone())?; // [n · k, dim']
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
/// [`PipelineError::Invalid`] for a negative or non-finite `z_var`.
pub fn sample_noise(
    count: usize,
    dim: usize,
    seed: u64,
    z_var: f32,
    device: &Device,
) -> Result<Tensor<2>> {
    let normal = Normal::new(0.0f32, z_var).map_err(|_| {
        PipelineError::Invalid(format!("z_var must be finite and >= 0, got {z_var}"))
    })?;
    if !z_var.is_finite() {
        return Err(PipelineError::Invalid(format!(
            "z_var must be finite and >= 0, got {z_var}"
        )));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let values: Vec<f32> = (0..count * dim).map(|_| normal.sample(&mut rng)).collect();
    Ok(Tensor::from_data(
        TensorData::new(values, [count, dim]),
        device,
    ))
}

/// Divide each row of `[n, d]` by its L2 norm (rows of zeros stay zero).
pub fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().powi_scalar(2).sum_dim(1).sqrt().clamp_min(1e-12);
    x / norm
}

/// z^A `[n, dim]` of spectrograms that may differ in width: one batch per width, rows in the
/// order of `specs`.
///
/// # Errors
/// [`PipelineError::Invalid`] for no spectrogram; the encoder's errors.
pub fn encode_spectrograms(
    encoder: &AudioEncoder,
    specs: &[Spectrogram],
    device: &Device,
) -> Result<Tensor<2>> {
    let Some(first) = specs.first() else {
        return Err(PipelineError::Invalid("no spectrogram given".into()));
    };
    if specs.iter().all(|s| s.shape() == first.shape()) {
        // [n, 1, 257, frames]
        return Ok(encoder.forward(to_tensor(specs, device)?)?.feature);
    }
    let mut rows = Vec::with_capacity(specs.len());
    for spec in specs {
        let batch = to_tensor(std::slice::from_ref(spec), device)?;
        rows.push(encoder.forward(batch)?.feature);
    }
    Ok(Tensor::cat(rows, 0))
}
