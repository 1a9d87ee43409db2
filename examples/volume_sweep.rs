//! Draw the scene of one sound at several volumes (the paper's Fig. 5: louder sounds give
//! bigger or more dynamic sources).
//!
//! ```sh
//! cargo run --release --example volume_sweep -- [AUDIO_WEIGHTS GENERATOR] SOUND.wav out.png
//! ```
//! Without the weights the bundled model draws.

use anyhow::{Context, Result};
use sound2scene::audio::load_audio;
use sound2scene::infer::visual::labelled_grid;

mod common;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "volume_sweep [AUDIO_WEIGHTS GENERATOR] SOUND.wav OUT.png";
    let (pipeline, rest) = common::load(&args, false, 2, usage)?;
    let [sound, out] = rest else {
        anyhow::bail!("usage: {usage}");
    };
    let wave = load_audio(sound)?;
    let gains = [-12.0f32, -6.0, 0.0, 6.0, 12.0];
    let waves = gains
        .iter()
        .map(|db| wave.gain_db(*db))
        .collect::<Result<Vec<_>, _>>()?;
    let rows = pipeline.generate_batch(&waves, 3, 0, 1.0)?;
    let labels: Vec<String> = gains.iter().map(|g| format!("{g:+} dB")).collect();
    labelled_grid(&rows.concat(), 3, &labels)
        .save(out)
        .with_context(|| format!("cannot write {out}"))?;
    println!("wrote {out}");
    Ok(())
}
