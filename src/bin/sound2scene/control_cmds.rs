//! The paper's controls as commands, each writing one labelled PNG grid.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use burn::tensor::Tensor;
use sound2scene::controls::{Interpolation, InversionConfig, compose, interpolate};
use sound2scene::pipeline::{ModelPaths, SoundToScene};
use sound2scene::visual::{labelled_grid, tensor_to_images};
use sound2scene::world_eval::bundle::{AUDIO_ENCODER_FILE, GENERATOR_FILE};

use crate::DeviceArgs;
use crate::audio_cmds::load_audio_reported;
use crate::model_cmds::{check_rerank, image_encoder_path, open_rgb, or_bundled};

/// The networks every control command loads.
#[derive(clap::Args, Clone)]
pub struct PipelineArgs {
    /// The audio encoder: sound2scene.pth or a .bpk (default: the bundled sound2scene-tiny
    /// model's).
    #[arg(long)]
    audio_weights: Option<PathBuf>,
    /// The generator: an IC-GAN experiment folder or a .bpk (default: the bundled model's).
    #[arg(long)]
    generator: Option<PathBuf>,
    /// The image encoder f_V, for compose, edit and --rerank: SwAV .pth.tar or a .bpk
    /// (default: the bundled model's).
    #[arg(long)]
    image_weights: Option<PathBuf>,
    /// Draw K pictures per picture and keep the one f_V re-encodes closest to the row's
    /// feature (best of K; not in the official code, which draws once). Not for edit.
    #[arg(long, default_value_t = 1)]
    rerank: usize,
    /// Images per row (different noise, the same in every row).
    #[arg(long, default_value_t = 3)]
    count: usize,
    /// Seed of the noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The picture to write.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    device: DeviceArgs,
}

impl PipelineArgs {
    /// The pipeline, with f_V when the command needs it or `--rerank` is above 1.
    fn load(&self, needs_image_encoder: bool) -> Result<SoundToScene> {
        check_rerank(self.rerank)?;
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
    fn draw_rows(
        &self,
        pipeline: &SoundToScene,
        features: Tensor<2>,
        labels: &[String],
    ) -> Result<()> {
        let count = self.count.max(1);
        // Picture c of every row has the candidates c·k .. (c+1)·k.
        let noise = pipeline.noise(count * self.rerank, self.seed, 1.0)?;
        let mut images = Vec::new();
        for row in 0..features.dims()[0] {
            let feature = features.clone().narrow(0, row, 1).repeat_dim(0, count);
            images.extend(tensor_to_images(pipeline.generate_reranked(
                feature,
                noise.clone(),
                self.rerank,
            )?));
        }
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

/// Arguments of `sound2scene volume-sweep`.
#[derive(clap::Args)]
pub struct VolumeSweepArgs {
    /// The sound.
    #[arg(long)]
    audio: PathBuf,
    /// Gains in dB, one row each.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "-12,-6,0,6,12",
        allow_hyphen_values = true
    )]
    gains: Vec<f32>,
    #[command(flatten)]
    pipeline: PipelineArgs,
}

/// One row per gain: louder sounds should draw bigger or more dynamic sources.
pub fn volume_sweep(args: VolumeSweepArgs) -> Result<()> {
    let pipeline = args.pipeline.load(false)?;
    let wave = load_audio_reported(&args.audio)?;
    let waves = args
        .gains
        .iter()
        .map(|db| wave.gain_db(*db))
        .collect::<Result<Vec<_>, _>>()?;
    let features = pipeline.audio_features(&waves)?;
    let labels: Vec<String> = args.gains.iter().map(|g| format!("{g:+} dB")).collect();
    args.pipeline.draw_rows(&pipeline, features, &labels)
}

/// Arguments of `sound2scene interpolate`.
#[derive(clap::Args)]
pub struct InterpolateArgs {
    /// The first sound.
    #[arg(long)]
    from: PathBuf,
    /// The second sound.
    #[arg(long)]
    to: PathBuf,
    /// Number of rows, endpoints included.
    #[arg(long, default_value_t = 5)]
    steps: usize,
    /// Interpolate along the great circle instead of a straight line.
    #[arg(long)]
    slerp: bool,
    #[command(flatten)]
    pipeline: PipelineArgs,
}

/// One row per step between two sounds' features, with fixed noise.
pub fn interpolate_cmd(args: InterpolateArgs) -> Result<()> {
    let pipeline = args.pipeline.load(false)?;
    let a = pipeline.audio_features(std::slice::from_ref(&load_audio_reported(&args.from)?))?;
    let b = pipeline.audio_features(std::slice::from_ref(&load_audio_reported(&args.to)?))?;
    let mode = if args.slerp {
        Interpolation::Spherical
    } else {
        Interpolation::Linear
    };
    let features = interpolate(a, b, args.steps, mode)?;
    let labels: Vec<String> = (0..args.steps)
        .map(|i| format!("t={:.2}", i as f32 / (args.steps - 1) as f32))
        .collect();
    args.pipeline.draw_rows(&pipeline, features, &labels)
}

/// Arguments of `sound2scene compose`.
#[derive(clap::Args)]
pub struct ComposeArgs {
    /// The photo.
    #[arg(long)]
    image: PathBuf,
    /// The sound.
    #[arg(long)]
    audio: PathBuf,
    /// Weights of the sound, one row each (0 = the photo alone, 1 = the sound alone).
    #[arg(long, value_delimiter = ',', default_value = "0,0.25,0.5,0.75,1")]
    alpha: Vec<f32>,
    #[command(flatten)]
    pipeline: PipelineArgs,
}

/// Rows from the photo's feature to the sound's, through their blends.
pub fn compose_cmd(args: ComposeArgs) -> Result<()> {
    let pipeline = args.pipeline.load(true)?;
    let image = pipeline.image_features(&[open_rgb(&args.image)?])?;
    let audio =
        pipeline.audio_features(std::slice::from_ref(&load_audio_reported(&args.audio)?))?;
    let rows = args
        .alpha
        .iter()
        .map(|a| compose(image.clone(), audio.clone(), *a))
        .collect::<Result<Vec<_>, _>>()?;
    let labels: Vec<String> = args.alpha.iter().map(|a| format!("a={a}")).collect();
    args.pipeline
        .draw_rows(&pipeline, Tensor::cat(rows, 0), &labels)
}

/// Arguments of `sound2scene edit`.
#[derive(clap::Args)]
pub struct EditArgs {
    /// The photo to edit.
    #[arg(long)]
    image: PathBuf,
    /// The quiet version of the sound.
    #[arg(long)]
    quiet: PathBuf,
    /// The loud version of the sound.
    #[arg(long)]
    loud: PathBuf,
    /// Strengths of the edit, one column each.
    #[arg(long, value_delimiter = ',', default_value = "0,0.5,1")]
    strength: Vec<f32>,
    /// Inversion steps.
    #[arg(long, default_value_t = 100)]
    steps: usize,
    #[command(flatten)]
    pipeline: PipelineArgs,
}

/// Invert the photo into G, then move its feature along z^A(loud) − z^A(quiet).
pub fn edit(args: EditArgs) -> Result<()> {
    if args.strength.is_empty() {
        bail!("give at least one --strength");
    }
    if args.pipeline.rerank != 1 {
        bail!("edit draws from the photo's inverted noise; --rerank does not apply to it");
    }
    let pipeline = args.pipeline.load(true)?;
    let photo = open_rgb(&args.image)?;
    let feature = pipeline.image_features(std::slice::from_ref(&photo))?;
    let config = InversionConfig {
        steps: args.steps,
        seed: args.pipeline.seed,
        ..InversionConfig::default()
    };
    let bar = indicatif::ProgressBar::new(args.steps as u64).with_message("inverting");
    let inversion = pipeline.invert(&photo, feature, &config, |_, err| {
        bar.set_message(format!("pixel mse {err:.4}"));
        bar.inc(1);
    })?;
    bar.finish_and_clear();
    println!(
        "inversion: pixel mse {:.4} -> {:.4}",
        inversion.errors.first().copied().unwrap_or(f32::NAN),
        inversion.errors.last().copied().unwrap_or(f32::NAN)
    );
    let quiet =
        pipeline.audio_features(std::slice::from_ref(&load_audio_reported(&args.quiet)?))?;
    let loud = pipeline.audio_features(std::slice::from_ref(&load_audio_reported(&args.loud)?))?;
    let mut images = Vec::new();
    for s in &args.strength {
        images.extend(tensor_to_images(pipeline.edit(
            &inversion,
            quiet.clone(),
            loud.clone(),
            *s,
        )?));
    }
    let labels = vec![format!(
        "strength {}",
        args.strength
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    )];
    labelled_grid(&images, args.strength.len(), &labels)
        .save(&args.pipeline.out)
        .with_context(|| format!("cannot write {}", args.pipeline.out.display()))?;
    println!("wrote {}", args.pipeline.out.display());
    Ok(())
}
