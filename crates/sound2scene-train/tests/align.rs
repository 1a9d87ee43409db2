//! Tests of the alignment loop: learning, exact resume, NaN detection, stop handling,
//! checkpoint contents, and an end-to-end run on the shared training samples.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Instant;

use burn::config::Config;
use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::tensor::{Device, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sound2scene_audio::Spectrogram;
use sound2scene_models::audio_encoder::{AudioEncoder, AudioEncoderConfig};
use sound2scene_models::burnpack::{self, NetworkKind, Precision};
use sound2scene_models::checkpoint::{open_audio_encoder, open_image_encoder};
use sound2scene_models::resnet::{BlockKind, ResNetConfig};
use sound2scene_train::align::{
    AdamSettings, AlignConfig, AlignHooks, AlignState, CONFIG_FILE, MODEL_FILE, OPTIMIZER_FILE,
    STATE_FILE, init_encoder,
};
use sound2scene_train::checkpoint::{
    BEST_POINTER, COMPLETE_MARKER, best_checkpoint, latest_complete, list_complete, read_pointer,
};
use sound2scene_train::control::{Control, Outcome};
use sound2scene_train::progress::{METRICS_FILE, MetricsLog, ProgressMode, RecordKind};
use sound2scene_train::{
    AlignData, AlignSession, ContrastiveLoss, FeatureCache, TrainError, discover_official,
    train_align,
};

/// Resumed and uninterrupted runs execute the same operations on the same values; only the
/// order of multithreaded float reductions could differ. `1e-5` is the brief's tolerance.
const RESUME_TOLERANCE: f32 = 1e-5;

/// Spectrogram size of the synthetic examples `[bins, frames]`.
const BINS: usize = 32;
const FRAMES: usize = 48;
/// Width of the synthetic image features (and of the tiny encoder's output).
const DIM: usize = 16;

fn device() -> Device {
    Device::flex()
}

/// A narrow ResNet with one basic block per stage (base width 4) projecting to `out_dim`.
fn tiny_encoder(out_dim: usize) -> AudioEncoderConfig {
    AudioEncoderConfig::new()
        .with_resnet(
            ResNetConfig::new(BlockKind::Basic, [1, 1, 1, 1])
                .with_in_channels(1)
                .with_base_width(4),
        )
        .with_out_dim(out_dim)
}

fn tiny_config() -> AlignConfig {
    AlignConfig::new()
        .with_encoder(tiny_encoder(DIM))
        .with_batch_size(4)
        .with_epochs(50)
        .with_val_fraction(0.15)
        .with_checkpoint_every(0)
        .with_seed(7)
}

fn gaussian(rng: &mut ChaCha8Rng) -> f32 {
    // Box–Muller; u1 in (0, 1].
    let u1: f32 = 1.0 - rng.random::<f32>();
    let u2: f32 = rng.random::<f32>();
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

/// `n` examples in 4 classes: a class's spectrograms are its template plus noise, its features
/// its unit vector plus noise, so an encoder can learn to align them.
fn synthetic_data(n: usize, seed: u64) -> AlignData {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let classes = 4;
    let templates: Vec<Vec<f32>> = (0..classes)
        .map(|_| (0..BINS * FRAMES).map(|_| gaussian(&mut rng)).collect())
        .collect();
    let centers: Vec<Vec<f32>> = (0..classes)
        .map(|_| (0..DIM).map(|_| gaussian(&mut rng)).collect())
        .collect();
    let mut names = Vec::new();
    let mut specs = Vec::new();
    let mut features = Vec::new();
    for i in 0..n {
        let c = i % classes;
        names.push(format!("example-{i:02}"));
        let spec: Vec<f32> = templates[c]
            .iter()
            .map(|t| t + 0.3 * gaussian(&mut rng))
            .collect();
        specs.push(Spectrogram::from_vec(spec, BINS, FRAMES).expect("spectrogram"));
        features.extend(centers[c].iter().map(|v| v + 0.1 * gaussian(&mut rng)));
    }
    AlignData::in_memory(names, specs, features, DIM).expect("data")
}

/// Every float parameter's values, in traversal order.
struct Collect(Vec<Vec<f32>>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let values = param
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32 parameter");
        self.0.push(values);
    }
}

/// Ids of the trainable (gradient-requiring, once on the autodiff device) parameters.
struct TrainableIds(Vec<ParamId>);

impl ModuleVisitor for TrainableIds {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if param.val().is_require_grad() {
            self.0.push(param.id);
        }
    }
}

fn trainable_ids(model: &AudioEncoder) -> Vec<ParamId> {
    let mut ids = TrainableIds(Vec::new());
    model.clone().train().visit(&mut ids);
    ids.0
}

fn parameters(model: &AudioEncoder) -> Vec<Vec<f32>> {
    let mut collect = Collect(Vec::new());
    model.visit(&mut collect);
    collect.0
}

/// Largest absolute difference between two encoders' parameters and their inference outputs on
/// a fixed input (which involves the BatchNorm running statistics).
fn max_difference(a: &AudioEncoder, b: &AudioEncoder) -> f32 {
    let (pa, pb) = (parameters(a), parameters(b));
    assert_eq!(pa.len(), pb.len());
    let mut worst = 0.0f32;
    for (x, y) in pa.iter().zip(&pb) {
        assert_eq!(x.len(), y.len());
        for (u, v) in x.iter().zip(y) {
            worst = worst.max((u - v).abs());
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let input: Vec<f32> = (0..2 * BINS * FRAMES).map(|_| gaussian(&mut rng)).collect();
    let x = Tensor::<4>::from_data(TensorData::new(input, [2, 1, BINS, FRAMES]), &device());
    let ya = a.forward(x.clone()).feature.into_data();
    let yb = b.forward(x).feature.into_data();
    for (u, v) in ya
        .try_to_vec::<f32>()
        .expect("f32")
        .iter()
        .zip(yb.try_to_vec::<f32>().expect("f32"))
    {
        worst = worst.max((u - v).abs());
    }
    worst
}

fn quiet(config: &AlignConfig, data: AlignData, out: &Path) -> AlignSession {
    AlignSession::new(config.clone(), data, out, device())
        .expect("session")
        .with_progress(ProgressMode::Never)
}

#[test]
fn loss_goes_down_on_learnable_pairs() {
    let out = tempfile::tempdir().expect("tempdir");
    let config = tiny_config().with_epochs(12);
    let started = Instant::now();
    let summary = quiet(&config, synthetic_data(16, 1), out.path())
        .run(false, AlignHooks::default())
        .expect("training");
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(summary.outcome, Outcome::Finished);
    assert_eq!(summary.epochs_completed, 12);

    let records = MetricsLog::read(out.path().join(METRICS_FILE)).expect("metrics");
    let epochs: Vec<_> = records
        .iter()
        .filter(|r| r.kind == RecordKind::Epoch)
        .collect();
    assert_eq!(epochs.len(), 12);
    let first = epochs[0].loss.expect("train loss");
    let last = epochs[epochs.len() - 1].loss.expect("train loss");
    assert!(
        last < 0.8 * first,
        "training loss should fall: first epoch {first:.4}, last epoch {last:.4}"
    );
    // The validation loss is tracked and best never points at a missing checkpoint.
    assert!(
        epochs
            .iter()
            .all(|r| r.val_loss.is_some_and(f64::is_finite))
    );
    let best = summary.best_checkpoint.expect("best checkpoint");
    assert!(best.join(COMPLETE_MARKER).is_file());
    let best_val = epochs
        .iter()
        .filter_map(|r| r.val_loss)
        .fold(f64::INFINITY, f64::min);
    assert!((summary.best_val_loss.expect("best loss") - best_val).abs() < 1e-12);

    let examples = summary.steps as f64 * 4.0;
    println!(
        "tiny encoder (width 4, [1,1,1,1], input [4, 1, {BINS}, {FRAMES}]): {} steps in {seconds:.2} s \
         = {:.0} samples/s including validation and checkpoints",
        summary.steps,
        examples / seconds
    );
}

#[test]
fn data_parallel_over_two_copies_learns() {
    // Two shards of 4 per batch of 8 (the second on a copy of the encoder), gathered for the
    // loss; see tests/parallel.rs for the exactness of the sharded gradient.
    let out = tempfile::tempdir().expect("tempdir");
    let config = tiny_config().with_epochs(12).with_batch_size(8);
    let summary = quiet(&config, synthetic_data(24, 1), out.path())
        .with_replicas(vec![device()])
        .run(false, AlignHooks::default())
        .expect("training");
    assert_eq!(summary.outcome, Outcome::Finished);
    let records = MetricsLog::read(out.path().join(METRICS_FILE)).expect("metrics");
    let losses: Vec<f64> = records
        .iter()
        .filter(|r| r.kind == RecordKind::Epoch)
        .filter_map(|r| r.loss)
        .collect();
    assert_eq!(losses.len(), 12);
    let late = losses[9..].iter().copied().fold(f64::INFINITY, f64::min);
    assert!(
        late < 0.9 * losses[0],
        "training loss should fall with replicas: {losses:?}"
    );
}

#[test]
fn resume_matches_an_uninterrupted_run() {
    // 16 examples, 2 held out: 14 for training in batches of 4 → [4, 4, 4, 2] per epoch, so
    // step 3 is mid-epoch and the run to step 7 crosses an epoch end (validation, checkpoint).
    let n = 16;
    let total = 7;
    let config = tiny_config().with_val_fraction(0.1);

    let straight = tempfile::tempdir().expect("tempdir");
    let reference = quiet(
        &config.clone().with_max_steps(Some(total)),
        synthetic_data(n, 2),
        straight.path(),
    )
    .run(false, AlignHooks::default())
    .expect("straight run");
    assert_eq!(reference.outcome, Outcome::MaxSteps);
    assert_eq!(reference.steps, total);

    // Stop cleanly after 3 steps, then resume to 7.
    let split = tempfile::tempdir().expect("tempdir");
    let first = quiet(
        &config.clone().with_max_steps(Some(3)),
        synthetic_data(n, 2),
        split.path(),
    )
    .run(false, AlignHooks::default())
    .expect("first half");
    assert_eq!(first.outcome, Outcome::MaxSteps);
    assert_eq!(first.steps, 3);
    let second = quiet(
        &config.clone().with_max_steps(Some(total)),
        synthetic_data(n, 2),
        split.path(),
    )
    .run(true, AlignHooks::default())
    .expect("resumed run");
    assert_eq!(
        second.resumed_from.as_deref(),
        Some(split.path().join("ckpt-000003").as_path())
    );
    assert_eq!(second.steps, total);
    let diff = max_difference(&reference.model, &second.model);
    assert!(diff <= RESUME_TOLERANCE, "stop + resume differs by {diff}");

    // A kill (abort without saving) after step 3, with checkpoints every 2 steps: the resume
    // starts from the mid-epoch checkpoint of step 2 and still ends identical.
    let killed = tempfile::tempdir().expect("tempdir");
    let cadence = config.clone().with_checkpoint_every(2);
    let hooks = AlignHooks {
        on_step: Some(Box::new(|report| {
            if report.step == 3 {
                Control::Abort
            } else {
                Control::Continue
            }
        })),
        ..AlignHooks::default()
    };
    let aborted = quiet(&cadence, synthetic_data(n, 2), killed.path())
        .run(false, hooks)
        .expect("aborted run");
    assert_eq!(aborted.outcome, Outcome::Aborted);
    let (latest, _) = latest_complete(killed.path())
        .expect("list")
        .expect("a checkpoint");
    assert_eq!(latest, 2);
    let resumed = quiet(
        &cadence.with_max_steps(Some(total)),
        synthetic_data(n, 2),
        killed.path(),
    )
    .run(true, AlignHooks::default())
    .expect("resume after kill");
    let diff = max_difference(&reference.model, &resumed.model);
    assert!(diff <= RESUME_TOLERANCE, "kill + resume differs by {diff}");
}

#[test]
fn parameter_ids_survive_a_burnpack_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = tiny_encoder(DIM);
    let model = init_encoder(&config, 3, &device());
    let path = dir.path().join("model.bpk");
    burnpack::save(
        &model,
        NetworkKind::AudioEncoder,
        &config,
        &path,
        Precision::F32,
    )
    .expect("save");
    let (loaded, _): (AudioEncoder, AudioEncoderConfig) =
        burnpack::load(&path, NetworkKind::AudioEncoder, &device(), |c, d| {
            AudioEncoderConfig::init(c, d)
        })
        .expect("load");
    // The optimizer state is keyed by the ids of the trainable parameters (BatchNorm running
    // statistics are not optimized and may get new ids).
    let (before, after) = (trainable_ids(&model), trainable_ids(&loaded));
    // Stem 3, layer1 6, layers 2–4 9 each (with a downsample), fc 2.
    assert_eq!(before.len(), 38);
    assert_eq!(
        before, after,
        "trainable parameter ids must survive save/load"
    );
}

#[test]
fn nan_loss_stops_with_the_last_good_checkpoint() {
    let out = tempfile::tempdir().expect("tempdir");
    // 8 examples, 1 held out: 7 in batches of 4 → [4, 3], two steps an epoch; poison step 3.
    let config = tiny_config()
        .with_val_fraction(0.125)
        .with_checkpoint_every(1);
    let hooks = AlignHooks {
        on_batch: Some(Box::new(|step, batch| {
            if step == 3 {
                batch.features[0] = f32::NAN;
            }
        })),
        ..AlignHooks::default()
    };
    let err = quiet(&config, synthetic_data(8, 3), out.path())
        .run(false, hooks)
        .expect_err("a NaN loss must stop training");
    assert!(
        matches!(err, TrainError::NonFiniteLoss { step: 3 }),
        "unexpected error: {err}"
    );
    let (step, dir) = latest_complete(out.path())
        .expect("list")
        .expect("checkpoint");
    assert_eq!(step, 2, "the last good checkpoint is the one of step 2");
    assert!(!out.path().join("ckpt-000003").exists());
    // Every checkpoint holds finite weights, and best names a complete one.
    for (_, dir) in list_complete(out.path()).expect("list") {
        let (model, _) =
            open_audio_encoder(dir.join(MODEL_FILE), &Default::default(), &device()).expect("load");
        assert!(parameters(&model).iter().flatten().all(|v| v.is_finite()));
    }
    let best = best_checkpoint(out.path()).expect("best");
    assert_eq!(best, dir);
    // Resuming continues from step 2.
    let resumed = quiet(
        &config.with_max_steps(Some(3)),
        synthetic_data(8, 3),
        out.path(),
    )
    .run(true, AlignHooks::default())
    .expect("resume");
    assert_eq!(resumed.steps, 3);
}

#[test]
fn stop_flag_saves_and_returns() {
    let out = tempfile::tempdir().expect("tempdir");
    let hooks = AlignHooks::default();
    let flag = hooks.stop_flag();
    let hooks = AlignHooks {
        on_step: Some(Box::new(move |report| {
            if report.step == 2 {
                flag.store(true, Ordering::SeqCst);
            }
            Control::Continue
        })),
        ..hooks
    };
    let summary = quiet(&tiny_config(), synthetic_data(16, 4), out.path())
        .run(false, hooks)
        .expect("run");
    assert_eq!(summary.outcome, Outcome::Stopped);
    assert_eq!(summary.steps, 2);
    let last = summary.last_checkpoint.expect("checkpoint");
    assert_eq!(last, out.path().join("ckpt-000002"));
    for file in [MODEL_FILE, OPTIMIZER_FILE, STATE_FILE, COMPLETE_MARKER] {
        assert!(last.join(file).is_file(), "{file} missing");
    }
    let state: AlignState =
        serde_json::from_str(&std::fs::read_to_string(last.join(STATE_FILE)).expect("state"))
            .expect("state json");
    assert_eq!((state.step, state.epoch, state.batch_in_epoch), (2, 0, 2));
    assert_eq!(
        read_pointer(out.path(), "latest").as_deref(),
        Some(last.as_path())
    );
    // config.json reads back as the configuration.
    let saved = AlignConfig::load(out.path().join(CONFIG_FILE)).expect("config.json");
    assert_eq!(saved.fingerprint(), tiny_config().fingerprint());
}

#[test]
fn resume_refuses_other_settings_and_fresh_runs_refuse_used_directories() {
    let out = tempfile::tempdir().expect("tempdir");
    let config = tiny_config().with_max_steps(Some(1));
    quiet(&config, synthetic_data(8, 5), out.path())
        .run(false, AlignHooks::default())
        .expect("first run");
    let err = quiet(&config, synthetic_data(8, 5), out.path())
        .run(false, AlignHooks::default())
        .expect_err("a used directory without resume");
    assert!(matches!(err, TrainError::Config { .. }), "{err}");
    let err = quiet(
        &config.clone().with_seed(8),
        synthetic_data(8, 5),
        out.path(),
    )
    .run(true, AlignHooks::default())
    .expect_err("another seed");
    assert!(matches!(err, TrainError::ResumeMismatch { .. }), "{err}");
    let err = quiet(&config, synthetic_data(9, 5), out.path())
        .run(true, AlignHooks::default())
        .expect_err("other data");
    assert!(matches!(err, TrainError::ResumeMismatch { .. }), "{err}");
    // Invalid settings are refused up front.
    let err = AlignSession::new(
        tiny_config().with_batch_size(1),
        synthetic_data(8, 5),
        out.path(),
        device(),
    )
    .expect_err("batch of one");
    assert!(matches!(err, TrainError::Config { .. }));
    let err = AlignSession::new(
        tiny_config().with_encoder(tiny_encoder(DIM + 1)),
        synthetic_data(8, 5),
        out.path(),
        device(),
    )
    .expect_err("width mismatch");
    assert!(matches!(err, TrainError::Config { .. }));
}

#[test]
fn a_single_validation_clip_is_not_held_out_and_best_follows_the_training_loss() {
    // 4 examples at fraction 0.15 would hold out 1 clip, over which InfoNCE is always 0.
    let out = tempfile::tempdir().expect("tempdir");
    let config = tiny_config().with_epochs(5);
    let session = quiet(&config, synthetic_data(4, 3), out.path());
    let note = session
        .validation_note()
        .expect("valid fraction")
        .expect("a note for one validation clip");
    assert!(note.contains("holds out 1 clip"), "{note}");
    assert!(note.contains("training loss"), "{note}");
    // round(10 · 0.15) = 2 is the first split with two validation clips.
    assert!(note.contains("10 examples"), "{note}");
    let summary = session.run(false, AlignHooks::default()).expect("training");
    assert_eq!(summary.validation_clips, 0);
    assert_eq!(summary.validation_note.as_deref(), Some(note.as_str()));

    // No epoch has a validation loss; `best` marks each new low of the training loss.
    let records = MetricsLog::read(out.path().join(METRICS_FILE)).expect("metrics");
    let epochs: Vec<_> = records
        .iter()
        .filter(|r| r.kind == RecordKind::Epoch)
        .collect();
    assert_eq!(epochs.len(), 5);
    let mut lowest = f64::INFINITY;
    for record in &epochs {
        assert_eq!(record.val_loss, None);
        let loss = record.loss.expect("training loss");
        assert_eq!(record.best, Some(loss < lowest), "epoch {}", record.epoch);
        lowest = lowest.min(loss);
    }
    assert_eq!(summary.best_val_loss, Some(lowest));
    // All four examples trained.
    let last = summary.last_checkpoint.expect("a checkpoint");
    let state: AlignState =
        serde_json::from_str(&std::fs::read_to_string(last.join(STATE_FILE)).expect("state"))
            .expect("state json");
    assert_eq!((state.train_size, state.val_size), (4, 0));

    // The L2 loss is meaningful on one clip and keeps it held out.
    let l2 = tiny_config().with_loss(ContrastiveLoss::L2);
    let other = tempfile::tempdir().expect("tempdir");
    let session = quiet(&l2, synthetic_data(4, 3), other.path());
    assert_eq!(session.validation_note().expect("valid fraction"), None);
}

#[test]
fn keeps_the_last_checkpoints_and_best() {
    let out = tempfile::tempdir().expect("tempdir");
    // A validation loss that only falls early makes best an old checkpoint.
    let config = tiny_config()
        .with_epochs(6)
        .with_keep_last(2)
        .with_optimizer(AdamSettings::new().with_lr(1e-3));
    let summary = quiet(&config, synthetic_data(8, 6), out.path())
        .run(false, AlignHooks::default())
        .expect("run");
    let complete: Vec<u64> = list_complete(out.path())
        .expect("list")
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    let best = read_pointer(out.path(), BEST_POINTER).expect("best pointer");
    assert!(best.join(COMPLETE_MARKER).is_file());
    let last_two = [summary.steps - 2, summary.steps];
    for step in complete.iter() {
        let dir = out.path().join(format!("ckpt-{step:06}"));
        assert!(
            last_two.contains(step) || dir == best,
            "checkpoint {step} should have been pruned (complete: {complete:?})"
        );
    }
    assert!(complete.contains(&summary.steps));
}

#[test]
fn starts_from_given_weights() {
    let work = tempfile::tempdir().expect("tempdir");
    let encoder = tiny_encoder(DIM);
    let start = init_encoder(&encoder, 42, &device());
    let path = work.path().join("start.bpk");
    burnpack::save(
        &start,
        NetworkKind::AudioEncoder,
        &encoder,
        &path,
        Precision::F32,
    )
    .expect("save");
    let weights = path.to_string_lossy().into_owned();
    // No step: the checkpoint of step 0 holds the given weights.
    let config = tiny_config()
        .with_init_weights(Some(weights.clone()))
        .with_max_steps(Some(0));
    let summary = quiet(&config, synthetic_data(8, 9), &work.path().join("a"))
        .run(false, AlignHooks::default())
        .expect("run");
    assert_eq!((summary.steps, summary.outcome), (0, Outcome::MaxSteps));
    assert_eq!(max_difference(&start, &summary.model), 0.0);
    assert!(
        work.path()
            .join("a/ckpt-000000")
            .join(COMPLETE_MARKER)
            .is_file()
    );

    // Weights of another architecture are refused.
    let wider = tiny_config()
        .with_encoder(
            AudioEncoderConfig::new()
                .with_resnet(
                    ResNetConfig::new(BlockKind::Basic, [1, 1, 1, 1])
                        .with_in_channels(1)
                        .with_base_width(8),
                )
                .with_out_dim(DIM),
        )
        .with_init_weights(Some(weights));
    let err = quiet(&wider, synthetic_data(8, 9), &work.path().join("b"))
        .run(false, AlignHooks::default())
        .expect_err("architecture mismatch");
    assert!(matches!(err, TrainError::Config { .. }), "{err}");
}

/// `$SOUND2SCENE_FIXTURES`, else `<workspace>/../shared/fixtures`.
fn fixtures_dir() -> PathBuf {
    std::env::var_os("SOUND2SCENE_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures")
        })
}

/// A path under the fixtures directory (or, with `samples`, under its sibling `samples`), or
/// `None` with a printed skip when missing outside CI; under `CI=true` missing is a failure.
fn shared_path(relative: &str, samples: bool) -> Option<PathBuf> {
    let base = fixtures_dir();
    let path = if samples {
        base.join("../samples").join(relative)
    } else {
        base.join(relative)
    };
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{} is missing (CI=true requires it)",
        path.display()
    );
    eprintln!("SKIP: {} is missing", path.display());
    None
}

#[test]
fn trains_end_to_end_on_the_shared_samples() {
    let (Some(samples), Some(swav)) = (
        shared_path("training", true),
        shared_path("models/swav_resnet50_layers1111.pth.tar", false),
    ) else {
        return;
    };
    let found = discover_official(&samples).expect("discover");
    assert_eq!(found.pairs.len(), 4);
    let (image_encoder, _) =
        open_image_encoder(&swav, &Default::default(), &device()).expect("image encoder");
    let work = tempfile::tempdir().expect("tempdir");
    let cache_dir = work.path().join("features");
    let swav_name = swav.to_string_lossy().into_owned();
    let cache = FeatureCache::build(
        &found.pairs,
        &image_encoder,
        &swav_name,
        &cache_dir,
        3,
        &device(),
        false,
    )
    .expect("feature cache");
    assert_eq!((cache.len(), cache.dim()), (4, 2048));
    assert_eq!(cache.index().shards.len(), 2);

    // 4 pairs at fraction 0.25 would hold out 1 clip, over which InfoNCE is always 0: all 4
    // train instead, in two batches of 2, and `best` follows the training loss.
    let config = AlignConfig::new()
        .with_encoder(tiny_encoder(2048))
        .with_batch_size(2)
        .with_epochs(2)
        .with_val_fraction(0.25)
        .with_clip_seconds(1.0);
    let data =
        AlignData::from_pairs(&found.pairs, &cache, config.spectrogram_config()).expect("data");
    let out = work.path().join("align");
    let summary = train_align(&config, data, &out, &device(), false, AlignHooks::default())
        .expect("training");
    assert_eq!(summary.steps, 4);
    assert_eq!(summary.validation_clips, 0);
    assert!(summary.validation_note.is_some());
    assert_eq!(summary.outcome, Outcome::Finished);
    let last = summary.last_checkpoint.expect("checkpoint");
    assert!(last.join(COMPLETE_MARKER).is_file());
    let records = MetricsLog::read(out.join(METRICS_FILE)).expect("metrics");
    assert_eq!(
        records
            .iter()
            .filter(|r| r.kind == RecordKind::Step)
            .count(),
        4
    );
    assert!(records.iter().all(|r| r.loss.is_some_and(f64::is_finite)));
    // The checkpoint's model opens as an audio encoder for inference.
    let (model, loaded) =
        open_audio_encoder(last.join(MODEL_FILE), &Default::default(), &device()).expect("open");
    assert_eq!(loaded.out_dim, 2048);
    assert!(parameters(&model).iter().flatten().all(|v| v.is_finite()));
}
