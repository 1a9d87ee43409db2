//! Finding the audio/image training pairs on disk, and splitting them for validation.
//!
//! Two layouts are understood:
//!
//! - the official one (Sound2Scene `a2s_dataloader.py`, `GetVGGSound`): `DATA/images/NAME.jpg`
//!   and `DATA/audios/NAME.wav`, paired by file stem ([`discover_official`]);
//! - the VGGSound one: every video's frames in `DATA/frames/VIDEO/NNNN.jpg` (the file name is
//!   the frame number, with any zero padding) and its sound in `DATA/audios/VIDEO.wav` (or
//!   `VIDEO.mp4`), the training frame being the top-ranked one of a "top-k moments" JSON file
//!   `{"VIDEO": [47, 46, ...]}` (best first) or, without an entry, the middle frame
//!   ([`discover_vggsound`]).
//!
//! Files without a partner are counted in the returned [`Discovery`], not treated as errors;
//! a layout that yields no pair at all is an error naming the directory.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::error::TrainError;
use crate::skip::SkippedSample;

/// Extensions (lower case) accepted for training images.
pub const IMAGE_EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];
/// Extensions (lower case) accepted for training audio, in order of preference when a name has
/// several.
pub const AUDIO_EXTENSIONS: [&str; 6] = ["wav", "flac", "mp3", "ogg", "m4a", "mp4"];

/// One training example: a sound and the video frame it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    /// The example's name: the file stem (official layout) or the video id (VGGSound layout).
    pub name: String,
    /// The audio file (any format `sound2scene_audio::load_audio` decodes).
    pub audio: PathBuf,
    /// The image file (JPEG or PNG).
    pub image: PathBuf,
}

/// The pairs found in a data directory and what could not be paired.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    /// The pairs, sorted by name.
    pub pairs: Vec<Pair>,
    /// Audio files with no image partner (or, in the VGGSound layout, no usable frame).
    pub unpaired_audio: usize,
    /// Images (official layout) or frame folders (VGGSound layout) with no audio partner.
    pub unpaired_images: usize,
    /// VGGSound layout: videos whose training frame is the middle frame because the moments
    /// file has no usable entry for them (all of them when no moments file is given).
    pub middle_frame_fallbacks: usize,
    /// VGGSound layout: videos that cannot be used, with the cause: a frame folder holding no
    /// frame, an audio file without a frame folder (sorted by video id). They are also counted
    /// in `unpaired_audio`; pass them on as
    /// [`CacheOptions::earlier`](crate::feature_cache::CacheOptions::earlier) so they count
    /// towards the skip limit and appear in the report.
    pub skipped: Vec<SkippedSample>,
}

/// Lists the regular files of `dir` as (stem, lower-case extension, path), sorted by path;
/// files whose stem or extension is not UTF-8 (or that have none) are left out.
///
/// # Errors
/// [`TrainError::Io`] naming `dir` when it cannot be read.
pub fn list_files(dir: &Path) -> Result<Vec<(String, String, PathBuf)>, TrainError> {
    let entries = std::fs::read_dir(dir).map_err(|source| TrainError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| TrainError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        if !path.is_file() {
            continue;
        }
        let (Some(stem), Some(ext)) = (
            path.file_stem().and_then(|s| s.to_str()),
            path.extension().and_then(|e| e.to_str()),
        ) else {
            continue;
        };
        files.push((stem.to_string(), ext.to_ascii_lowercase(), path.clone()));
    }
    files.sort_by(|a, b| a.2.cmp(&b.2));
    Ok(files)
}

/// Fails with [`TrainError::Data`] naming `dir` when it is not a directory.
fn require_dir(dir: &Path, what: &str) -> Result<(), TrainError> {
    if dir.is_dir() {
        Ok(())
    } else {
        Err(TrainError::Data {
            path: dir.to_path_buf(),
            reason: format!("the {what} directory does not exist or is not a directory"),
            source: None,
        })
    }
}

/// Audio files of `dir` by stem, keeping the most preferred extension of
/// [`AUDIO_EXTENSIONS`] when a stem has several. Also returns how many audio files were
/// shadowed that way.
fn audio_by_stem(dir: &Path) -> Result<(BTreeMap<String, PathBuf>, usize), TrainError> {
    let mut best: BTreeMap<String, (usize, PathBuf)> = BTreeMap::new();
    let mut shadowed = 0;
    for (stem, ext, path) in list_files(dir)? {
        let Some(rank) = AUDIO_EXTENSIONS.iter().position(|e| *e == ext) else {
            continue;
        };
        match best.get(&stem) {
            Some((have, _)) if *have <= rank => shadowed += 1,
            Some(_) => {
                shadowed += 1;
                best.insert(stem, (rank, path));
            }
            None => {
                best.insert(stem, (rank, path));
            }
        }
    }
    Ok((
        best.into_iter().map(|(k, (_, p))| (k, p)).collect(),
        shadowed,
    ))
}

/// Pairs of the official layout: `dir/images/NAME.{jpg,jpeg,png}` with
/// `dir/audios/NAME.{wav,...}`, matched by file stem and sorted by name.
///
/// When a stem has several images, the first by file name is used and the others count as
/// unpaired images; likewise for audio (by [`AUDIO_EXTENSIONS`] preference).
///
/// # Errors
/// [`TrainError::Data`] naming the directory when `dir`, `dir/images` or `dir/audios` is
/// missing, or no pair is found; [`TrainError::Io`] when a directory cannot be listed.
pub fn discover_official(dir: impl AsRef<Path>) -> Result<Discovery, TrainError> {
    let dir = dir.as_ref();
    require_dir(dir, "data")?;
    let image_dir = dir.join("images");
    let audio_dir = dir.join("audios");
    require_dir(&image_dir, "images")?;
    require_dir(&audio_dir, "audios")?;

    let (mut audio, shadowed_audio) = audio_by_stem(&audio_dir)?;
    let mut discovery = Discovery {
        unpaired_audio: shadowed_audio,
        ..Discovery::default()
    };
    for (stem, ext, path) in list_files(&image_dir)? {
        if !IMAGE_EXTENSIONS.contains(&ext.as_str()) {
            continue;
        }
        match audio.remove(&stem) {
            Some(audio_path) => discovery.pairs.push(Pair {
                name: stem,
                audio: audio_path,
                image: path,
            }),
            None => discovery.unpaired_images += 1,
        }
    }
    discovery.unpaired_audio += audio.len();
    discovery.pairs.sort_by(|a, b| a.name.cmp(&b.name));
    if discovery.pairs.is_empty() {
        return Err(TrainError::Data {
            path: dir.to_path_buf(),
            reason: format!(
                "no image/audio pair found ({} unpaired images, {} unpaired audio files); \
                 expected images/NAME.jpg with audios/NAME.wav",
                discovery.unpaired_images, discovery.unpaired_audio
            ),
            source: None,
        });
    }
    Ok(discovery)
}

/// Reads a top-k moments file in the released format: a JSON object mapping each video id to
/// its frame numbers, best first (`{"VIDEO": [47, 46, ...]}`). Non-integral or negative entries
/// are skipped.
///
/// # Errors
/// [`TrainError::Io`] when the file cannot be read, [`TrainError::Data`] when it is not such a
/// JSON object.
pub fn read_moments(path: impl AsRef<Path>) -> Result<HashMap<String, Vec<u64>>, TrainError> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| TrainError::Data {
        path: path.to_path_buf(),
        reason: format!("the moments file is not valid JSON: {e}"),
        source: Some(e.into()),
    })?;
    let serde_json::Value::Object(map) = value else {
        return Err(TrainError::Data {
            path: path.to_path_buf(),
            reason: "the moments file must be a JSON object {\"VIDEO\": [frame, ...]}".into(),
            source: None,
        });
    };
    let mut moments = HashMap::with_capacity(map.len());
    for (video, frames) in map {
        let serde_json::Value::Array(frames) = frames else {
            return Err(TrainError::Data {
                path: path.to_path_buf(),
                reason: format!("entry '{video}' is not a list of frame numbers"),
                source: None,
            });
        };
        let frames = frames
            .iter()
            .filter_map(|f| {
                f.as_u64().or_else(|| {
                    f.as_f64()
                        .filter(|x| x.fract() == 0.0 && *x >= 0.0 && *x < 1e15)
                        .map(|x| x as u64)
                })
            })
            .collect();
        moments.insert(video, frames);
    }
    Ok(moments)
}

/// The frames of one video folder: (frame number, path), sorted by frame number. Files whose
/// stem is not an unsigned integer are ignored, and of two files with the same number the
/// first by name is kept.
///
/// # Errors
/// [`TrainError::Io`] naming `dir` when it cannot be read.
pub fn list_frames(dir: &Path) -> Result<Vec<(u64, PathBuf)>, TrainError> {
    let mut frames: Vec<(u64, PathBuf)> = list_files(dir)?
        .into_iter()
        .filter(|(_, ext, _)| IMAGE_EXTENSIONS.contains(&ext.as_str()))
        .filter_map(|(stem, _, path)| stem.parse::<u64>().ok().map(|n| (n, path)))
        .collect();
    frames.sort();
    frames.dedup_by_key(|(n, _)| *n);
    Ok(frames)
}

/// Pairs of the VGGSound layout: `dir/frames/VIDEO/NNNN.jpg` with `dir/audios/VIDEO.wav` (or
/// another of [`AUDIO_EXTENSIONS`], e.g. `VIDEO.mp4`), sorted by video id.
///
/// The training frame of a video is the first frame listed for it in `moments` (a file read
/// with [`read_moments`]) that exists in its folder, matching frame numbers as integers
/// (`47` is `0047.jpg` or `47.jpg`); without such an entry it is the middle frame, the one at
/// index `count / 2` of the frames sorted by number.
///
/// # Errors
/// [`TrainError::Data`] naming the directory when `dir`, `dir/frames` or `dir/audios` is
/// missing or no pair is found; the errors of [`read_moments`].
pub fn discover_vggsound(
    dir: impl AsRef<Path>,
    moments: Option<&Path>,
) -> Result<Discovery, TrainError> {
    let dir = dir.as_ref();
    require_dir(dir, "data")?;
    let frames_dir = dir.join("frames");
    let audio_dir = dir.join("audios");
    require_dir(&frames_dir, "frames")?;
    require_dir(&audio_dir, "audios")?;
    let moments = moments.map(read_moments).transpose()?.unwrap_or_default();

    let (mut audio, shadowed_audio) = audio_by_stem(&audio_dir)?;
    let mut discovery = Discovery {
        unpaired_audio: shadowed_audio,
        ..Discovery::default()
    };
    let entries = std::fs::read_dir(&frames_dir).map_err(|source| TrainError::Io {
        path: frames_dir.clone(),
        source,
    })?;
    let mut videos = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| TrainError::Io {
            path: frames_dir.clone(),
            source,
        })?;
        let path = entry.path();
        if let (true, Some(name)) = (path.is_dir(), path.file_name().and_then(|n| n.to_str())) {
            videos.push((name.to_string(), path.clone()));
        }
    }
    videos.sort();
    for (video, video_dir) in videos {
        let Some(audio_path) = audio.remove(&video) else {
            discovery.unpaired_images += 1;
            continue;
        };
        let frames = list_frames(&video_dir)?;
        if frames.is_empty() {
            discovery.unpaired_audio += 1;
            discovery.skipped.push(SkippedSample {
                name: video,
                file: video_dir,
                cause: format!(
                    "the frame folder holds no frame (expected NNNN.{})",
                    IMAGE_EXTENSIONS.join(" or NNNN.")
                ),
            });
            continue;
        }
        let ranked = moments.get(&video).and_then(|list| {
            list.iter().find_map(|want| {
                frames
                    .binary_search_by_key(want, |(n, _)| *n)
                    .ok()
                    .map(|i| frames[i].1.clone())
            })
        });
        let image = match ranked {
            Some(path) => path,
            None => {
                discovery.middle_frame_fallbacks += 1;
                frames[frames.len() / 2].1.clone()
            }
        };
        discovery.pairs.push(Pair {
            name: video,
            audio: audio_path,
            image,
        });
    }
    discovery.unpaired_audio += audio.len();
    for (video, audio_path) in audio {
        discovery.skipped.push(SkippedSample {
            cause: format!(
                "no frame folder {} for this audio",
                frames_dir.join(&video).display()
            ),
            name: video,
            file: audio_path,
        });
    }
    discovery.skipped.sort_by(|a, b| a.name.cmp(&b.name));
    if discovery.pairs.is_empty() {
        return Err(TrainError::Data {
            path: dir.to_path_buf(),
            reason: format!(
                "no video with both frames and audio found ({} frame folders without audio, \
                 {} audio files without frames); expected frames/VIDEO/0001.jpg with \
                 audios/VIDEO.wav",
                discovery.unpaired_images, discovery.unpaired_audio
            ),
            source: None,
        });
    }
    Ok(discovery)
}

/// A deterministic division of `0..n` into training and validation indices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// Training indices, ascending.
    pub train: Vec<usize>,
    /// Validation indices, ascending.
    pub val: Vec<usize>,
}

/// Splits `0..n` with `round(n · val_fraction)` validation indices, at least 1 when `n > 1`
/// and `val_fraction > 0`, and at most `n - 1` (training keeps one example); none when
/// `n <= 1` or `val_fraction == 0`. The choice is a ChaCha8 shuffle seeded by `seed`, so the
/// same `(n, val_fraction, seed)` always gives the same split.
///
/// # Errors
/// [`TrainError::Config`] when `val_fraction` is not in `[0, 1)`.
pub fn split_validation(n: usize, val_fraction: f64, seed: u64) -> Result<Split, TrainError> {
    if !(0.0..1.0).contains(&val_fraction) {
        return Err(TrainError::config(format!(
            "the validation fraction must be in [0, 1), got {val_fraction}"
        )));
    }
    let val_count = if n <= 1 || val_fraction == 0.0 {
        0
    } else {
        ((n as f64 * val_fraction).round() as usize).clamp(1, n - 1)
    };
    let mut order: Vec<usize> = (0..n).collect();
    // A stream distinct from the per-epoch shuffles, which are derived from the same seed.
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5155_4c49_5456_414c);
    order.shuffle(&mut rng);
    let mut val = order[..val_count].to_vec();
    let mut train = order[val_count..].to_vec();
    val.sort_unstable();
    train.sort_unstable();
    Ok(Split { train, val })
}
