//! `sound2scene compose`: rows from a photo's feature to a sound's, through their blends.

use std::path::PathBuf;

use anyhow::Result;
use burn::tensor::Tensor;
use sound2scene::infer::controls::compose;

use crate::common::{PipelineArgs, load_audio_reported, open_rgb};

/// Arguments of `sound2scene compose`.
#[derive(clap::Args)]
pub struct ComposeArgs {
    /// The photo.
    #[arg(long)]
    image: PathBuf,
    /// The sound.
    #[arg(long)]
    audio: PathBuf,
    /// Weights of the sound, one row each (0 = the photo alone, 1 = the sound alone).
    #[arg(long, value_delimiter = ',', default_value = "0,0.25,0.5,0.75,1")]
    alpha: Vec<f32>,
    #[command(flatten)]
    pipeline: PipelineArgs,
}

/// Rows from the photo's feature to the sound's, through their blends.
pub fn run(args: ComposeArgs) -> Result<()> {
    let pipeline = args.pipeline.load(true)?;
    let image = pipeline.image_features(&[open_rgb(&args.image)?])?;
    let audio =
        pipeline.audio_features(std::slice::from_ref(&load_audio_reported(&args.audio)?))?;
    let rows = args
        .alpha
        .iter()
        .map(|a| compose(image.clone(), audio.clone(), *a))
        .collect::<Result<Vec<_>, _>>()?;
    let labels: Vec<String> = args.alpha.iter().map(|a| format!("a={a}")).collect();
    args.pipeline
        .draw_rows(&pipeline, Tensor::cat(rows, 0), &labels)
}
