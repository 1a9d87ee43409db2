//! `sound2scene train-world-classifier`: the procedural world's classifier (its "Inception").

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use sound2scene::models::resnet::{BlockKind, ResNetConfig};
use sound2scene::world::{
    ClassifierTrainConfig, WorldClassifierConfig, evaluate_classifier, train_world_classifier,
};

use crate::DeviceArgs;

/// Arguments of `sound2scene train-world-classifier`.
#[derive(clap::Args)]
pub struct TrainWorldClassifierArgs {
    /// The burnpack file to write (e.g. assets/models/world-classifier.bpk).
    #[arg(long)]
    out: PathBuf,
    /// Seed of the training world and of the initialization.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Optimizer steps.
    #[arg(long, default_value_t = 1200)]
    steps: usize,
    /// Frames per step.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Initial Adam learning rate (cosine decay to 5 %).
    #[arg(long, default_value_t = 5e-3)]
    lr: f64,
    /// Side of the classifier's square input in pixels.
    #[arg(long, default_value_t = 64)]
    image_size: usize,
    /// Base width of the ResNet trunk (basic blocks [1, 1, 1, 1]; feature width 8 × this).
    #[arg(long, default_value_t = 8)]
    width: usize,
    /// Seed of the held-out world the accuracy is measured on (default: seed + 1).
    #[arg(long)]
    holdout_seed: Option<u64>,
    /// Held-out frames to measure the accuracy on.
    #[arg(long, default_value_t = 2000)]
    holdout_frames: usize,
    #[command(flatten)]
    device: DeviceArgs,
}

/// A progress bar on stderr over `total` steps when stderr is a terminal.
fn bar(total: u64) -> Option<ProgressBar> {
    std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {msg}  [{eta_precise}]")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    })
}

/// Train the world classifier, report its held-out accuracy and save it.
pub fn run(args: TrainWorldClassifierArgs) -> Result<()> {
    let device = args.device.device.device()?;
    let model = WorldClassifierConfig::new()
        .with_resnet(ResNetConfig::new(BlockKind::Basic, [1, 1, 1, 1]).with_base_width(args.width))
        .with_image_size(args.image_size);
    let config = ClassifierTrainConfig::new()
        .with_model(model)
        .with_steps(args.steps)
        .with_batch_size(args.batch_size)
        .with_lr(args.lr);
    let started = Instant::now();
    let progress = bar(args.steps as u64);
    let mut last_loss = f64::NAN;
    let classifier = train_world_classifier(&config, args.seed, &device, |step, loss| {
        last_loss = loss;
        if let Some(bar) = &progress {
            bar.set_position(step as u64 + 1);
            bar.set_message(format!("loss {loss:.4}"));
        } else if (step + 1) % 100 == 0 {
            eprintln!("step {} loss {loss:.4}", step + 1);
        }
    })?;
    if let Some(bar) = &progress {
        bar.finish_and_clear();
    }
    let trained_s = started.elapsed().as_secs_f64();
    if let Some(parent) = args.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    classifier.save(&args.out)?;
    let holdout_seed = args.holdout_seed.unwrap_or(args.seed.wrapping_add(1));
    let accuracy = evaluate_classifier(&classifier, holdout_seed, args.holdout_frames)?;
    println!(
        "trained {} steps in {trained_s:.0} s (final loss {last_loss:.4}), seed {}",
        args.steps, args.seed
    );
    println!(
        "held-out world seed {holdout_seed}, {} frames:",
        accuracy.frames
    );
    println!("  exact_match         {:.4}", accuracy.exact_match);
    println!("  label_accuracy      {:.4}", accuracy.label_accuracy);
    println!("  top1_accuracy       {:.4}", accuracy.top1_accuracy);
    println!("  background_accuracy {:.4}", accuracy.background_accuracy);
    let size = std::fs::metadata(&args.out).map(|m| m.len()).unwrap_or(0);
    println!("wrote {} ({size} bytes)", args.out.display());
    Ok(())
}
