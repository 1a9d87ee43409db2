//! Mix two sounds and draw the scene of each and of the mix (the paper's Fig. 4).
//!
//! ```sh
//! cargo run --release --example mix_sounds -- [AUDIO_WEIGHTS GENERATOR] A.wav B.wav out.png
//! cargo run --release --example mix_sounds -- \
//!     assets/sounds/field_cow.wav assets/sounds/water_bell.wav mix.png
//! ```
//! `AUDIO_WEIGHTS` is `sound2scene.pth` or a `.bpk`; `GENERATOR` an IC-GAN folder or a `.bpk`;
//! without them the bundled model draws.

use anyhow::{Context, Result};
use sound2scene::audio::{Waveform, load_audio};
use sound2scene::infer::visual::labelled_grid;

mod common;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "mix_sounds [AUDIO_WEIGHTS GENERATOR] A.wav B.wav OUT.png";
    let (pipeline, rest) = common::load(&args, false, 3, usage)?;
    let [a, b, out] = rest else {
        anyhow::bail!("usage: {usage}");
    };
    let (a, b) = (load_audio(a)?, load_audio(b)?);
    let mix = Waveform::mix(&[(&a, 0.5), (&b, 0.5)])?;
    let rows = pipeline.generate_batch(&[a, b, mix], 3, 0, 1.0)?;
    let labels = ["first sound", "second sound", "mix 50/50"].map(String::from);
    labelled_grid(&rows.concat(), 3, &labels)
        .save(out)
        .with_context(|| format!("cannot write {out}"))?;
    println!("wrote {out}");
    Ok(())
}
