//! Walk between two sounds in feature space with fixed noise (spherical interpolation).
//!
//! ```sh
//! cargo run --release --example interpolate -- [AUDIO_WEIGHTS GENERATOR] A.wav B.wav out.png
//! ```
//! Without the weights the bundled model draws.

use anyhow::{Context, Result};
use sound2scene::infer::visual::{labelled_grid, tensor_to_images};
use sound2scene::{Interpolation, interpolate};

mod common;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "interpolate [AUDIO_WEIGHTS GENERATOR] A.wav B.wav OUT.png";
    let (pipeline, rest) = common::load(&args, false, 3, usage)?;
    let [a, b, out] = rest else {
        anyhow::bail!("usage: {usage}");
    };
    let steps = 6;
    let features = interpolate(
        pipeline.audio_feature_of_file(a)?,
        pipeline.audio_feature_of_file(b)?,
        steps,
        Interpolation::Spherical,
    )?;
    let noise = pipeline.noise(1, 0, 1.0)?.repeat_dim(0, steps);
    let images = tensor_to_images(pipeline.generate_tensor(features, noise)?);
    let label = vec![format!("{a} -> {b}")];
    labelled_grid(&images, steps, &label)
        .save(out)
        .with_context(|| format!("cannot write {out}"))?;
    println!("wrote {out}");
    Ok(())
}
