//! Commands of the procedural audio-visual world.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use image::codecs::jpeg::JpegEncoder;
use sound2scene::synth::{
    Background, DatasetTruth, JPEG_QUALITY, Layout, SoundClass, SourceSpec, World, WorldConfig,
    class_sound, write_dataset, write_wav,
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
    /// A world description (JSON object of WorldConfig's fields, e.g. a model's world.json);
    /// the options below override it, its seed and clip count are those of --seed and --clips.
    #[arg(long)]
    world: Option<PathBuf>,
    /// Frames per second of the clips [default: 10].
    #[arg(long)]
    fps: Option<u32>,
    /// Side of the square frames in pixels [default: 64].
    #[arg(long)]
    image_size: Option<u32>,
    /// Clip length in seconds [default: 10].
    #[arg(long)]
    seconds: Option<f32>,
    /// Which frame the official layout stores: middle (as real data gives it) or truth (the
    /// frame a perfect pair selector picks: most sources on screen, see `--moments-out`).
    #[arg(long, default_value = "middle", value_parser = ["middle", "truth"])]
    frame: String,
    /// Also write the ground-truth top-k moments of every clip in the released format
    /// ({"clip_000000": [47, 46, ...]}, best first; frame numbers at --fps).
    #[arg(long)]
    moments_out: Option<PathBuf>,
    /// Frames per clip in --moments-out.
    #[arg(long, default_value_t = 10)]
    top_k: usize,
}

/// Write a dataset of the procedural world with its ground truth.
pub fn synth(args: SynthArgs) -> Result<()> {
    let base = match &args.world {
        Some(path) => WorldConfig::load(path)?,
        None => WorldConfig::default(),
    };
    let config = WorldConfig {
        seed: args.seed,
        clips: args.clips,
        fps: args.fps.unwrap_or(base.fps),
        image_size: args.image_size.unwrap_or(base.image_size),
        seconds: args.seconds.unwrap_or(base.seconds),
        ..base
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
    if args.frame == "truth" {
        if layout != Layout::Official {
            bail!(
                "--frame truth applies to the official layout (the VGGSound layout has every frame)"
            );
        }
        store_truth_frames(&world, &truth, &args.out)?;
    }
    if let Some(path) = &args.moments_out {
        write_moments(&truth, args.top_k, path)?;
        println!(
            "wrote the ground-truth top-{} moments to {}",
            args.top_k,
            path.display()
        );
    }
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

/// Replaces each clip's stored middle frame (`images/NAME.jpg`) by its best-ranked frame.
fn store_truth_frames(world: &World, truth: &DatasetTruth, dir: &Path) -> Result<()> {
    truth.clips.iter().try_for_each(|clip| {
        let best = clip
            .ranked_frames()
            .first()
            .copied()
            .unwrap_or(clip.middle_frame);
        let frame = world.clip(clip.index).frame(best)?;
        let path = dir.join("images").join(format!("{}.jpg", clip.name));
        let file = std::fs::File::create(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        JpegEncoder::new_with_quality(std::io::BufWriter::new(file), JPEG_QUALITY)
            .encode_image(&frame)
            .with_context(|| format!("cannot encode {}", path.display()))?;
        Ok(())
    })
}

/// Writes `{"NAME": [best, next, ...]}` with the first `top_k` ranked frames of each clip.
fn write_moments(truth: &DatasetTruth, top_k: usize, path: &Path) -> Result<()> {
    let moments: BTreeMap<&str, Vec<usize>> = truth
        .clips
        .iter()
        .map(|c| {
            let mut ranked = c.ranked_frames();
            ranked.truncate(top_k);
            (c.name.as_str(), ranked)
        })
        .collect();
    let json = serde_json::to_string(&moments)?;
    std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))
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
    /// Record the source over this background's ambient bed (sky, water or field), as a clip
    /// of the world sounds; without it, the source alone.
    #[arg(long)]
    background: Option<String>,
    /// With --background: when the source sounds, `START,END` in seconds (default: the whole
    /// clip). World clips sound a source for 20-50 % of the clip.
    #[arg(long, value_delimiter = ',', requires = "background")]
    interval: Option<Vec<f32>>,
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
    let samples = match &args.background {
        None => class_sound(class, args.gain_db, args.seconds, args.seed)?,
        Some(name) => {
            let background: Background = name.parse()?;
            let mut source = SourceSpec::new(class, args.gain_db);
            match args.interval.as_deref() {
                None => {}
                Some(&[start, end]) => source = source.during(start, end),
                Some(other) => bail!("--interval takes START,END in seconds; got {other:?}"),
            }
            sound2scene::synth::synth_sound(&[source], background, args.seconds, args.seed)?
        }
    };
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
