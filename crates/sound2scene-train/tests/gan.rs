//! Tests of the IC-GAN training loop (issue 5, loop 2): hinge losses, the k-NN index, learning,
//! exact resume, NaN detection, stop handling and the G_ema checkpoint.

use std::path::Path;

use burn::config::Config;
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Tensor, TensorData};
use image::{Rgb, RgbImage};
use sound2scene_models::LoadOptions;
use sound2scene_models::biggan::{Discriminator, Generator, INSTANCE_DIM};
use sound2scene_models::checkpoint::open_generator;
use sound2scene_models::image_encoder::{ImageEncoder, ImageEncoderConfig};
use sound2scene_models::resnet::{BlockKind, ResNetConfig};
use sound2scene_train::TrainError;
use sound2scene_train::checkpoint::{COMPLETE_MARKER, latest_complete};
use sound2scene_train::control::{Control, Outcome};
use sound2scene_train::gan::{
    AugmentDraw, Augmentation, CONFIG_FILE, D_OPTIMIZER_FILE, DISCRIMINATOR_FILE, G_OPTIMIZER_FILE,
    GENERATOR_EMA_FILE, GENERATOR_FILE, GanConfig, GanData, GanHooks, GanMetricsRecord, GanSession,
    METRICS_FILE, STATE_FILE, feature_consistency, hinge_d_loss, hinge_g_loss, init_networks,
    knn_cosine,
};
use sound2scene_train::progress::ProgressMode;

/// The tests of this file one at a time. Two GAN runs in one process at once made
/// `resume_gives_the_weights_of_an_uninterrupted_run` differ now and then (about one run in
/// six of this file, never alone): something process-wide other than the seeded
/// initialization, which is locked, is shared between concurrent runs. Until that is found,
/// the runs here do not overlap.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

mod common;

/// A resumed run repeats the same operations on the same values; only a multithreaded
/// reduction's order could differ. `1e-6` is the brief's tolerance.
const RESUME_TOLERANCE: f32 = 1e-6;

const RES: usize = 32;

fn device() -> Device {
    Device::flex()
}

/// G and D at 32×32 with width 4, batch 4, a neighbourhood of 2, the EMA from the first step.
fn tiny_config() -> GanConfig {
    GanConfig::new()
        .with_architecture(RES, 4)
        .with_batch_size(4)
        .with_k_nn(2)
        .with_ema_start(0)
        .with_ema_decay(0.9)
        .with_checkpoint_every(0)
        .with_sample_every(0)
        .with_log_every(1)
        .with_seed(11)
}

/// `n` 32×32 images (a colour per image, a bright square at an image-dependent place) and
/// pseudo-random 2048-wide features (IC-GAN's size).
fn synthetic_data(n: usize, seed: u64) -> GanData {
    synthetic_data_of(n, seed, INSTANCE_DIM)
}

/// [`synthetic_data`] with `dim`-wide features.
fn synthetic_data_of(n: usize, seed: u64, dim: usize) -> GanData {
    let images = synthetic_images(n);
    let features: Vec<f32> = common::pseudo_random(seed, n * dim)
        .into_iter()
        .map(|v| v as f32)
        .collect();
    let names = (0..n).map(|i| format!("img{i:02}")).collect();
    GanData::in_memory(names, features, &images, RES).expect("valid synthetic data")
}

/// `n` 32×32 images: a colour per image, a bright square at an image-dependent place.
fn synthetic_images(n: usize) -> Vec<RgbImage> {
    (0..n)
        .map(|i| {
            let base = Rgb([
                (40 * i % 256) as u8,
                (90 + 30 * i % 160) as u8,
                (200 - 25 * i % 200) as u8,
            ]);
            RgbImage::from_fn(RES as u32, RES as u32, |x, y| {
                let at = (3 * i as u32) % 20;
                if (at..at + 10).contains(&x) && (at..at + 10).contains(&y) {
                    Rgb([250, 250, 250])
                } else {
                    base
                }
            })
        })
        .collect()
}

fn quiet(config: GanConfig, data: GanData, out: &Path) -> GanSession {
    GanSession::new(config, data, out, device())
        .expect("valid session")
        .with_progress(ProgressMode::Never)
}

/// Every float tensor of a module, flattened, in traversal order.
struct Collect(Vec<Vec<f32>>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let values = param
            .val()
            .try_into_vec_as::<f32>()
            .expect("readable tensor");
        self.0.push(values);
    }
}

fn tensors<M: Module>(module: &M) -> Vec<Vec<f32>> {
    let mut collect = Collect(Vec::new());
    module.visit(&mut collect);
    collect.0
}

fn max_difference(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len(), "different tensor counts");
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| {
            assert_eq!(x.len(), y.len(), "different tensor sizes");
            x.iter().zip(y).map(|(p, q)| (p - q).abs())
        })
        .fold(0.0, f32::max)
}

fn column(values: &[f32]) -> Tensor<2> {
    Tensor::from_data(
        TensorData::new(values.to_vec(), [values.len(), 1]),
        &device(),
    )
}

#[test]
fn hinge_losses_match_a_hand_computation() {
    let _serial = serial();
    let real = [2.0f32, 0.5, -1.0, 1.0];
    let fake = [-2.0f32, 0.0, 1.5, -0.25];
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let want_real = mean(&real.map(|x| (1.0 - f64::from(x)).max(0.0)));
    let want_fake = mean(&fake.map(|x| (1.0 + f64::from(x)).max(0.0)));
    let want_g = -mean(&fake.map(f64::from));

    let (got_real, got_fake) = hinge_d_loss(column(&real), column(&fake));
    let got_g = hinge_g_loss(column(&fake));
    let value = |t: Tensor<1>| f64::from(t.into_scalar::<f32>());
    assert!((value(got_real) - want_real).abs() < 1e-6);
    assert!((value(got_fake) - want_fake).abs() < 1e-6);
    assert!((value(got_g) - want_g).abs() < 1e-6);
    // The hand values: (0 + 0.5 + 2 + 0) / 4, (0 + 1 + 2.5 + 0.75) / 4, −(−0.75) / 4.
    assert!((want_real - 0.625).abs() < 1e-12);
    assert!((want_fake - 1.0625).abs() < 1e-12);
    assert!((want_g - 0.1875).abs() < 1e-12);
}

#[test]
fn knn_finds_cosine_neighbours_with_each_instance_first() {
    let _serial = serial();
    // Five instances in the plane of the first two axes at these angles (degrees), with
    // different norms: cosine neighbours depend on the angles only.
    let angles = [0.0f32, 10.0, 25.0, 90.0, 100.0];
    let norms = [1.0f32, 3.0, 0.5, 2.0, 7.0];
    let mut features = vec![0.0f32; angles.len() * INSTANCE_DIM];
    for (i, (a, r)) in angles.iter().zip(norms).enumerate() {
        let a = a.to_radians();
        features[i * INSTANCE_DIM] = r * a.cos();
        features[i * INSTANCE_DIM + 1] = r * a.sin();
    }
    let index = knn_cosine(&features, INSTANCE_DIM, 3, &device()).expect("valid features");
    assert_eq!(index.k(), 3);
    assert_eq!(index.len(), 5);
    let want: [[u32; 3]; 5] = [[0, 1, 2], [1, 0, 2], [2, 1, 0], [3, 4, 2], [4, 3, 2]];
    for (i, w) in want.iter().enumerate() {
        assert_eq!(index.neighbours(i), w, "neighbours of instance {i}");
    }
    // k larger than the data set is capped, and every instance still comes first.
    let all = knn_cosine(&features, INSTANCE_DIM, 50, &device()).expect("valid features");
    assert_eq!(all.k(), 5);
    for i in 0..5 {
        assert_eq!(all.neighbours(i)[0] as usize, i);
    }
    assert!(matches!(
        knn_cosine(&features, INSTANCE_DIM, 0, &device()),
        Err(TrainError::Config { .. })
    ));
}

/// D's hinge loss on a fixed batch: real images with their features against `g`'s images of
/// fixed noise, both networks in inference mode.
fn d_loss_on(d: &Discriminator, g: &Generator, data: &GanData, dim_z: usize) -> f64 {
    let n = data.len();
    let dev = device();
    let mut pixels = Vec::new();
    let mut features = Vec::new();
    for i in 0..n {
        pixels.extend(data.image(i).iter().map(|&v| f32::from(v) / 127.5 - 1.0));
        features.extend_from_slice(data.feature(i));
    }
    let real = Tensor::<4>::from_data(TensorData::new(pixels, [n, 3, RES, RES]), &dev);
    let feat = Tensor::<2>::from_data(TensorData::new(features, [n, INSTANCE_DIM]), &dev);
    let z: Vec<f32> = common::pseudo_random(99, n * dim_z)
        .into_iter()
        .map(|v| v as f32)
        .collect();
    let z = Tensor::<2>::from_data(TensorData::new(z, [n, dim_z]), &dev);
    let fake = g.forward(z, feat.clone());
    let (r, f) = hinge_d_loss(d.forward(real, feat.clone()), d.forward(fake, feat));
    f64::from((r + f).into_scalar::<f32>())
}

#[test]
fn discriminator_learns_to_separate_real_from_generated() {
    let _serial = serial();
    let out = tempfile::tempdir().expect("temp dir");
    let data = synthetic_data(6, 1);
    // G's learning rate is negligible, so D faces a fixed generator.
    let mut config = tiny_config().with_steps(12);
    config.g_optimizer.lr = 1e-12;
    config.d_optimizer.lr = 1e-3;
    let dim_z = config.generator.dim_z();
    let (_, d_init) = init_networks(&config, &device());
    let summary = quiet(config, data.clone(), out.path())
        .run(false, GanHooks::default())
        .expect("training runs");
    assert_eq!(summary.outcome, Outcome::MaxSteps);
    assert_eq!(summary.steps, 12);
    let g = &summary.generator;
    let before = d_loss_on(&d_init.valid(), g, &data, dim_z);
    let after = d_loss_on(&summary.discriminator, g, &data, dim_z);
    assert!(
        after < 0.8 * before,
        "D's hinge loss on a fixed batch should fall: {before} → {after}"
    );
    let records = GanMetricsRecord::read_all(out.path().join(METRICS_FILE)).expect("metrics");
    assert_eq!(records.len(), 12);
    assert!(records.iter().all(|r| r.samples_per_sec > 0.0));
}

#[test]
fn resume_gives_the_weights_of_an_uninterrupted_run() {
    let _serial = serial();
    let data = synthetic_data(5, 2);
    // With every DiffAugment transformation, whose draws must repeat too.
    let config = tiny_config().with_diff_augment(Some(vec![
        Augmentation::Color,
        Augmentation::Translation,
        Augmentation::Cutout,
    ]));

    let straight_dir = tempfile::tempdir().expect("temp dir");
    let straight = quiet(
        config.clone().with_steps(4),
        data.clone(),
        straight_dir.path(),
    )
    .run(false, GanHooks::default())
    .expect("straight run");

    let split_dir = tempfile::tempdir().expect("temp dir");
    let first = quiet(config.clone().with_steps(2), data.clone(), split_dir.path())
        .run(false, GanHooks::default())
        .expect("first half");
    assert_eq!(first.steps, 2);
    let resumed = quiet(config.with_steps(4), data, split_dir.path())
        .run(true, GanHooks::default())
        .expect("second half");
    assert_eq!(resumed.steps, 4);
    assert!(resumed.resumed_from.is_some());

    for (name, a, b) in [
        (
            "G",
            tensors(&straight.generator),
            tensors(&resumed.generator),
        ),
        (
            "D",
            tensors(&straight.discriminator),
            tensors(&resumed.discriminator),
        ),
        (
            "G_ema",
            tensors(&straight.generator_ema),
            tensors(&resumed.generator_ema),
        ),
    ] {
        let diff = max_difference(&a, &b);
        assert!(diff <= RESUME_TOLERANCE, "{name} differs by {diff}");
    }
    // And the run did change the weights.
    assert!(
        max_difference(&tensors(&first.generator), &tensors(&resumed.generator)) > 0.0,
        "two more steps should move G"
    );
}

#[test]
fn diff_augment_transforms_what_d_scores_in_both_steps() {
    let _serial = serial();
    let data = synthetic_data(5, 4);
    let config = tiny_config()
        .with_steps(1)
        .with_diff_augment(Some(vec![Augmentation::Translation, Augmentation::Cutout]));
    // The same run with draws replaced by the identity (no shift, the square off the image),
    // in the D step only or in both steps.
    let identity = AugmentDraw {
        cutout_centre: (-100, -100),
        ..AugmentDraw::default()
    };
    let neutralize = move |g_step_too: bool| -> GanHooks {
        GanHooks {
            on_batch: Some(Box::new(move |_, batch| {
                assert!(!batch.g_augment.is_empty(), "a policy draws for the G step");
                for d_step in &mut batch.d_steps {
                    assert_eq!(d_step.augment.len(), 2 * d_step.real_instances.len());
                    d_step.augment.fill(identity);
                }
                if g_step_too {
                    batch.g_augment.fill(identity);
                }
            })),
            ..GanHooks::default()
        }
    };
    let run = |hooks: GanHooks| {
        let dir = tempfile::tempdir().expect("temp dir");
        quiet(config.clone(), data.clone(), dir.path())
            .run(false, hooks)
            .expect("one step")
    };
    let augmented = run(GanHooks::default());
    let plain_d = run(neutralize(false));
    let plain = run(neutralize(true));
    let d = |s: &sound2scene_train::gan::GanSummary| tensors(&s.discriminator);
    let g = |s: &sound2scene_train::gan::GanSummary| tensors(&s.generator);
    assert!(
        max_difference(&d(&augmented), &d(&plain)) > 0.0,
        "D's step should depend on the augmentation"
    );
    assert_eq!(
        max_difference(&d(&plain_d), &d(&plain)),
        0.0,
        "the G step's draws do not touch D's step"
    );
    assert!(
        max_difference(&g(&plain_d), &g(&plain)) > 0.0,
        "G's step should depend on the augmentation"
    );
}

/// [`tiny_config`] written to `dir/gan.json`: the file's path, the config and its JSON.
fn saved_tiny_config(dir: &Path) -> (std::path::PathBuf, GanConfig, serde_json::Value) {
    let path = dir.join("gan.json");
    let config = tiny_config();
    config.save(&path).expect("config written");
    let json = serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("JSON");
    (path, config, json)
}

#[test]
fn diff_augment_is_optional_in_config_files_and_part_of_the_fingerprint() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("temp dir");
    let (path, plain, mut json) = saved_tiny_config(dir.path());
    json.as_object_mut()
        .expect("an object")
        .remove("diff_augment");
    std::fs::write(&path, json.to_string()).expect("write");
    let old = GanConfig::load(&path).expect("a config from before the setting loads");
    assert!(old.augmentation().is_empty());
    assert_eq!(old.fingerprint(), plain.fingerprint());

    json["diff_augment"] = serde_json::json!(["translation", "cutout"]);
    std::fs::write(&path, json.to_string()).expect("write");
    let augmented = GanConfig::load(&path).expect("a policy loads");
    assert_eq!(
        augmented.augmentation(),
        [Augmentation::Translation, Augmentation::Cutout]
    );
    assert_ne!(augmented.fingerprint(), plain.fingerprint());

    json["diff_augment"] = serde_json::json!(["rotation"]);
    std::fs::write(&path, json.to_string()).expect("write");
    assert!(
        GanConfig::load(&path).is_err(),
        "an unknown transformation is refused"
    );
}

#[test]
fn nan_loss_stops_and_keeps_the_previous_checkpoint() {
    let _serial = serial();
    let out = tempfile::tempdir().expect("temp dir");
    let config = tiny_config().with_steps(10).with_checkpoint_every(2);
    let hooks = GanHooks {
        on_batch: Some(Box::new(|step, batch| {
            if step == 3 {
                batch.d_steps[0].real_pixels[0] = f32::NAN;
            }
        })),
        ..GanHooks::default()
    };
    let result = quiet(config, synthetic_data(4, 3), out.path()).run(false, hooks);
    match result {
        Err(TrainError::NonFiniteLoss { step }) => assert_eq!(step, 3),
        other => panic!("expected a non-finite loss at step 3, got {other:?}"),
    }
    let (step, dir) = latest_complete(out.path())
        .expect("listable")
        .expect("a checkpoint");
    assert_eq!(step, 2, "the last good checkpoint is kept");
    for file in [
        GENERATOR_FILE,
        GENERATOR_EMA_FILE,
        DISCRIMINATOR_FILE,
        G_OPTIMIZER_FILE,
        D_OPTIMIZER_FILE,
        STATE_FILE,
        COMPLETE_MARKER,
    ] {
        assert!(dir.join(file).is_file(), "{file} missing");
    }
}

#[test]
fn stop_saves_a_checkpoint_whose_ema_generator_opens() {
    let _serial = serial();
    // Features narrower than IC-GAN's 2048, as a small image encoder gives.
    const DIM: usize = 64;
    let out = tempfile::tempdir().expect("temp dir");
    let config = tiny_config()
        .with_steps(50)
        .with_sample_every(2)
        .with_instance_dim(DIM);
    let hooks = GanHooks {
        on_step: Some(Box::new(|report| {
            if report.step == 3 {
                Control::Stop
            } else {
                Control::Continue
            }
        })),
        ..GanHooks::default()
    };
    let summary = quiet(config.clone(), synthetic_data_of(4, 4, DIM), out.path())
        .run(false, hooks)
        .expect("training runs");
    assert_eq!(summary.outcome, Outcome::Stopped);
    assert_eq!(summary.steps, 3);
    let dir = summary.last_checkpoint.expect("a checkpoint on stop");
    assert!(dir.ends_with("ckpt-000003"));
    assert!(out.path().join(CONFIG_FILE).is_file());
    assert!(out.path().join("samples/step-000002.png").is_file());

    let (loaded, loaded_config) = open_generator(
        dir.join(GENERATOR_EMA_FILE),
        &LoadOptions::default(),
        &device(),
    )
    .expect("G_ema opens with open_generator");
    assert_eq!(loaded_config.resolution, RES);
    assert_eq!(loaded_config.g_ch, 4);
    assert_eq!(loaded_config.instance_size(), DIM);
    let diff = max_difference(&tensors(&loaded), &tensors(&summary.generator_ema));
    assert_eq!(diff, 0.0, "the file holds G_ema exactly");
    let n = 2;
    let dim_z = config.generator.dim_z();
    let z = Tensor::<2>::from_data(
        TensorData::new(vec![0.1f32; n * dim_z], [n, dim_z]),
        &device(),
    );
    let feat = |dim: usize| {
        Tensor::<2>::from_data(TensorData::new(vec![0.02f32; n * dim], [n, dim]), &device())
    };
    let image = loaded.forward(z.clone(), feat(DIM));
    assert_eq!(image.dims(), [n, 3, RES, RES]);
    assert!(
        loaded.try_forward(z, feat(INSTANCE_DIM)).is_err(),
        "features of the wrong width are an error"
    );
}

#[test]
fn features_narrower_than_the_networks_expect_are_refused() {
    let _serial = serial();
    let out = tempfile::tempdir().expect("temp dir");
    let session = GanSession::new(
        tiny_config(),
        synthetic_data_of(4, 5, 64),
        out.path(),
        device(),
    );
    let Err(error) = session else {
        panic!("2048-wide networks cannot train on 64-wide features");
    };
    let message = error.to_string();
    assert!(
        message.contains("instance size") && message.contains("64"),
        "the error names the sizes: {message}"
    );
}

/// f_V small enough for a test: a one-block-per-stage ResNet of width 4 (32-wide features) on
/// 32×32 inputs, randomly initialized and the same in every run (other tests draw from the
/// process's one generator meanwhile, so it is seeded under the crate's initialization lock).
fn tiny_image_encoder() -> ImageEncoder {
    sound2scene_train::init::seeded(&device(), 5, |device| {
        ImageEncoderConfig::new()
            .with_resnet(ResNetConfig::new(BlockKind::Basic, [1, 1, 1, 1]).with_base_width(4))
            .with_input_side(Some(RES))
            .init(device)
    })
}

#[test]
fn feature_consistency_is_zero_on_own_features_and_its_gradient_reaches_the_pictures() {
    let _serial = serial();
    let f_v = tiny_image_encoder();
    let ad = device().autodiff();
    let n = 3;
    let values: Vec<f32> = common::pseudo_random(8, n * 3 * RES * RES)
        .into_iter()
        .map(|v| v.clamp(-1.0, 1.0) as f32)
        .collect();
    let plain =
        Tensor::<4>::from_data(TensorData::new(values.clone(), [n, 3, RES, RES]), &device());
    // f_V in inference mode, as the feature cache runs it.
    let own = f_v.valid().forward_generated(plain); // [n, 32]
    let own = Tensor::<2>::from_data(
        (own.clone() / own.square().sum_dim(1).sqrt()).into_data(),
        &ad,
    );
    let images = Tensor::<4>::from_data(TensorData::new(values, [n, 3, RES, RES]), &ad);
    let f_v_ad = f_v.train().freeze();
    let at_own = feature_consistency(&f_v_ad, images.clone(), own.clone())
        .expect("term")
        .into_scalar::<f32>();
    assert!(at_own.abs() < 1e-5, "own features give {at_own}");

    // Each picture against another's feature: a positive distance whose gradient reaches it.
    let images = images.require_grad();
    let other = Tensor::cat(vec![own.clone().slice(1..n), own.slice(0..1)], 0);
    let term = feature_consistency(&f_v_ad, images.clone(), other).expect("term");
    let value = term.clone().into_scalar::<f32>();
    assert!(
        value > 1e-3 && value <= 2.0,
        "others' features give {value}"
    );
    let grads = term.backward();
    let grad = images
        .grad(&grads)
        .expect("a gradient for the pictures")
        .try_into_vec_as::<f32>()
        .expect("readable");
    assert!(grad.iter().any(|g| *g != 0.0), "the gradient is zero");

    let wide = synthetic_data_of(n, 3, 64);
    let features = Tensor::<2>::from_data(TensorData::new(wide.feature(0).repeat(n), [n, 64]), &ad);
    let Err(error) = feature_consistency(&f_v_ad, images, features) else {
        panic!("32-wide f_V against 64-wide features must be refused");
    };
    assert!(error.to_string().contains("64-wide"), "{error}");
}

#[test]
fn feature_loss_is_optional_in_config_files_and_part_of_the_fingerprint() {
    let _serial = serial();
    let plain = tiny_config();
    assert_eq!(plain.feature_weight(), 0.0);
    let zero = tiny_config().with_feature_loss(Some(0.0));
    assert_eq!(
        zero.fingerprint(),
        plain.fingerprint(),
        "0 is IC-GAN's loss"
    );
    let weighted = tiny_config().with_feature_loss(Some(1.0));
    assert_ne!(weighted.fingerprint(), plain.fingerprint());
    let data = synthetic_data_of(4, 5, 32);
    for bad in [-1.0, f64::NAN, f64::INFINITY] {
        let config = tiny_config()
            .with_instance_dim(32)
            .with_feature_loss(Some(bad));
        assert!(
            config.check(&data).is_err(),
            "feature_loss {bad} is refused"
        );
    }
}

#[test]
fn feature_loss_without_an_image_encoder_is_refused() {
    let _serial = serial();
    let out = tempfile::tempdir().expect("temp dir");
    let config = tiny_config()
        .with_instance_dim(32)
        .with_feature_loss(Some(1.0))
        .with_steps(1);
    let result =
        quiet(config, synthetic_data_of(4, 5, 32), out.path()).run(false, GanHooks::default());
    let Err(error) = result else {
        panic!("a weighted feature loss needs f_V");
    };
    assert!(
        error.to_string().contains("with_image_encoder"),
        "the error says what to do: {error}"
    );
}

/// `n` synthetic images with the features `f_v` gives them (as the feature cache computes
/// them): the data, and the features as a `[n, width]` tensor on `device`.
fn encoded_data(f_v: &ImageEncoder, n: usize, device: &Device) -> (GanData, Tensor<2>) {
    let images = synthetic_images(n);
    let input = f_v
        .preprocess(&images, &Device::flex())
        .expect("preprocessed");
    let features = f_v.valid().forward(input); // [n, width]
    let features = features.clone() / features.square().sum_dim(1).sqrt();
    let width = features.dims()[1];
    let values = features.try_into_vec_as::<f32>().expect("readable");
    let names = (0..n).map(|i| format!("img{i:02}")).collect();
    let data = GanData::in_memory(names, values.clone(), &images, RES).expect("valid data");
    let tensor = Tensor::<2>::from_data(TensorData::new(values, [n, width]), device);
    (data, tensor)
}

#[test]
fn a_step_down_the_feature_loss_gradient_lowers_it() {
    let _serial = serial();
    let f_v = tiny_image_encoder();
    let ad = device().autodiff();
    let (_, features) = encoded_data(&f_v, 4, &ad);
    let config = tiny_config().with_instance_dim(32);
    let (g, _) = init_networks(&config, &device());
    let g = g.train();
    let f_v = f_v.train().freeze();
    let dim_z = config.generator.dim_z();
    let z: Vec<f32> = common::pseudo_random(6, 4 * dim_z)
        .into_iter()
        .map(|v| v as f32)
        .collect();
    let z = Tensor::<2>::from_data(TensorData::new(z, [4, dim_z]), &ad);
    let term = |g: &Generator| {
        let images = g.forward(z.clone(), features.clone());
        feature_consistency(&f_v, images, features.clone()).expect("term")
    };
    let before = term(&g);
    let before_value = before.clone().into_scalar::<f32>();
    let grads = GradientsParams::from_grads(before.backward(), &g);
    let mut adam = AdamConfig::new().init();
    let g = adam.step(1e-3, g, grads);
    let after_value = term(&g).into_scalar::<f32>();
    assert!(
        after_value < before_value,
        "one step down its gradient moved the term from {before_value} to {after_value}"
    );
}

#[test]
fn the_feature_loss_reaches_g_and_leaves_d_alone() {
    let _serial = serial();
    let f_v = tiny_image_encoder();
    let (data, _) = encoded_data(&f_v, 6, &device());
    let config = tiny_config().with_instance_dim(32).with_steps(1);
    let plain_dir = tempfile::tempdir().expect("temp dir");
    let plain = quiet(config.clone(), data.clone(), plain_dir.path())
        .run(false, GanHooks::default())
        .expect("run without the term");
    let weighted_dir = tempfile::tempdir().expect("temp dir");
    let weighted = quiet(
        config.with_feature_loss(Some(10.0)),
        data,
        weighted_dir.path(),
    )
    .with_image_encoder(f_v)
    .run(false, GanHooks::default())
    .expect("run with the term");
    // Step 1's D step comes before any G update, so D is the same; G's step differs.
    let d_diff = max_difference(
        &tensors(&plain.discriminator),
        &tensors(&weighted.discriminator),
    );
    assert!(d_diff <= RESUME_TOLERANCE, "D differs by {d_diff}");
    let g_diff = max_difference(&tensors(&plain.generator), &tensors(&weighted.generator));
    assert!(g_diff > 1e-6, "the term did not change G's step ({g_diff})");

    let records =
        GanMetricsRecord::read_all(weighted_dir.path().join(METRICS_FILE)).expect("metrics");
    let term = records[0].feature_loss.expect("the term is logged");
    assert!(term.is_finite() && (0.0..=2.0).contains(&term), "{term}");
    let text = std::fs::read_to_string(plain_dir.path().join(METRICS_FILE)).expect("metrics");
    assert!(
        !text.contains("feature_loss"),
        "a run without the term logs none: {text}"
    );
}

#[test]
fn conditioning_options_are_optional_and_part_of_the_fingerprint() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("temp dir");
    let (path, plain, mut json) = saved_tiny_config(dir.path());
    let generator = json["generator"]
        .as_object_mut()
        .expect("a generator object");
    generator.remove("feature_scale");
    generator.remove("linear_cond");
    json["discriminator"]
        .as_object_mut()
        .expect("a discriminator object")
        .remove("feature_scale");
    std::fs::write(&path, json.to_string()).expect("write");
    let old = GanConfig::load(&path).expect("a config from before the options loads");
    assert_eq!(old.generator.feature_factor(), 1.0);
    assert!(!old.generator.conditions_linear());
    assert_eq!(old.discriminator.feature_factor(), 1.0);
    assert_eq!(old.fingerprint(), plain.fingerprint());

    let mut scaled = tiny_config();
    scaled.generator.feature_scale = Some(8.0);
    assert_ne!(scaled.fingerprint(), plain.fingerprint());
    let mut linear = tiny_config();
    linear.generator.linear_cond = Some(true);
    assert_ne!(linear.fingerprint(), plain.fingerprint());
    assert_ne!(linear.fingerprint(), scaled.fingerprint());
    let mut scaled_d = tiny_config();
    scaled_d.discriminator.feature_scale = Some(8.0);
    assert_ne!(scaled_d.fingerprint(), plain.fingerprint());
    assert_ne!(scaled_d.fingerprint(), scaled.fingerprint());
}
