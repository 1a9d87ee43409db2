//! Broken samples are skipped and reported, not the end of a run: each kind of broken file
//! (random bytes as a JPEG, an empty WAV, a truncated MP4, a frame folder without frames, an
//! audio file without a frame folder), the limit on their fraction, `strict`, the record that
//! spares a resumed run the same work, and exact resume on a broken data set.
//!
//! Motivated by the tracker's "Datasets at scale: a broken sample is skipped and reported, not
//! the end of a day's run".

use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};
use image::{Rgb, RgbImage};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sound2scene_models::audio_encoder::{AudioEncoder, AudioEncoderConfig};
use sound2scene_models::image_encoder::{ImageEncoder, ImageEncoderConfig};
use sound2scene_models::resnet::{BlockKind, ResNetConfig};
use sound2scene_train::align::{AlignConfig, AlignHooks};
use sound2scene_train::checkpoint::latest_complete;
use sound2scene_train::control::{Control, Outcome};
use sound2scene_train::feature_cache::INDEX_FILE;
use sound2scene_train::init::seeded;
use sound2scene_train::progress::ProgressMode;
use sound2scene_train::skip::SKIPPED_FILE;
use sound2scene_train::swav::images::SwavImages;
use sound2scene_train::{
    AlignData, AlignSession, CacheBuild, CacheOptions, FeatureCache, Pair, SkipPolicy, SkipReport,
    TrainError, discover_official, discover_vggsound,
};

/// Resumed and uninterrupted runs execute the same operations on the same values (the brief's
/// tolerance, as in tests/align.rs).
const RESUME_TOLERANCE: f32 = 1e-5;

fn device() -> Device {
    Device::flex()
}

/// A narrow image encoder on 32×32 inputs: 128-wide features, fast on a CPU. Initialized under
/// the process-wide lock, so that it never draws from the generator while a concurrent test's
/// seeded initialization holds it.
fn image_encoder() -> ImageEncoder {
    seeded(&device(), 0, |device| {
        ImageEncoderConfig::new()
            .with_resnet(ResNetConfig::new(BlockKind::Bottleneck, [1, 1, 1, 1]).with_base_width(4))
            .with_input_side(Some(32))
            .init(device)
    })
}

fn write_png(path: &Path, seed: u32) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    RgbImage::from_fn(40, 30, |x, y| {
        Rgb([
            (x * 5 + seed * 40) as u8,
            (y * 7 + seed) as u8,
            (x * y) as u8,
        ])
    })
    .save(path)
    .expect("save png");
}

/// A 16 kHz mono 16-bit PCM WAV of `n` samples of a tone that depends on `seed` (a header
/// only when `n` is 0).
fn write_wav(path: &Path, n: usize, seed: u32) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let data_len = (n * 2) as u32;
    let mut bytes = Vec::with_capacity(44 + n * 2);
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
    let step = 0.03 + 0.01 * seed as f32;
    for i in 0..n {
        let v = ((i as f32 * step).sin() * 8_000.0) as i16 + (i * 7919 % 997) as i16;
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, bytes).expect("write wav");
}

/// Seeded random bytes, written to `path` (a "JPEG" that is not one).
fn write_random(path: &Path, len: usize) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let mut bytes = vec![0u8; len];
    ChaCha8Rng::seed_from_u64(11).fill_bytes(&mut bytes);
    std::fs::write(path, bytes).expect("write");
}

/// An MP4 cut off in the middle of its media data, before its `moov` box: the shared
/// fixture's first 40 % when present, else a file type box and a media box that claims far
/// more bytes than follow.
fn write_truncated_mp4(path: &Path) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let fixtures = std::env::var_os("SOUND2SCENE_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures")
        });
    let bytes = match std::fs::read(fixtures.join("audio/cow_video_44100_stereo.mp4")) {
        Ok(whole) => whole[..whole.len() * 2 / 5].to_vec(),
        Err(_) => {
            let mut bytes = Vec::new();
            bytes.extend_from_slice(&24u32.to_be_bytes());
            bytes.extend_from_slice(b"ftypisom\0\0\x02\0isommp41");
            bytes.extend_from_slice(&100_000u32.to_be_bytes());
            bytes.extend_from_slice(b"mdat");
            bytes.extend(std::iter::repeat_n(0x21u8, 4_000));
            bytes
        }
    };
    std::fs::write(path, bytes).expect("write mp4");
}

/// The official layout with `good` readable pairs (`g0`, `g1`, … with 0.5 s of sound) and
/// the broken pairs `b-empty` (a WAV without samples), `b-random` (random bytes as its JPEG)
/// and `b-truncated` (an MP4 cut off before its index).
fn official_with_broken(root: &Path, good: usize) {
    for i in 0..good {
        write_png(&root.join(format!("images/g{i}.png")), i as u32);
        write_wav(&root.join(format!("audios/g{i}.wav")), 8_000, i as u32);
    }
    write_png(&root.join("images/b-empty.png"), 90);
    write_wav(&root.join("audios/b-empty.wav"), 0, 0);
    write_random(&root.join("images/b-random.jpg"), 3_000);
    write_wav(&root.join("audios/b-random.wav"), 8_000, 91);
    write_png(&root.join("images/b-truncated.png"), 92);
    write_truncated_mp4(&root.join("audios/b-truncated.mp4"));
}

fn build(
    pairs: &[Pair],
    encoder: &ImageEncoder,
    cache: &Path,
    options: &CacheOptions,
) -> Result<CacheBuild, TrainError> {
    FeatureCache::build_checked(pairs, encoder, "f_v", cache, &device(), options)
}

fn names(report: &SkipReport) -> Vec<&str> {
    report.skipped.iter().map(|s| s.name.as_str()).collect()
}

#[test]
fn each_kind_of_broken_pair_is_skipped_reported_and_not_tried_again() {
    let work = tempfile::tempdir().expect("tempdir");
    let data = work.path().join("data");
    official_with_broken(&data, 8);
    let found = discover_official(&data).expect("discover");
    assert_eq!(found.pairs.len(), 11);
    let encoder = image_encoder();
    let cache_dir = work.path().join("features");
    // 3 of 11 broken is over the default 5 %; this run allows half.
    let options = CacheOptions {
        policy: SkipPolicy::tolerating(0.5),
        ..CacheOptions::new(4, &data)
    };

    let built = build(&found.pairs, &encoder, &cache_dir, &options).expect("the run goes on");
    assert_eq!(names(&built.report), ["b-empty", "b-random", "b-truncated"]);
    let [empty, random, truncated] = &built.report.skipped[..] else {
        panic!("three skipped: {:?}", built.report.skipped);
    };
    assert_eq!(empty.file, data.join("audios/b-empty.wav"));
    assert!(empty.cause.contains("no audio samples") || empty.cause.contains("empty"));
    assert_eq!(random.file, data.join("images/b-random.jpg"));
    assert!(
        random.cause.starts_with("cannot decode the image"),
        "{random}"
    );
    assert_eq!(truncated.file, data.join("audios/b-truncated.mp4"));
    assert!(!truncated.cause.is_empty());
    assert!(random.warning().starts_with("warning: skipping "));
    assert!(random.warning().contains("b-random.jpg"));
    assert_eq!(
        (
            built.report.total,
            built.report.checked,
            built.report.recorded
        ),
        (11, 11, 0)
    );
    assert_eq!(built.report.kept(), 8);
    assert_eq!(built.pairs.len(), 8);
    assert!(built.pairs.iter().all(|p| p.name.starts_with('g')));
    assert_eq!(built.cache.len(), 8);
    assert!(built.cache.feature("b-random").is_none());
    assert_eq!(built.cache.index().skipped.len(), 3);
    let summary = built.report.summary();
    assert!(summary.contains("skipped 3 of 11"), "{summary}");

    // The report round-trips through the run's file.
    let file = work.path().join(SKIPPED_FILE);
    built.report.write(&file).expect("write");
    assert_eq!(
        SkipReport::read(&file).expect("read"),
        Some(built.report.clone())
    );

    // A second build (a resumed run) decodes nothing: the broken pairs come from the index.
    let index = std::fs::read(cache_dir.join(INDEX_FILE)).expect("index");
    let again = build(&found.pairs, &encoder, &cache_dir, &options).expect("again");
    assert_eq!(again.report.skipped, built.report.skipped);
    assert_eq!((again.report.checked, again.report.recorded), (0, 3));
    assert_eq!(again.pairs, built.pairs);
    assert_eq!(
        std::fs::read(cache_dir.join(INDEX_FILE)).expect("index"),
        index
    );
    let reopened = FeatureCache::open(&cache_dir).expect("open");
    assert_eq!(reopened.len(), 8);

    // A repaired file (its size changed) is tried again and joins the cache.
    write_wav(&data.join("audios/b-empty.wav"), 8_000, 5);
    let repaired = build(&found.pairs, &encoder, &cache_dir, &options).expect("repaired");
    assert_eq!(names(&repaired.report), ["b-random", "b-truncated"]);
    assert_eq!((repaired.report.checked, repaired.report.recorded), (1, 2));
    assert_eq!(repaired.pairs.len(), 9);
    assert!(repaired.cache.feature("b-empty").is_some());
}

#[test]
fn more_broken_samples_than_the_limit_stop_the_run() {
    let work = tempfile::tempdir().expect("tempdir");
    let data = work.path().join("data");
    official_with_broken(&data, 2);
    let found = discover_official(&data).expect("discover");
    let encoder = image_encoder();
    let options = CacheOptions::new(2, &data);
    let err =
        build(&found.pairs, &encoder, &work.path().join("f"), &options).expect_err("3 of 5 broken");
    let TrainError::TooManyBroken {
        broken,
        total,
        ref path,
        ..
    } = err
    else {
        panic!("not the limit: {err}");
    };
    // The build stops as soon as the limit is passed, with what it found so far.
    assert!((1..=3).contains(&broken) && total == 5, "{err}");
    assert_eq!(path, &data);
    let message = err.to_string();
    assert!(message.contains("wrong folder"), "{message}");
    assert!(message.contains("--max-bad-fraction"), "{message}");

    // One broken pair among 21 is under 5 %.
    let more = work.path().join("more");
    official_with_broken(&more, 20);
    std::fs::remove_file(more.join("audios/b-empty.wav")).expect("rm");
    std::fs::remove_file(more.join("audios/b-truncated.mp4")).expect("rm");
    let found = discover_official(&more).expect("discover");
    assert_eq!(found.pairs.len(), 21);
    let built = build(
        &found.pairs,
        &encoder,
        &work.path().join("g"),
        &CacheOptions::new(8, &more),
    )
    .expect("under the limit");
    assert_eq!(names(&built.report), ["b-random"]);
    assert!(
        SkipPolicy::tolerating(1.5).validate().is_err(),
        "a fraction over 1 is refused"
    );
}

#[test]
fn strict_stops_at_the_first_broken_sample() {
    let work = tempfile::tempdir().expect("tempdir");
    let data = work.path().join("data");
    official_with_broken(&data, 3);
    let found = discover_official(&data).expect("discover");
    let options = CacheOptions {
        policy: SkipPolicy::strict(),
        ..CacheOptions::new(4, &data)
    };
    let err = build(
        &found.pairs,
        &image_encoder(),
        &work.path().join("f"),
        &options,
    )
    .expect_err("strict");
    assert!(matches!(err, TrainError::Audio(_)), "{err}");
    assert!(err.to_string().contains("b-empty.wav"), "{err}");
    // The plain build keeps its stop-at-first-error behaviour.
    let err = FeatureCache::build(
        &found.pairs,
        &image_encoder(),
        "f_v",
        work.path().join("g"),
        4,
        &device(),
        false,
    )
    .expect_err("undecodable image");
    assert!(err.to_string().contains("b-random.jpg"), "{err}");
}

#[test]
fn vggsound_reports_empty_frame_folders_audio_without_frames_and_bad_frames() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path().join("vgg");
    for v in 0..6 {
        for f in 1..=3 {
            write_png(&root.join(format!("frames/v{v}/{f:04}.png")), v * 3 + f);
        }
        write_wav(&root.join(format!("audios/v{v}.wav")), 8_000, v);
    }
    std::fs::create_dir_all(root.join("frames/x-empty")).expect("mkdir");
    write_wav(&root.join("audios/x-empty.wav"), 8_000, 7);
    write_wav(&root.join("audios/x-lonely.wav"), 8_000, 8);
    write_png(&root.join("frames/x-bad/0001.png"), 9);
    write_random(&root.join("frames/x-bad/0002.jpg"), 2_000);
    write_png(&root.join("frames/x-bad/0003.png"), 10);
    write_wav(&root.join("audios/x-bad.wav"), 8_000, 9);

    let found = discover_vggsound(&root, None).expect("discover");
    assert_eq!(found.pairs.len(), 7);
    let listed: Vec<(&str, &Path)> = found
        .skipped
        .iter()
        .map(|s| (s.name.as_str(), s.file.as_path()))
        .collect();
    let empty_dir = root.join("frames/x-empty");
    let lonely = root.join("audios/x-lonely.wav");
    assert_eq!(
        listed,
        [
            ("x-empty", empty_dir.as_path()),
            ("x-lonely", lonely.as_path())
        ]
    );
    assert!(
        found.skipped[0].cause.contains("no frame"),
        "{:?}",
        found.skipped
    );
    assert!(found.skipped[1].cause.contains("no frame folder"));

    let options = CacheOptions {
        policy: SkipPolicy::tolerating(0.5),
        earlier: found.skipped.clone(),
        ..CacheOptions::new(4, &root)
    };
    let built = build(
        &found.pairs,
        &image_encoder(),
        &work.path().join("f"),
        &options,
    )
    .expect("the run goes on");
    assert_eq!(names(&built.report), ["x-empty", "x-lonely", "x-bad"]);
    assert_eq!(
        built.report.skipped[2].file,
        root.join("frames/x-bad/0002.jpg")
    );
    assert_eq!(built.report.total, 9);
    assert_eq!(built.pairs.len(), 6);

    // Found broken before the cache, they count towards the limit and stop a strict run.
    let strict = CacheOptions {
        policy: SkipPolicy::strict(),
        ..options.clone()
    };
    let err = build(
        &found.pairs,
        &image_encoder(),
        &work.path().join("g"),
        &strict,
    )
    .expect_err("strict");
    assert!(err.to_string().contains("x-empty"), "{err}");
    let default = CacheOptions {
        policy: SkipPolicy::default(),
        ..options
    };
    let err = build(
        &found.pairs,
        &image_encoder(),
        &work.path().join("h"),
        &default,
    )
    .expect_err("3 of 9");
    assert!(matches!(err, TrainError::TooManyBroken { .. }), "{err}");
}

#[test]
fn an_image_folder_skips_undecodable_images_and_keeps_the_record() {
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path().join("images");
    for i in 0..20 {
        write_png(&dir.join(format!("sub/{i:02}.png")), i);
    }
    write_random(&dir.join("sub/07-bad.jpg"), 1_500);
    let record = work.path().join(SKIPPED_FILE);

    let (images, report) =
        SwavImages::from_dir_checked(&dir, &SkipPolicy::default(), Some(&record))
            .expect("1 of 21 is under 5 %");
    assert_eq!(images.len(), 20);
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.skipped[0].file, dir.join("sub/07-bad.jpg"));
    assert!(
        report.skipped[0]
            .cause
            .starts_with("cannot decode the image")
    );
    assert_eq!((report.total, report.checked, report.recorded), (21, 21, 0));
    // The good images are the set a clean folder would give: same fingerprint.
    let clean = work.path().join("clean");
    for i in 0..20 {
        write_png(&clean.join(format!("sub/{i:02}.png")), i);
    }
    assert_eq!(
        images.fingerprint(),
        SwavImages::from_dir(&clean).expect("clean").fingerprint()
    );

    // A resumed run reads the record instead of decoding again.
    let (again, reused) =
        SwavImages::from_dir_checked(&dir, &SkipPolicy::default(), Some(&record)).expect("again");
    assert_eq!((reused.checked, reused.recorded), (0, 1));
    assert_eq!(reused.skipped, report.skipped);
    assert_eq!(again.fingerprint(), images.fingerprint());

    // Strict stops at it; a second broken image (2 of 22) passes the limit.
    let err = SwavImages::from_dir_checked(&dir, &SkipPolicy::strict(), None).expect_err("strict");
    assert!(err.to_string().contains("07-bad.jpg"), "{err}");
    write_random(&dir.join("sub/08-bad.png"), 1_500);
    let err = SwavImages::from_dir_checked(&dir, &SkipPolicy::default(), Some(&record))
        .expect_err("2 of 22");
    assert!(
        matches!(
            err,
            TrainError::TooManyBroken {
                broken: 2,
                total: 22,
                ..
            }
        ),
        "{err}"
    );
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

fn max_difference(a: &AudioEncoder, b: &AudioEncoder) -> f32 {
    let (mut pa, mut pb) = (Collect(Vec::new()), Collect(Vec::new()));
    a.visit(&mut pa);
    b.visit(&mut pb);
    assert_eq!(pa.0.len(), pb.0.len());
    pa.0.iter()
        .flatten()
        .zip(pb.0.iter().flatten())
        .map(|(u, v)| (u - v).abs())
        .fold(0.0, f32::max)
}

#[test]
fn resume_after_a_kill_on_a_broken_data_set_matches_an_uninterrupted_run() {
    let work = tempfile::tempdir().expect("tempdir");
    let data = work.path().join("data");
    official_with_broken(&data, 8);
    let found = discover_official(&data).expect("discover");
    let encoder = image_encoder();
    let options = CacheOptions {
        policy: SkipPolicy::tolerating(0.5),
        ..CacheOptions::new(4, &data)
    };
    let config = AlignConfig::new()
        .with_encoder(
            AudioEncoderConfig::new()
                .with_resnet(
                    ResNetConfig::new(BlockKind::Basic, [1, 1, 1, 1])
                        .with_in_channels(1)
                        .with_base_width(4),
                )
                .with_out_dim(128),
        )
        .with_batch_size(4)
        .with_epochs(100)
        .with_val_fraction(0.0)
        .with_clip_seconds(0.5)
        .with_checkpoint_every(1)
        .with_max_steps(Some(5))
        .with_seed(3);
    let session = |built: &CacheBuild, out: &Path| {
        let data = AlignData::from_pairs(&built.pairs, &built.cache, config.spectrogram_config())
            .expect("data");
        AlignSession::new(config.clone(), data, out, device())
            .expect("session")
            .with_progress(ProgressMode::Never)
    };

    let straight_cache =
        build(&found.pairs, &encoder, &work.path().join("fa"), &options).expect("cache");
    let straight = session(&straight_cache, &work.path().join("a"))
        .run(false, AlignHooks::default())
        .expect("uninterrupted run");
    assert_eq!((straight.outcome, straight.steps), (Outcome::MaxSteps, 5));

    // Killed after step 3 (its checkpoint not written), then resumed from step 2.
    let cache_dir = work.path().join("fb");
    let first = build(&found.pairs, &encoder, &cache_dir, &options).expect("cache");
    assert_eq!(first.report.skipped, straight_cache.report.skipped);
    let out = work.path().join("b");
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
    let killed = session(&first, &out).run(false, hooks).expect("killed run");
    assert_eq!(killed.outcome, Outcome::Aborted);
    assert_eq!(
        latest_complete(&out).expect("list").map(|(s, _)| s),
        Some(2)
    );
    let again = build(&found.pairs, &encoder, &cache_dir, &options).expect("cache again");
    assert_eq!((again.report.checked, again.report.recorded), (0, 3));
    let resumed = session(&again, &out)
        .run(true, AlignHooks::default())
        .expect("resumed run");
    assert_eq!(resumed.steps, 5);
    assert!(resumed.resumed_from.is_some());
    let diff = max_difference(&straight.model, &resumed.model);
    assert!(diff <= RESUME_TOLERANCE, "kill + resume differs by {diff}");
}
