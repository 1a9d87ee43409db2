//! What the commands share: reading their inputs, the bundled model as the default weights,
//! the networks the control commands load, and the progress of a draw.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::{Device, Tensor, TensorData};
use indicatif::{ProgressBar, ProgressStyle};
use sound2scene::audio::{
    AudioError, DecodeOptions, MODEL_SAMPLE_RATE, SpectrogramConfig, Tiling, Waveform,
    load_audio_reporting, read_npy_f32, write_npy_f32,
};
use sound2scene::infer::bundle::{
    AUDIO_ENCODER_FILE, GENERATOR_FILE, IMAGE_ENCODER_FILE, bundled_file,
};
use sound2scene::infer::limits::{check_batch_size, check_count, check_rerank};
use sound2scene::infer::visual::labelled_grid;
use sound2scene::infer::{DrawSettings, ModelPaths, Noise, SoundToScene};

use crate::DeviceArgs;

/// Decode `path` for the model (mono, 16 kHz) and print on stderr what the decoder noticed on
/// the way, e.g. "warning: cut.wav declares 10.0 s, holds 0.03 s: …" for a cut-off file.
pub fn load_audio_reported(path: &Path) -> Result<Waveform, AudioError> {
    let decoded = load_audio_reporting(path, &DecodeOptions::default(), MODEL_SAMPLE_RATE)?;
    for warning in &decoded.warnings {
        eprintln!("warning: {warning}");
    }
    Ok(decoded.wave)
}

/// The front end's configuration: the official one, filling short clips to the full length
/// when `fill` is set.
pub fn spectrogram_config(fill: bool) -> SpectrogramConfig {
    SpectrogramConfig {
        tiling: if fill { Tiling::Fill } else { Tiling::Official },
        ..SpectrogramConfig::default()
    }
}

/// Write a `[rows, cols]` tensor as a float32 .npy file.
pub fn write_matrix(path: &Path, tensor: Tensor<2>) -> Result<()> {
    let dims = tensor.dims();
    let values = tensor
        .into_data()
        .try_into_vec_as::<f32>()
        .map_err(|e| anyhow::anyhow!("cannot read the result back: {e:?}"))?;
    write_npy_f32(path, &dims, &values)?;
    Ok(())
}

/// Read a `.npy` array as a `[n, d]` tensor (a `[d]` vector becomes `[1, d]`).
pub fn read_matrix(path: &Path, device: &Device) -> Result<Tensor<2>> {
    let array = read_npy_f32(path)?;
    let [n, d] = match array.shape.as_slice() {
        [d] => [1, *d],
        [n, d] => [*n, *d],
        other => bail!(
            "{}: expected a [n, d] array, found shape {other:?}",
            path.display()
        ),
    };
    Ok(Tensor::from_data(
        TensorData::new(array.data, [n, d]),
        device,
    ))
}

/// Open an image file as RGB, naming the file on failure.
pub fn open_rgb(path: &Path) -> Result<image::RgbImage> {
    Ok(image::open(path)
        .with_context(|| format!("cannot read the image {}", path.display()))?
        .to_rgb8())
}

/// `given`, or the bundled model's `file` when none is given.
pub(crate) fn or_bundled(given: Option<&Path>, file: &str) -> Result<PathBuf> {
    match given {
        Some(path) => Ok(path.to_path_buf()),
        None => bundled_file(file)
            .context("no weights given: pass them (--generator, --audio-weights, --image-weights)"),
    }
}

/// The image encoder to load: `given`, or the bundled one, which fits only the bundled
/// networks, so it is refused when the caller brought its own (`own_networks`).
pub(crate) fn image_encoder_path(given: Option<&Path>, own_networks: bool) -> Result<PathBuf> {
    if own_networks && given.is_none() {
        bail!(
            "give --image-weights too: with --audio-weights or --generator the bundled image \
             encoder does not fit (it only fits the bundled model)"
        );
    }
    or_bundled(given, IMAGE_ENCODER_FILE)
}

/// A progress bar on stderr over the generator rows of a draw, shown once a draw takes more
/// than one batch (indicatif draws nothing when stderr is not a terminal).
#[derive(Default)]
pub(crate) struct DrawProgress(Option<ProgressBar>);

impl DrawProgress {
    /// Record that `done` of `total` generator rows are drawn.
    pub(crate) fn update(&mut self, done: usize, total: usize) {
        if self.0.is_none() && done < total {
            let bar = ProgressBar::new(total as u64);
            bar.set_style(
                ProgressStyle::with_template("{bar:30} {pos}/{len} drawn  [{eta_precise}]")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            self.0 = Some(bar);
        }
        if let Some(bar) = &self.0 {
            bar.set_position(done as u64);
        }
    }

    /// Remove the bar.
    pub(crate) fn finish(self) {
        if let Some(bar) = self.0 {
            bar.finish_and_clear();
        }
    }
}

/// The networks every control command loads.
#[derive(clap::Args, Clone)]
pub struct PipelineArgs {
    /// The audio encoder: sound2scene.pth or a .bpk (default: the bundled sound2scene-tiny
    /// model's).
    #[arg(long)]
    pub(crate) audio_weights: Option<PathBuf>,
    /// The generator: an IC-GAN experiment folder or a .bpk (default: the bundled model's).
    #[arg(long)]
    pub(crate) generator: Option<PathBuf>,
    /// The image encoder f_V, for compose, edit and --rerank: SwAV .pth.tar or a .bpk
    /// (default: the bundled model's).
    #[arg(long)]
    pub(crate) image_weights: Option<PathBuf>,
    /// Draw K pictures per picture and keep the one f_V re-encodes closest to the row's
    /// feature (best of K, K at most 1000; not in the official code, which draws once). Not
    /// for edit.
    #[arg(long, default_value_t = 1)]
    pub(crate) rerank: usize,
    /// Images per row (different noise, the same in every row; at most 10000).
    #[arg(long, default_value_t = 3)]
    pub(crate) count: usize,
    /// Generator rows (pictures x --rerank candidates) per forward pass: bounds the memory
    /// without changing the pictures (default: 64 at 32x32, fewer for larger pictures).
    #[arg(long)]
    pub(crate) batch_size: Option<usize>,
    /// Seed of the noise.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// The picture to write.
    #[arg(long)]
    pub(crate) out: PathBuf,
    #[command(flatten)]
    pub(crate) device: DeviceArgs,
}

impl PipelineArgs {
    /// The pipeline, with f_V when the command needs it or `--rerank` is above 1.
    pub(crate) fn load(&self, needs_image_encoder: bool) -> Result<SoundToScene> {
        check_rerank("--rerank", self.rerank)?;
        check_count("--count", self.count)?;
        if let Some(rows) = self.batch_size {
            check_batch_size("--batch-size", rows)?;
        }
        let device = self.device.device.device()?;
        let own_networks = self.audio_weights.is_some() || self.generator.is_some();
        let image_encoder = (needs_image_encoder || self.rerank > 1)
            .then(|| image_encoder_path(self.image_weights.as_deref(), own_networks))
            .transpose()?;
        let paths = ModelPaths {
            audio_encoder: or_bundled(self.audio_weights.as_deref(), AUDIO_ENCODER_FILE)?,
            generator: or_bundled(self.generator.as_deref(), GENERATOR_FILE)?,
            image_encoder,
        };
        Ok(SoundToScene::load(&paths, &device)?)
    }

    /// Draw `count` images for each row feature `[rows, dim]` with shared noise (best of
    /// `--rerank`) and save the grid with the given row labels.
    pub(crate) fn draw_rows(
        &self,
        pipeline: &SoundToScene,
        features: Tensor<2>,
        labels: &[String],
    ) -> Result<()> {
        let count = self.count;
        // Picture c of every row has the candidates c·k .. (c+1)·k of the seed's noise.
        let noise = Noise::Seeded {
            seed: self.seed,
            z_var: 1.0,
        };
        let settings = DrawSettings {
            count,
            rerank: self.rerank,
            batch_size: self.batch_size,
            keep_raw: false,
        };
        let mut progress = DrawProgress::default();
        let drawn = pipeline.draw(features, &noise, &settings, |done, total| {
            progress.update(done, total)
        });
        progress.finish();
        let images = drawn?.images;
        labelled_grid(&images, count, labels)
            .save(&self.out)
            .with_context(|| format!("cannot write {}", self.out.display()))?;
        println!(
            "wrote {} ({} rows x {count} images)",
            self.out.display(),
            labels.len()
        );
        Ok(())
    }
}
