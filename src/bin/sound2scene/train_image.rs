//! `sound2scene train-image`: self-supervised training of the image encoder f_V with SwAV.

use std::path::PathBuf;

use anyhow::{Context, Result};
use sound2scene::models::resnet::ResNetConfig;
use sound2scene::train::control::Outcome;
use sound2scene::train::progress::ProgressMode;
use sound2scene::train::run::read_config;
use sound2scene::train::skip::SKIPPED_FILE;
use sound2scene::train::swav::augment::MultiCropConfig;
use sound2scene::train::swav::images::SwavImages;
use sound2scene::train::swav::{SwavConfig, SwavHooks, SwavSession};

use crate::skipped::{SkipArgs, print_skip_report};
use crate::{DeviceArgs, install_stop_handler};

/// The trunk's block layout, as the command line names it.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum ArchArg {
    /// Basic blocks [2, 2, 2, 2] (8 · width output channels).
    Resnet18,
    /// Bottleneck blocks [3, 4, 6, 3] (32 · width output channels), SwAV's and the paper's.
    Resnet50,
}

/// Arguments of `sound2scene train-image`.
#[derive(clap::Args)]
pub struct TrainImageArgs {
    /// A folder of training images (.png, .jpg, .jpeg, searched recursively).
    #[arg(long)]
    images: PathBuf,
    /// Output directory: config.json, metrics.jsonl, checkpoints (each with image_encoder.bpk).
    #[arg(long)]
    out: PathBuf,
    /// A configuration file (SwavConfig JSON, e.g. OUT/config.json of an earlier run); the
    /// options below override it. Without it: the official SwAV settings (ResNet-50, 224/96
    /// crops) unless --arch, --width or --resolution say otherwise.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Continue from the newest complete checkpoint in OUT (the same settings are required).
    #[arg(long)]
    resume: bool,
    /// Trunk layout.
    #[arg(long, value_enum)]
    arch: Option<ArchArg>,
    /// Base width of the trunk (64 in ResNet-50; 8 trains on a CPU). Also sets the projection
    /// head to the trunk's output width.
    #[arg(long)]
    width: Option<usize>,
    /// Side of the large crops in pixels, and of the images the encoder takes; the small crops
    /// and blur scale with it (224 official; up to 64, a softer colour distortion).
    #[arg(long)]
    resolution: Option<usize>,
    /// Length of the run in optimizer steps (sets the cosine learning-rate schedule).
    #[arg(long)]
    steps: Option<u64>,
    /// Stop after this many steps in total, keeping the schedule (resume later).
    #[arg(long)]
    max_steps: Option<u64>,
    /// Images per step (the config's `batch_size`; `--batch` is the old spelling).
    #[arg(long, alias = "batch")]
    batch_size: Option<usize>,
    /// Number of prototypes K (3000 official).
    #[arg(long)]
    prototypes: Option<usize>,
    /// Base learning rate (after warm-up); the final one becomes a thousandth of it, as in
    /// SwAV's scripts.
    #[arg(long)]
    lr: Option<f64>,
    /// Seed of initialization, order and augmentations.
    #[arg(long)]
    seed: Option<u64>,
    /// Write a checkpoint every this many steps (0: at the end and on Ctrl-C only).
    #[arg(long)]
    checkpoint_every: Option<u64>,
    /// Never draw a progress bar (lines still go to metrics.jsonl).
    #[arg(long)]
    no_progress: bool,
    #[command(flatten)]
    skip: SkipArgs,
    #[command(flatten)]
    device: DeviceArgs,
}

/// Train f_V with SwAV on a folder of images.
pub fn run(args: TrainImageArgs) -> Result<()> {
    let device = args.device.device.device()?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create the output directory {}", args.out.display()))?;
    let (images, skipped) = SwavImages::from_dir_checked(
        &args.images,
        &args.skip.policy(),
        Some(&args.out.join(SKIPPED_FILE)),
    )?;
    println!("{} images", images.len());
    let config = configure(&args)?;

    let hooks = SwavHooks::default();
    install_stop_handler(hooks.stop_flag());
    let mut session = SwavSession::new(config, images, &args.out, device)?;
    if args.no_progress {
        session = session.with_progress(ProgressMode::Never);
    }
    if args.resume {
        crate::report_damaged_checkpoints(&args.out);
    }
    let summary = session.run(args.resume, hooks)?;

    let how = match summary.outcome {
        Outcome::Finished => "finished",
        Outcome::MaxSteps => "reached --max-steps (rerun with --resume to continue)",
        Outcome::Stopped => "stopped (checkpoint written; rerun with --resume to continue)",
        Outcome::Aborted => "aborted",
    };
    println!("{how} after {} steps", summary.steps);
    if let Some(from) = &summary.resumed_from {
        println!("resumed from {}", from.display());
    }
    if let Some(loss) = summary.last_loss {
        println!("last loss {loss:.4}");
    }
    if let Some(path) = &summary.image_encoder {
        println!(
            "image encoder {} (use it with embed-image or train-align --image-encoder)",
            path.display()
        );
    }
    print_skip_report(&skipped, &args.out);
    Ok(())
}

/// The run's configuration: the file (or the defaults), then the command-line overrides.
fn configure(args: &TrainImageArgs) -> Result<SwavConfig> {
    let mut config = match &args.config {
        Some(path) => read_config::<SwavConfig>(path).context("not a SwAV config")?,
        None => SwavConfig::new(),
    };
    if args.arch.is_some() || args.width.is_some() {
        let current = &config.encoder.resnet;
        let mut resnet = match args.arch {
            Some(ArchArg::Resnet18) => ResNetConfig::resnet18(3),
            Some(ArchArg::Resnet50) => ResNetConfig::resnet50(3),
            None => ResNetConfig::new(current.block, current.layers),
        }
        .with_base_width(current.base_width);
        if let Some(width) = args.width {
            resnet = resnet.with_base_width(width);
        }
        let out = resnet.out_channels();
        config.encoder.resnet = resnet;
        config.hidden_dim = out;
        config.feat_dim = config.feat_dim.min(out);
    }
    if let Some(resolution) = args.resolution {
        // Up to 64 px the full colour distortion leaves two views of a small image with too
        // little in common and the loss sits at ln K; the softer preset trains there.
        config.crops = if resolution <= 64 {
            MultiCropConfig::low_resolution(resolution)
        } else {
            MultiCropConfig::for_resolution(resolution)
        };
        // The encoder is then fed images of that size at inference too.
        config.encoder.input_side = Some(resolution);
    }
    if let Some(steps) = args.steps {
        config.steps = steps;
    }
    if args.max_steps.is_some() {
        config.max_steps = args.max_steps;
    }
    if let Some(batch) = args.batch_size {
        config.batch_size = batch;
    }
    if let Some(prototypes) = args.prototypes {
        config.prototypes = prototypes;
    }
    if let Some(lr) = args.lr {
        config.optimizer.base_lr = lr;
        config.optimizer.final_lr = lr / 1000.0;
    }
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    if let Some(every) = args.checkpoint_every {
        config.checkpoint_every = every;
    }
    Ok(config)
}
