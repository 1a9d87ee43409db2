//! Drawing in batches gives the pictures of one large draw: the batch size changes memory and
//! speed, never the noise a picture gets (crates/sound2scene-infer/src/draw.rs).
//!
//! The CPU kernels sum in an order that depends on the batch size, so G's outputs for the same
//! noise differ by a few 1e-6 between batch sizes (measured: at most 4e-6 on the bundled
//! model), which can move one 8-bit level in a rare pixel; the tests allow exactly that.

use burn::tensor::{Device, Tensor};
use image::RgbImage;
use sound2scene_infer::bundle::{default_model_dir, load_pipeline};
use sound2scene_infer::visual::tensor_to_images;
use sound2scene_infer::{DrawSettings, Noise, SoundToScene, generate_best_of, sample_noise};

/// The bundled model, or `None` (a skip) in a checkout without it.
fn bundled() -> Option<SoundToScene> {
    if !default_model_dir().join("generator.bpk").is_file() {
        eprintln!("skip: the bundled model is not in this checkout");
        return None;
    }
    Some(load_pipeline(default_model_dir(), &Device::flex()).expect("the bundled model loads"))
}

/// Two feature rows of the bundled model's width.
fn features(pipeline: &SoundToScene) -> Tensor<2> {
    let wave = sound2scene_audio::load_audio(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/sounds/bell.wav"),
    )
    .expect("the bundled sound decodes");
    let quiet = wave.gain_db(-12.0).expect("gain");
    pipeline.audio_features(&[wave, quiet]).expect("f_A runs")
}

/// Largest difference of G's raw output between two batch sizes: a few 1e-6 measured.
const RAW_TOL: f32 = 2e-5;

/// The pictures and G's raw output of 5 pictures for each of two rows, best of `rerank`.
fn draw_raw(
    pipeline: &SoundToScene,
    rerank: usize,
    batch_size: usize,
) -> (Vec<RgbImage>, Vec<f32>) {
    let settings = DrawSettings {
        count: 5,
        rerank,
        batch_size: Some(batch_size),
        keep_raw: true,
    };
    let noise = Noise::Seeded {
        seed: 7,
        z_var: 1.0,
    };
    let mut calls = 0;
    let drawn = pipeline
        .draw(features(pipeline), &noise, &settings, |_, _| calls += 1)
        .expect("draws");
    assert_eq!(
        calls,
        2 * (5 * rerank).div_ceil(batch_size),
        "one call per batch"
    );
    assert_eq!(drawn.images.len(), 10, "2 rows x 5 pictures");
    (drawn.images, drawn.raw.expect("raw output kept"))
}

fn draw(pipeline: &SoundToScene, rerank: usize, batch_size: usize) -> Vec<RgbImage> {
    draw_raw(pipeline, rerank, batch_size).0
}

/// Asserts that two draws are the same pictures: raw outputs within [`RAW_TOL`], pixels within
/// one 8-bit level.
fn assert_same(a: &(Vec<RgbImage>, Vec<f32>), b: &(Vec<RgbImage>, Vec<f32>), what: &str) {
    assert_eq!(a.1.len(), b.1.len(), "{what}");
    let raw =
        a.1.iter()
            .zip(&b.1)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max);
    assert!(raw <= RAW_TOL, "{what}: raw outputs differ by {raw}");
    for (x, y) in a.0.iter().zip(&b.0) {
        assert_eq!(x.dimensions(), y.dimensions(), "{what}");
        let level = x
            .as_raw()
            .iter()
            .zip(y.as_raw())
            .map(|(p, q)| p.abs_diff(*q))
            .max()
            .unwrap_or(0);
        assert!(level <= 1, "{what}: pixels differ by {level} levels");
    }
}

#[test]
fn batch_sizes_one_and_many_give_the_same_pictures() {
    let Some(pipeline) = bundled() else { return };
    let one = draw_raw(&pipeline, 1, 1);
    assert_same(&one, &draw_raw(&pipeline, 1, 3), "batches of 3");
    assert_same(&one, &draw_raw(&pipeline, 1, 64), "one batch per row");
    let reranked = draw_raw(&pipeline, 3, 1);
    assert_same(
        &reranked,
        &draw_raw(&pipeline, 3, 2),
        "candidates split across batches",
    );
    assert_same(&reranked, &draw_raw(&pipeline, 3, 64), "one batch per row");
}

#[test]
fn a_batched_draw_equals_one_large_draw_with_the_same_noise() {
    let Some(pipeline) = bundled() else { return };
    let (count, k) = (5, 3);
    let features = features(&pipeline);
    let device = pipeline.device().clone();
    // The layout `generate` always had: every row sees the seed's count · k noise rows.
    let noise = sample_noise(count * k, pipeline.dim_z(), 7, 1.0, &device).expect("noise");
    let encoder = pipeline.image_encoder().expect("the bundle has f_V");
    let mut expected = Vec::new();
    for row in 0..2 {
        let feature = features.clone().narrow(0, row, 1).repeat_dim(0, count);
        let pictures =
            generate_best_of(pipeline.generator_ref(), encoder, feature, noise.clone(), k)
                .expect("best of k");
        expected.extend(tensor_to_images(pictures));
    }
    let drawn = draw(&pipeline, k, 4);
    assert_same(
        &(drawn, Vec::new()),
        &(expected, Vec::new()),
        "batches of 4 against one forward pass per row",
    );
}

#[test]
fn out_of_range_requests_are_refused_with_the_allowed_range() {
    let Some(pipeline) = bundled() else { return };
    let noise = Noise::Seeded {
        seed: 0,
        z_var: 1.0,
    };
    let refused = |settings: DrawSettings| {
        pipeline
            .draw(features(&pipeline), &noise, &settings, |_, _| {})
            .expect_err("refused")
            .to_string()
    };
    let message = refused(DrawSettings {
        count: 0,
        ..DrawSettings::default()
    });
    assert_eq!(message, "count must be at least 1 and at most 10000, got 0");
    let message = refused(DrawSettings {
        rerank: 1001,
        ..DrawSettings::default()
    });
    assert!(message.contains("at most 1000"), "{message}");
}
