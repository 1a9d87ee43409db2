//! `sound2scene train-align`: audio-visual alignment of the audio encoder (paper Sec. 2.1).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::config::Config;
use sound2scene::models::LoadOptions;
use sound2scene::models::checkpoint::open_image_encoder;
use sound2scene::train::align::{AlignConfig, AlignHooks, AlignSession, CONFIG_FILE};
use sound2scene::train::control::Outcome;
use sound2scene::train::data::{Discovery, discover_official, discover_vggsound};
use sound2scene::train::run::read_config;
use sound2scene::train::{AlignData, CacheOptions, ContrastiveLoss, FeatureCache};

use crate::skipped::{SkipArgs, print_skip_report, save_skip_report};
use crate::{DeviceArgs, install_stop_handler};

/// Rows of z^V per feature-cache shard file.
const CACHE_SHARD_ROWS: usize = 4096;

/// The alignment objective, as the command line names it.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum LossArg {
    /// The official symmetric InfoNCE over L2 distances of unit-norm features.
    InfonceL2,
    /// Mean squared error between the raw features (ablation).
    L2,
    /// Symmetric InfoNCE over cosine similarities (ablation).
    InfonceCosine,
}

impl From<LossArg> for ContrastiveLoss {
    fn from(loss: LossArg) -> Self {
        match loss {
            LossArg::InfonceL2 => ContrastiveLoss::InfoNceL2,
            LossArg::L2 => ContrastiveLoss::L2,
            LossArg::InfonceCosine => ContrastiveLoss::InfoNceCosine,
        }
    }
}

/// Arguments of `sound2scene train-align`.
#[derive(clap::Args)]
pub struct TrainAlignArgs {
    /// Training data in the official layout: DIR/images/NAME.jpg + DIR/audios/NAME.wav.
    #[arg(
        long,
        conflicts_with = "vggsound",
        required_unless_present = "vggsound"
    )]
    data: Option<PathBuf>,
    /// Training data in the VGGSound layout: DIR/frames/VIDEO/NNNN.jpg + DIR/audios/VIDEO.wav
    /// (or .mp4).
    #[arg(long)]
    vggsound: Option<PathBuf>,
    /// Top-k moments file ({"VIDEO": [47, 46, ...]}) choosing each video's frame (VGGSound
    /// layout only; the middle frame otherwise).
    #[arg(long, requires = "vggsound")]
    moments: Option<PathBuf>,
    /// The frozen image encoder f_V (swav_800ep_pretrain.pth.tar or a .bpk); its features are
    /// computed once into OUT/features.
    #[arg(long)]
    image_encoder: PathBuf,
    /// Output directory: config.json, metrics.jsonl, checkpoints, the feature cache.
    #[arg(long)]
    out: PathBuf,
    /// A configuration file (AlignConfig JSON, e.g. OUT/config.json of an earlier run); the
    /// options below override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Continue from the newest complete checkpoint in OUT (the same settings are required).
    #[arg(long)]
    resume: bool,
    /// Passes over the training examples.
    #[arg(long)]
    epochs: Option<usize>,
    /// Stop after this many optimizer steps in total.
    #[arg(long)]
    max_steps: Option<u64>,
    /// Examples per step.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Adam learning rate.
    #[arg(long)]
    lr: Option<f64>,
    /// Seed of initialization, validation split and shuffling.
    #[arg(long)]
    seed: Option<u64>,
    /// The objective.
    #[arg(long, value_enum)]
    loss: Option<LossArg>,
    /// Fraction of the examples held out for validation.
    #[arg(long)]
    val_fraction: Option<f64>,
    /// Write a checkpoint every this many steps (0: at epoch ends only).
    #[arg(long)]
    checkpoint_every: Option<u64>,
    /// Audio clip length in seconds (10 gives the official [257, 1004] spectrogram).
    #[arg(long)]
    clip_seconds: Option<f32>,
    /// Start from these audio-encoder weights (sound2scene.pth or .bpk) instead of random.
    #[arg(long)]
    init_weights: Option<PathBuf>,
    /// Base width of the audio ResNet-18 (64 in the paper; smaller trains faster on a CPU).
    #[arg(long)]
    audio_width: Option<usize>,
    /// Never draw a progress bar (lines still go to metrics.jsonl).
    #[arg(long)]
    no_progress: bool,
    /// Data parallelism: split every batch over this many devices of the --device kind (CUDA
    /// or wgpu GPUs 0..N-1; with flex, N copies on the CPU, which is no faster). The first
    /// device keeps the weights; the loss sees the whole batch.
    #[arg(long, default_value_t = 1)]
    devices: usize,
    #[command(flatten)]
    skip: SkipArgs,
    #[command(flatten)]
    device: DeviceArgs,
}

/// Train the audio encoder to land on the frozen image encoder's features.
pub fn run(args: TrainAlignArgs) -> Result<()> {
    let mut devices = args.device.device.devices(args.devices)?;
    let device = devices.remove(0);
    let found = discover(&args)?;
    report_discovery(&found);

    let (image_encoder, _) =
        open_image_encoder(&args.image_encoder, &LoadOptions::default(), &device)?;
    let encoder_file = args.image_encoder.to_string_lossy().into_owned();
    let data_dir = args.data.as_ref().or(args.vggsound.as_ref());
    let options = CacheOptions {
        progress: !args.no_progress,
        policy: args.skip.policy(),
        earlier: found.skipped.clone(),
        ..CacheOptions::new(CACHE_SHARD_ROWS, data_dir.cloned().unwrap_or_default())
    };
    let built = FeatureCache::build_checked(
        &found.pairs,
        &image_encoder,
        &encoder_file,
        args.out.join("features"),
        &device,
        &options,
    )?;
    drop(image_encoder);
    save_skip_report(&built.report, &args.out)?;
    let cache = built.cache;

    let config = configure(&args, cache.dim())?;
    let data = AlignData::from_pairs(&built.pairs, &cache, config.spectrogram_config())?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create the output directory {}", args.out.display()))?;
    config
        .save(args.out.join(CONFIG_FILE))
        .with_context(|| format!("cannot write {}", args.out.join(CONFIG_FILE).display()))?;

    let hooks = AlignHooks::default();
    install_stop_handler(hooks.stop_flag());
    let mut session = AlignSession::new(config, data, &args.out, device)?.with_replicas(devices);
    if args.no_progress {
        session = session.with_progress(sound2scene::train::progress::ProgressMode::Never);
    }
    if let Some(note) = session.validation_note()? {
        eprintln!("note: {note}");
    }
    if args.resume {
        crate::report_damaged_checkpoints(&args.out);
    }
    let summary = session.run(args.resume, hooks)?;

    let how = match summary.outcome {
        Outcome::Finished => "finished",
        Outcome::MaxSteps => "reached --max-steps",
        Outcome::Stopped => "stopped (checkpoint written; rerun with --resume to continue)",
        Outcome::Aborted => "aborted",
    };
    println!("{how} after {} steps", summary.steps);
    if let Some(from) = &summary.resumed_from {
        println!("resumed from {}", from.display());
    }
    if let Some(loss) = summary.best_val_loss {
        if summary.validation_clips == 0 {
            println!("best training loss {loss:.6} (no validation clips)");
        } else {
            println!("best validation loss {loss:.6}");
        }
    }
    if let Some(best) = &summary.best_checkpoint {
        println!(
            "best audio encoder {}",
            best.join(sound2scene::train::align::MODEL_FILE).display()
        );
    }
    print_skip_report(&built.report, &args.out);
    Ok(())
}

fn discover(args: &TrainAlignArgs) -> Result<Discovery> {
    Ok(match (&args.data, &args.vggsound) {
        (Some(dir), _) => discover_official(dir)?,
        (None, Some(dir)) => discover_vggsound(dir, args.moments.as_deref())?,
        (None, None) => bail!("give the training data with --data DIR or --vggsound DIR"),
    })
}

fn report_discovery(found: &Discovery) {
    println!("{} audio/image pairs", found.pairs.len());
    if found.unpaired_audio + found.unpaired_images > 0 {
        println!(
            "skipped {} audio files and {} images without a partner",
            found.unpaired_audio, found.unpaired_images
        );
    }
    if found.middle_frame_fallbacks > 0 {
        println!(
            "{} videos use their middle frame (no top-k moment found)",
            found.middle_frame_fallbacks
        );
    }
}

/// The run's configuration: the file (or the defaults), then the command-line overrides. The
/// encoder's output width follows the image features unless the file sets it.
fn configure(args: &TrainAlignArgs, feature_dim: usize) -> Result<AlignConfig> {
    let mut config = match &args.config {
        Some(path) => read_config::<AlignConfig>(path).context("not an alignment config")?,
        None => {
            let mut config = AlignConfig::new();
            config.encoder.out_dim = feature_dim;
            config
        }
    };
    set(&mut config.epochs, args.epochs);
    set(&mut config.batch_size, args.batch_size);
    set(&mut config.optimizer.lr, args.lr);
    set(&mut config.seed, args.seed);
    set(&mut config.loss, args.loss.map(ContrastiveLoss::from));
    set(&mut config.val_fraction, args.val_fraction);
    set(&mut config.checkpoint_every, args.checkpoint_every);
    set(&mut config.clip_seconds, args.clip_seconds);
    set(&mut config.encoder.resnet.base_width, args.audio_width);
    if args.max_steps.is_some() {
        config.max_steps = args.max_steps;
    }
    if let Some(path) = &args.init_weights {
        config.init_weights = Some(path_string(path));
    }
    Ok(config)
}

/// Overwrites `target` when the option was given.
fn set<T>(target: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *target = value;
    }
}

fn path_string(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}
