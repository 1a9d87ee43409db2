//! Commands of the procedural audio-visual world.

use std::path::PathBuf;

use anyhow::{Result, bail};
use sound2scene::synth::{
    Layout, SoundClass, World, WorldConfig, class_sound, write_dataset, write_wav,
};

/// Arguments of `sound2scene synth`.
#[derive(clap::Args)]
pub struct SynthArgs {
    /// Folder to write the dataset into.
    #[arg(long)]
    out: PathBuf,
    /// Number of clips.
    #[arg(long, default_value_t = 100)]
    clips: usize,
    /// Seed of the world (the same seed writes the same files).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Layout: official (images/ + audios/, the middle frame) or vggsound (frames/ + audios/).
    #[arg(long, default_value = "official", value_parser = ["official", "vggsound"])]
    layout: String,
    /// Frames per second of the clips.
    #[arg(long, default_value_t = 10)]
    fps: u32,
    /// Side of the square frames in pixels.
    #[arg(long, default_value_t = 64)]
    image_size: u32,
    /// Clip length in seconds.
    #[arg(long, default_value_t = 10.0)]
    seconds: f32,
}

/// Write a dataset of the procedural world with its ground truth.
pub fn synth(args: SynthArgs) -> Result<()> {
    let config = WorldConfig {
        seed: args.seed,
        clips: args.clips,
        fps: args.fps,
        image_size: args.image_size,
        seconds: args.seconds,
        ..WorldConfig::default()
    };
    let world = World::new(config)?;
    let layout = if args.layout == "vggsound" {
        Layout::Vggsound
    } else {
        Layout::Official
    };
    let bar = indicatif::ProgressBar::new(args.clips as u64);
    let truth = write_dataset(&world, &args.out, layout, |_, _| bar.inc(1))?;
    bar.finish_and_clear();
    let clips = truth.clips.len().max(1) as f64;
    println!(
        "wrote {} clips to {} ({} layout); the middle frame shows no source in {:.1}% of clips \
         and misses a sounding source in {:.1}%",
        truth.clips.len(),
        args.out.display(),
        args.layout,
        100.0 * truth.middle_frame_without_source as f64 / clips,
        100.0 * truth.middle_frame_missing_a_source as f64 / clips
    );
    Ok(())
}

/// Arguments of `sound2scene synth-sound`.
#[derive(clap::Args)]
pub struct SynthSoundArgs {
    /// The sound class: bell, siren, engine, bird, dog, drum, whistle or cow.
    #[arg(long)]
    class: String,
    /// Loudness relative to the reference level in dB (louder sources are drawn bigger).
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    gain_db: f32,
    /// Length in seconds.
    #[arg(long, default_value_t = 10.0)]
    seconds: f32,
    /// Seed of the sound's variations.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The 16 kHz mono WAV file to write.
    #[arg(long)]
    out: PathBuf,
}

/// Write one class's sound as a WAV file.
pub fn synth_sound(args: SynthSoundArgs) -> Result<()> {
    let class: SoundClass = match args.class.parse() {
        Ok(class) => class,
        Err(_) => bail!(
            "unknown class '{}': expected one of {}",
            args.class,
            SoundClass::ALL.map(|c| c.name()).join(", ")
        ),
    };
    let samples = class_sound(class, args.gain_db, args.seconds, args.seed)?;
    write_wav(&args.out, &samples)?;
    println!(
        "wrote {} ({} at {:+} dB, {} s)",
        args.out.display(),
        class.name(),
        args.gain_db,
        args.seconds
    );
    Ok(())
}
