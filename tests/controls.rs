//! The paper's controls checked numerically on the fixture checkpoints: each control must have
//! the effect it claims, not only run.

mod common;

use burn::tensor::{Device, Tensor, TensorData};
use common::{fixture_pipeline, max_abs_diff, sample, values};
use sound2scene::audio::{Waveform, load_audio};
use sound2scene::infer::bundle::{GENERATOR_FILE, IMAGE_ENCODER_FILE, default_model_dir};
use sound2scene::infer::visual::tensor_to_images;
use sound2scene::infer::{generate_best_of, l2_normalize, sample_noise};
use sound2scene::models::LoadOptions;
use sound2scene::models::biggan::Generator;
use sound2scene::models::checkpoint::{open_generator, open_image_encoder};
use sound2scene::models::image_encoder::ImageEncoder;
use sound2scene::{Interpolation, InversionConfig, compose, interpolate, lerp, slerp};

/// Images of G are in [-1, 1]; two runs of the same features and noise agree to float rounding.
const SAME_IMAGE_TOL: f32 = 1e-5;

fn random_features(n: usize, seed: u64) -> Tensor<2> {
    sample_noise(n, 2048, seed, 1.0, &Device::default()).expect("valid variance")
}

#[test]
fn interpolation_endpoints_reproduce_the_endpoint_images() {
    let Some(pipeline) = fixture_pipeline() else {
        return;
    };
    let (a, b) = (random_features(1, 1), random_features(1, 2));
    for mode in [Interpolation::Linear, Interpolation::Spherical] {
        let path = interpolate(a.clone(), b.clone(), 5, mode).expect("5 steps");
        assert_eq!(path.dims(), [5, 2048]);
        let z = pipeline.noise(1, 7, 1.0).expect("noise").repeat_dim(0, 5);
        let walk = values(pipeline.generate_tensor(path, z.clone()).expect("G runs"));
        let ends = values(
            pipeline
                .generate_tensor(
                    Tensor::cat(vec![a.clone(), b.clone()], 0),
                    z.narrow(0, 0, 2),
                )
                .expect("G runs"),
        );
        let per_image = walk.len() / 5;
        let first = &walk[..per_image];
        let last = &walk[4 * per_image..];
        assert!(
            max_abs_diff(first, &ends[..per_image]) <= SAME_IMAGE_TOL,
            "{mode:?} t=0"
        );
        assert!(
            max_abs_diff(last, &ends[per_image..]) <= SAME_IMAGE_TOL,
            "{mode:?} t=1"
        );
        let middle = &walk[2 * per_image..3 * per_image];
        assert!(
            max_abs_diff(middle, first) > 1e-3,
            "{mode:?}: the walk must move"
        );
    }
}

#[test]
fn slerp_keeps_unit_norm_and_lerp_is_linear() {
    let a = l2_normalize(random_features(3, 3));
    let b = l2_normalize(random_features(3, 4));
    let mid = values(slerp(a.clone(), b.clone(), 0.5).powi_scalar(2).sum_dim(1));
    for norm in mid {
        assert!(
            (norm - 1.0).abs() < 1e-4,
            "slerp of unit vectors stays on the sphere: {norm}"
        );
    }
    let quarter = values(lerp(a.clone(), b.clone(), 0.25));
    let by_hand = values(a.mul_scalar(0.75) + b.mul_scalar(0.25));
    assert!(max_abs_diff(&quarter, &by_hand) < 1e-6);
    let too_few = interpolate(
        random_features(1, 5),
        random_features(1, 6),
        1,
        Interpolation::Linear,
    );
    assert!(too_few.is_err());
}

#[test]
fn composition_at_alpha_zero_and_one_equals_image_and_audio_generation() {
    let Some(pipeline) = fixture_pipeline() else {
        return;
    };
    let Some(cow) = sample("cow.wav") else { return };
    let photo = image::RgbImage::from_fn(64, 48, |x, y| {
        image::Rgb([(x * 4) as u8, (y * 5) as u8, 90])
    });
    let image = pipeline.image_features(&[photo]).expect("image encoder");
    let audio = pipeline.audio_feature_of_file(&cow).expect("audio encoder");
    let z = pipeline.noise(1, 3, 1.0).expect("noise");
    let draw = |f: Tensor<2>| values(pipeline.generate_tensor(f, z.clone()).expect("G runs"));
    let from_image = draw(image.clone());
    let from_audio = draw(audio.clone());
    let at0 = draw(compose(image.clone(), audio.clone(), 0.0).expect("finite alpha"));
    let at1 = draw(compose(image.clone(), audio.clone(), 1.0).expect("finite alpha"));
    let half = draw(compose(image.clone(), audio.clone(), 0.5).expect("finite alpha"));
    assert!(max_abs_diff(&at0, &from_image) <= SAME_IMAGE_TOL);
    assert!(max_abs_diff(&at1, &from_audio) <= SAME_IMAGE_TOL);
    assert!(max_abs_diff(&half, &from_image) > 1e-3 && max_abs_diff(&half, &from_audio) > 1e-3);
    assert!(compose(image, audio, f32::NAN).is_err());
}

#[test]
fn inversion_lowers_the_error_on_an_image_g_generated() {
    let Some(pipeline) = fixture_pipeline() else {
        return;
    };
    // Ground truth known: the target is G's own drawing from a feature and noise.
    let truth_feature = l2_normalize(random_features(1, 11));
    let truth_z = pipeline.noise(1, 12, 1.0).expect("noise");
    let target = pipeline
        .generate_tensor(truth_feature.clone(), truth_z)
        .expect("G runs");
    let target = tensor_to_images(target).remove(0);
    let config = InversionConfig {
        steps: 15,
        learning_rate: 0.05,
        seed: 99,
        ..InversionConfig::default()
    };
    let mut calls = 0;
    let inversion = pipeline
        .invert(&target, truth_feature, &config, |_, _| calls += 1)
        .expect("inversion runs");
    assert_eq!(calls, 15);
    assert_eq!(inversion.errors.len(), 16);
    let (first, last) = (inversion.errors[0], inversion.errors[15]);
    // Adam on a random-weight G falls steadily but slowly (0.274 -> 0.223 in 15 steps on the
    // fixture G); a broken gradient path leaves the error flat or makes it rise.
    assert!(
        last < 0.9 * first,
        "pixel error must fall: {first} -> {last}"
    );
    assert!(
        inversion.errors.windows(2).filter(|w| w[1] < w[0]).count() >= 10,
        "most steps must lower the error: {:?}",
        inversion.errors
    );
}

#[test]
fn gain_and_mix_change_the_audio_feature_deterministically() {
    let Some(pipeline) = fixture_pipeline() else {
        return;
    };
    let (Some(cow), Some(ocean)) = (sample("cow.wav"), sample("ocean.wav")) else {
        return;
    };
    let cow = load_audio(cow).expect("decodes");
    let ocean = load_audio(ocean).expect("decodes");
    let feature = |w: &Waveform| {
        values(
            pipeline
                .audio_features(std::slice::from_ref(w))
                .expect("encodes"),
        )
    };
    let base = feature(&cow);
    let louder = feature(&cow.gain_db(6.0).expect("finite gain"));
    let louder_again = feature(&cow.gain_db(6.0).expect("finite gain"));
    assert_eq!(louder, louder_again, "the same gain gives the same feature");
    assert!(max_abs_diff(&base, &louder) > 1e-4, "a gain changes z^A");
    let mix = Waveform::mix(&[(&cow, 0.5), (&ocean, 0.5)]).expect("mixes");
    let mixed = feature(&mix);
    let mixed_again = feature(&Waveform::mix(&[(&cow, 0.5), (&ocean, 0.5)]).expect("mixes"));
    assert_eq!(mixed, mixed_again);
    assert!(max_abs_diff(&mixed, &base) > 1e-4 && max_abs_diff(&mixed, &feature(&ocean)) > 1e-4);
}

#[test]
fn generation_is_deterministic_for_a_seed() {
    let Some(pipeline) = fixture_pipeline() else {
        return;
    };
    let tone: Vec<f32> = (0..16_000).map(|i| (i as f32 * 0.07).sin() * 0.3).collect();
    let wave = Waveform::mono(tone, 16_000);
    let a = pipeline.generate(&wave, 2, 5).expect("generates");
    let b = pipeline.generate(&wave, 2, 5).expect("generates");
    let c = pipeline.generate(&wave, 2, 6).expect("generates");
    assert_eq!(a.len(), 2);
    assert_eq!(a[0].dimensions(), (128, 128));
    assert_eq!(a, b, "same seed, same pictures");
    assert_ne!(a, c, "another seed, other pictures");
    let z = sample_noise(2, 4, 5, 0.5, &Device::default()).expect("noise");
    let data = TensorData::new(values(z), [2, 4]);
    assert!(
        data.as_slice::<f32>()
            .is_ok_and(|s| s.iter().all(|v| v.is_finite()))
    );
    assert!(sample_noise(1, 4, 0, f32::NAN, &Device::default()).is_err());
}

/// The bundled model's G and f_V (f16 files in the repository).
fn bundled_generator_and_encoder() -> (Generator, ImageEncoder) {
    let dir = default_model_dir();
    let options = LoadOptions::default();
    let device = Device::default();
    let (generator, _) =
        open_generator(dir.join(GENERATOR_FILE), &options, &device).expect("bundled G");
    let (encoder, _) =
        open_image_encoder(dir.join(IMAGE_ENCODER_FILE), &options, &device).expect("bundled f_V");
    (generator, encoder)
}

#[test]
fn best_of_k_keeps_the_candidate_f_v_places_nearest_the_feature() {
    let (generator, encoder) = bundled_generator_and_encoder();
    let device = Device::default();
    let (n, k) = (3, 5);
    let dim_z = generator.dim_z;
    let features = l2_normalize(sample_noise(n, 128, 21, 1.0, &device).expect("features"));
    let noise = sample_noise(n * k, dim_z, 22, 1.0, &device).expect("noise");
    let kept = values(
        generate_best_of(&generator, &encoder, features.clone(), noise.clone(), k)
            .expect("best of k"),
    );

    // Every candidate by hand: feature i with noise rows i·k .. (i+1)·k.
    let repeated = Tensor::cat(
        (0..n)
            .map(|i| features.clone().narrow(0, i, 1).repeat_dim(0, k))
            .collect(),
        0,
    );
    let candidates = generator.forward(noise, repeated.clone());
    let encoded = l2_normalize(encoder.forward_generated(candidates.clone()));
    let cosines = values((encoded * repeated).sum_dim(1));
    let pictures = values(candidates);
    let per_picture = kept.len() / n;
    let mut choices = Vec::new();
    for i in 0..n {
        let row = &cosines[i * k..(i + 1) * k];
        let best = (0..k)
            .max_by(|&a, &b| row[a].total_cmp(&row[b]))
            .expect("k > 0");
        choices.push(best);
        let expected = &pictures[(i * k + best) * per_picture..(i * k + best + 1) * per_picture];
        let diff = max_abs_diff(&kept[i * per_picture..(i + 1) * per_picture], expected);
        assert!(
            diff <= SAME_IMAGE_TOL,
            "feature {i}: the kept picture is not candidate {best}, f_V's nearest ({diff})"
        );
    }
    assert!(
        choices.iter().any(|&c| c != 0),
        "every choice was the first candidate, so the test shows nothing: {choices:?}"
    );

    let single = values(
        generate_best_of(
            &generator,
            &encoder,
            features.clone(),
            sample_noise(n, dim_z, 22, 1.0, &device).expect("noise"),
            1,
        )
        .expect("best of 1"),
    );
    let plain = values(generator.forward(
        sample_noise(n, dim_z, 22, 1.0, &device).expect("noise"),
        features.clone(),
    ));
    assert!(
        max_abs_diff(&single, &plain) <= SAME_IMAGE_TOL,
        "best of 1 is one draw"
    );

    for (rows, k) in [(n * k, 0), (n * k - 1, k)] {
        let noise = sample_noise(rows, dim_z, 23, 1.0, &device).expect("noise");
        let result = generate_best_of(&generator, &encoder, features.clone(), noise, k);
        assert!(
            result.is_err(),
            "{rows} noise rows with k = {k} must be refused"
        );
    }
}
