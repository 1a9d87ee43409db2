//! `sound2scene eval-world`: the paper's claims measured on held-out clips of the procedural world.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use sound2scene::infer::bundle;
use sound2scene::synth::{WORLD_FILE, WorldConfig};
use sound2scene::world::{WorldClassifier, WorldEvalConfig, default_classifier_path, eval_world};

use crate::DeviceArgs;

/// Arguments of `sound2scene eval-world`.
#[derive(clap::Args)]
pub struct EvalWorldArgs {
    /// Seed of the held-out world (use one the model was not trained on).
    #[arg(long, default_value_t = 1_000_003)]
    seed: u64,
    /// Clips with at least one source to evaluate.
    #[arg(long, default_value_t = 100)]
    clips: usize,
    /// Model directory holding audio_encoder.bpk, image_encoder.bpk and generator.bpk
    /// (default: the bundled assets/models/sound2scene-tiny).
    #[arg(long)]
    weights: Option<PathBuf>,
    /// The world classifier (default: assets/models/world-classifier.bpk).
    #[arg(long)]
    classifier: Option<PathBuf>,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Retrieval group size.
    #[arg(long, default_value_t = 100)]
    candidates: usize,
    /// Seed of the generator's noise.
    #[arg(long, default_value_t = 0)]
    noise_seed: u64,
    /// Standard deviation of the generator's noise (the official --z_var).
    #[arg(long, default_value_t = 1.0)]
    z_var: f32,
    /// Draw this many pictures per picture and keep the one the image encoder re-encodes
    /// closest to its feature (1: a single draw, as the official code).
    #[arg(long, default_value_t = 1)]
    rerank: usize,
    /// Gains in the volume sweep.
    #[arg(long, default_value_t = 7)]
    volume_gains: usize,
    /// Realisations per class and gain in the volume sweep (4 left the per-class ρ to chance
    /// draws of G's noise: docs/results.md).
    #[arg(long, default_value_t = 16)]
    volume_samples: usize,
    /// Mixes per pair of classes (28 pairs).
    #[arg(long, default_value_t = 2)]
    mix_samples: usize,
    /// The held-out world's description (JSON object of WorldConfig's fields); default: the
    /// model directory's world.json (the world it was trained on) when it has one, else the
    /// default world. --seed and --clips replace its seed and clip count.
    #[arg(long)]
    world: Option<PathBuf>,
    /// Side of the world's real frames in pixels [default: the world's, 64 by default].
    #[arg(long)]
    image_size: Option<u32>,
    #[command(flatten)]
    device: DeviceArgs,
}

/// Measure the claims and print them (and write JSON when asked).
pub fn run(args: EvalWorldArgs) -> Result<()> {
    let device = args.device.device.device()?;
    let weights = args.weights.unwrap_or_else(bundle::default_model_dir);
    let classifier_path = args.classifier.unwrap_or_else(default_classifier_path);
    let pipeline = bundle::load_pipeline(&weights, &device)?;
    let classifier = WorldClassifier::load(&classifier_path, &device)?;
    let world_path = args
        .world
        .clone()
        .or_else(|| Some(weights.join(WORLD_FILE)).filter(|p| p.is_file()));
    let base = match &world_path {
        Some(path) => WorldConfig::load(path)?,
        None => WorldConfig::default(),
    };
    let config = WorldEvalConfig {
        world: WorldConfig {
            seed: args.seed,
            clips: args.clips,
            image_size: args.image_size.unwrap_or(base.image_size),
            ..base
        },
        candidates: args.candidates,
        noise_seed: args.noise_seed,
        z_var: args.z_var,
        rerank: args.rerank,
        volume_gains: args.volume_gains,
        volume_samples: args.volume_samples,
        mix_samples: args.mix_samples,
        ..WorldEvalConfig::default()
    };
    let started = Instant::now();
    let report = eval_world(&pipeline, &classifier, &config)?;
    println!(
        "weights {}, classifier {}, world {}",
        weights.display(),
        classifier_path.display(),
        world_path.map_or("default".into(), |p| p.display().to_string())
    );
    print!("{}", report.table());
    println!("({:.0} s)", started.elapsed().as_secs_f64());
    if let Some(path) = args.json {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(&path, json + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
