//! `sound2scene interpolate`: one row per step between two sounds' features, with fixed noise.

use std::path::PathBuf;

use anyhow::Result;
use sound2scene::infer::controls::{Interpolation, interpolate};
use sound2scene::infer::limits::check_steps;

use crate::common::{PipelineArgs, load_audio_reported};

/// Arguments of `sound2scene interpolate`.
#[derive(clap::Args)]
pub struct InterpolateArgs {
    /// The first sound.
    #[arg(long)]
    from: PathBuf,
    /// The second sound.
    #[arg(long)]
    to: PathBuf,
    /// Number of rows, endpoints included (2 to 1000).
    #[arg(long, default_value_t = 5)]
    steps: usize,
    /// Interpolate along the great circle instead of a straight line.
    #[arg(long)]
    slerp: bool,
    #[command(flatten)]
    pipeline: PipelineArgs,
}

/// One row per step between two sounds' features, with fixed noise.
pub fn run(args: InterpolateArgs) -> Result<()> {
    check_steps("--steps", args.steps)?;
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
