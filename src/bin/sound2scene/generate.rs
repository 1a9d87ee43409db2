//! `sound2scene generate`: pictures of the scene of a sound (or of given features), a thin call
//! to [`SoundToScene::draw`].

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use sound2scene::audio::write_npy_f32;
use sound2scene::infer::bundle::{AUDIO_ENCODER_FILE, GENERATOR_FILE};
use sound2scene::infer::limits::{
    check_batch_size, check_count, check_gain_db, check_mix_weight, check_rerank,
};
use sound2scene::infer::visual::grid;
use sound2scene::infer::{DrawSettings, Noise, SoundToScene, mix_and_gain};

use crate::DeviceArgs;
use crate::common::{
    DrawProgress, image_encoder_path, load_audio_reported, or_bundled, read_matrix,
    spectrogram_config,
};

/// Arguments of `sound2scene generate`.
#[derive(clap::Args)]
pub struct GenerateArgs {
    /// The generator: an IC-GAN experiment folder or a .bpk from `convert` (default: the
    /// bundled sound2scene-tiny model's).
    #[arg(long)]
    generator: Option<PathBuf>,
    /// The sound to draw.
    #[arg(long, conflicts_with = "feature", required_unless_present = "feature")]
    audio: Option<PathBuf>,
    /// The audio encoder for --audio: sound2scene.pth or a .bpk (default: the bundled
    /// sound2scene-tiny model's).
    #[arg(long, requires = "audio")]
    audio_weights: Option<PathBuf>,
    /// Mix this sound into --audio before encoding.
    #[arg(long, requires = "audio")]
    mix: Option<PathBuf>,
    /// Weight of --mix in the mix, in [0, 1] (--audio gets 1 - W).
    #[arg(long, default_value_t = 0.5, requires = "mix")]
    mix_weight: f32,
    /// Change the volume of the sound by this many dB before encoding (within ±60).
    #[arg(long, allow_hyphen_values = true)]
    gain_db: Option<f32>,
    /// Repeat a clip shorter than 1 s until 10 s instead of the official ten repetitions.
    #[arg(long, requires = "audio")]
    fill: bool,
    /// Conditioning features instead of a sound: [n, dim] or [dim] .npy, dim being G's
    /// instance size (2048 for IC-GAN).
    #[arg(long)]
    feature: Option<PathBuf>,
    /// Noise [n, dim_z] .npy instead of --seed.
    #[arg(long)]
    z: Option<PathBuf>,
    /// Seed of the noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Images per feature (at most 10000).
    #[arg(long, default_value_t = 1)]
    count: usize,
    /// Standard deviation of the noise (the official --z_var).
    #[arg(long, default_value_t = 1.0)]
    z_var: f32,
    /// Draw K pictures per image and keep the one the image encoder re-encodes closest to
    /// the feature (best of K, K at most 1000; not in the official code, which draws once).
    #[arg(long, default_value_t = 1)]
    rerank: usize,
    /// Generator rows (pictures x --rerank candidates) per forward pass: bounds the memory
    /// without changing the pictures (default: 64 at 32x32, fewer for larger pictures).
    #[arg(long)]
    batch_size: Option<usize>,
    /// The image encoder f_V for --rerank above 1: swav_800ep_pretrain.pth.tar or a .bpk
    /// (default: the bundled sound2scene-tiny model's).
    #[arg(long)]
    image_weights: Option<PathBuf>,
    /// The picture: a grid with one row per feature.
    #[arg(long)]
    out: PathBuf,
    /// Also write G's raw output [n, 3, H, W] in [-1, 1].
    #[arg(long)]
    out_npy: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArgs,
}

impl GenerateArgs {
    /// Refuse values out of range before anything is loaded.
    fn validate(&self) -> Result<()> {
        check_count("--count", self.count)?;
        check_rerank("--rerank", self.rerank)?;
        if self.mix.is_some() {
            check_mix_weight("--mix-weight", self.mix_weight)?;
        }
        if let Some(db) = self.gain_db {
            check_gain_db("--gain-db", db)?;
        }
        if let Some(rows) = self.batch_size {
            check_batch_size("--batch-size", rows)?;
        }
        Ok(())
    }
}

/// Draw images from a sound (optionally mixed or louder) or from given features.
pub fn run(args: GenerateArgs) -> Result<()> {
    let device = args.device.device.device()?;
    args.validate()?;
    let generator = or_bundled(args.generator.as_deref(), GENERATOR_FILE)?;
    let audio_encoder = args
        .audio
        .is_some()
        .then(|| or_bundled(args.audio_weights.as_deref(), AUDIO_ENCODER_FILE))
        .transpose()?;
    let own_networks = args.generator.is_some() || args.audio_weights.is_some();
    let image_encoder = (args.rerank > 1)
        .then(|| image_encoder_path(args.image_weights.as_deref(), own_networks))
        .transpose()?;
    let pipeline = SoundToScene::load_parts(
        audio_encoder.as_deref(),
        &generator,
        image_encoder.as_deref(),
        &device,
    )?
    .with_spectrogram(spectrogram_config(args.fill));
    let features = match (&args.audio, &args.feature) {
        (Some(audio), _) => {
            let wave = load_audio_reported(audio)?;
            let other = args.mix.as_deref().map(load_audio_reported).transpose()?;
            let wave = mix_and_gain(
                wave,
                other.as_ref().map(|o| (o, args.mix_weight)),
                args.gain_db,
            )?;
            pipeline.audio_features(std::slice::from_ref(&wave))?
        }
        (None, Some(path)) => read_matrix(path, &device)?,
        (None, None) => bail!("give --audio (with --audio-weights) or --feature"),
    };
    let rows = features.dims()[0];
    let noise = match &args.z {
        Some(path) => Noise::Given(Box::new(read_matrix(path, &device)?)),
        None => Noise::Seeded {
            seed: args.seed,
            z_var: args.z_var,
        },
    };
    let settings = DrawSettings {
        count: args.count,
        rerank: args.rerank,
        batch_size: args.batch_size,
        keep_raw: args.out_npy.is_some(),
    };
    let mut progress = DrawProgress::default();
    let drawn = pipeline.draw(features, &noise, &settings, |done, total| {
        progress.update(done, total)
    });
    progress.finish();
    let drawn = drawn?;
    if let (Some(path), Some(raw)) = (&args.out_npy, &drawn.raw) {
        write_npy_f32(path, &drawn.shape, raw)?;
        println!("wrote {}", path.display());
    }
    grid(&drawn.images, args.count, 2)
        .save(&args.out)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    println!(
        "wrote {} ({rows} x {} images)",
        args.out.display(),
        args.count
    );
    Ok(())
}
