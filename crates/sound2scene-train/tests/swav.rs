//! Tests of the SwAV loop (issue 5, loop 3): Sinkhorn-Knopp against a reference, the
//! swapped-prediction loss against a hand computation, learning, exact resume, NaN stop,
//! stop flag, the exported trunk, and deterministic multi-crop augmentation.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor, TensorData};
use image::{Rgb, RgbImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sound2scene_models::checkpoint::open_image_encoder;
use sound2scene_train::TrainError;
use sound2scene_train::checkpoint::latest_complete;
use sound2scene_train::control::{Control, Outcome};
use sound2scene_train::progress::{METRICS_FILE, MetricsLog, ProgressMode};
use sound2scene_train::swav::augment::{MultiCropConfig, multi_crop_batch};
use sound2scene_train::swav::head::SwavNetwork;
use sound2scene_train::swav::images::SwavImages;
use sound2scene_train::swav::sinkhorn::{SwavLossSettings, sinkhorn, swapped_prediction_loss};
use sound2scene_train::swav::{
    CONFIG_FILE, HEAD_FILE, IMAGE_ENCODER_FILE, SwavConfig, SwavHooks, SwavSession, load_network,
};

/// Resumed and uninterrupted runs execute the same operations on the same values in the same
/// order; the brief asks for agreement within 1e-6.
const RESUME_TOLERANCE: f32 = 1e-6;
/// `f32` Sinkhorn against the `float64` reference: exp(score / 0.05) spans 1e-9 … 1e8 and three
/// rounds of normalization each round to ~1e-7 relative.
const SINKHORN_TOLERANCE: f64 = 2e-6;

fn device() -> Device {
    Device::flex()
}

fn tensor2(values: &[f32], shape: [usize; 2]) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values.to_vec(), shape), &device())
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().expect("f32 values")
}

/// The fixed `[B = 4, K = 3]` score matrix of the reference below.
const SCORES: [f32; 12] = [
    0.9, -0.2, 0.1, 0.3, 0.5, -0.7, -0.4, 0.8, 0.2, 0.05, -0.6, 0.6,
];

// Produced with /work/venv (PyTorch, float64) by a few lines written from the SwAV paper
// (Sec. 3.1 / Alg. 1), not from the SwAV code:
//   P = exp(scores / eps).T; P /= P.sum()
//   repeat 3: P = P / P.sum(1, keepdim) / K;  P = P / P.sum(0, keepdim) / B
//   Q = (P * B).T
// printed with 9 decimals, for eps = 0.05 and eps = 0.5.
const REFERENCE_EPS_005: [f64; 12] = [
    0.999954336,
    0.000000001,
    0.000045663,
    0.009730167,
    0.990269825,
    0.000000008,
    0.000000000,
    0.998664241,
    0.001335759,
    0.000000041,
    0.000000000,
    0.999999959,
];
const REFERENCE_EPS_05: [f64; 12] = [
    0.715411656,
    0.078760308,
    0.205828036,
    0.373819218,
    0.554087906,
    0.072092876,
    0.059939331,
    0.656474558,
    0.283586111,
    0.180122929,
    0.048773669,
    0.771103402,
];

#[test]
fn sinkhorn_matches_the_reference_and_its_marginals() {
    for (epsilon, reference) in [(0.05, REFERENCE_EPS_005), (0.5, REFERENCE_EPS_05)] {
        let q = values(sinkhorn(tensor2(&SCORES, [4, 3]), epsilon, 3));
        for (i, (got, want)) in q.iter().zip(reference).enumerate() {
            assert!(
                (f64::from(*got) - want).abs() <= SINKHORN_TOLERANCE,
                "eps {epsilon}, entry {i}: {got} vs {want}"
            );
        }
        // The last operation normalizes samples: every sample's code sums to exactly 1.
        for row in q.chunks(3) {
            let sum: f32 = row.iter().sum();
            assert!((sum - 1.0).abs() < 1e-6, "row sums to {sum}");
        }
    }
    // Run long enough, the prototypes' totals converge to B/K (equipartition).
    let q = values(sinkhorn(tensor2(&SCORES, [4, 3]), 0.5, 200));
    for k in 0..3 {
        let column: f32 = (0..4).map(|b| q[b * 3 + k]).sum();
        assert!(
            (column - 4.0 / 3.0).abs() < 1e-4,
            "prototype {k} gets {column}"
        );
    }
    // The codes carry no gradient.
    let scores = tensor2(&SCORES, [4, 3]);
    let tracked = Tensor::<2>::from_data(scores.into_data(), &device().autodiff()).require_grad();
    assert!(!sinkhorn(tracked, 0.05, 3).is_require_grad());
}

/// Sinkhorn in `f64`, from the paper, for the hand computation below.
fn sinkhorn_f64(scores: &[f64], b: usize, k: usize, eps: f64, iters: usize) -> Vec<f64> {
    // p[j][i]: prototype j, sample i.
    let mut p: Vec<Vec<f64>> = (0..k)
        .map(|j| (0..b).map(|i| (scores[i * k + j] / eps).exp()).collect())
        .collect();
    let total: f64 = p.iter().flatten().sum();
    p.iter_mut().flatten().for_each(|v| *v /= total);
    for _ in 0..iters {
        for row in &mut p {
            let s: f64 = row.iter().sum();
            row.iter_mut().for_each(|v| *v /= s * k as f64);
        }
        let column_sums: Vec<f64> = (0..b).map(|i| p.iter().map(|row| row[i]).sum()).collect();
        for row in &mut p {
            for (v, s) in row.iter_mut().zip(&column_sums) {
                *v /= s * b as f64;
            }
        }
    }
    (0..b * k).map(|n| p[n % k][n / k] * b as f64).collect()
}

#[test]
fn loss_equals_a_hand_computation() {
    // B = 2 images, V = 3 crops, K = 3 prototypes; crops 0 and 1 are assigned.
    let (b, v, k) = (2, 3, 3);
    let scores: Vec<f64> = vec![
        0.2, -0.1, 0.7, // crop 0
        -0.5, 0.4, 0.1, //
        0.6, 0.0, -0.3, // crop 1
        0.1, 0.9, -0.2, //
        -0.4, 0.3, 0.5, // crop 2
        0.8, -0.6, 0.05,
    ];
    let (temperature, epsilon) = (0.1, 0.5);
    let crop = |c: usize| &scores[c * b * k..(c + 1) * b * k];
    let mut expected = 0.0;
    for assigned in [0, 1] {
        let q = sinkhorn_f64(crop(assigned), b, k, epsilon, 3);
        let mut subloss = 0.0;
        for other in (0..v).filter(|&o| o != assigned) {
            let x = crop(other);
            let mut ce = 0.0;
            for i in 0..b {
                let row: Vec<f64> = x[i * k..(i + 1) * k]
                    .iter()
                    .map(|s| s / temperature)
                    .collect();
                let max = row.iter().cloned().fold(f64::MIN, f64::max);
                let log_z = max + row.iter().map(|r| (r - max).exp()).sum::<f64>().ln();
                ce -= (0..k).map(|j| q[i * k + j] * (row[j] - log_z)).sum::<f64>();
            }
            subloss += ce / b as f64;
        }
        expected += subloss / (v - 1) as f64;
    }
    expected /= 2.0;

    let settings = SwavLossSettings {
        batch: b,
        crops_for_assign: vec![0, 1],
        temperature,
        epsilon,
        sinkhorn_iterations: 3,
    };
    let as_f32: Vec<f32> = scores.iter().map(|&s| s as f32).collect();
    let loss = swapped_prediction_loss(tensor2(&as_f32, [v * b, k]), &settings)
        .expect("loss")
        .into_scalar::<f32>();
    assert!(
        (f64::from(loss) - expected).abs() < 1e-5,
        "loss {loss} vs hand {expected}"
    );

    // Invalid settings are reported, not panicked on.
    let bad = SwavLossSettings {
        crops_for_assign: vec![3],
        ..settings.clone()
    };
    assert!(matches!(
        swapped_prediction_loss(tensor2(&as_f32, [v * b, k]), &bad),
        Err(TrainError::Config { .. })
    ));
    let odd = SwavLossSettings {
        batch: 4,
        ..settings
    };
    assert!(swapped_prediction_loss(tensor2(&as_f32, [v * b, k]), &odd).is_err());
}

/// `n` images of `side × side`: a coloured background with a square or a disc of another
/// colour at a random place and size.
fn shapes(n: usize, side: u32, seed: u64) -> Vec<RgbImage> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let bg = Rgb([rng.random(), rng.random(), rng.random()]);
            let fg = Rgb([rng.random(), rng.random(), rng.random()]);
            let r = rng.random_range(side / 6..side / 3) as i64;
            let cx = rng.random_range(r..side as i64 - r);
            let cy = rng.random_range(r..side as i64 - r);
            RgbImage::from_fn(side, side, |x, y| {
                let (dx, dy) = (x as i64 - cx, y as i64 - cy);
                let inside = if i % 2 == 0 {
                    dx.abs() <= r && dy.abs() <= r
                } else {
                    dx * dx + dy * dy <= r * r
                };
                if inside { fg } else { bg }
            })
        })
        .collect()
}

/// ResNet-18 layout of width 8 at 32 pixels (2 × 32² + 4 × 16² crops), 64 prototypes on
/// 32-dimensional features.
fn tiny_config() -> SwavConfig {
    SwavConfig::narrow(32, 8)
        .with_batch_size(8)
        .with_steps(40)
        .with_freeze_prototypes_steps(2)
        .with_checkpoint_every(0)
        .with_seed(5)
}

fn session(config: &SwavConfig, images: usize, out: &Path) -> SwavSession {
    let set = SwavImages::in_memory(shapes(images, 32, 9)).expect("images");
    SwavSession::new(config.clone(), set, out, device())
        .expect("session")
        .with_progress(ProgressMode::Never)
}

struct Collect(Vec<Vec<f32>>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.push(values(param.val()));
    }
}

fn parameters(network: &SwavNetwork) -> Vec<Vec<f32>> {
    let mut c = Collect(Vec::new());
    network.visit(&mut c);
    c.0
}

/// Largest absolute difference of parameters and of inference outputs on a fixed input (which
/// also covers the BatchNorm running statistics).
fn max_difference(a: &SwavNetwork, b: &SwavNetwork) -> f32 {
    let pa = parameters(a);
    let pb = parameters(b);
    assert_eq!(pa.len(), pb.len());
    let mut diff = 0.0f32;
    for (x, y) in pa.iter().zip(&pb) {
        assert_eq!(x.len(), y.len());
        for (p, q) in x.iter().zip(y) {
            diff = diff.max((p - q).abs());
        }
    }
    let input = Tensor::<4>::from_data(
        TensorData::new(
            (0..2 * 3 * 32 * 32)
                .map(|i| ((i % 17) as f32 - 8.0) / 8.0)
                .collect::<Vec<f32>>(),
            [2, 3, 32, 32],
        ),
        &device(),
    );
    let oa = values(a.forward(input.clone(), None).expect("forward").scores);
    let ob = values(b.forward(input, None).expect("forward").scores);
    for (p, q) in oa.iter().zip(&ob) {
        diff = diff.max((p - q).abs());
    }
    diff
}

#[test]
fn loss_goes_down_on_coloured_shapes() {
    let out = tempfile::tempdir().expect("tempdir");
    let losses = Arc::new(Mutex::new(Vec::new()));
    let rates = Arc::new(Mutex::new(Vec::new()));
    let (l, r) = (Arc::clone(&losses), Arc::clone(&rates));
    let hooks = SwavHooks {
        on_step: Some(Box::new(move |report| {
            l.lock().expect("lock").push(report.loss);
            r.lock().expect("lock").push(report.images_per_sec);
            Control::Continue
        })),
        ..SwavHooks::default()
    };
    // Long enough to leave the first plateau above ln K (the sharper 32-dimensional scores
    // start there) and settle clearly below it.
    let steps = 250u64;
    // A batch of 16 over 32 prototypes on 16 dimensions: enough samples per prototype for
    // sharp codes, and twice as many prototypes as dimensions.
    let config = tiny_config()
        .with_steps(steps)
        .with_batch_size(16)
        .with_prototypes(32)
        .with_feat_dim(16);
    // Random flat colours are all these images hold: no colour distortion.
    let config = config.clone().with_crops(
        config
            .crops
            .clone()
            .with_jitter_probability(0.0)
            .with_grayscale_probability(0.0),
    );
    let started = Instant::now();
    let summary = session(&config, 32, out.path())
        .run(false, hooks)
        .expect("run");
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(summary.outcome, Outcome::Finished);
    assert_eq!(summary.steps, steps);
    let losses = losses.lock().expect("lock").clone();
    assert!(losses.iter().all(|l| l.is_finite()));
    let first: f64 = losses[..8].iter().sum::<f64>() / 8.0;
    let last: f64 = losses[losses.len() - 8..].iter().sum::<f64>() / 8.0;
    println!("losses: {losses:.3?}");
    assert!(
        last < first - 0.05,
        "mean loss of steps 1-8 {first:.4}, of the last 8 steps {last:.4}"
    );
    // Uniform predictions score exactly ln K whatever the codes: a collapsed run sits there.
    let uniform = (config.prototypes as f64).ln();
    assert!(
        last < 0.8 * uniform,
        "mean loss of the last 8 steps {last:.4} is not below 0.8 ln K = {:.4}: the predictions \
         are (nearly) uniform",
        0.8 * uniform
    );
    let rates = rates.lock().expect("lock").clone();
    let mut sorted = rates[1..].to_vec();
    sorted.sort_by(f64::total_cmp);
    println!(
        "tiny SwAV (ResNet-18 layout width 8, 2x32 + 4x16 crops, batch 16, K 32): median {:.1} \
         images/s over steps 2-{steps}; whole run {:.1} images/s in {seconds:.1} s",
        sorted[sorted.len() / 2],
        (steps * 16) as f64 / seconds
    );
    // Output directory: config, metrics, one final checkpoint with trunk and head.
    assert!(out.path().join(CONFIG_FILE).is_file());
    let records = MetricsLog::read(out.path().join(METRICS_FILE)).expect("metrics");
    assert_eq!(records.len() as u64, steps);
    let last_dir = summary.last_checkpoint.expect("checkpoint");
    assert!(last_dir.join(HEAD_FILE).is_file());
    assert!(last_dir.join(IMAGE_ENCODER_FILE).is_file());
}

#[test]
fn resume_matches_an_uninterrupted_run() {
    // 16 images in batches of 8: two steps an epoch; the prototypes thaw after step 2.
    let config = tiny_config().with_steps(6);
    let straight = tempfile::tempdir().expect("tempdir");
    let reference = session(&config, 16, straight.path())
        .run(false, SwavHooks::default())
        .expect("straight run");
    assert_eq!(reference.steps, 6);

    let split = tempfile::tempdir().expect("tempdir");
    let first = session(&config.clone().with_max_steps(Some(3)), 16, split.path())
        .run(false, SwavHooks::default())
        .expect("first half");
    assert_eq!(first.outcome, Outcome::MaxSteps);
    assert_eq!(first.steps, 3);
    // Without `resume`, a used directory is refused.
    assert!(matches!(
        session(&config, 16, split.path()).run(false, SwavHooks::default()),
        Err(TrainError::Config { .. })
    ));
    let second = session(&config, 16, split.path())
        .run(true, SwavHooks::default())
        .expect("resumed run");
    assert_eq!(
        second.resumed_from.as_deref(),
        Some(split.path().join("ckpt-000003").as_path())
    );
    assert_eq!(second.outcome, Outcome::Finished);
    assert_eq!(second.steps, 6);
    let diff = max_difference(&reference.network, &second.network);
    assert!(diff <= RESUME_TOLERANCE, "stop + resume differs by {diff}");
    assert_eq!(reference.last_loss, second.last_loss);

    // Another configuration cannot resume this directory.
    let other = config.clone().with_seed(6);
    assert!(matches!(
        session(&other, 16, split.path()).run(true, SwavHooks::default()),
        Err(TrainError::ResumeMismatch { .. })
    ));
}

#[test]
fn nan_loss_stops_with_the_last_good_checkpoint() {
    let out = tempfile::tempdir().expect("tempdir");
    let config = tiny_config().with_steps(5).with_checkpoint_every(1);
    let hooks = SwavHooks {
        on_batch: Some(Box::new(|step, crops| {
            if step == 3 {
                crops.large[0] = f32::NAN;
            }
        })),
        ..SwavHooks::default()
    };
    let err = session(&config, 16, out.path())
        .run(false, hooks)
        .expect_err("NaN must stop the run");
    assert!(
        matches!(err, TrainError::NonFiniteLoss { step: 3 }),
        "{err}"
    );
    let (step, dir) = latest_complete(out.path())
        .expect("list")
        .expect("a checkpoint");
    assert_eq!(step, 2);
    let network = load_network(&dir, &config, &device()).expect("the last good checkpoint");
    assert!(parameters(&network).iter().flatten().all(|v| v.is_finite()));
}

#[test]
fn stop_flag_saves_and_returns() {
    let out = tempfile::tempdir().expect("tempdir");
    let config = tiny_config().with_steps(10);
    let hooks = SwavHooks::default();
    let flag = hooks.stop_flag();
    let hooks = SwavHooks {
        on_step: Some(Box::new(move |report| {
            if report.step == 2 {
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
            }
            Control::Continue
        })),
        ..hooks
    };
    let summary = session(&config, 16, out.path())
        .run(false, hooks)
        .expect("run");
    assert_eq!(summary.outcome, Outcome::Stopped);
    assert_eq!(summary.steps, 2);
    let (step, _) = latest_complete(out.path()).expect("list").expect("saved");
    assert_eq!(step, 2);
}

#[test]
fn exported_trunk_opens_as_an_image_encoder() {
    let out = tempfile::tempdir().expect("tempdir");
    let config = tiny_config().with_steps(2);
    let summary = session(&config, 16, out.path())
        .run(false, SwavHooks::default())
        .expect("run");
    let path = summary.image_encoder.expect("exported trunk");
    let (encoder, loaded) =
        open_image_encoder(&path, &Default::default(), &device()).expect("open_image_encoder");
    assert_eq!(loaded.resnet.base_width, 8);
    assert_eq!(loaded.resnet.layers, [2, 2, 2, 2]);
    let input = Tensor::<4>::from_data(
        TensorData::new(
            (0..3 * 3 * 32 * 32)
                .map(|i| ((i % 13) as f32 - 6.0) / 6.0)
                .collect::<Vec<f32>>(),
            [3, 3, 32, 32],
        ),
        &device(),
    );
    let features = encoder.forward(input.clone());
    assert_eq!(features.dims(), [3, 64]);
    let trained = summary.network.encoder.forward(input);
    let (a, b) = (values(features), values(trained));
    let diff = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(diff < 1e-6, "exported trunk differs by {diff}");
}

#[test]
fn augmentations_are_deterministic_and_sized() {
    let images = shapes(4, 40, 3);
    let refs: Vec<&RgbImage> = images.iter().collect();
    let config = MultiCropConfig::for_resolution(32);
    assert_eq!((config.large_size, config.small_size), (32, 14));
    let a = multi_crop_batch(&refs, vec![0, 1, 2, 3], &config, 11, 7).expect("crops");
    let b = multi_crop_batch(&refs, vec![0, 1, 2, 3], &config, 11, 7).expect("crops");
    assert_eq!(a, b, "same seed and step give the same crops");
    assert_eq!(a.large.len(), 2 * 4 * 3 * 32 * 32);
    assert_eq!(a.small.len(), 6 * 4 * 3 * 14 * 14);
    assert!(a.large.iter().chain(&a.small).all(|v| v.is_finite()));
    let c = multi_crop_batch(&refs, vec![0, 1, 2, 3], &config, 11, 8).expect("crops");
    assert_ne!(a.large, c.large, "another step gives other crops");
    let d = multi_crop_batch(&refs, vec![0, 1, 2, 3], &config, 12, 7).expect("crops");
    assert_ne!(a.large, d.large, "another seed gives other crops");
    // The two large crops of one image differ (independent draws).
    let crop = 3 * 32 * 32;
    assert_ne!(a.large[..crop], a.large[4 * crop..5 * crop]);
    // The same image set gives the same batches per step; every epoch is a permutation.
    let set = SwavImages::in_memory(shapes(10, 16, 1)).expect("images");
    assert_eq!(set.steps_per_epoch(4), 2);
    let mut epoch: Vec<usize> = (1..=2).flat_map(|s| set.batch_indices(4, 3, s)).collect();
    assert_eq!(set.batch_indices(4, 3, 1), set.batch_indices(4, 3, 1));
    epoch.sort_unstable();
    epoch.dedup();
    assert_eq!(epoch.len(), 8);
    let batch = set
        .crops(&MultiCropConfig::for_resolution(16), 4, 3, 5)
        .expect("crops");
    assert_eq!(batch.indices, set.batch_indices(4, 3, 5));
    assert_eq!(batch.large.len(), 2 * 4 * 3 * 16 * 16);
    assert_eq!(batch.small.len(), 6 * 4 * 3 * 7 * 7);
}

#[test]
fn learning_rate_warms_up_linearly_then_decays_by_cosine() {
    use sound2scene_train::swav::optim::SwavOptimizerConfig;
    // numpy.linspace(0.3, 4.8, 10) then 0.0048 + ½(4.8 − 0.0048)(1 + cos(π t / 90)).
    let config = SwavOptimizerConfig::new()
        .with_base_lr(4.8)
        .with_final_lr(0.0048)
        .with_start_warmup(0.3)
        .with_warmup_steps(10);
    let total = 100;
    assert!((config.lr_at(1, total) - 0.3).abs() < 1e-12);
    assert!((config.lr_at(4, total) - (0.3 + 4.5 * 3.0 / 9.0)).abs() < 1e-12);
    assert!((config.lr_at(10, total) - 4.8).abs() < 1e-12);
    assert!((config.lr_at(11, total) - 4.8).abs() < 1e-12);
    let mid = 0.0048 + 0.5 * (4.8 - 0.0048) * (1.0 + (std::f64::consts::PI * 45.0 / 90.0).cos());
    assert!((config.lr_at(56, total) - mid).abs() < 1e-12);
    let last = 0.0048 + 0.5 * (4.8 - 0.0048) * (1.0 + (std::f64::consts::PI * 89.0 / 90.0).cos());
    assert!((config.lr_at(100, total) - last).abs() < 1e-12);
}

#[test]
fn image_folders_are_listed_recursively_and_refused_when_empty() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nested = dir.path().join("a/b");
    std::fs::create_dir_all(&nested).expect("mkdir");
    for (i, image) in shapes(3, 24, 4).iter().enumerate() {
        let folder = if i == 0 { dir.path() } else { nested.as_path() };
        image
            .save(folder.join(format!("{i}.png")))
            .expect("write png");
    }
    std::fs::write(dir.path().join("notes.txt"), "not an image").expect("write");
    let set = SwavImages::from_dir(dir.path()).expect("folder");
    assert_eq!(set.len(), 3);
    assert_eq!(
        set.fingerprint(),
        SwavImages::from_dir(dir.path())
            .expect("again")
            .fingerprint()
    );
    let batch = set
        .crops(&MultiCropConfig::for_resolution(16), 2, 1, 1)
        .expect("crops from files");
    assert_eq!(batch.large.len(), 2 * 2 * 3 * 16 * 16);

    let empty = tempfile::tempdir().expect("tempdir");
    assert!(matches!(
        SwavImages::from_dir(empty.path()),
        Err(TrainError::Data { .. })
    ));
    assert!(matches!(
        SwavImages::from_dir(dir.path().join("missing")),
        Err(TrainError::Data { .. })
    ));
    // A corrupt file is reported with its path when a batch needs it.
    std::fs::write(nested.join("9.png"), b"not a png").expect("write");
    let set = SwavImages::from_dir(dir.path()).expect("folder");
    let err = (0..4)
        .find_map(|i| set.image(i).err())
        .expect("the corrupt file fails");
    assert!(err.to_string().contains("9.png"), "{err}");
}
