//! `sound2scene train-select` and `sound2scene select`: the sound-source localization network
//! that mines the most audio-visually correlated frames of each video (paper Sec. 2.3).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result, bail};
use sound2scene::select::metrics::{GroundTruth, world_ground_truth};
use sound2scene::select::mine::{MineOptions, Scoring, Shard, merge_moment_files, write_moments};
use sound2scene::select::train::{
    CONFIG_FILE, SelectHooks, SelectTrainConfig, fnv_hex, resolve_weights,
};
use sound2scene::select::{
    SelectData, discover_videos, load_localizer, mine, remap_moments, train_select,
};
use sound2scene::synth::DatasetTruth;
use sound2scene::train::control::Outcome;
use sound2scene::train::data::read_moments;
use sound2scene::train::progress::ProgressMode;
use sound2scene::train::run::read_config;
use sound2scene::train::skip::{SKIPPED_FILE, SkipReport};

use crate::skipped::{SkipArgs, print_skip_report, save_skip_report};
use crate::{DeviceArgs, install_stop_handler};

/// Where the videos are: `--data DIR` (DIR/frames + DIR/audios) or both directories.
#[derive(clap::Args, Clone, Debug)]
pub struct VideoDirs {
    /// A VGGSound-layout dataset: DIR/frames/VIDEO/NNNN.jpg and DIR/audios/VIDEO.wav (or .mp4).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Frame folders, one per video: FRAMES/VIDEO/NNNN.jpg (overrides DIR/frames).
    #[arg(long)]
    frames: Option<PathBuf>,
    /// Audio files: AUDIOS/VIDEO.wav or .mp4 (overrides DIR/audios).
    #[arg(long)]
    audios: Option<PathBuf>,
}

impl VideoDirs {
    fn frames(&self) -> Result<PathBuf> {
        self.frames
            .clone()
            .or_else(|| self.data.as_ref().map(|d| d.join("frames")))
            .context("give --frames DIR (or --data DIR holding frames/ and audios/)")
    }

    fn audios(&self) -> Result<PathBuf> {
        self.audios
            .clone()
            .or_else(|| self.data.as_ref().map(|d| d.join("audios")))
            .context("give --audios DIR (or --data DIR holding frames/ and audios/)")
    }

    fn videos(&self) -> Result<Vec<sound2scene::select::Video>> {
        let listing = discover_videos(&self.frames()?, &self.audios()?)?;
        if !listing.without_audio.is_empty() || !listing.without_frames.is_empty() {
            eprintln!(
                "note: {} frame folders without audio and {} audio files without frames are skipped",
                listing.without_audio.len(),
                listing.without_frames.len()
            );
        }
        if listing.videos.is_empty() {
            bail!("no video with both frames and audio was found");
        }
        Ok(listing.videos)
    }
}

/// Arguments of `sound2scene train-select`.
#[derive(clap::Args)]
pub struct TrainSelectArgs {
    #[command(flatten)]
    dirs: VideoDirs,
    /// Output directory: config.json, metrics.jsonl, checkpoints.
    #[arg(long)]
    out: PathBuf,
    /// A configuration file (SelectTrainConfig JSON, e.g. OUT/config.json of an earlier run);
    /// the options below override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Continue from the newest complete checkpoint in OUT (the same settings are required).
    #[arg(long)]
    resume: bool,
    /// Passes over the videos.
    #[arg(long)]
    epochs: Option<usize>,
    /// Stop after this many steps in total.
    #[arg(long)]
    max_steps: Option<u64>,
    /// Videos per step.
    #[arg(long)]
    clips_per_batch: Option<usize>,
    /// Random frames per video and step.
    #[arg(long)]
    frames_per_clip: Option<usize>,
    /// Adam learning rate.
    #[arg(long)]
    lr: Option<f64>,
    /// Seed of initialization, order and frame draws.
    #[arg(long)]
    seed: Option<u64>,
    /// Frames per second of the frame folders.
    #[arg(long)]
    fps: Option<f32>,
    /// Side of the frames the network sees (they are resized).
    #[arg(long)]
    image_size: Option<usize>,
    /// Length of the audio window around each frame, in seconds.
    #[arg(long)]
    window_seconds: Option<f32>,
    /// Never draw a progress bar (lines still go to metrics.jsonl).
    #[arg(long)]
    no_progress: bool,
    #[command(flatten)]
    skip: SkipArgs,
    #[command(flatten)]
    device: DeviceArgs,
}

/// Train the localization network without labels.
pub fn train(args: TrainSelectArgs) -> Result<()> {
    let mut config = match &args.config {
        Some(path) => {
            read_config::<SelectTrainConfig>(path).context("not a train-select configuration")?
        }
        None if args.resume && args.out.join(CONFIG_FILE).is_file() => {
            read_config::<SelectTrainConfig>(args.out.join(CONFIG_FILE))?
        }
        None => SelectTrainConfig::new(),
    };
    if let Some(v) = args.epochs {
        config.epochs = v;
    }
    if args.max_steps.is_some() {
        config.max_steps = args.max_steps;
    }
    if let Some(v) = args.clips_per_batch {
        config.clips_per_batch = v;
    }
    if let Some(v) = args.frames_per_clip {
        config.frames_per_clip = v;
    }
    if let Some(v) = args.lr {
        config.optimizer.lr = v;
    }
    if let Some(v) = args.seed {
        config.seed = v;
    }
    if let Some(v) = args.fps {
        config.fps = v;
    }
    if let Some(v) = args.image_size {
        config.model.image_size = v;
    }
    if let Some(v) = args.window_seconds {
        config.model.window_seconds = v;
    }
    let device = args.device.device.device()?;
    let videos = args.dirs.videos()?;
    eprintln!("decoding {} videos", videos.len());
    let recorded = if args.resume {
        SkipReport::read(&args.out.join(SKIPPED_FILE))?
    } else {
        None
    };
    let (data, skipped) = SelectData::load_checked(
        &videos,
        &config.model,
        &args.skip.policy(),
        &args.dirs.frames()?,
        recorded.as_ref(),
    )?;
    save_skip_report(&skipped, &args.out)?;
    let hooks = SelectHooks::default();
    install_stop_handler(Arc::clone(&hooks.stop));
    let progress = if args.no_progress {
        ProgressMode::Never
    } else {
        ProgressMode::Auto
    };
    let summary = train_select(
        &config,
        &data,
        &args.out,
        &device,
        args.resume,
        progress,
        hooks,
    )?;
    let how = match summary.outcome {
        Outcome::Finished => "finished",
        Outcome::MaxSteps => "reached max steps",
        Outcome::Stopped => "stopped (resume with --resume)",
        Outcome::Aborted => "aborted",
    };
    println!(
        "{how} after {} steps ({} epochs); lowest epoch loss {}; weights: {}",
        summary.steps,
        summary.epochs_completed,
        summary
            .best_loss
            .map_or_else(|| "-".to_string(), |l| format!("{l:.4}")),
        summary
            .best_checkpoint
            .or(summary.last_checkpoint)
            .map_or_else(|| "-".to_string(), |p| p.display().to_string())
    );
    print_skip_report(&skipped, &args.out);
    Ok(())
}

/// How `select` ranks frames.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum ScoringArg {
    /// C_av minus the same audio window's mean C_av over all frames of the video.
    Contrastive,
    /// The paper's C_av alone.
    CAv,
}

/// Arguments of `sound2scene select`.
#[derive(clap::Args)]
pub struct SelectArgs {
    #[command(flatten)]
    dirs: VideoDirs,
    /// The localizer: a train-select output directory (its best checkpoint), a checkpoint
    /// directory or a model.bpk.
    #[arg(long, required_unless_present_any = ["remap", "merge"])]
    weights: Option<PathBuf>,
    /// The moments file to write ({"VIDEO": [47, 46, ...]}, best first); its progress file
    /// OUT.progress.jsonl lets an interrupted run continue.
    #[arg(long)]
    out: PathBuf,
    /// Frames per second of the frame folders.
    #[arg(long, default_value_t = 10.0)]
    fps: f32,
    /// Frames kept per video.
    #[arg(long, default_value_t = 10)]
    top_k: usize,
    /// How frames are ranked: contrastive (C_av minus the window's mean C_av over the video's
    /// frames) or c-av (the paper's C_av alone).
    #[arg(long, value_enum, default_value = "contrastive")]
    scoring: ScoringArg,
    /// Mine only part i of n (0-based), e.g. 0/4; merge the outputs with --merge.
    #[arg(long, default_value = "0/1")]
    shard: String,
    /// Write each selected frame with its localization map blended over it (PNG) here.
    #[arg(long)]
    heatmaps: Option<PathBuf>,
    /// Ground truth of a procedural world (ground_truth.json): print top-1 precision, cIoU
    /// and AUC.
    #[arg(long)]
    truth: Option<PathBuf>,
    /// Write the evaluation (or, with --remap, the match report) as JSON here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Start over instead of continuing the progress file.
    #[arg(long)]
    restart: bool,
    /// Instead of mining: re-key an existing moments file (e.g. the released one) to the local
    /// video names, tolerating renamed downloads; prints matched, unmatched and ambiguous.
    #[arg(long, conflicts_with_all = ["weights", "merge"])]
    remap: Option<PathBuf>,
    /// Instead of mining: merge moments files (e.g. one per shard) into OUT.
    #[arg(long, num_args = 1.., conflicts_with = "weights")]
    merge: Vec<PathBuf>,
    /// Never draw a progress bar.
    #[arg(long)]
    no_progress: bool,
    #[command(flatten)]
    device: DeviceArgs,
}

/// The world's ground truth as per-frame boxes.
fn world_truth(path: &Path) -> Result<GroundTruth> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let truth: DatasetTruth = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a ground_truth.json of `sound2scene synth`",
            path.display()
        )
    })?;
    Ok(world_ground_truth(&truth))
}

fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let json = serde_json::to_vec_pretty(value)?;
    std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))
}

/// Mine the top-k moments (or re-key / merge moments files).
pub fn select(args: SelectArgs) -> Result<()> {
    if !args.merge.is_empty() {
        let (merged, repeated) = merge_moment_files(&args.merge)?;
        write_moments(&args.out, &merged)?;
        println!(
            "merged {} files: {} videos ({} in more than one file) into {}",
            args.merge.len(),
            merged.len(),
            repeated.len(),
            args.out.display()
        );
        return Ok(());
    }
    let videos = args.dirs.videos()?;
    if let Some(released) = &args.remap {
        let moments = read_moments(released)?;
        let (remapped, report) = remap_moments(&moments, videos.iter().map(|v| v.name.as_str()));
        write_moments(&args.out, &remapped)?;
        println!("{}: {}", released.display(), report.summary());
        for (name, keys) in report.ambiguous.iter().take(10) {
            println!("  ambiguous: {name} -> {}", keys.join(", "));
        }
        for name in report.unmatched.iter().take(10) {
            println!("  unmatched: {name}");
        }
        if let Some(path) = &args.report {
            write_json(path, &report)?;
        }
        println!("wrote {} entries to {}", remapped.len(), args.out.display());
        return Ok(());
    }
    let weights = args
        .weights
        .as_deref()
        .context("--weights is required for mining")?;
    let device = args.device.device.device()?;
    let (model, config) = load_localizer(weights, &device)?;
    let file = resolve_weights(weights)?;
    let fingerprint =
        fnv_hex(&std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?);
    let stop = Arc::new(AtomicBool::new(false));
    install_stop_handler(Arc::clone(&stop));
    let opts = MineOptions {
        fps: args.fps,
        top_k: args.top_k,
        scoring: match args.scoring {
            ScoringArg::Contrastive => Scoring::Contrastive,
            ScoringArg::CAv => Scoring::CAv,
        },
        shard: args.shard.parse::<Shard>()?,
        heatmaps: args.heatmaps.clone(),
        truth: args.truth.as_deref().map(world_truth).transpose()?,
        restart: args.restart,
        progress: if args.no_progress {
            ProgressMode::Never
        } else {
            ProgressMode::Auto
        },
        stop,
        ..MineOptions::default()
    };
    let summary = mine(
        &model,
        &config,
        &videos,
        &args.out,
        &fingerprint,
        &opts,
        &device,
    )?;
    println!(
        "shard {}: {} videos ({} done before, {} mined now, {} failed){}; moments of {} videos in {}",
        opts.shard,
        summary.videos_in_shard,
        summary.resumed,
        summary.mined,
        summary.failed.len(),
        if summary.complete {
            ""
        } else {
            ", incomplete: run again to continue"
        },
        summary.moments.len(),
        args.out.display()
    );
    for (name, error) in summary.failed.iter().take(10) {
        println!("  failed: {name}: {error}");
    }
    if let Some(report) = &summary.report {
        println!(
            "top-1 precision {:.3} (plain C_av {:.3}, middle frame {:.3}, random frame {:.3}) over \
             {} videos with a source; cIoU@0.5 {:.3}, AUC {:.3}, mean cIoU {:.3} over {} frames",
            report.top1_precision,
            report.top1_precision_c_av,
            report.middle_precision,
            report.random_precision,
            report.videos_with_source,
            report.ciou_at_05,
            report.auc,
            report.mean_ciou,
            report.frames_localized
        );
        if let Some(path) = &args.report {
            write_json(path, report)?;
        }
    }
    Ok(())
}
