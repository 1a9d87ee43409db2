//! Videos on disk in the VGGSound layout and their decoded form: frames resized for the visual
//! encoder and the clip's log spectrogram, from which one audio window per frame is cut.
//!
//! Layout: `FRAMES/VIDEO/NNNN.jpg` (the file stem is the frame number, any zero padding) and
//! `AUDIOS/VIDEO.wav` (or another extension of
//! [`sound2scene_train::data::AUDIO_EXTENSIONS`], e.g. `.mp4`). Frame `i` of a video (0-based,
//! in frame-number order) is taken to be at `i / fps` seconds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use sound2scene_audio::{Spectrogram, load_audio};
use sound2scene_train::data::{AUDIO_EXTENSIONS, list_files};

use crate::error::{Result, SelectError};
use crate::model::LocalizerConfig;

/// One video: its name, its audio file and its frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Video {
    /// The name of its frame folder (the video id).
    pub name: String,
    /// The audio file.
    pub audio: PathBuf,
    /// (frame number, file), by ascending frame number.
    pub frames: Vec<(u64, PathBuf)>,
}

/// The videos found in a frames and an audio directory, and what could not be paired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VideoListing {
    /// The videos with frames and audio, sorted by name.
    pub videos: Vec<Video>,
    /// Frame folders without an audio file (or without any frame).
    pub without_audio: Vec<String>,
    /// Audio files without a frame folder, by stem.
    pub without_frames: Vec<String>,
}

/// The frames of one folder: (frame number, path) by ascending number; stems that are not
/// unsigned integers are ignored, and of two files with the same number the first by name
/// is kept.
pub fn list_frames(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    Ok(sound2scene_train::data::list_frames(dir)?)
}

/// Lists the videos of `frames_dir` (one folder per video) with their audio in `audios_dir`,
/// pairing by exact name; an audio stem with several files keeps the most preferred
/// extension of [`AUDIO_EXTENSIONS`].
///
/// # Errors
/// [`SelectError::Data`] when a directory is missing; [`SelectError::Io`] when one cannot be
/// listed.
pub fn discover_videos(frames_dir: &Path, audios_dir: &Path) -> Result<VideoListing> {
    for (dir, what) in [(frames_dir, "frames"), (audios_dir, "audios")] {
        if !dir.is_dir() {
            return Err(SelectError::Data {
                path: dir.to_path_buf(),
                reason: format!("the {what} directory does not exist or is not a directory"),
                source: None,
            });
        }
    }
    let mut audio: BTreeMap<String, (usize, PathBuf)> = BTreeMap::new();
    for (stem, ext, path) in list_files(audios_dir)? {
        let Some(rank) = AUDIO_EXTENSIONS.iter().position(|e| *e == ext) else {
            continue;
        };
        if audio.get(&stem).is_none_or(|(have, _)| rank < *have) {
            audio.insert(stem, (rank, path));
        }
    }
    let mut folders = Vec::new();
    for entry in std::fs::read_dir(frames_dir).map_err(SelectError::io(frames_dir))? {
        let path = entry.map_err(SelectError::io(frames_dir))?.path();
        if let (true, Some(name)) = (path.is_dir(), path.file_name().and_then(|n| n.to_str())) {
            folders.push((name.to_string(), path.clone()));
        }
    }
    folders.sort();
    let mut listing = VideoListing::default();
    for (name, dir) in folders {
        let frames = list_frames(&dir)?;
        match audio.remove(&name) {
            Some((_, audio_path)) if !frames.is_empty() => listing.videos.push(Video {
                name,
                audio: audio_path,
                frames,
            }),
            Some(_) => listing.without_audio.push(name),
            None => listing.without_audio.push(name),
        }
    }
    listing.without_frames = audio.into_keys().collect();
    Ok(listing)
}

/// Maps a pixel value to the visual encoder's input range `[-1, 1]`.
pub fn normalize_pixel(value: u8) -> f32 {
    f32::from(value) / 127.5 - 1.0
}

/// Reads an image file as RGB, resized to `side × side` (triangle filter) when it has another
/// size.
///
/// # Errors
/// [`SelectError::Image`] naming the file.
pub fn read_frame(path: &Path, side: usize) -> Result<image::RgbImage> {
    let img = image::open(path)
        .map_err(|source| SelectError::Image {
            path: path.to_path_buf(),
            source,
        })?
        .to_rgb8();
    let side = side as u32;
    Ok(if img.width() == side && img.height() == side {
        img
    } else {
        image::imageops::resize(&img, side, side, FilterType::Triangle)
    })
}

/// A decoded video: its frames at the encoder's size and its whole log spectrogram.
#[derive(Debug, Clone)]
pub struct LoadedVideo {
    /// The video's name.
    pub name: String,
    /// Frame numbers, in order.
    pub frame_numbers: Vec<u64>,
    /// Frame files, in the same order.
    pub frame_paths: Vec<PathBuf>,
    /// Side of the stored frames in pixels.
    pub side: usize,
    /// Pixels `[frames, side, side, 3]`, RGB bytes.
    pub pixels: Vec<u8>,
    /// The clip's standardized log spectrogram `[bins, columns]`, row-major.
    pub spectrogram: Vec<f32>,
    /// Frequency bins of `spectrogram` (257).
    pub bins: usize,
    /// Time columns of `spectrogram` (about 100.6 per second).
    pub columns: usize,
}

impl LoadedVideo {
    /// Decodes `video` for `config`: every frame resized to `config.image_size`, and the
    /// spectrogram of the whole audio (at least `window_seconds` long; shorter audio is
    /// repeated to fill one window).
    ///
    /// # Errors
    /// Audio and image errors naming the file.
    pub fn load(video: &Video, config: &LocalizerConfig) -> Result<Self> {
        let side = config.image_size;
        let mut pixels = Vec::with_capacity(video.frames.len() * side * side * 3);
        for (_, path) in &video.frames {
            pixels.extend_from_slice(read_frame(path, side)?.as_raw());
        }
        let wave = load_audio(&video.audio)?;
        let seconds = wave.frames() as f32 / wave.sample_rate.max(1) as f32;
        let spec = Spectrogram::compute_with(&wave, &config.spectrogram_config(seconds))?;
        let [bins, columns] = spec.shape();
        Ok(Self {
            name: video.name.clone(),
            frame_numbers: video.frames.iter().map(|(n, _)| *n).collect(),
            frame_paths: video.frames.iter().map(|(_, p)| p.clone()).collect(),
            side,
            pixels,
            spectrogram: spec.into_vec(),
            bins,
            columns,
        })
    }

    /// Number of frames.
    pub fn len(&self) -> usize {
        self.frame_numbers.len()
    }

    /// Whether the video has no frame.
    pub fn is_empty(&self) -> bool {
        self.frame_numbers.is_empty()
    }

    /// Appends frame `index` to `out` as normalized `[3, side, side]` values.
    pub fn push_frame(&self, index: usize, out: &mut Vec<f32>) {
        let plane = self.side * self.side;
        let pixels = &self.pixels[index * plane * 3..(index + 1) * plane * 3];
        for channel in 0..3 {
            out.extend(
                pixels
                    .iter()
                    .skip(channel)
                    .step_by(3)
                    .map(|&v| normalize_pixel(v)),
            );
        }
    }

    /// The first spectrogram column of the `width`-column window centred on frame `index`
    /// at `fps` frames per second (clamped to the clip).
    pub fn window_start(&self, index: usize, fps: f32, width: usize) -> usize {
        let spec = sound2scene_audio::SpectrogramConfig::default();
        let time = index as f64 / f64::from(fps.max(1e-3));
        // Column k covers samples [k · hop, k · hop + n_fft); its centre is at k · hop + n_fft/2.
        let centre =
            (time * f64::from(spec.sample_rate) - spec.n_fft as f64 / 2.0) / spec.hop() as f64;
        let start = (centre - width as f64 / 2.0).round().max(0.0) as usize;
        start.min(self.columns.saturating_sub(width))
    }

    /// Appends the audio window of frame `index` to `out` as `[bins, width]` values; columns
    /// past the end of a clip shorter than the window repeat its last column.
    pub fn push_window(&self, index: usize, fps: f32, width: usize, out: &mut Vec<f32>) {
        let start = self.window_start(index, fps, width);
        for bin in 0..self.bins {
            let row = &self.spectrogram[bin * self.columns..(bin + 1) * self.columns];
            out.extend((0..width).map(|k| row[(start + k).min(self.columns - 1)]));
        }
    }
}
