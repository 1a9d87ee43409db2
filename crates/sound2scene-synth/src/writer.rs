//! Dataset writers ([`write_dataset`], [`Layout`]) and a 16-bit PCM WAV encoder
//! ([`encode_wav`], [`write_wav`]).

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use image::RgbImage;
use image::codecs::jpeg::JpegEncoder;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::dsp::SAMPLE_RATE;
use crate::error::{Result, SynthError};
use crate::truth::{ClipTruth, DatasetTruth};
use crate::world::World;

/// JPEG quality (1–100) of written frames.
pub const JPEG_QUALITY: u8 = 90;

/// Name of the ground-truth file written at the dataset root.
pub const GROUND_TRUTH_FILE: &str = "ground_truth.json";

/// On-disk arrangement of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// The official Sound2Scene layout: `images/NAME.jpg` (the middle frame) and
    /// `audios/NAME.wav`. The ground truth says which middle frames show which sources.
    Official,
    /// VGGSound-style: `frames/NAME/0000.jpg …` (every frame, at the world's fps) and
    /// `audios/NAME.wav`.
    Vggsound,
}

/// Encodes mono `samples` (nominally in `[-1, 1]`; clamped) as a 16-bit PCM WAV file at
/// [`SAMPLE_RATE`] Hz.
pub fn encode_wav(samples: &[f32]) -> Vec<u8> {
    let data_len = (samples.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + samples.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&SAMPLE_RATE.to_le_bytes());
    out.extend_from_slice(&(SAMPLE_RATE * 2).to_le_bytes()); // bytes per second
    out.extend_from_slice(&2u16.to_le_bytes()); // block align
    out.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for &x in samples {
        let v = (x.clamp(-1.0, 1.0) * 32767.0).round() as i16;
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Writes `samples` to `path` as a 16-bit PCM mono WAV at [`SAMPLE_RATE`] Hz.
///
/// # Errors
/// [`SynthError::Io`] if the file cannot be written.
pub fn write_wav(path: &Path, samples: &[f32]) -> Result<()> {
    fs::write(path, encode_wav(samples)).map_err(|source| SynthError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SynthError + '_ {
    move |source| SynthError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn create_dir(path: &Path) -> Result<()> {
    fs::create_dir_all(path).map_err(io_err(path))
}

fn write_jpeg(path: &Path, img: &RgbImage) -> Result<()> {
    let file = File::create(path).map_err(io_err(path))?;
    let mut writer = BufWriter::new(file);
    JpegEncoder::new_with_quality(&mut writer, JPEG_QUALITY)
        .encode_image(img)
        .map_err(|source| SynthError::Image {
            path: path.to_path_buf(),
            source,
        })?;
    writer.flush().map_err(io_err(path))
}

/// Writes one clip's files and returns its ground truth.
fn write_clip(world: &World, index: usize, dir: &Path, layout: Layout) -> Result<ClipTruth> {
    let clip = world.clip(index);
    let name = clip.name().to_string();
    write_wav(
        &dir.join("audios").join(format!("{name}.wav")),
        &clip.audio(),
    )?;
    match layout {
        Layout::Official => {
            let path = dir.join("images").join(format!("{name}.jpg"));
            write_jpeg(&path, &clip.middle_frame())?;
        }
        Layout::Vggsound => {
            let frames_dir = dir.join("frames").join(&name);
            create_dir(&frames_dir)?;
            for (k, frame) in clip.frames().iter().enumerate() {
                write_jpeg(&frames_dir.join(format!("{k:04}.jpg")), frame)?;
            }
        }
    }
    Ok(clip.into_truth())
}

/// Writes clips `0..world.len()` under `dir` in `layout`, in parallel (rayon), plus
/// `dir/ground_truth.json` (a [`DatasetTruth`]), and returns that ground truth.
///
/// Files: `audios/clip_NNNNNN.wav` (16-bit PCM, mono, 16 kHz) for every clip, and either
/// `images/clip_NNNNNN.jpg` (the middle frame; [`Layout::Official`]) or
/// `frames/clip_NNNNNN/0000.jpg …` (every frame; [`Layout::Vggsound`]). Existing files are
/// overwritten. `progress(done, total)` is called after each clip, from worker threads.
///
/// # Errors
/// [`SynthError::Io`], [`SynthError::Image`] or [`SynthError::Json`] if a file cannot be
/// written.
pub fn write_dataset<F>(
    world: &World,
    dir: &Path,
    layout: Layout,
    progress: F,
) -> Result<DatasetTruth>
where
    F: Fn(usize, usize) + Sync,
{
    let media: PathBuf = dir.join(match layout {
        Layout::Official => "images",
        Layout::Vggsound => "frames",
    });
    create_dir(&media)?;
    create_dir(&dir.join("audios"))?;
    let total = world.len();
    let done = AtomicUsize::new(0);
    let clips = (0..total)
        .into_par_iter()
        .map(|i| {
            let truth = write_clip(world, i, dir, layout)?;
            progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
            Ok(truth)
        })
        .collect::<Result<Vec<_>>>()?;
    let truth = DatasetTruth::new(layout, world.config().clone(), clips);
    let path = dir.join(GROUND_TRUTH_FILE);
    let file = File::create(&path).map_err(io_err(&path))?;
    let mut writer = BufWriter::new(file);
    serde_json::to_writer(&mut writer, &truth).map_err(|source| SynthError::Json {
        path: path.clone(),
        source,
    })?;
    writer.flush().map_err(io_err(&path))?;
    Ok(truth)
}
