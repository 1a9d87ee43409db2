//! Tests of data discovery (official and VGGSound layouts), the validation split, the feature
//! cache and batch assembly.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use image::{Rgb, RgbImage};
use sound2scene_audio::{Spectrogram, SpectrogramConfig};
use sound2scene_models::image_encoder::{ImageEncoder, ImageEncoderConfig, preprocess};
use sound2scene_models::resnet::{BlockKind, ResNetConfig};
use sound2scene_train::data::{read_moments, split_validation};
use sound2scene_train::feature_cache::INDEX_FILE;
use sound2scene_train::init::seeded;
use sound2scene_train::{
    AlignData, FeatureCache, Pair, TrainError, discover_official, discover_vggsound,
};

/// Features of the cache and of a direct forward pass go through the same kernels on the same
/// inputs; batching differs (16 vs 1 image), which can reorder float sums slightly.
const CACHE_TOLERANCE: f32 = 1e-5;

fn touch(path: &Path) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, b"").expect("write");
}

#[test]
fn official_layout_pairs_by_stem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    for f in [
        "images/a.jpg",
        "images/b.png",
        "images/c.jpg",
        "images/notes.txt",
    ] {
        touch(&root.join(f));
    }
    for f in [
        "audios/a.wav",
        "audios/b.wav",
        "audios/b.mp3",
        "audios/d.wav",
    ] {
        touch(&root.join(f));
    }
    let found = discover_official(root).expect("discover");
    let names: Vec<&str> = found.pairs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(found.pairs[1].audio, root.join("audios/b.wav"), "wav wins");
    assert_eq!(found.pairs[1].image, root.join("images/b.png"));
    assert_eq!(found.unpaired_images, 1, "c.jpg");
    assert_eq!(found.unpaired_audio, 2, "d.wav and the shadowed b.mp3");
}

#[test]
fn official_layout_errors_name_the_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nowhere");
    let err = discover_official(&missing).expect_err("missing");
    assert!(err.to_string().contains("nowhere"), "{err}");

    std::fs::create_dir(dir.path().join("images")).expect("mkdir");
    let err = discover_official(dir.path()).expect_err("no audios");
    assert!(
        matches!(&err, TrainError::Data { path, .. } if path.ends_with("audios")),
        "{err}"
    );

    std::fs::create_dir(dir.path().join("audios")).expect("mkdir");
    touch(&dir.path().join("images/x.jpg"));
    touch(&dir.path().join("audios/y.wav"));
    let err = discover_official(dir.path()).expect_err("nothing pairs");
    match &err {
        TrainError::Data { path, reason, .. } => {
            assert_eq!(path, dir.path());
            assert!(
                reason.contains("1 unpaired images, 1 unpaired audio"),
                "{reason}"
            );
        }
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn vggsound_layout_uses_top_moments_then_the_middle_frame() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    for f in 1..=5 {
        touch(&root.join(format!("frames/v1/{f:04}.jpg")));
    }
    for f in ["frames/v2/1.jpg", "frames/v2/2.jpg", "frames/v2/10.jpg"] {
        touch(&root.join(f));
    }
    touch(&root.join("frames/v3/0001.jpg"));
    std::fs::create_dir_all(root.join("frames/v5")).expect("empty frames");
    for f in [
        "audios/v1.wav",
        "audios/v2.mp4",
        "audios/v4.wav",
        "audios/v5.wav",
    ] {
        touch(&root.join(f));
    }
    let moments = root.join("moments.json");
    std::fs::write(&moments, r#"{"v1": [47, 3, 2], "v9": [1]}"#).expect("moments");

    let found = discover_vggsound(root, Some(&moments)).expect("discover");
    let names: Vec<&str> = found.pairs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["v1", "v2"]);
    // Frame 47 does not exist: the next ranked one, 3, is used.
    assert_eq!(found.pairs[0].image, root.join("frames/v1/0003.jpg"));
    // No entry for v2: the middle of frames 1, 2, 10 by number.
    assert_eq!(found.pairs[1].image, root.join("frames/v2/2.jpg"));
    assert_eq!(found.pairs[1].audio, root.join("audios/v2.mp4"));
    assert_eq!(found.middle_frame_fallbacks, 1);
    assert_eq!(found.unpaired_images, 1, "v3 has no audio");
    assert_eq!(
        found.unpaired_audio, 2,
        "v4 has no frames, v5 an empty folder"
    );

    let without = discover_vggsound(root, None).expect("discover");
    assert_eq!(without.pairs[0].image, root.join("frames/v1/0003.jpg"));
    assert_eq!(without.middle_frame_fallbacks, 2);
}

#[test]
fn malformed_moments_are_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("m.json");
    std::fs::write(&path, "[1, 2]").expect("write");
    assert!(matches!(read_moments(&path), Err(TrainError::Data { .. })));
    std::fs::write(&path, r#"{"v": 3}"#).expect("write");
    assert!(matches!(read_moments(&path), Err(TrainError::Data { .. })));
    std::fs::write(&path, r#"{"v": [4, 2.0, "x", -1, 1.5]}"#).expect("write");
    assert_eq!(read_moments(&path).expect("read")["v"], [4, 2]);
    let missing = dir.path().join("absent.json");
    assert!(matches!(read_moments(&missing), Err(TrainError::Io { .. })));
}

#[test]
fn validation_split_is_deterministic_and_never_empty() {
    let a = split_validation(100, 0.1, 5).expect("split");
    assert_eq!(a, split_validation(100, 0.1, 5).expect("split"));
    assert_ne!(a, split_validation(100, 0.1, 6).expect("split"));
    assert_eq!((a.train.len(), a.val.len()), (90, 10));
    let mut all: Vec<usize> = a.train.iter().chain(&a.val).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..100).collect::<Vec<_>>());
    assert_eq!(split_validation(2, 0.01, 1).expect("split").val.len(), 1);
    assert_eq!(split_validation(4, 0.9, 1).expect("split").train.len(), 1);
    assert!(split_validation(1, 0.5, 1).expect("split").val.is_empty());
    assert!(split_validation(10, 0.0, 1).expect("split").val.is_empty());
    assert!(split_validation(10, 1.0, 1).is_err());
    assert!(split_validation(10, f64::NAN, 1).is_err());
}

/// A narrow image encoder, fast on a CPU. Initialized under the process-wide lock, so that it
/// never draws from the generator while a concurrent test's seeded initialization holds it.
fn narrow_image_encoder(device: &Device) -> ImageEncoder {
    seeded(device, 0, |device| {
        ImageEncoderConfig::new()
            .with_resnet(ResNetConfig::new(BlockKind::Bottleneck, [1, 1, 1, 1]).with_base_width(4))
            .init(device)
    })
}

fn write_images(dir: &Path, count: usize) -> Vec<Pair> {
    (0..count)
        .map(|i| {
            let image = RgbImage::from_fn(40 + i as u32, 30, |x, y| {
                Rgb([(x * 5 + i as u32 * 40) as u8, (y * 7) as u8, (x * y) as u8])
            });
            let path = dir.join(format!("img{i}.png"));
            image.save(&path).expect("save png");
            Pair {
                name: format!("img{i}"),
                audio: PathBuf::from(format!("audio{i}.wav")),
                image: path,
            }
        })
        .collect()
}

#[test]
fn feature_cache_builds_reuses_and_extends() {
    let device = Device::flex();
    let work = tempfile::tempdir().expect("tempdir");
    let pairs = write_images(work.path(), 5);
    let encoder = narrow_image_encoder(&device);
    let dir = work.path().join("cache");

    let cache = FeatureCache::build(&pairs[..3], &encoder, "enc-a", &dir, 2, &device, false)
        .expect("build");
    assert_eq!((cache.len(), cache.dim()), (3, 128));
    assert_eq!(cache.index().shards.len(), 2);
    assert!(dir.join("shard-00000.npy").is_file() && dir.join("shard-00001.npy").is_file());

    // The cached feature equals a direct forward pass.
    let image = image::open(&pairs[2].image).expect("png").to_rgb8();
    let direct = encoder
        .forward(preprocess(&[image], &device).expect("preprocess"))
        .into_data()
        .try_to_vec::<f32>()
        .expect("f32");
    let cached = cache.feature("img2").expect("cached");
    let diff = direct
        .iter()
        .zip(cached)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(diff <= CACHE_TOLERANCE, "cache differs by {diff}");

    // Reopening reads the same; building again encodes nothing new.
    let reopened = FeatureCache::open(&dir).expect("open");
    assert_eq!(reopened.feature("img0"), cache.feature("img0"));
    let index_before = std::fs::read(dir.join(INDEX_FILE)).expect("index");
    FeatureCache::build(&pairs[..3], &encoder, "enc-a", &dir, 2, &device, false).expect("reuse");
    assert_eq!(
        std::fs::read(dir.join(INDEX_FILE)).expect("index"),
        index_before
    );

    // Two more pairs add one shard.
    let extended =
        FeatureCache::build(&pairs, &encoder, "enc-a", &dir, 4, &device, false).expect("extend");
    assert_eq!((extended.len(), extended.index().shards.len()), (5, 3));
    assert_eq!(extended.feature("img1"), cache.feature("img1"));

    // Another encoder file rebuilds everything.
    let rebuilt =
        FeatureCache::build(&pairs, &encoder, "enc-b", &dir, 4, &device, false).expect("rebuild");
    assert_eq!((rebuilt.len(), rebuilt.index().shards.len()), (5, 2));
    assert_eq!(rebuilt.index().encoder, "enc-b");

    // Training data from the cache: a pair it lacks is an error naming the cache.
    let mut unknown = pairs[0].clone();
    unknown.name = "unknown".into();
    let err =
        AlignData::from_pairs(&[unknown], &rebuilt, Default::default()).expect_err("not cached");
    assert!(matches!(err, TrainError::Cache { .. }), "{err}");

    // An undecodable image is named.
    let broken = work.path().join("broken.png");
    std::fs::write(&broken, b"not a png").expect("write");
    let bad = Pair {
        name: "broken".into(),
        audio: PathBuf::from("x.wav"),
        image: broken.clone(),
    };
    let err = FeatureCache::build(&[bad], &encoder, "enc-b", &dir, 4, &device, false)
        .expect_err("broken image");
    assert!(err.to_string().contains("broken.png"), "{err}");
}

/// A 16 kHz mono 16-bit PCM WAV of `samples`.
fn write_wav(path: &Path, samples: &[i16]) {
    let data_len = (samples.len() * 2) as u32;
    let mut bytes = Vec::with_capacity(44 + samples.len() * 2);
    bytes.extend_from_slice(b"RIFF");
    bytes.extend_from_slice(&(36 + data_len).to_le_bytes());
    bytes.extend_from_slice(b"WAVEfmt ");
    bytes.extend_from_slice(&16u32.to_le_bytes());
    bytes.extend_from_slice(&1u16.to_le_bytes()); // PCM
    bytes.extend_from_slice(&1u16.to_le_bytes()); // mono
    bytes.extend_from_slice(&16_000u32.to_le_bytes());
    bytes.extend_from_slice(&32_000u32.to_le_bytes()); // byte rate
    bytes.extend_from_slice(&2u16.to_le_bytes()); // block align
    bytes.extend_from_slice(&16u16.to_le_bytes());
    bytes.extend_from_slice(b"data");
    bytes.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        bytes.extend_from_slice(&s.to_le_bytes());
    }
    std::fs::write(path, bytes).expect("write wav");
}

#[test]
fn training_batches_fill_clips_under_a_second_to_one_width() {
    // The official front end gives a 0.5 s clip 500 columns; a batch with a 2 s clip needs
    // 1004 for both, so training fills short clips to the full 10 s.
    let device = Device::flex();
    let work = tempfile::tempdir().expect("tempdir");
    let mut pairs = write_images(work.path(), 2);
    for (pair, n) in pairs.iter_mut().zip([8_000usize, 32_000]) {
        let samples: Vec<i16> = (0..n)
            .map(|i| ((i as f32 * 0.07).sin() * 8_000.0 + (i * 7919 % 997) as f32) as i16)
            .collect();
        pair.audio = work.path().join(format!("{}.wav", pair.name));
        write_wav(&pair.audio, &samples);
    }
    let encoder = narrow_image_encoder(&device);
    let cache = FeatureCache::build(
        &pairs,
        &encoder,
        "enc",
        work.path().join("cache"),
        2,
        &device,
        false,
    )
    .expect("cache");
    let official = SpectrogramConfig::default();
    assert_eq!(official.frames_for(8_000), 500);
    let data = AlignData::from_pairs(&pairs, &cache, official).expect("data");
    let batch = data.batch(&[0, 1]).expect("one width");
    assert_eq!(batch.spectrogram_shape, [2, 1, 257, 1004]);
    // The short clip's row is the clip filled to 10 s by hand.
    let wave = sound2scene_audio::load_audio(&pairs[0].audio).expect("decode");
    let by_hand = Spectrogram::compute(&wave.tile_to(160_000)).expect("spectrogram");
    assert_eq!(&batch.spectrograms[..257 * 1004], by_hand.data());
}

#[test]
fn batches_gather_spectrograms_and_features() {
    let specs: Vec<Spectrogram> = (0..3)
        .map(|i| Spectrogram::from_vec(vec![i as f32; 6], 2, 3).expect("spec"))
        .collect();
    let features: Vec<f32> = (0..3 * 4).map(|v| v as f32).collect();
    let names = vec!["a".into(), "b".into(), "c".into()];
    let data = AlignData::in_memory(names, specs, features, 4).expect("data");
    let batch = data.batch(&[2, 0]).expect("batch");
    assert_eq!(batch.spectrogram_shape, [2, 1, 2, 3]);
    assert_eq!(&batch.spectrograms[..6], &[2.0; 6]);
    assert_eq!(&batch.spectrograms[6..], &[0.0; 6]);
    assert_eq!(batch.features, [8., 9., 10., 11., 0., 1., 2., 3.]);
    assert!(data.batch(&[3]).is_err());
    assert!(data.batch(&[]).is_err());

    let nan = AlignData::in_memory(
        vec!["a".into()],
        vec![Spectrogram::from_vec(vec![0.0; 6], 2, 3).expect("spec")],
        vec![f32::NAN, 0.0],
        2,
    );
    assert!(matches!(nan, Err(TrainError::Data { .. })));
    let mismatched = AlignData::in_memory(
        vec!["a".into(), "b".into()],
        vec![Spectrogram::from_vec(vec![0.0; 6], 2, 3).expect("spec")],
        vec![0.0; 4],
        2,
    );
    assert!(mismatched.is_err());
}

#[test]
fn discovers_the_shared_training_samples() {
    let base = std::env::var_os("SOUND2SCENE_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures")
        });
    let samples = base.join("../samples/training");
    if !samples.is_dir() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{} is missing (CI=true requires it)",
            samples.display()
        );
        eprintln!("SKIP: {} is missing", samples.display());
        return;
    }
    let found = discover_official(&samples).expect("discover");
    assert_eq!(found.pairs.len(), 4);
    assert_eq!((found.unpaired_audio, found.unpaired_images), (0, 0));
    assert!(found.pairs.windows(2).all(|w| w[0].name < w[1].name));
}
