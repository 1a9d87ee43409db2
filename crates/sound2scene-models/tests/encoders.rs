//! Parity of the encoders with the official PyTorch networks, checkpoint errors, and the
//! image preprocessing.

mod common;

use std::path::Path;

use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Tensor, TensorData};
use common::{
    assert_close, fixture, max_abs_diff, npy_tensor, read_npy, require, samples_dir, values,
};
use image::{Rgb, RgbImage};
use sound2scene_models::audio_encoder::{AudioEncoder, AudioEncoderConfig};
use sound2scene_models::image_encoder::{
    ImageEncoder, generated_input, preprocess, preprocess_image, preprocess_image_at,
    resize_bicubic_align_corners,
};
use sound2scene_models::resnet::{BlockKind, ResNetConfig};
use sound2scene_models::{LoadOptions, ModelError};

/// Relative bound on the encoder outputs: float32 sums over up to 4608 terms per
/// convolution through 18 (50) layers with a different summation order than PyTorch's
/// oneDNN kernels give ~1e-5 relative differences; 1e-3 leaves margin while still catching
/// any wrong layer, stride, padding or BatchNorm.
const ENCODER_REL_TOL: f32 = 1e-3;

/// Bound on the bicubic resize against PyTorch's numbers and exact properties (samples on
/// the input grid kept, constants kept): only float32 rounding of 4×4-term weighted sums.
const BICUBIC_EXACT_TOL: f32 = 1e-4;

/// Bound between our bicubic resize and Burn's `interpolate` (both Keys A = −0.75,
/// `align_corners`): they differ only in float rounding (Burn accumulates in f64).
const BICUBIC_BURN_TOL: f32 = 1e-5;

/// One 8-bit gray level after normalization, at the smallest ImageNet std (0.224):
/// `1 / 255 / 0.224`.
const ONE_LEVEL: f32 = 1.0 / 255.0 / 0.224;

#[test]
fn audio_encoder_matches_official_avenet() {
    let (Some(ckpt), Some(input), Some(feat), Some(pool)) = (
        fixture("models/sound2scene_audio_resnet18.pth"),
        fixture("models/audio_in_cow_ocean.npy"),
        fixture("models/audio_out_feat2048.npy"),
        fixture("models/audio_out_pool512.npy"),
    ) else {
        return;
    };
    let device = Device::default();
    let encoder = AudioEncoder::from_pytorch(&ckpt, &LoadOptions::default(), &device)
        .expect("load the audio checkpoint");
    assert_eq!(
        encoder.audnet.layer4.len(),
        2,
        "ResNet-18 read from the keys"
    );
    let out = encoder.forward(npy_tensor::<4>(&input, &device));
    assert_eq!(out.feature.dims(), [2, 2048]);
    assert_eq!(out.pooled.dims(), [2, 512]);
    assert_close(
        "z^A [2, 2048]",
        &values(out.feature),
        &read_npy(&feat).1,
        ENCODER_REL_TOL,
    );
    assert_close(
        "pooled [2, 512]",
        &values(out.pooled),
        &read_npy(&pool).1,
        ENCODER_REL_TOL,
    );
}

#[test]
fn image_encoder_matches_swav_trunk() {
    let (Some(ckpt), Some(input), Some(feat)) = (
        fixture("models/swav_resnet50_layers1111.pth.tar"),
        fixture("models/image_in.npy"),
        fixture("models/image_out_feat2048_layers1111.npy"),
    ) else {
        return;
    };
    let device = Device::default();
    let encoder = ImageEncoder::from_pytorch(&ckpt, &LoadOptions::default(), &device)
        .expect("load the SwAV-layout checkpoint");
    assert_eq!(
        encoder.resnet.layer3.len(),
        1,
        "blocks [1, 1, 1, 1] read from the keys"
    );
    let out = encoder.forward(npy_tensor::<4>(&input, &device));
    assert_eq!(out.dims(), [2, 2048]);
    assert_close(
        "z^V [2, 2048]",
        &values(out),
        &read_npy(&feat).1,
        ENCODER_REL_TOL,
    );
}

#[test]
fn wrong_network_checkpoints_are_mismatches_naming_keys() {
    let (Some(swav), Some(audio)) = (
        fixture("models/swav_resnet50_layers1111.pth.tar"),
        fixture("models/sound2scene_audio_resnet18.pth"),
    ) else {
        return;
    };
    let device = Device::default();
    let err = AudioEncoder::from_pytorch(&swav, &LoadOptions::default(), &device)
        .expect_err("SwAV weights are not an AVENet");
    let ModelError::Mismatch {
        missing,
        unexpected,
        ..
    } = &err
    else {
        panic!("expected Mismatch, got {err}");
    };
    assert!(missing.iter().any(|k| k == "audnet.conv1.weight"), "{err}");
    assert!(missing.iter().any(|k| k == "audnet.fc.weight"), "{err}");
    assert!(
        unexpected.iter().any(|k| k == "module.conv1.weight"),
        "{err}"
    );
    assert!(err.to_string().contains("audnet.conv1.weight"), "{err}");

    let err = ImageEncoder::from_pytorch(&audio, &LoadOptions::default(), &device)
        .expect_err("AVENet weights are not a SwAV ResNet");
    let ModelError::Mismatch { unexpected, .. } = &err else {
        panic!("expected Mismatch, got {err}");
    };
    assert!(unexpected.iter().any(|k| k == "audnet.fc.weight"), "{err}");
    assert!(err.to_string().contains("module.conv1.weight"), "{err}");
}

#[test]
fn missing_checkpoint_is_io_error() {
    let path = std::env::temp_dir().join("s2s-models-no-such-checkpoint.pth");
    let device = Device::default();
    let err =
        AudioEncoder::from_pytorch(&path, &LoadOptions::default(), &device).expect_err("no file");
    assert!(matches!(err, ModelError::Io { .. }), "{err}");
    let err =
        ImageEncoder::from_pytorch(&path, &LoadOptions::default(), &device).expect_err("no file");
    assert!(matches!(err, ModelError::Io { .. }), "{err}");
}

#[test]
fn audio_encoder_checks_channels_and_accepts_any_length() {
    let device = Device::default();
    let encoder = AudioEncoderConfig::new()
        .with_resnet(
            ResNetConfig::new(BlockKind::Basic, [1, 1, 1, 1])
                .with_in_channels(1)
                .with_base_width(8),
        )
        .with_out_dim(16)
        .init(&device);
    let err = encoder
        .try_forward(Tensor::zeros([1, 3, 257, 100], &device))
        .expect_err("three channels");
    assert!(
        matches!(&err, ModelError::InputShape { found, .. } if found == &[1, 3, 257, 100]),
        "{err}"
    );
    for frames in [1, 37, 300] {
        let out = encoder.forward(Tensor::ones([2, 1, 257, frames], &device));
        assert_eq!(out.feature.dims(), [2, 16]);
        assert_eq!(out.pooled.dims(), [2, 64]);
        assert!(values(out.feature).iter().all(|v| *v >= 0.0), "ReLU output");
    }
}

/// `F.interpolate(torch.arange(9.).view(1, 1, 1, 9), (1, 13), mode="bicubic",
/// align_corners=True)`, computed with PyTorch 2.15. With A = −0.75 cubic convolution does
/// not reproduce a ramp between samples (only A = −0.5 would), and the repeated border
/// sample bends it further in the outer intervals, so the exact numbers are needed.
const TORCH_RAMP_9_TO_13: [f32; 13] = [
    0.0,
    0.574_074,
    1.370_369_7,
    2.0,
    2.629_629_6,
    3.370_369_2,
    4.0,
    4.629_629_6,
    5.370_368_5,
    6.0,
    6.629_629_6,
    7.425_924,
    8.0,
];

#[test]
fn bicubic_align_corners_matches_torch_and_keeps_samples_and_constants() {
    let ramp: Vec<f32> = (0..9).map(|i| i as f32).collect();
    let out = resize_bicubic_align_corners(&ramp, 1, [1, 9], [1, 13]);
    assert_close("ramp 9 -> 13", &out, &TORCH_RAMP_9_TO_13, BICUBIC_EXACT_TOL);

    // Upsampling 7 × 9 -> 13 × 17 with align_corners puts every second output on an input
    // sample, where the result is that sample (weights 0, 1, 0, 0).
    let (h, w) = (7, 9);
    let input: Vec<f32> = (0..h * w).map(|i| ((i * 37) % 11) as f32 - 5.0).collect();
    let out = resize_bicubic_align_corners(&input, 1, [h, w], [13, 17]);
    for y in 0..h {
        for x in 0..w {
            let got = out[2 * y * 17 + 2 * x];
            let want = input[y * w + x];
            assert!(
                (got - want).abs() < BICUBIC_EXACT_TOL,
                "({y},{x}): {got} vs {want}"
            );
        }
    }

    // The weights sum to one: a constant stays constant.
    let constant = vec![0.37f32; 2 * 16 * 16];
    let out = resize_bicubic_align_corners(&constant, 2, [16, 16], [11, 23]);
    assert_eq!(out.len(), 2 * 11 * 23);
    assert!(out.iter().all(|v| (v - 0.37).abs() < BICUBIC_EXACT_TOL));

    // Same size: the identity; one output pixel: the top-left input pixel.
    let out = resize_bicubic_align_corners(&input, 1, [h, w], [h, w]);
    assert_close("identity", &out, &input, BICUBIC_EXACT_TOL);
    assert_eq!(
        resize_bicubic_align_corners(&input, 1, [h, w], [1, 1]),
        vec![input[0]]
    );
}

#[test]
fn bicubic_matches_burn_interpolate() {
    let device = Device::default();
    let (c, h, w) = (3, 20, 17);
    let input: Vec<f32> = (0..c * h * w)
        .map(|i| ((i * 2_654_435_761) % 1000) as f32 / 500.0 - 1.0)
        .collect();
    let ours = resize_bicubic_align_corners(&input, c, [h, w], [14, 31]);
    let tensor = Tensor::<4>::from_data(TensorData::new(input, [1, c, h, w]), &device);
    let burn = interpolate(
        tensor,
        InterpolateOptions::new(InterpolateMode::Bicubic)
            .with_align_corners(true)
            .with_output_size([14, 31]),
    );
    assert_close("bicubic vs burn", &ours, &values(burn), BICUBIC_BURN_TOL);
}

/// Our preprocessing of `image` against the official `[1, 3, 224, 224]` fixture `reference`:
/// (max abs difference, mean abs difference, share of values more than one gray level off).
fn preprocess_against(image: &Path, reference: &Path) -> (f32, f32, f32) {
    let picture = image::open(image)
        .unwrap_or_else(|e| panic!("{}: {e}", image.display()))
        .to_rgb8();
    let ours = preprocess_image(&picture).expect("non-empty image");
    let (shape, theirs) = read_npy(reference);
    assert_eq!(shape, vec![1, 3, 224, 224], "{}", reference.display());
    let diffs: Vec<f32> = ours
        .iter()
        .zip(&theirs)
        .map(|(a, b)| (a - b).abs())
        .collect();
    let max = diffs.iter().copied().fold(0.0, f32::max);
    let mean = diffs.iter().sum::<f32>() / diffs.len() as f32;
    let off = diffs.iter().filter(|&&d| d > ONE_LEVEL).count() as f32 / diffs.len() as f32;
    eprintln!(
        "{}: max {max:.3e} ({:.2} levels), mean {mean:.3e}, {:.3} % beyond one level",
        image.display(),
        max / ONE_LEVEL,
        off * 100.0
    );
    (max, mean, off)
}

/// The official transform (PIL `Resize((256, 256))`, `ToTensor`, `Normalize`, bicubic to 224
/// with `align_corners`) of an asymmetric 300×180 PNG, per pixel. PNG decoding is lossless and
/// the PIL resize is reproduced to the bit, so only float rounding of the normalization and
/// the bicubic sums remains: measured 3.1e-6 at most (4.4e-7 on average). The bound is
/// one gray level ([`ONE_LEVEL`], 0.0175); the test holds [`PNG_PREPROCESS_TOL`], far below
/// it, which a flip, a transpose, a swapped channel or PIL-unlike rounding (a generic
/// resampler's, within a level of PIL's) would exceed.
#[test]
fn preprocess_png_matches_official_per_pixel() {
    let (Some(png), Some(reference)) = (
        fixture("preprocess/asymmetric_300x180.png"),
        fixture("preprocess/fv_input_asymmetric_300x180.npy"),
    ) else {
        return;
    };
    let (max, _, off) = preprocess_against(&png, &reference);
    assert!(
        max <= PNG_PREPROCESS_TOL,
        "PNG preprocessing differs by {max}"
    );
    assert_eq!(off, 0.0);
}

/// Float rounding of `(x / 255 - mean) / std` and of 16-term bicubic sums, with margin over the
/// measured 3.1e-6.
const PNG_PREPROCESS_TOL: f32 = 1e-4;

/// The four sample training JPEGs (224×224, 4:2:0, written by ffmpeg) through the official
/// transform, per pixel. PIL decodes with libjpeg-turbo, we with the `image` crate's zune-jpeg;
/// their inverse DCTs, chroma upsampling and colour conversion round differently, so decoded
/// pixels differ by a gray level or two (the fixtures' note: "expect 1-2 LSB decoder
/// differences"); the bilinear upscale to 256 and the bicubic resize (whose weights reach
/// 1.375 in absolute sum per axis) spread and partly amplify them. The rest of the pipeline is
/// exact (see [`preprocess_png_matches_official_per_pixel`]). Measured on the four images: at
/// most 3.8 levels (0.066), on average 0.20–0.26 levels (0.0035–0.0046), 7.1–9.2 % of the
/// values more than one level off. The bounds below leave some margin over that; a flip or
/// a transpose would move the mean by tens of levels.
#[test]
fn preprocess_jpegs_match_official_within_decoder_differences() {
    for stem in [
        "1XjwssJT_ok_25000_35000",
        "1ieXYD-OKXw_30000_40000",
        "VNs8qiFvwfk_30000_40000",
        "XvuoIqLqMng_210000_220000",
    ] {
        let (Some(jpeg), Some(reference)) = (
            require(samples_dir().join(format!("training/images/{stem}.jpg"))),
            fixture(&format!("preprocess/fv_input_{stem}.npy")),
        ) else {
            return;
        };
        let (max, mean, off) = preprocess_against(&jpeg, &reference);
        assert!(
            max <= JPEG_MAX_LEVELS * ONE_LEVEL,
            "{stem}: max {max} beyond {JPEG_MAX_LEVELS} levels"
        );
        assert!(mean <= JPEG_MEAN_LEVELS * ONE_LEVEL, "{stem}: mean {mean}");
        assert!(
            off <= JPEG_SHARE_BEYOND_ONE_LEVEL,
            "{stem}: {off} of the values beyond one level"
        );
    }
}

/// Worst value, in gray levels, against the measured 3.8.
const JPEG_MAX_LEVELS: f32 = 5.0;
/// Mean absolute difference, in gray levels, against the measured 0.26 at most.
const JPEG_MEAN_LEVELS: f32 = 0.4;
/// Share of values more than one level off, against the measured 9.2 % at most.
const JPEG_SHARE_BEYOND_ONE_LEVEL: f32 = 0.12;

#[test]
fn preprocess_batches_and_refuses_empty_images() {
    let image = RgbImage::from_fn(30, 20, |x, y| Rgb([(x * 8) as u8, (y * 12) as u8, 90]));
    let batch = preprocess(&[image.clone(), image], &Device::default()).expect("two images");
    assert_eq!(batch.dims(), [2, 3, 224, 224]);
    let err = preprocess_image(&image::RgbImage::new(0, 5)).expect_err("no pixels");
    assert!(matches!(err, ModelError::InputShape { .. }), "{err}");
}

#[test]
fn an_encoder_with_an_input_side_preprocesses_to_it_and_keeps_it_in_burnpack() {
    use sound2scene_models::burnpack::{self, NetworkKind, Precision};
    use sound2scene_models::checkpoint::open_image_encoder;
    use sound2scene_models::image_encoder::{IMAGENET_MEAN, IMAGENET_STD, ImageEncoderConfig};

    let device = Device::default();
    let config = ImageEncoderConfig::new()
        .with_resnet(ResNetConfig::new(BlockKind::Basic, [1, 1, 1, 1]).with_base_width(4))
        .with_input_side(Some(32));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("f_v.bpk");
    burnpack::save(
        &config.init(&device),
        NetworkKind::ImageEncoder,
        &config,
        &path,
        Precision::F32,
    )
    .expect("save");
    let (encoder, loaded) =
        open_image_encoder(&path, &LoadOptions::default(), &device).expect("load");
    assert_eq!(loaded.input_side, Some(32));
    assert_eq!(encoder.input_side(), 32);

    // A flat orange 100×60 image: every value of a plane is that channel's normalized level.
    let colour = [255u8, 128, 0];
    let image = image::RgbImage::from_pixel(100, 60, image::Rgb(colour));
    let batch = encoder
        .preprocess(&[image.clone(), image], &device)
        .expect("preprocess");
    assert_eq!(batch.dims(), [2, 3, 32, 32]);
    let got = values(batch);
    for (c, plane) in got.chunks(32 * 32).enumerate() {
        let want = (f32::from(colour[c % 3]) / 255.0 - IMAGENET_MEAN[c % 3]) / IMAGENET_STD[c % 3];
        assert!(plane.iter().all(|v| (v - want).abs() < 1e-5), "channel {c}");
    }
    // The released encoder's path is unchanged: 224×224.
    let official = ImageEncoderConfig::new()
        .with_resnet(ResNetConfig::new(BlockKind::Basic, [1, 1, 1, 1]).with_base_width(4))
        .init(&device);
    assert_eq!(official.input_side(), 224);
}

/// Side of the pictures in the generated-input test.
const SIDE: usize = 32;

#[test]
fn generated_input_matches_the_byte_preprocessing() {
    let image = RgbImage::from_fn(SIDE as u32, SIDE as u32, |x, y| {
        Rgb([
            (7 * x + 3 * y) as u8,
            (255 - 5 * y) as u8,
            (x * y % 256) as u8,
        ])
    });
    // G's pictures: [-1, 1].
    let pixels: Vec<f32> = (0..3)
        .flat_map(|c| image.pixels().map(move |p| f32::from(p.0[c]) / 127.5 - 1.0))
        .collect();
    let tensor = Tensor::<4>::from_data(
        TensorData::new(pixels, [1, 3, SIDE, SIDE]),
        &Device::default(),
    );
    let ours = generated_input(tensor.clone(), SIDE)
        .try_into_vec_as::<f32>()
        .expect("readable");
    let cached = preprocess_image_at(&image, SIDE).expect("preprocessed");
    let diff = max_abs_diff(&ours, &cached);
    assert!(diff < 1e-5, "differs from the preprocessed bytes by {diff}");
    assert_eq!(generated_input(tensor, 48).dims(), [1, 3, 48, 48]);
}
