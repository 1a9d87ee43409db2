//! `sound2scene edit`: a photo inverted into G and moved along z^A(loud) − z^A(quiet).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use sound2scene::infer::controls::InversionConfig;
use sound2scene::infer::limits::{check_count, check_inversion_steps};
use sound2scene::infer::visual::{labelled_grid, tensor_to_images};

use crate::common::{PipelineArgs, load_audio_reported, open_rgb};

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
    /// Inversion steps (at most 10000).
    #[arg(long, default_value_t = 100)]
    steps: usize,
    #[command(flatten)]
    pipeline: PipelineArgs,
}

/// Invert the photo into G, then move its feature along z^A(loud) − z^A(quiet).
pub fn run(args: EditArgs) -> Result<()> {
    if args.strength.is_empty() {
        bail!("give at least one --strength");
    }
    check_inversion_steps("--steps", args.steps)?;
    check_count("--strength values", args.strength.len())?;
    if let Some(bad) = args.strength.iter().find(|s| !s.is_finite()) {
        bail!("--strength must be finite numbers, got {bad}");
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
