//! `sound2scene train-gan`: IC-GAN training of the generator G and discriminator D on images
//! and their image-encoder features.

use std::path::PathBuf;

use anyhow::{Context, Result};
use sound2scene::models::LoadOptions;
use sound2scene::models::checkpoint::open_image_encoder;
use sound2scene::train::control::Outcome;
use sound2scene::train::gan::{
    CONFIG_FILE, GENERATOR_EMA_FILE, GanConfig, GanData, GanHooks, GanSession, discover_images,
};
use sound2scene::train::progress::ProgressMode;
use sound2scene::train::run::read_config;
use sound2scene::train::{CacheOptions, FeatureCache};

use crate::skipped::{SkipArgs, print_skip_report, save_skip_report};
use crate::{DeviceArgs, install_stop_handler};

/// Rows of z^V per feature-cache shard file.
const CACHE_SHARD_ROWS: usize = 4096;

/// Arguments of `sound2scene train-gan`.
#[derive(clap::Args)]
pub struct TrainGanArgs {
    /// Training images: DIR/images/*.jpg (the official layout) or a flat folder of JPEG/PNG.
    #[arg(long)]
    images: PathBuf,
    /// The frozen image encoder f_V (swav_800ep_pretrain.pth.tar or a .bpk) giving the
    /// instance features; they are computed once into OUT/features.
    #[arg(long)]
    image_encoder: PathBuf,
    /// Output directory: config.json, metrics.jsonl, samples/, checkpoints, the feature cache.
    #[arg(long)]
    out: PathBuf,
    /// A configuration file (GanConfig JSON, e.g. OUT/config.json of an earlier run); the
    /// options below override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Image side of G and D: 32, 64, 128 or 256 (with --width; default: the config's).
    #[arg(long)]
    resolution: Option<usize>,
    /// Channel width of G and D (96 in IC-GAN; 8 trains on a CPU).
    #[arg(long)]
    width: Option<usize>,
    /// Train until this many steps in total.
    #[arg(long)]
    steps: Option<u64>,
    /// Images per step (the config's `batch_size`; `--batch` is the old spelling).
    #[arg(long, alias = "batch")]
    batch_size: Option<usize>,
    /// Seed of initialization and sampling.
    #[arg(long)]
    seed: Option<u64>,
    /// Weight of the feature-consistency term in G's loss (not in IC-GAN; 0: IC-GAN's loss):
    /// the cosine distance between f_V of G's picture and the feature that conditioned it.
    #[arg(long)]
    feature_loss: Option<f64>,
    /// Write a checkpoint every this many steps (0: at the end only).
    #[arg(long)]
    checkpoint_every: Option<u64>,
    /// Write a sample grid every this many steps (0: never).
    #[arg(long)]
    sample_every: Option<u64>,
    /// Continue from the newest complete checkpoint in OUT (the same settings are required).
    #[arg(long)]
    resume: bool,
    /// Never draw a progress bar (lines still go to metrics.jsonl).
    #[arg(long)]
    no_progress: bool,
    #[command(flatten)]
    skip: SkipArgs,
    #[command(flatten)]
    device: DeviceArgs,
}

/// Train IC-GAN's G and D on the images, conditioned on their f_V features.
pub fn run(args: TrainGanArgs) -> Result<()> {
    let device = args.device.device.device()?;
    let images = discover_images(&args.images)?;
    println!("{} images", images.len());
    let mut config = configure(&args)?;

    let (image_encoder, _) =
        open_image_encoder(&args.image_encoder, &LoadOptions::default(), &device)?;
    let encoder_file = args.image_encoder.to_string_lossy().into_owned();
    let options = CacheOptions {
        progress: !args.no_progress,
        policy: args.skip.policy(),
        check_audio: false,
        ..CacheOptions::new(CACHE_SHARD_ROWS, &args.images)
    };
    let built = FeatureCache::build_checked(
        &images,
        &image_encoder,
        &encoder_file,
        args.out.join("features"),
        &device,
        &options,
    )?;
    save_skip_report(&built.report, &args.out)?;
    let (cache, images) = (built.cache, built.pairs);
    // G and D take the encoder's feature width unless the configuration file names one.
    if config.generator.instance_dim.is_none() && config.discriminator.instance_dim.is_none() {
        config = config.with_instance_dim(cache.dim());
    }
    let data = GanData::from_files(&images, &cache, config.generator.resolution)?;

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create the output directory {}", args.out.display()))?;
    let hooks = GanHooks::default();
    install_stop_handler(hooks.stop_flag());
    // The feature-consistency term re-encodes G's pictures with f_V; otherwise it goes now.
    let wants_encoder = config.feature_weight() > 0.0;
    let mut session = GanSession::new(config, data, &args.out, device)?;
    if wants_encoder {
        session = session.with_image_encoder(image_encoder);
    } else {
        drop(image_encoder);
    }
    if args.no_progress {
        session = session.with_progress(ProgressMode::Never);
    }
    if args.resume {
        crate::report_damaged_checkpoints(&args.out);
    }
    let summary = session.run(args.resume, hooks)?;

    let how = match summary.outcome {
        Outcome::Finished | Outcome::MaxSteps => "finished",
        Outcome::Stopped => "stopped (checkpoint written; rerun with --resume to continue)",
        Outcome::Aborted => "aborted",
    };
    println!("{how} after {} steps", summary.steps);
    if let Some(from) = &summary.resumed_from {
        println!("resumed from {}", from.display());
    }
    if let Some((real, fake, g)) = summary.last_losses {
        println!("last losses: D real {real:.4}, D fake {fake:.4}, G {g:.4}");
    }
    print_skip_report(&built.report, &args.out);
    if let Some(dir) = &summary.last_checkpoint {
        println!("G_ema {}", dir.join(GENERATOR_EMA_FILE).display());
    }
    if let Some(samples) = &summary.last_samples {
        println!("samples {}", samples.display());
    }
    Ok(())
}

/// The run's configuration: the file (or the defaults), then the command-line overrides.
fn configure(args: &TrainGanArgs) -> Result<GanConfig> {
    let mut config = match &args.config {
        Some(path) => read_config::<GanConfig>(path).context("not a GAN config")?,
        None => GanConfig::new(),
    };
    if args.resolution.is_some() || args.width.is_some() {
        let resolution = args.resolution.unwrap_or(config.generator.resolution);
        let width = args.width.unwrap_or(config.generator.g_ch);
        config = config.with_architecture(resolution, width);
    }
    fn set<T>(target: &mut T, value: Option<T>) {
        if let Some(value) = value {
            *target = value;
        }
    }
    set(&mut config.steps, args.steps);
    set(&mut config.batch_size, args.batch_size);
    set(&mut config.seed, args.seed);
    if args.feature_loss.is_some() {
        config.feature_loss = args.feature_loss;
    }
    set(&mut config.checkpoint_every, args.checkpoint_every);
    set(&mut config.sample_every, args.sample_every);
    if args.config.is_none() && args.out.join(CONFIG_FILE).is_file() && !args.resume {
        println!(
            "note: {} exists; pass --config to reuse it or --resume to continue",
            args.out.join(CONFIG_FILE).display()
        );
    }
    Ok(config)
}
