//! How well frames are selected and sources localized, against ground truth that knows which
//! frames show a source and where (e.g. the procedural world of `sound2scene-synth`).
//!
//! - Selection: the top-1 precision, the fraction of videos (with at least one source) whose
//!   selected frame shows a source, next to the same for the middle frame (`count / 2`, the
//!   official pairing) and the expected precision of a uniformly random frame.
//! - Localization, as in the sound-source-localization literature (Senocak et al. 2018; LVS):
//!   per frame, the map is upsampled to the image, min-max normalized and binarized at
//!   [`BINARIZE_AT`]; cIoU = |P ∩ G| / (|G| + |P \ G|) against the union G of the ground-truth
//!   boxes; cIoU@0.5 is the fraction of frames with cIoU ≥ 0.5 and AUC the area under the
//!   success rate over cIoU thresholds 0, 0.05, …, 1.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sound2scene_synth::DatasetTruth;

/// Relative level (of the min-max normalized map) at which a localization map is binarized.
pub const BINARIZE_AT: f32 = 0.5;
/// Thresholds of the AUC: 0, 0.05, …, 1.
pub const AUC_STEPS: usize = 20;

/// Ground truth of one video: for each frame (in frame-number order), the boxes of the
/// visible sources `[x0, y0, x1, y1]` in pixels (exclusive ends) of a `side × side` image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoTruth {
    /// Side of the frames the boxes refer to, in pixels.
    pub side: usize,
    /// Per frame, the boxes of the sources it shows (empty: background only).
    pub boxes: Vec<Vec<[u32; 4]>>,
}

impl VideoTruth {
    /// Whether frame `index` shows a source.
    pub fn shows_source(&self, index: usize) -> bool {
        self.boxes.get(index).is_some_and(|b| !b.is_empty())
    }

    /// Whether any frame shows a source.
    pub fn has_source(&self) -> bool {
        self.boxes.iter().any(|b| !b.is_empty())
    }

    /// Fraction of frames showing a source: a random frame's expected precision.
    pub fn visible_fraction(&self) -> f64 {
        let shown = self.boxes.iter().filter(|b| !b.is_empty()).count();
        shown as f64 / self.boxes.len().max(1) as f64
    }
}

/// Ground truth of a dataset, by video name.
pub type GroundTruth = BTreeMap<String, VideoTruth>;

/// The ground truth of a procedural-world dataset (`ground_truth.json` of `sound2scene synth`)
/// in the metrics' form: per clip, its frame side and each frame's source boxes.
pub fn world_ground_truth(truth: &DatasetTruth) -> GroundTruth {
    truth
        .clips
        .iter()
        .map(|clip| {
            let boxes = clip
                .frames
                .iter()
                .map(|f| f.objects.iter().map(|o| o.bbox).collect())
                .collect();
            let side = clip.image_size as usize;
            (clip.name.clone(), VideoTruth { side, boxes })
        })
        .collect()
}

/// Per-video evaluation, stored with the video's mining result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoEval {
    /// Whether some frame of the video shows a source (videos without are not scored).
    pub has_source: bool,
    /// Whether the top-1 frame shows a source.
    pub top1: bool,
    /// Whether the top-1 frame by plain C_av (whatever ranking was used) shows a source.
    #[serde(default)]
    pub top1_c_av: bool,
    /// Whether the middle frame (index `count / 2`) shows a source.
    pub middle: bool,
    /// Expected precision of a uniformly random frame.
    pub random: f64,
    /// cIoU of every frame that shows a source.
    pub ciou: Vec<f32>,
}

/// Selection and localization metrics over many videos.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelectionReport {
    /// Videos with ground truth.
    pub videos: usize,
    /// Of those, videos with at least one source (the denominator of the precisions).
    pub videos_with_source: usize,
    /// Top-1 selection precision.
    pub top1_precision: f64,
    /// Top-1 precision of ranking by plain C_av (as recorded in [`VideoEval::top1_c_av`]).
    pub top1_precision_c_av: f64,
    /// Middle-frame precision.
    pub middle_precision: f64,
    /// Expected random-frame precision.
    pub random_precision: f64,
    /// Frames scored for localization (every frame showing a source).
    pub frames_localized: usize,
    /// Fraction of those frames with cIoU ≥ 0.5.
    pub ciou_at_05: f64,
    /// Area under the cIoU success curve.
    pub auc: f64,
    /// Mean cIoU.
    pub mean_ciou: f64,
}

impl SelectionReport {
    /// Aggregates per-video evaluations.
    pub fn from_videos<'a>(evals: impl IntoIterator<Item = &'a VideoEval>) -> Self {
        let (mut videos, mut scored) = (0usize, 0usize);
        let (mut top1, mut top1_c_av, mut middle, mut random) = (0usize, 0usize, 0usize, 0.0);
        let mut cious = Vec::new();
        for e in evals {
            videos += 1;
            cious.extend_from_slice(&e.ciou);
            if !e.has_source {
                continue;
            }
            scored += 1;
            top1 += usize::from(e.top1);
            top1_c_av += usize::from(e.top1_c_av);
            middle += usize::from(e.middle);
            random += e.random;
        }
        let d = scored.max(1) as f64;
        let (ciou_at_05, auc) = ciou_summary(&cious);
        let mean_ciou =
            cious.iter().map(|&c| f64::from(c)).sum::<f64>() / cious.len().max(1) as f64;
        Self {
            videos,
            videos_with_source: scored,
            top1_precision: top1 as f64 / d,
            top1_precision_c_av: top1_c_av as f64 / d,
            middle_precision: middle as f64 / d,
            random_precision: random / d,
            frames_localized: cious.len(),
            ciou_at_05,
            auc,
            mean_ciou,
        }
    }
}

/// The union of `boxes` as a `side × side` mask, row-major (boxes are clipped to the image).
pub fn box_mask(boxes: &[[u32; 4]], side: usize) -> Vec<bool> {
    let mut mask = vec![false; side * side];
    for &[x0, y0, x1, y1] in boxes {
        let (x1, y1) = ((x1 as usize).min(side), (y1 as usize).min(side));
        for y in (y0 as usize).min(side)..y1 {
            for x in (x0 as usize).min(side)..x1 {
                mask[y * side + x] = true;
            }
        }
    }
    mask
}

/// Bilinear upsampling (half-pixel centres, edges clamped, as PyTorch's
/// `interpolate(mode="bilinear", align_corners=False)`) of a row-major `[h, w]` map to
/// `[out, out]`.
pub fn upsample_bilinear(map: &[f32], h: usize, w: usize, out: usize) -> Vec<f32> {
    let mut result = Vec::with_capacity(out * out);
    let coord = |i: usize, n: usize| -> (usize, usize, f32) {
        let x = ((i as f32 + 0.5) * n as f32 / out as f32 - 0.5).clamp(0.0, (n - 1) as f32);
        let lo = x.floor() as usize;
        let hi = (lo + 1).min(n - 1);
        (lo, hi, x - lo as f32)
    };
    for y in 0..out {
        let (y0, y1, fy) = coord(y, h);
        for x in 0..out {
            let (x0, x1, fx) = coord(x, w);
            let top = map[y0 * w + x0] * (1.0 - fx) + map[y0 * w + x1] * fx;
            let bottom = map[y1 * w + x0] * (1.0 - fx) + map[y1 * w + x1] * fx;
            result.push(top * (1.0 - fy) + bottom * fy);
        }
    }
    result
}

/// Min-max normalizes `map` to `[0, 1]` (a constant map becomes all zeros).
pub fn min_max_normalize(map: &[f32]) -> Vec<f32> {
    let lo = map.iter().copied().fold(f32::INFINITY, f32::min);
    let hi = map.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let range = hi - lo;
    map.iter()
        .map(|&v| if range > 0.0 { (v - lo) / range } else { 0.0 })
        .collect()
}

/// cIoU of an image-sized localization `map` against the ground-truth `mask`: the map is
/// min-max normalized and binarized at [`BINARIZE_AT`], then
/// `|P ∩ G| / (|G| + |P \ G|)`. 0 when the mask is empty.
pub fn ciou(map: &[f32], mask: &[bool]) -> f32 {
    let normalized = min_max_normalize(map);
    let (mut inter, mut gt, mut false_pos) = (0usize, 0usize, 0usize);
    for (&v, &g) in normalized.iter().zip(mask) {
        let p = v >= BINARIZE_AT;
        inter += usize::from(p && g);
        gt += usize::from(g);
        false_pos += usize::from(p && !g);
    }
    if gt == 0 {
        0.0
    } else {
        inter as f32 / (gt + false_pos) as f32
    }
}

/// cIoU@0.5 (fraction of values ≥ 0.5) and the AUC (trapezoid rule) of the success rate
/// `fraction(cIoU ≥ t)` over `t = 0, 0.05, …, 1`. Both 0 without values.
pub fn ciou_summary(cious: &[f32]) -> (f64, f64) {
    if cious.is_empty() {
        return (0.0, 0.0);
    }
    let success = |t: f64| {
        cious.iter().filter(|&&c| f64::from(c) >= t - 1e-9).count() as f64 / cious.len() as f64
    };
    let rates: Vec<f64> = (0..=AUC_STEPS)
        .map(|i| success(i as f64 / AUC_STEPS as f64))
        .collect();
    let step = 1.0 / AUC_STEPS as f64;
    let auc = rates.windows(2).map(|w| (w[0] + w[1]) / 2.0 * step).sum();
    (success(0.5), auc)
}

/// Evaluates one video's mining result: `ranked` frame indices (best first) and the
/// localization maps `[frames, h · w]` of all its frames.
pub fn evaluate_video(
    truth: &VideoTruth,
    ranked: &[usize],
    maps: &[f32],
    map_side: usize,
) -> VideoEval {
    let frames = truth.boxes.len();
    let plane = map_side * map_side;
    let ciou_values = (0..frames)
        .filter(|&i| truth.shows_source(i) && (i + 1) * plane <= maps.len())
        .map(|i| {
            let map = upsample_bilinear(
                &maps[i * plane..(i + 1) * plane],
                map_side,
                map_side,
                truth.side,
            );
            ciou(&map, &box_mask(&truth.boxes[i], truth.side))
        })
        .collect();
    VideoEval {
        has_source: truth.has_source(),
        top1: ranked.first().is_some_and(|&i| truth.shows_source(i)),
        top1_c_av: false,
        middle: truth.shows_source(frames / 2),
        random: truth.visible_fraction(),
        ciou: ciou_values,
    }
}
