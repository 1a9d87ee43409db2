//! The paper's claims measured on held-out clips of the procedural world ([`eval_world`]).
//!
//! What is measured (issue 6, "Measured claims"), and how:
//!
//! 1. **Retrieval.** For each clip with at least one source, z^A of its audio and z^V of its
//!    *true frame*: the frame showing the most of its sources (the middle one of those frames),
//!    which is the frame the sound describes. Clips are cut into consecutive groups of
//!    `candidates` (100); in each group every z^A ranks the group's z^V by cosine similarity.
//!    R@K is the fraction of clips whose own frame is among the first K, over the full groups
//!    (a trailing partial group is left out; with fewer clips than `candidates` the one group
//!    is all clips).
//! 2. **Class accuracy, FID, IS.** G draws one picture per clip from z^A (the claim), from the
//!    true frame's z^V (upper bound: what G does with a perfect feature) and from a random unit
//!    feature (floor), with the same noise row for the three. A picture is right when the world
//!    classifier's top class is one of the clip's sounding classes. FID is between the
//!    classifier features of the generated pictures and of the real true frames; IS is from the
//!    classifier's logits read as a softmax over the eight classes.
//! 3. **Volume.** Each class sounds alone at `volume_gains` gains spread evenly over the world's
//!    gain range, in `volume_samples` realisations (the same sound, interval, background and
//!    noise at every gain of a realisation: only the level changes). The drawn area is the
//!    number of pixels of the class's colour ([`measure_class_area`]), averaged over the
//!    realisations; `volume_spearman` is Spearman's ρ between gain and that mean area, per class,
//!    averaged over the eight classes. A class whose area does not change at all has no rank
//!    correlation and counts as 0. `volume_spearman_waveform` asks the same of the operation
//!    users run (`volume-sweep`, `generate --gain-db`, the paper's volume control): each
//!    realisation is made once, at the middle of the gain range, and the whole waveform goes
//!    through `Waveform::gain_db` at [`WAVEFORM_GAINS_DB`] (−12 … +12 dB), so the background
//!    and noise get louder with the source.
//! 4. **Mixing.** Every pair of distinct classes sounds at once (gains drawn in the world's
//!    range), `mix_samples` times per pair. `mix_both_fraction` is the fraction of mixes whose
//!    picture the classifier judges to show both classes (each probability above
//!    [`PRESENT_THRESHOLD`](crate::classifier::PRESENT_THRESHOLD)). The classifier rather than
//!    colour counting is the headline because it asks for a recognisable object: blurry or
//!    speckled pictures put a few pixels of many
//!    colours within tolerance, which the area measure would count, while the classifier was
//!    trained (with blur and noise) to say "present" only for an object it can see, and its
//!    error rate on real frames is measured. The colour measure is reported beside it
//!    (`mix_both_fraction_area`: both colours cover at least `mix_min_area_fraction` of the
//!    picture), and so is `mix_exact_fraction` (both classes and no other), which a generator
//!    that draws every object at once would fail.
//!
//!    Two diagnostics tell where mixing is lost. Among the held-out clips whose true frame
//!    shows two classes (`two_object_clips`, a natural mix: both sources sound in the clip),
//!    `two_object_both_fraction` is the fraction of pictures drawn from the clip's own z^A
//!    that show both, and `two_object_both_fraction_true_feature` the same from the true
//!    frame's z^V: what G does with an image feature of a frame that holds both objects.
//!
//! Everything is deterministic in the configuration.

use std::collections::BTreeMap;

use burn::tensor::{Tensor, TensorData};
use image::RgbImage;
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::classifier::{Classified, WorldClassifier};
use crate::spearman::spearman;
use crate::{Result, WorldEvalError};
use sound2scene_audio::Waveform;
use sound2scene_infer::SoundToScene;
use sound2scene_infer::visual::tensor_to_images;
use sound2scene_synth::{
    Background, SAMPLE_RATE, SoundClass, SourceSpec, World, WorldConfig, measure_class_area,
    synth_sound,
};
use sound2scene_train::metrics::{
    DEFAULT_IS_SPLITS, fid_from_features, inception_score, recall_at_k,
};

/// The report keys the issue requires, in the order they are printed.
pub const REQUIRED_KEYS: [&str; 9] = [
    "r_at_1",
    "r_at_10",
    "class_accuracy",
    "class_accuracy_true_feature",
    "class_accuracy_random_feature",
    "fid",
    "volume_spearman",
    "volume_spearman_waveform",
    "mix_both_fraction",
];

/// Gains in dB applied to whole waveforms for `volume_spearman_waveform`: the range the
/// README's `volume-sweep` example uses.
pub const WAVEFORM_GAINS_DB: [f32; 5] = [-12.0, -6.0, 0.0, 6.0, 12.0];

/// The other keys of the JSON report.
pub const EXTRA_KEYS: [&str; 27] = [
    "seed",
    "clips",
    "z_var",
    "rerank",
    "retrieval_candidates",
    "retrieval_queries",
    "r_at_5",
    "class_accuracy_chance",
    "class_accuracy_real",
    "fid_true_feature",
    "fid_random_feature",
    "is_mean",
    "is_std",
    "is_mean_true_feature",
    "is_mean_random_feature",
    "is_mean_real",
    "volume_gains",
    "volume_samples",
    "volume_spearman_by_class",
    "volume_spearman_waveform_by_class",
    "mix_pairs",
    "mix_both_fraction_area",
    "mix_exact_fraction",
    "mix_min_area_px",
    "two_object_clips",
    "two_object_both_fraction",
    "two_object_both_fraction_true_feature",
];

/// What [`eval_world`] measures on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WorldEvalConfig {
    /// The world: its `seed` (use one not seen in training) and `clips`, the number of clips
    /// with at least one source to evaluate (clips without a source are skipped). Its
    /// `image_size` is that of the real frames; its gain range spreads the volume sweep.
    pub world: WorldConfig,
    /// Retrieval group size (100 in the issue).
    pub candidates: usize,
    /// Seed of G's noise (and of the random features).
    pub noise_seed: u64,
    /// Standard deviation of G's noise (1.0 as in the official code).
    pub z_var: f32,
    /// Pictures drawn per picture measured, the one kept being the one f_V re-encodes closest
    /// to its feature ([`SoundToScene::generate_reranked`]); 1, the official single draw.
    pub rerank: usize,
    /// Gains of the volume sweep, spread evenly over the world's gain range (≥ 2).
    pub volume_gains: usize,
    /// Realisations per class of the volume sweep (≥ 1).
    pub volume_samples: usize,
    /// Mixes per pair of classes (≥ 1; 28 pairs).
    pub mix_samples: usize,
    /// Smallest fraction of the picture a class's colour must cover to count as drawn in the
    /// colour-based mixing measure.
    pub mix_min_area_fraction: f64,
    /// Sounds or pictures per network call.
    pub batch_size: usize,
}

impl Default for WorldEvalConfig {
    fn default() -> Self {
        Self {
            world: WorldConfig::new(1_000_003, 100),
            candidates: 100,
            noise_seed: 0,
            z_var: 1.0,
            rerank: 1,
            volume_gains: 7,
            volume_samples: 16,
            mix_samples: 2,
            mix_min_area_fraction: 0.002,
            batch_size: 32,
        }
    }
}

impl WorldEvalConfig {
    /// The defaults with world `seed` and `clips` clips.
    pub fn new(seed: u64, clips: usize) -> Self {
        Self {
            world: WorldConfig::new(seed, clips),
            ..Self::default()
        }
    }

    fn validate(&self) -> Result<()> {
        self.world.validate()?;
        let checks = [
            (self.world.clips >= 2, "clips must be at least 2"),
            (self.candidates >= 2, "candidates must be at least 2"),
            (self.volume_gains >= 2, "volume_gains must be at least 2"),
            (
                self.volume_samples >= 1,
                "volume_samples must be at least 1",
            ),
            (self.mix_samples >= 1, "mix_samples must be at least 1"),
            (self.batch_size >= 1, "batch_size must be at least 1"),
            (self.rerank >= 1, "rerank must be at least 1"),
            (
                self.world.max_sources >= 1 && self.world.empty_probability < 1.0,
                "the world must have clips with sources",
            ),
            (
                (0.0..=1.0).contains(&self.mix_min_area_fraction),
                "mix_min_area_fraction must be in [0, 1]",
            ),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, message)) => Err(WorldEvalError::Invalid((*message).into())),
            None => Ok(()),
        }
    }
}

/// The measured claims (see the [module docs](self)); serialized, its keys are
/// [`REQUIRED_KEYS`] and [`EXTRA_KEYS`]. Fractions are in `[0, 1]`, FID in squared classifier
/// feature units, IS in `[1, 8]`, Spearman in `[-1, 1]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorldReport {
    /// Audio→image retrieval recall at 1 (chance `1 / retrieval_candidates`).
    pub r_at_1: f64,
    /// Recall at 10 (chance `10 / retrieval_candidates`).
    pub r_at_10: f64,
    /// Fraction of pictures drawn from z^A whose top class sounds in the clip.
    pub class_accuracy: f64,
    /// The same for pictures drawn from the true frame's z^V (upper bound).
    pub class_accuracy_true_feature: f64,
    /// The same for pictures drawn from a random unit feature (floor).
    pub class_accuracy_random_feature: f64,
    /// FID between pictures drawn from z^A and the real true frames, in the classifier's
    /// feature space.
    pub fid: f64,
    /// Spearman ρ between gain and drawn area, averaged over the classes.
    pub volume_spearman: f64,
    /// The same with the gain applied to the whole waveform ([`WAVEFORM_GAINS_DB`]), as the
    /// volume control does (absent from reports written before it existed: 0).
    #[serde(default)]
    pub volume_spearman_waveform: f64,
    /// Fraction of two-source mixes whose picture shows both classes (classifier).
    pub mix_both_fraction: f64,
    /// The world seed evaluated.
    pub seed: u64,
    /// Clips evaluated (each with at least one source).
    pub clips: usize,
    /// Standard deviation of G's noise in every picture of the report.
    pub z_var: f32,
    /// Pictures drawn per picture kept (1: no reranking; see [`WorldEvalConfig::rerank`]).
    pub rerank: usize,
    /// Retrieval group size.
    pub retrieval_candidates: usize,
    /// Queries in the full retrieval groups.
    pub retrieval_queries: usize,
    /// Recall at 5.
    pub r_at_5: f64,
    /// Class accuracy of a uniform random guess: the mean over clips of (sounding classes / 8).
    pub class_accuracy_chance: f64,
    /// Class accuracy of the classifier on the real true frames (the judge's own ceiling).
    pub class_accuracy_real: f64,
    /// FID of the pictures drawn from the true z^V.
    pub fid_true_feature: f64,
    /// FID of the pictures drawn from random features.
    pub fid_random_feature: f64,
    /// Inception Score (mean over splits) of the pictures drawn from z^A.
    pub is_mean: f64,
    /// Its standard deviation over splits.
    pub is_std: f64,
    /// IS of the pictures drawn from the true z^V.
    pub is_mean_true_feature: f64,
    /// IS of the pictures drawn from random features.
    pub is_mean_random_feature: f64,
    /// IS of the real true frames.
    pub is_mean_real: f64,
    /// Gains in the volume sweep.
    pub volume_gains: usize,
    /// Realisations per gain and class.
    pub volume_samples: usize,
    /// Spearman ρ per class (0 where the area never changes).
    pub volume_spearman_by_class: BTreeMap<String, f64>,
    /// `volume_spearman_waveform` per class.
    #[serde(default)]
    pub volume_spearman_waveform_by_class: BTreeMap<String, f64>,
    /// Number of two-source mixes.
    pub mix_pairs: usize,
    /// Fraction of mixes in which both colours cover at least `mix_min_area_px` pixels.
    pub mix_both_fraction_area: f64,
    /// Fraction of mixes judged to show both classes and no other.
    pub mix_exact_fraction: f64,
    /// Smallest colour area in pixels counted by `mix_both_fraction_area`.
    pub mix_min_area_px: usize,
    /// Held-out clips whose true frame shows two classes.
    pub two_object_clips: usize,
    /// Fraction of those clips whose picture drawn from z^A shows both classes (0 when there
    /// are none).
    pub two_object_both_fraction: f64,
    /// The same for pictures drawn from the true frame's z^V.
    pub two_object_both_fraction_true_feature: f64,
}

impl WorldReport {
    /// The report as a table: one line per measure with its chance level or target.
    pub fn table(&self) -> String {
        let c = self.retrieval_candidates.max(1) as f64;
        let rows: Vec<(&str, f64, String)> = vec![
            (
                "r_at_1",
                self.r_at_1,
                format!("target >= 0.5, chance {:.3}", 1.0 / c),
            ),
            (
                "r_at_5",
                self.r_at_5,
                format!("chance {:.3}", (5.0 / c).min(1.0)),
            ),
            (
                "r_at_10",
                self.r_at_10,
                format!("chance {:.3}", (10.0 / c).min(1.0)),
            ),
            (
                "class_accuracy",
                self.class_accuracy,
                format!("target >= 0.8, chance {:.3}", self.class_accuracy_chance),
            ),
            (
                "class_accuracy_true_feature",
                self.class_accuracy_true_feature,
                "upper bound".into(),
            ),
            (
                "class_accuracy_random_feature",
                self.class_accuracy_random_feature,
                "floor".into(),
            ),
            (
                "class_accuracy_real",
                self.class_accuracy_real,
                "the classifier on real frames".into(),
            ),
            ("fid", self.fid, "lower is better".into()),
            ("fid_true_feature", self.fid_true_feature, String::new()),
            ("fid_random_feature", self.fid_random_feature, String::new()),
            ("is_mean", self.is_mean, format!("± {:.3}", self.is_std)),
            (
                "is_mean_true_feature",
                self.is_mean_true_feature,
                String::new(),
            ),
            (
                "is_mean_random_feature",
                self.is_mean_random_feature,
                String::new(),
            ),
            ("is_mean_real", self.is_mean_real, String::new()),
            (
                "volume_spearman",
                self.volume_spearman,
                "target >= 0.8, chance 0".into(),
            ),
            (
                "volume_spearman_waveform",
                self.volume_spearman_waveform,
                "target >= 0.8, chance 0".into(),
            ),
            (
                "mix_both_fraction",
                self.mix_both_fraction,
                "target >= 0.5".into(),
            ),
            (
                "mix_both_fraction_area",
                self.mix_both_fraction_area,
                format!("colours >= {} px", self.mix_min_area_px),
            ),
            (
                "mix_exact_fraction",
                self.mix_exact_fraction,
                "both and no other".into(),
            ),
            (
                "two_object_both_fraction",
                self.two_object_both_fraction,
                format!("{} clips whose frame shows two", self.two_object_clips),
            ),
            (
                "two_object_both_fraction_true_feature",
                self.two_object_both_fraction_true_feature,
                "the same from the true z^V".into(),
            ),
        ];
        let mut out = format!(
            "world seed {}, {} clips ({} retrieval queries in groups of {}), {} mixes, \
             {} gains x {} samples per class, noise z_var {}, best of {}\n",
            self.seed,
            self.clips,
            self.retrieval_queries,
            self.retrieval_candidates,
            self.mix_pairs,
            self.volume_gains,
            self.volume_samples,
            self.z_var,
            self.rerank
        );
        for (name, value, note) in rows {
            out.push_str(&format!("{name:<31} {value:>9.4}  {note}\n"));
        }
        let by_class: Vec<String> = self
            .volume_spearman_by_class
            .iter()
            .map(|(k, v)| format!("{k} {v:.2}"))
            .collect();
        out.push_str(&format!(
            "volume_spearman by class: {}\n",
            by_class.join(", ")
        ));
        out
    }
}

/// SplitMix64 of `seed` and `stream`: independent seeds for the parts of the evaluation.
fn derive(seed: u64, stream: u64) -> u64 {
    let mut z = seed
        ^ stream
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .wrapping_add(0x632b);
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One evaluated clip.
struct HeldOutClip {
    audio: Waveform,
    frame: RgbImage,
    classes: Vec<SoundClass>,
    /// The distinct classes visible in `frame`.
    frame_classes: Vec<SoundClass>,
}

/// The first `count` clips of `world` that have a source, with their true frames.
fn held_out_clips(world: &World, count: usize) -> Result<Vec<HeldOutClip>> {
    let limit = count.saturating_mul(50).max(1000);
    let mut out = Vec::with_capacity(count);
    for index in 0..limit {
        if out.len() == count {
            break;
        }
        let clip = world.clip(index);
        let truth = clip.truth();
        if truth.sources.is_empty() {
            continue;
        }
        let most = truth.frames.iter().map(|f| f.objects.len()).max();
        let best: Vec<_> = truth
            .frames
            .iter()
            .filter(|f| Some(f.objects.len()) == most)
            .collect();
        let chosen = best[best.len() / 2];
        let mut frame_classes: Vec<SoundClass> = chosen.objects.iter().map(|o| o.class).collect();
        frame_classes.sort();
        frame_classes.dedup();
        out.push(HeldOutClip {
            audio: Waveform::mono(clip.audio(), SAMPLE_RATE),
            frame: clip.frame(chosen.index)?,
            classes: truth.classes(),
            frame_classes,
        });
    }
    if out.len() < count {
        return Err(WorldEvalError::Invalid(format!(
            "only {} of the first {limit} clips have a source; {count} were asked for",
            out.len()
        )));
    }
    Ok(out)
}

/// Audio features `[n, dim]` of `waves`, `batch` at a time.
fn audio_features(pipeline: &SoundToScene, waves: &[Waveform], batch: usize) -> Result<Tensor<2>> {
    let parts = waves
        .chunks(batch)
        .map(|chunk| pipeline.audio_features(chunk))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(Tensor::cat(parts, 0))
}

/// Image features `[n, dim]` of `images`, `batch` at a time.
fn image_features(pipeline: &SoundToScene, images: &[RgbImage], batch: usize) -> Result<Tensor<2>> {
    let parts = images
        .chunks(batch)
        .map(|chunk| pipeline.image_features(chunk))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(Tensor::cat(parts, 0))
}

/// Pictures drawn by G from `features` `[n, dim]` and host noise rows `noise`
/// (`n · rerank · dim_z` values: each feature's `rerank` candidates in turn), best of `rerank`
/// ([`SoundToScene::generate_reranked`]), `batch` features at a time.
fn draw(
    pipeline: &SoundToScene,
    features: Tensor<2>,
    noise: &[f32],
    rerank: usize,
    batch: usize,
) -> Result<Vec<RgbImage>> {
    let [n, _] = features.dims();
    let dim_z = pipeline.dim_z();
    let mut images = Vec::with_capacity(n);
    for start in (0..n).step_by(batch) {
        let end = (start + batch).min(n);
        let z = Tensor::<2>::from_data(
            TensorData::new(
                noise[start * rerank * dim_z..end * rerank * dim_z].to_vec(),
                [(end - start) * rerank, dim_z],
            ),
            pipeline.device(),
        );
        let pictures = pipeline.generate_reranked(
            features.clone().narrow(0, start, end - start),
            z,
            rerank,
        )?;
        images.extend(tensor_to_images(pictures));
    }
    Ok(images)
}

/// `count` rows of G's noise on the host, from `seed`.
fn noise_rows(pipeline: &SoundToScene, count: usize, seed: u64, z_var: f32) -> Result<Vec<f32>> {
    Ok(host(pipeline.noise(count, seed, z_var)?))
}

fn host(tensor: Tensor<2>) -> Vec<f32> {
    tensor
        .into_data()
        .try_into_vec_as::<f32>()
        .unwrap_or_default()
}

fn to_array(tensor: Tensor<2>) -> Result<Array2<f64>> {
    let [n, d] = tensor.dims();
    let values = host(tensor).into_iter().map(f64::from).collect();
    Array2::from_shape_vec((n, d), values).map_err(|source| WorldEvalError::Shape {
        what: "features",
        source,
    })
}

/// Fraction of pictures whose top class is among the clip's classes.
fn class_accuracy(verdict: &Classified, clips: &[HeldOutClip]) -> f64 {
    let right = clips
        .iter()
        .enumerate()
        .filter(|(i, clip)| clip.classes.contains(&verdict.top_class(*i)))
        .count();
    right as f64 / clips.len() as f64
}

/// Among the clips whose true frame shows two classes, their number and the fraction of
/// pictures judged to show both (0 when there are none).
fn two_object_both(verdict: &Classified, clips: &[HeldOutClip]) -> (usize, f64) {
    let (mut count, mut both) = (0usize, 0usize);
    for (i, clip) in clips.iter().enumerate() {
        if clip.frame_classes.len() != 2 {
            continue;
        }
        count += 1;
        let present = verdict.present(i);
        both += usize::from(clip.frame_classes.iter().all(|c| present.contains(c)));
    }
    let fraction = if count == 0 {
        0.0
    } else {
        both as f64 / count as f64
    };
    (count, fraction)
}

/// IS over `min(10, n / 10)` splits (at least one), so each split has ten pictures or more.
fn is_of(verdict: &Classified) -> Result<(f64, f64)> {
    let splits = (verdict.len() / 10).clamp(1, DEFAULT_IS_SPLITS);
    let score = inception_score(verdict.logits.view(), splits)?;
    Ok((score.mean, score.std))
}

/// Recall at 1, 5, 10 over full groups of `candidates` rows; returns the recalls, the group
/// size and the number of queries.
fn grouped_recall(
    queries: &Array2<f64>,
    keys: &Array2<f64>,
    candidates: usize,
) -> Result<([f64; 3], usize, usize)> {
    let n = queries.nrows();
    let size = candidates.min(n);
    let groups = n / size;
    let mut sums = [0.0; 3];
    for g in 0..groups {
        let rows = ndarray::s![g * size..(g + 1) * size, ..];
        let r = recall_at_k(queries.slice(rows), keys.slice(rows), &[1, 5, 10])?;
        for (sum, value) in sums.iter_mut().zip(r) {
            *sum += value;
        }
    }
    Ok((sums.map(|s| s / groups as f64), size, groups * size))
}

/// A clip-long sound of `sources` (all sharing one interval) over `background`.
fn sound(
    sources: &[SourceSpec],
    background: Background,
    world: &WorldConfig,
    seed: u64,
) -> Result<Waveform> {
    Ok(Waveform::mono(
        synth_sound(sources, background, world.seconds, seed)?,
        SAMPLE_RATE,
    ))
}

/// An on-screen interval as the world draws them: the mean visible fraction of the clip, at a
/// uniformly drawn start.
fn interval(world: &WorldConfig, rng: &mut ChaCha8Rng) -> (f32, f32) {
    let (lo, hi) = world.visible_fraction;
    let duration = world.seconds * 0.5 * (lo + hi);
    let start = rng.random::<f32>() * (world.seconds - duration);
    (start, start + duration)
}

/// Measure the claims of issue 6 with `pipeline` (which must hold the image encoder), judged by
/// `classifier`. See the [module docs](self) for what each number means.
///
/// # Errors
/// [`WorldEvalError::Invalid`] for a bad configuration; the pipeline's errors (e.g.
/// [`sound2scene_infer::InferError::NoImageEncoder`]), the world's and the metrics'.
pub fn eval_world(
    pipeline: &SoundToScene,
    classifier: &WorldClassifier,
    config: &WorldEvalConfig,
) -> Result<WorldReport> {
    config.validate()?;
    let world = World::new(config.world.clone())?;
    let wc = world.config();
    let batch = config.batch_size;
    let clips = held_out_clips(&world, wc.clips)?;
    let n = clips.len();

    // 1. Retrieval.
    let waves: Vec<Waveform> = clips.iter().map(|c| c.audio.clone()).collect();
    let frames: Vec<RgbImage> = clips.iter().map(|c| c.frame.clone()).collect();
    let z_audio = audio_features(pipeline, &waves, batch)?;
    let z_image = image_features(pipeline, &frames, batch)?;
    let [_, dim] = z_audio.dims();
    let (recall, candidates, queries) = grouped_recall(
        &to_array(z_audio.clone())?,
        &to_array(z_image.clone())?,
        config.candidates,
    )?;

    // 2. Pictures from audio, from the true feature, from random features; same noise.
    let rerank = config.rerank;
    let noise = noise_rows(pipeline, n * rerank, config.noise_seed, config.z_var)?;
    let mut rng = ChaCha8Rng::seed_from_u64(derive(config.noise_seed, 1));
    let random: Vec<f32> = (0..n * dim)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect();
    let z_random = Tensor::<2>::from_data(TensorData::new(random, [n, dim]), pipeline.device());
    let from_audio = classifier.classify(&draw(pipeline, z_audio, &noise, rerank, batch)?)?;
    let from_true = classifier.classify(&draw(pipeline, z_image, &noise, rerank, batch)?)?;
    let from_random = classifier.classify(&draw(pipeline, z_random, &noise, rerank, batch)?)?;
    let real = classifier.classify(&frames)?;
    let fid = |v: &Classified| fid_from_features(v.features.view(), real.features.view());
    let (is_mean, is_std) = is_of(&from_audio)?;
    let chance = clips
        .iter()
        .map(|c| c.classes.len() as f64 / SoundClass::ALL.len() as f64)
        .sum::<f64>()
        / n as f64;

    let (two_object_clips, two_object_both_fraction) = two_object_both(&from_audio, &clips);
    let (_, two_object_both_fraction_true_feature) = two_object_both(&from_true, &clips);

    // 3. Volume.
    let (volume_spearman, volume_spearman_by_class) = volume(pipeline, config)?;
    let (volume_spearman_waveform, volume_spearman_waveform_by_class) =
        volume_waveform(pipeline, config)?;

    // 4. Mixing.
    let mix = mixing(pipeline, classifier, config)?;

    Ok(WorldReport {
        r_at_1: recall[0],
        r_at_10: recall[2],
        class_accuracy: class_accuracy(&from_audio, &clips),
        class_accuracy_true_feature: class_accuracy(&from_true, &clips),
        class_accuracy_random_feature: class_accuracy(&from_random, &clips),
        fid: fid(&from_audio)?,
        volume_spearman,
        volume_spearman_waveform,
        mix_both_fraction: mix.both,
        seed: wc.seed,
        clips: n,
        z_var: config.z_var,
        rerank: config.rerank,
        retrieval_candidates: candidates,
        retrieval_queries: queries,
        r_at_5: recall[1],
        class_accuracy_chance: chance,
        class_accuracy_real: class_accuracy(&real, &clips),
        fid_true_feature: fid(&from_true)?,
        fid_random_feature: fid(&from_random)?,
        is_mean,
        is_std,
        is_mean_true_feature: is_of(&from_true)?.0,
        is_mean_random_feature: is_of(&from_random)?.0,
        is_mean_real: is_of(&real)?.0,
        volume_gains: config.volume_gains,
        volume_samples: config.volume_samples,
        volume_spearman_by_class,
        volume_spearman_waveform_by_class,
        mix_pairs: mix.count,
        mix_both_fraction_area: mix.both_area,
        mix_exact_fraction: mix.exact,
        mix_min_area_px: mix.min_area_px,
        two_object_clips,
        two_object_both_fraction,
        two_object_both_fraction_true_feature,
    })
}

/// Claim 3: mean over classes of Spearman ρ(gain, mean drawn area), and ρ per class, the
/// source's gain swept over the world's gain range.
fn volume(
    pipeline: &SoundToScene,
    config: &WorldEvalConfig,
) -> Result<(f64, BTreeMap<String, f64>)> {
    let wc = &config.world;
    let (lo, hi) = wc.gain_db_range;
    let steps = config.volume_gains;
    let gains: Vec<f32> = (0..steps)
        .map(|j| lo + (hi - lo) * j as f32 / (steps - 1) as f32)
        .collect();
    gain_sweep(
        pipeline,
        config,
        &gains,
        |class, (start, end), background, seed| {
            gains
                .iter()
                .map(|&gain| {
                    let source = SourceSpec::new(class, gain).during(start, end);
                    sound(&[source], background, wc, seed)
                })
                .collect()
        },
    )
}

/// Claim 3 as users run it: each (class, realisation) made once at the middle of the gain
/// range, then the whole waveform through `Waveform::gain_db` at [`WAVEFORM_GAINS_DB`].
fn volume_waveform(
    pipeline: &SoundToScene,
    config: &WorldEvalConfig,
) -> Result<(f64, BTreeMap<String, f64>)> {
    let wc = &config.world;
    let (lo, hi) = wc.gain_db_range;
    let middle = (lo + hi) / 2.0;
    gain_sweep(
        pipeline,
        config,
        &WAVEFORM_GAINS_DB,
        |class, (start, end), background, seed| {
            let source = SourceSpec::new(class, middle).during(start, end);
            let wave = sound(&[source], background, wc, seed)?;
            WAVEFORM_GAINS_DB
                .iter()
                .map(|&gain| {
                    wave.gain_db(gain)
                        .map_err(|e| sound2scene_infer::InferError::from(e).into())
                })
                .collect()
        },
    )
}

/// Each class alone in `config.volume_samples` realisations (the same interval, background,
/// noise and seed at every gain of a realisation), `realise` making one waveform per gain of
/// `gains` from the class, the interval in seconds, the background and the seed; drawn with
/// the same noise rows at every gain. Returns Spearman ρ(gain, mean drawn area) averaged over
/// the classes, and per class.
fn gain_sweep(
    pipeline: &SoundToScene,
    config: &WorldEvalConfig,
    gains: &[f32],
    realise: impl Fn(SoundClass, (f32, f32), Background, u64) -> Result<Vec<Waveform>>,
) -> Result<(f64, BTreeMap<String, f64>)> {
    let wc = &config.world;
    let samples = config.volume_samples;
    let classes = SoundClass::ALL;
    // Rows in (class, sample, gain) order; `rerank` noise rows (the candidates) per (class,
    // sample), the same at every gain.
    let rerank = config.rerank;
    let base = noise_rows(
        pipeline,
        classes.len() * samples * rerank,
        derive(config.noise_seed, 2),
        config.z_var,
    )?;
    let row_len = pipeline.dim_z() * rerank;
    let mut waves = Vec::with_capacity(classes.len() * samples * gains.len());
    let mut noise = Vec::with_capacity(waves.capacity() * row_len);
    for (c, &class) in classes.iter().enumerate() {
        for s in 0..samples {
            let seed = derive(wc.seed, 1000 + (c * samples + s) as u64);
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let interval = interval(wc, &mut rng);
            let background = Background::ALL[s % Background::ALL.len()];
            let row = &base[(c * samples + s) * row_len..(c * samples + s + 1) * row_len];
            for wave in realise(class, interval, background, seed)? {
                waves.push(wave);
                noise.extend_from_slice(row);
            }
        }
    }
    let features = audio_features(pipeline, &waves, config.batch_size)?;
    let pictures = draw(pipeline, features, &noise, rerank, config.batch_size)?;
    let gains: Vec<f64> = gains.iter().map(|&g| f64::from(g)).collect();
    Ok(area_rank_correlation(&pictures, &gains, samples))
}

/// Spearman ρ between `gains` and the class's drawn area averaged over `samples`
/// realisations, per class and its mean over the classes; `pictures` are in (class, sample,
/// gain) order.
fn area_rank_correlation(
    pictures: &[RgbImage],
    gains: &[f64],
    samples: usize,
) -> (f64, BTreeMap<String, f64>) {
    let steps = gains.len();
    let classes = SoundClass::ALL;
    let mut by_class = BTreeMap::new();
    let mut total = 0.0;
    for (c, &class) in classes.iter().enumerate() {
        let mean_area: Vec<f64> = (0..steps)
            .map(|j| {
                (0..samples)
                    .map(|s| measure_class_area(&pictures[(c * samples + s) * steps + j], class))
                    .sum::<usize>() as f64
                    / samples as f64
            })
            .collect();
        let rho = spearman(gains, &mean_area).unwrap_or(0.0);
        by_class.insert(class.name().to_string(), rho);
        total += rho;
    }
    (total / classes.len() as f64, by_class)
}

/// Results of claim 4.
struct MixResult {
    count: usize,
    both: f64,
    both_area: f64,
    exact: f64,
    min_area_px: usize,
}

/// Claim 4: every pair of classes sounding together, `mix_samples` times.
fn mixing(
    pipeline: &SoundToScene,
    classifier: &WorldClassifier,
    config: &WorldEvalConfig,
) -> Result<MixResult> {
    let wc = &config.world;
    let mut pairs = Vec::new();
    for (i, &a) in SoundClass::ALL.iter().enumerate() {
        for &b in &SoundClass::ALL[i + 1..] {
            for m in 0..config.mix_samples {
                pairs.push((a, b, m));
            }
        }
    }
    let mut waves = Vec::with_capacity(pairs.len());
    for (k, &(a, b, m)) in pairs.iter().enumerate() {
        let seed = derive(wc.seed, 100_000 + k as u64);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (start, end) = interval(wc, &mut rng);
        let (lo, hi) = wc.gain_db_range;
        let mut gain = || lo + (hi - lo) * rng.random::<f32>();
        let sources = [
            SourceSpec::new(a, gain()).during(start, end),
            SourceSpec::new(b, gain()).during(start, end),
        ];
        let background = Background::ALL[m % Background::ALL.len()];
        waves.push(sound(&sources, background, wc, seed)?);
    }
    let noise = noise_rows(
        pipeline,
        pairs.len() * config.rerank,
        derive(config.noise_seed, 3),
        config.z_var,
    )?;
    let features = audio_features(pipeline, &waves, config.batch_size)?;
    let pictures = draw(pipeline, features, &noise, config.rerank, config.batch_size)?;
    let verdict = classifier.classify(&pictures)?;
    let pixels = pictures
        .first()
        .map_or(0, |p| p.width() as usize * p.height() as usize);
    let min_area_px = ((config.mix_min_area_fraction * pixels as f64).ceil() as usize).max(1);
    let (mut both, mut both_area, mut exact) = (0usize, 0usize, 0usize);
    for (k, &(a, b, _)) in pairs.iter().enumerate() {
        let present = verdict.present(k);
        let has_both = present.contains(&a) && present.contains(&b);
        both += usize::from(has_both);
        exact += usize::from(has_both && present.len() == 2);
        both_area += usize::from(
            measure_class_area(&pictures[k], a) >= min_area_px
                && measure_class_area(&pictures[k], b) >= min_area_px,
        );
    }
    let count = pairs.len();
    let fraction = |x: usize| x as f64 / count as f64;
    Ok(MixResult {
        count,
        both: fraction(both),
        both_area: fraction(both_area),
        exact: fraction(exact),
        min_area_px,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouped_recall_uses_full_groups_only() {
        // 5 rows, groups of 2: rows 0..4 in two groups, row 4 left out.
        let eye = Array2::from_shape_fn((5, 5), |(i, j)| f64::from(u8::from(i == j)));
        let (recall, size, queries) = grouped_recall(&eye, &eye, 2).expect("recall");
        assert_eq!((size, queries), (2, 4));
        assert_eq!(recall, [1.0, 1.0, 1.0]);
    }

    #[test]
    fn derived_seeds_differ_by_stream() {
        assert_ne!(derive(7, 1), derive(7, 2));
        assert_ne!(derive(7, 1), derive(8, 1));
    }
}
