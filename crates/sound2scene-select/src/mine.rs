//! Mining the top-k moments of every video: C_av of each frame with the audio window centred
//! on it, frames ranked best first, written in the released format
//! (`{"VIDEO": [47, 46, ...]}`, frame numbers as the frame files are numbered), which
//! `sound2scene_train::data::read_moments` and `discover_vggsound` read back.
//!
//! Large jobs:
//! - **Sharding** ([`Shard`], `i/n`): a video belongs to shard `FNV-1a(name) mod n`, so `n`
//!   machines split any listing without coordination and every video is mined once; merge
//!   their outputs with [`merge_moment_files`].
//! - **Resuming**: each finished video is appended (one JSON line, flushed) to the progress
//!   file `OUT.progress.jsonl`, whose first line records the weights, fps, top-k and shard; a
//!   rerun with the same settings skips the videos listed there (a torn last line from a
//!   crash is dropped) and the moments file is rewritten, atomically, from all of them.
//! - **Parallel**: videos are decoded (audio, spectrogram, frames) in parallel with rayon,
//!   a chunk ahead of the network.
//! - A video that cannot be decoded is reported in [`MiningSummary::failed`] and retried by
//!   the next run; the others go on.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use burn::tensor::{Device, Tensor, TensorData};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sound2scene_train::checkpoint::write_file_atomic;
use sound2scene_train::data::read_moments;
use sound2scene_train::progress::ProgressMode;

use crate::clip::{LoadedVideo, Video, read_frame};
use crate::error::{Result, SelectError};
use crate::heatmap::write_heatmap;
use crate::metrics::{GroundTruth, SelectionReport, VideoEval, evaluate_video};
use crate::model::{Localizer, LocalizerConfig};
use crate::train::fnv;

/// Moments by video name: frame numbers, best first (the released format).
pub type Moments = BTreeMap<String, Vec<u64>>;

/// Version of the progress file's header.
pub const PROGRESS_FORMAT: u32 = 1;
/// Suffix appended to the moments path to name its progress file.
pub const PROGRESS_SUFFIX: &str = ".progress.jsonl";

/// One of `count` disjoint parts of a dataset (`index` in `0..count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// This part, 0-based.
    pub index: usize,
    /// Number of parts.
    pub count: usize,
}

impl Default for Shard {
    fn default() -> Self {
        Self { index: 0, count: 1 }
    }
}

impl Shard {
    /// Whether `name` belongs to this shard: `FNV-1a(name) mod count == index`.
    pub fn contains(&self, name: &str) -> bool {
        fnv(name.as_bytes()) % self.count.max(1) as u64 == self.index as u64
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = SelectError;

    /// Parses `i/n` with `0 <= i < n`.
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            SelectError::Config(format!(
                "shard '{s}' must be i/n with 0 <= i < n, e.g. 0/4 … 3/4"
            ))
        };
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            i.trim().parse::<usize>().map_err(|_| bad())?,
            n.trim().parse::<usize>().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Self { index, count })
    }
}

/// Settings of a mining run.
#[derive(Debug, Clone)]
pub struct MineOptions {
    /// Frames per second of the frame folders (frame `i` is at `i / fps` s).
    pub fps: f32,
    /// Frames kept per video, best first.
    pub top_k: usize,
    /// The part of the dataset this run mines.
    pub shard: Shard,
    /// Frames through the network at once.
    pub frames_per_batch: usize,
    /// How frames are ranked.
    pub scoring: Scoring,
    /// Write each selected frame with its localization map to `DIR/VIDEO/RR_NNNN.png` (rank,
    /// frame number).
    pub heatmaps: Option<PathBuf>,
    /// Ground truth to evaluate selection and localization against.
    pub truth: Option<GroundTruth>,
    /// Discard an existing progress file instead of resuming it.
    pub restart: bool,
    /// Mine at most this many videos in this run (the rest stay for a later run).
    pub limit: Option<usize>,
    /// When to draw a progress bar.
    pub progress: ProgressMode,
    /// Set it (e.g. from Ctrl-C) to stop after the current chunk of videos; what is done is
    /// kept.
    pub stop: Arc<AtomicBool>,
}

impl Default for MineOptions {
    fn default() -> Self {
        Self {
            fps: 10.0,
            top_k: 10,
            shard: Shard::default(),
            frames_per_batch: 50,
            scoring: Scoring::default(),
            heatmaps: None,
            truth: None,
            restart: false,
            limit: None,
            progress: ProgressMode::Auto,
            stop: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// The first line of a progress file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgressHeader {
    /// [`PROGRESS_FORMAT`].
    pub format: u32,
    /// Fingerprint of the weights.
    pub weights: String,
    /// Frames per second.
    pub fps: f32,
    /// Frames kept per video.
    pub top_k: usize,
    /// How frames are ranked.
    pub scoring: Scoring,
    /// The shard, `i/n`.
    pub shard: String,
}

/// The mining result of one video (a line of the progress file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoResult {
    /// The video's name.
    pub video: String,
    /// The top-k frame numbers, best first.
    pub frames: Vec<u64>,
    /// Their scores (of the run's [`Scoring`]).
    pub scores: Vec<f32>,
    /// Evaluation against ground truth, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval: Option<VideoEval>,
}

/// How frames are ranked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scoring {
    /// The paper's C_av\[t\] = q^V_t · q^A_t of each frame with its own audio window.
    CAv,
    /// C_av\[t\] minus the mean C_av of the same audio window with every frame of the video:
    /// how much better frame t matches its sound than the video's other frames do (the
    /// contrastive logit the training maximizes). A background-only frame, which matches a
    /// background-only sound about as well as every other background frame does, scores
    /// near 0; a frame showing the source of a sound that the other frames lack scores high.
    #[default]
    Contrastive,
}

/// Scores and localization maps of every frame of a video.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoScores {
    /// C_av per frame.
    pub c_av: Vec<f32>,
    /// [`Scoring::Contrastive`] score per frame.
    pub contrastive: Vec<f32>,
    /// Localization maps `[frames, map_side, map_side]` (cosine similarities).
    pub maps: Vec<f32>,
    /// Side of each map.
    pub map_side: usize,
}

impl VideoScores {
    /// The scores of `scoring`.
    pub fn scores(&self, scoring: Scoring) -> &[f32] {
        match scoring {
            Scoring::CAv => &self.c_av,
            Scoring::Contrastive => &self.contrastive,
        }
    }

    /// Frame indices by descending score (ties: earlier frame first).
    pub fn ranking(&self, scoring: Scoring) -> Vec<usize> {
        let scores = self.scores(scoring);
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
        order
    }

    /// The localization map of frame `index`.
    pub fn map(&self, index: usize) -> &[f32] {
        let plane = self.map_side * self.map_side;
        &self.maps[index * plane..(index + 1) * plane]
    }
}

/// C_av, the contrastive score and the localization map of every frame of `video`, each with
/// the audio window centred on it, `frames_per_batch` frames at a time.
pub fn score_video(
    model: &Localizer,
    config: &LocalizerConfig,
    video: &LoadedVideo,
    fps: f32,
    frames_per_batch: usize,
    device: &Device,
) -> VideoScores {
    let (side, width) = (config.image_size, config.window_columns());
    let mut audios = Vec::new();
    let mut visuals = Vec::new();
    let indices: Vec<usize> = (0..video.len()).collect();
    for chunk in indices.chunks(frames_per_batch.max(1)) {
        let n = chunk.len();
        let (mut frames, mut windows) = (Vec::new(), Vec::new());
        for &i in chunk {
            video.push_frame(i, &mut frames);
            video.push_window(i, fps, width, &mut windows);
        }
        let frames = Tensor::<4>::from_data(TensorData::new(frames, [n, 3, side, side]), device);
        let windows =
            Tensor::<4>::from_data(TensorData::new(windows, [n, 1, video.bins, width]), device);
        visuals.push(model.visual_map(frames)); // [n, D, h, w]
        audios.push(model.audio_embedding(windows)); // [n, D]
    }
    let audio = Tensor::cat(audios, 0); // [F, D]
    let visual = Tensor::cat(visuals, 0); // [F, D, h, w]
    let map_side = visual.dims()[2];
    let paired = model.paired(audio.clone(), visual.clone()); // [F, P]
    let c_av = model.correlation(paired.clone()); // [F]
    // Mean C_av of each audio window with every frame of the video, a chunk of windows at a
    // time: [c, F, P] -> [c, F, 1] -> [c, 1].
    let frames = video.len();
    let mut means = Vec::with_capacity(frames);
    for start in (0..frames).step_by(frames_per_batch.max(1)) {
        let c = frames_per_batch.max(1).min(frames - start);
        let rows = audio.clone().narrow(0, start, c);
        let all = model.positive_score(model.all_pairs(rows, visual.clone()));
        means.push(all.reshape([c, frames]).mean_dim(1).reshape([c]));
    }
    let contrastive = c_av.clone() - Tensor::cat(means, 0);
    let to_vec = |t: Tensor<1>| t.into_data().try_to_vec::<f32>().unwrap_or_default();
    VideoScores {
        c_av: to_vec(c_av),
        contrastive: to_vec(contrastive),
        maps: paired.into_data().try_to_vec::<f32>().unwrap_or_default(),
        map_side,
    }
}

/// What a mining run did.
#[derive(Debug, Clone)]
pub struct MiningSummary {
    /// Videos of the listing in this shard.
    pub videos_in_shard: usize,
    /// Videos of other shards (not mined here).
    pub other_shards: usize,
    /// Videos found done in the progress file.
    pub resumed: usize,
    /// Videos mined in this run.
    pub mined: usize,
    /// Videos that failed, with the error (retried by the next run).
    pub failed: Vec<(String, String)>,
    /// Whether every video of the shard is done.
    pub complete: bool,
    /// The moments written (every video done so far).
    pub moments: BTreeMap<String, Vec<u64>>,
    /// Evaluation over every done video with ground truth.
    pub report: Option<SelectionReport>,
    /// The progress file.
    pub progress_file: PathBuf,
}

/// The progress file of a moments path: `OUT.progress.jsonl`.
pub fn progress_path(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_os_string();
    name.push(PROGRESS_SUFFIX);
    PathBuf::from(name)
}

/// Writes `moments` to `path` in the released format, atomically.
///
/// # Errors
/// Checkpoint-style I/O errors naming the file.
pub fn write_moments(path: &Path, moments: &BTreeMap<String, Vec<u64>>) -> Result<()> {
    let mut json = serde_json::to_vec(moments).map_err(|e| SelectError::Data {
        path: path.to_path_buf(),
        reason: e.to_string(),
        source: Some(e.into()),
    })?;
    json.push(b'\n');
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(SelectError::io(parent))?;
    }
    write_file_atomic(path, &json)?;
    Ok(())
}

/// Merges moments files (e.g. one per shard). A video in several files keeps the entry of the
/// last; returns the merged moments and the names that were in more than one file.
///
/// # Errors
/// Those of `read_moments`, naming the file.
pub fn merge_moment_files(paths: &[PathBuf]) -> Result<(Moments, Vec<String>)> {
    let mut merged = BTreeMap::new();
    let mut repeated = Vec::new();
    for path in paths {
        for (video, frames) in read_moments(path)? {
            if merged.insert(video.clone(), frames).is_some() {
                repeated.push(video);
            }
        }
    }
    repeated.sort();
    repeated.dedup();
    Ok((merged, repeated))
}

/// Reads the results of a progress file written with `header`; rewrites it without a torn
/// or malformed line when it has one. A missing file has no results.
fn read_progress(path: &Path, header: &ProgressHeader) -> Result<Vec<VideoResult>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(SelectError::io(path)(e)),
    };
    let mut lines = text.lines();
    let Some(first) = lines.next() else {
        return Ok(Vec::new());
    };
    let found: ProgressHeader = serde_json::from_str(first).map_err(|e| SelectError::Data {
        path: path.to_path_buf(),
        reason: format!(
            "the first line is not a progress header ({e}); delete the file to start over"
        ),
        source: Some(e.into()),
    })?;
    if &found != header {
        return Err(SelectError::ResumeMismatch {
            path: path.to_path_buf(),
            reason: format!(
                "it was written with other settings ({found:?}, now {header:?}); pass --restart \
                 or delete it to start over"
            ),
        });
    }
    let mut results = Vec::new();
    let mut clean = true;
    for line in lines {
        match serde_json::from_str::<VideoResult>(line) {
            Ok(r) => results.push(r),
            Err(_) => clean = false,
        }
    }
    if !clean || !text.ends_with('\n') {
        let mut rewritten = serde_json::to_string(header).unwrap_or_default();
        rewritten.push('\n');
        for r in &results {
            rewritten.push_str(&serde_json::to_string(r).unwrap_or_default());
            rewritten.push('\n');
        }
        write_file_atomic(path, rewritten.as_bytes())?;
    }
    Ok(results)
}

/// Mines the top-k moments of the videos of `opts.shard` with `model`, resuming from the
/// progress file of `out`, and writes `out` (see the [module docs](self)). `weights` is a
/// fingerprint of the model (e.g. [`crate::train::fnv_hex`] of its file) recorded in the
/// progress file, so a rerun with other weights is refused rather than mixed.
///
/// # Errors
/// [`SelectError::ResumeMismatch`] for a progress file of other settings;
/// [`SelectError::Config`] for `top_k` or `fps` out of range; I/O errors naming the file.
/// Decoding errors of single videos are not errors (see [`MiningSummary::failed`]).
pub fn mine(
    model: &Localizer,
    config: &LocalizerConfig,
    videos: &[Video],
    out: &Path,
    weights: &str,
    opts: &MineOptions,
    device: &Device,
) -> Result<MiningSummary> {
    if opts.top_k == 0 || !(opts.fps.is_finite() && opts.fps > 0.0) {
        return Err(SelectError::Config(format!(
            "top_k must be at least 1 and fps positive (got {} and {})",
            opts.top_k, opts.fps
        )));
    }
    let header = ProgressHeader {
        format: PROGRESS_FORMAT,
        weights: weights.to_string(),
        fps: opts.fps,
        top_k: opts.top_k,
        scoring: opts.scoring,
        shard: opts.shard.to_string(),
    };
    let progress_file = progress_path(out);
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(SelectError::io(parent))?;
    }
    if opts.restart && progress_file.exists() {
        std::fs::remove_file(&progress_file).map_err(SelectError::io(&progress_file))?;
    }
    let mut results = read_progress(&progress_file, &header)?;
    if !progress_file.exists() {
        let mut line = serde_json::to_string(&header).unwrap_or_default();
        line.push('\n');
        write_file_atomic(&progress_file, line.as_bytes())?;
    }
    let mut file = OpenOptions::new()
        .append(true)
        .open(&progress_file)
        .map_err(SelectError::io(&progress_file))?;

    let in_shard: Vec<&Video> = videos
        .iter()
        .filter(|v| opts.shard.contains(&v.name))
        .collect();
    let done: HashSet<String> = results.iter().map(|r| r.video.clone()).collect();
    let resumed = in_shard.iter().filter(|v| done.contains(&v.name)).count();
    let mut todo: Vec<&Video> = in_shard
        .iter()
        .copied()
        .filter(|v| !done.contains(&v.name))
        .collect();
    if let Some(limit) = opts.limit {
        todo.truncate(limit);
    }
    let bar = opts.progress.enabled().then(|| {
        let bar = ProgressBar::new(todo.len() as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:30} {pos}/{len} videos  [{elapsed_precise} < {eta_precise}]",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    });
    let chunk = (rayon::current_num_threads() * 2).max(2);
    let mut failed = Vec::new();
    let mut mined = 0;
    for group in todo.chunks(chunk) {
        if opts.stop.load(Ordering::SeqCst) {
            break;
        }
        let loaded: Vec<Result<LoadedVideo>> = group
            .par_iter()
            .map(|v| LoadedVideo::load(v, config))
            .collect();
        for (video, loaded) in group.iter().zip(loaded) {
            let loaded = match loaded {
                Ok(loaded) => loaded,
                Err(e) => {
                    failed.push((video.name.clone(), e.to_string()));
                    continue;
                }
            };
            let result = mine_one(model, config, &loaded, opts, device)?;
            let mut line = serde_json::to_string(&result).unwrap_or_default();
            line.push('\n');
            file.write_all(line.as_bytes())
                .and_then(|()| file.flush())
                .map_err(SelectError::io(&progress_file))?;
            results.push(result);
            mined += 1;
            if let Some(bar) = &bar {
                bar.inc(1);
            }
        }
    }
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let moments: BTreeMap<String, Vec<u64>> = results
        .iter()
        .map(|r| (r.video.clone(), r.frames.clone()))
        .collect();
    write_moments(out, &moments)?;
    let evals: Vec<&VideoEval> = results.iter().filter_map(|r| r.eval.as_ref()).collect();
    let report = (!evals.is_empty()).then(|| SelectionReport::from_videos(evals));
    let complete = in_shard.iter().all(|v| moments.contains_key(&v.name));
    Ok(MiningSummary {
        videos_in_shard: in_shard.len(),
        other_shards: videos.len() - in_shard.len(),
        resumed,
        mined,
        failed,
        complete,
        moments,
        report,
        progress_file,
    })
}

/// Scores one decoded video, writes its heatmaps and evaluates it.
fn mine_one(
    model: &Localizer,
    config: &LocalizerConfig,
    video: &LoadedVideo,
    opts: &MineOptions,
    device: &Device,
) -> Result<VideoResult> {
    let scores = score_video(
        model,
        config,
        video,
        opts.fps,
        opts.frames_per_batch,
        device,
    );
    let ranking = scores.ranking(opts.scoring);
    let selected = scores.scores(opts.scoring);
    let top: Vec<usize> = ranking.iter().copied().take(opts.top_k).collect();
    if let Some(dir) = &opts.heatmaps {
        let dir = dir.join(&video.name);
        std::fs::create_dir_all(&dir).map_err(SelectError::io(&dir))?;
        for (rank, &i) in top.iter().enumerate() {
            let frame_path = &video.frame_paths[i];
            let frame = image::open(frame_path)
                .map_err(|source| SelectError::Image {
                    path: frame_path.clone(),
                    source,
                })?
                .to_rgb8();
            let frame = if frame.width() == frame.height() {
                frame
            } else {
                read_frame(frame_path, config.image_size)?
            };
            let path = dir.join(format!("{:02}_{:04}.png", rank + 1, video.frame_numbers[i]));
            write_heatmap(&path, &frame, scores.map(i), scores.map_side)?;
        }
    }
    let eval = opts
        .truth
        .as_ref()
        .and_then(|t| t.get(&video.name))
        .map(|truth| {
            let mut eval = evaluate_video(truth, &ranking, &scores.maps, scores.map_side);
            eval.top1_c_av = scores
                .ranking(Scoring::CAv)
                .first()
                .is_some_and(|&i| truth.shows_source(i));
            eval
        });
    Ok(VideoResult {
        video: video.name.clone(),
        frames: top.iter().map(|&i| video.frame_numbers[i]).collect(),
        scores: top.iter().map(|&i| selected[i]).collect(),
        eval,
    })
}
