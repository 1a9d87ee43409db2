//! `sound2scene volume-sweep`: one row per gain of a sound (louder → bigger sources).

use std::path::PathBuf;

use anyhow::Result;
use sound2scene::infer::limits::check_gain_db;

use crate::common::{PipelineArgs, load_audio_reported};

/// Arguments of `sound2scene volume-sweep`.
#[derive(clap::Args)]
pub struct VolumeSweepArgs {
    /// The sound.
    #[arg(long)]
    audio: PathBuf,
    /// Gains in dB, one row each (each within ±60).
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
pub fn run(args: VolumeSweepArgs) -> Result<()> {
    for db in &args.gains {
        check_gain_db("--gains", *db)?;
    }
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
