//! The `sound2scene` command line: a thin layer over the library.

mod common;
mod compose;
mod convert;
mod edit;
mod embed;
mod eval;
mod eval_world;
mod generate;
mod interpolate;
mod live;
mod select;
#[cfg(feature = "serve")]
mod serve;
mod skipped;
mod spectrogram;
mod synth;
mod train_align;
mod train_gan;
mod train_image;
mod train_world_classifier;
mod volume_sweep;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Parser, Subcommand};
use sound2scene::BackendKind;

/// Turn a sound into a picture of the scene that made it (Sound2Scene, CVPR 2023).
#[derive(Parser)]
#[command(name = "sound2scene", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Options shared by every command that runs a network.
#[derive(clap::Args, Clone, Debug)]
pub struct DeviceArgs {
    /// Where the networks run: flex (CPU, default), wgpu or cuda (GPU builds only).
    #[arg(long, default_value = "flex")]
    pub device: BackendKind,
}

#[derive(Subcommand)]
enum Command {
    /// Write the official log spectrogram of an audio file as a [257, frames] .npy array.
    Spectrogram(spectrogram::SpectrogramArgs),
    /// Encode sounds (or spectrogram arrays) into audio features z^A [n, dim] (dim 2048 for
    /// the released model).
    EmbedAudio(embed::EmbedAudioArgs),
    /// Encode images (or normalized arrays) into image features z^V [n, dim] (dim 2048 for
    /// SwAV's ResNet-50).
    EmbedImage(embed::EmbedImageArgs),
    /// Draw the scene of a sound (or of given features) with the IC-GAN generator.
    Generate(generate::GenerateArgs),
    /// Convert a released checkpoint to a burnpack file (f32, or f16 with --half).
    Convert(convert::ConvertArgs),
    /// One row per volume: the sound at several gains (louder → bigger sources).
    VolumeSweep(volume_sweep::VolumeSweepArgs),
    /// The scene along a recording, a picture every hop, as an animated GIF.
    Live(live::LiveArgs),
    /// Serve a page, a JSON/PNG API and live pictures over HTTP (loopback by default).
    #[cfg(feature = "serve")]
    Serve(serve::ServeArgs),
    /// One row per step between two sounds' features, with fixed noise.
    Interpolate(interpolate::InterpolateArgs),
    /// Blend a photo's feature with a sound's (alpha 0 = photo, 1 = sound).
    Compose(compose::ComposeArgs),
    /// Edit a photo by a sound: invert it into G, move along z^A(loud) - z^A(quiet).
    Edit(edit::EditArgs),
    /// Write a dataset of the procedural audio-visual world, with ground truth.
    Synth(synth::SynthArgs),
    /// Write one sound of the procedural world (a class at a gain) as WAV.
    SynthSound(synth::SynthSoundArgs),
    /// Train the audio encoder on audio/image pairs against frozen image features (Sec. 2.1).
    TrainAlign(Box<train_align::TrainAlignArgs>),
    /// Train the IC-GAN generator and discriminator on images and their f_V features.
    TrainGan(Box<train_gan::TrainGanArgs>),
    /// Train the image encoder f_V self-supervised with SwAV on a folder of images.
    TrainImage(Box<train_image::TrainImageArgs>),
    /// Train the sound-source localization network that selects frames (Sec. 2.3), without labels.
    TrainSelect(Box<select::TrainSelectArgs>),
    /// Mine each video's top-k audio-visually correlated frames into a moments file.
    Select(Box<select::SelectArgs>),
    /// Evaluation metrics on arrays: fid, is, retrieval.
    #[command(subcommand)]
    Eval(eval::EvalCommand),
    /// Train the procedural world's classifier (its "Inception") on rendered frames.
    TrainWorldClassifier(train_world_classifier::TrainWorldClassifierArgs),
    /// Measure the paper's claims on held-out clips of the procedural world.
    EvalWorld(eval_world::EvalWorldArgs),
}

impl Command {
    /// Whether the command runs the networks step after step (training, optimizing, streaming,
    /// evaluating): those keep freed activations in the process instead of faulting them in
    /// again each step (see `keep_freed_memory`). The commands that draw or encode once give
    /// their memory back as glibc does by default, which keeps their peak resident memory at
    /// what their networks need (`generate` with the released G: 457 MiB instead of 480–570).
    fn repeats_steps(&self) -> bool {
        !matches!(
            self,
            Command::Spectrogram(_)
                | Command::EmbedAudio(_)
                | Command::EmbedImage(_)
                | Command::Generate(_)
                | Command::Convert(_)
                | Command::VolumeSweep(_)
                | Command::Interpolate(_)
                | Command::Compose(_)
                | Command::Synth(_)
                | Command::SynthSound(_)
        )
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.command.repeats_steps() {
        sound2scene::keep_freed_memory();
    }
    let result = match cli.command {
        Command::Spectrogram(args) => spectrogram::run(args),
        Command::EmbedAudio(args) => embed::audio(args),
        Command::EmbedImage(args) => embed::image(args),
        Command::Generate(args) => generate::run(args),
        Command::Convert(args) => convert::run(args),
        Command::VolumeSweep(args) => volume_sweep::run(args),
        Command::Interpolate(args) => interpolate::run(args),
        Command::Live(args) => live::run(args),
        #[cfg(feature = "serve")]
        Command::Serve(args) => serve::run(args),
        Command::Compose(args) => compose::run(args),
        Command::Edit(args) => edit::run(args),
        Command::Synth(args) => synth::synth(args),
        Command::TrainAlign(args) => train_align::run(*args),
        Command::TrainGan(args) => train_gan::run(*args),
        Command::TrainImage(args) => train_image::run(*args),
        Command::SynthSound(args) => synth::synth_sound(args),
        Command::TrainSelect(args) => select::train(*args),
        Command::Select(args) => select::select(*args),
        Command::Eval(command) => eval::run(command),
        Command::TrainWorldClassifier(args) => train_world_classifier::run(args),
        Command::EvalWorld(args) => eval_world::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Before a run resumes from `out`: say which checkpoints are damaged (a file changed after it
/// was written) and are passed over for the previous complete one.
pub fn report_damaged_checkpoints(out: &std::path::Path) {
    match sound2scene::train::checkpoint::damaged_checkpoints(out) {
        Ok(damaged) => {
            for err in damaged {
                eprintln!("warning: {err}; resuming from the previous complete checkpoint");
            }
        }
        Err(err) => eprintln!(
            "warning: cannot check the checkpoints in {}: {err}",
            out.display()
        ),
    }
}

/// Makes Ctrl-C (and SIGTERM) set `stop`, which the training loops read after each step: they
/// write a checkpoint and return. A second Ctrl-C exits at once (checkpoints are atomic, so the
/// last complete one is kept). Call it once per process.
pub fn install_stop_handler(stop: Arc<AtomicBool>) {
    if let Err(e) = ctrlc::set_handler(move || {
        if stop.swap(true, Ordering::SeqCst) {
            eprintln!("stopping now; the last complete checkpoint is kept");
            std::process::exit(130);
        }
        eprintln!("saving a checkpoint and stopping (Ctrl-C again to quit at once)");
    }) {
        eprintln!("warning: Ctrl-C will not save a checkpoint: {e}");
    }
}
