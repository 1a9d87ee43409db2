//! Live scenes (crates/sound2scene-infer/src/live.rs): a stream cut into chunks draws what a
//! clip draws, smoothing steadies the pictures, and the settings are checked.

use std::path::Path;

use burn::tensor::Device;
use image::RgbImage;
use sound2scene_audio::{Waveform, load_audio};
use sound2scene_infer::bundle::{default_model_dir, load_pipeline};
use sound2scene_infer::{InferError, LiveSettings, SceneStream, SoundToScene};

/// The bundled model, or `None` (a skip) in a checkout without it.
fn bundled() -> Option<SoundToScene> {
    if !default_model_dir().join("generator.bpk").is_file() {
        eprintln!("skip: the bundled model is not in this checkout");
        return None;
    }
    Some(load_pipeline(default_model_dir(), &Device::flex()).expect("the bundled model loads"))
}

fn sound(name: &str) -> Waveform {
    load_audio(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../assets/sounds")
            .join(name),
    )
    .expect("the bundled sound decodes")
}

/// `wave` repeated (or cut) to exactly `seconds`.
fn exactly(wave: &Waveform, seconds: f64) -> Waveform {
    wave.tile_to((seconds * f64::from(wave.sample_rate)).round() as usize)
}

/// Mean absolute difference of two pictures in 8-bit levels.
fn mean_diff(a: &RgbImage, b: &RgbImage) -> f64 {
    let total: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| u64::from(x.abs_diff(y)))
        .sum();
    total as f64 / a.as_raw().len() as f64
}

/// Push `wave` in chunks of `chunk` samples and collect every frame's time and pictures.
fn stream_all(
    stream: &mut SceneStream<'_>,
    wave: &Waveform,
    chunk: usize,
) -> Vec<(f64, Vec<RgbImage>)> {
    let mut frames = Vec::new();
    for samples in wave.samples.chunks(chunk) {
        for frame in stream
            .push(samples, wave.sample_rate, 1)
            .expect("a valid chunk")
        {
            frames.push((frame.time_secs, frame.images));
        }
    }
    frames
}

#[test]
fn a_full_window_without_smoothing_draws_what_generate_draws() {
    let Some(pipeline) = bundled() else { return };
    let clip = exactly(&sound("field_cow.wav"), 10.0);
    let settings = LiveSettings {
        hop_secs: 2.5,
        smoothing: 0.0,
        count: 2,
        seed: 11,
        ..LiveSettings::default()
    };
    let mut stream = SceneStream::new(&pipeline, &settings).expect("valid settings");
    // Chunks of 0.1 s at 16 kHz, as a microphone delivers them.
    let frames = stream_all(&mut stream, &clip, 1_600);
    let times: Vec<f64> = frames.iter().map(|(t, _)| *t).collect();
    assert_eq!(times, vec![2.5, 5.0, 7.5, 10.0], "one frame per hop");
    let want = pipeline.generate(&clip, 2, 11).expect("generate");
    let (_, last) = &frames[3];
    assert_eq!(last.len(), 2);
    for (got, want) in last.iter().zip(&want) {
        assert_eq!(
            got, want,
            "the window holding the whole clip is drawn as the clip"
        );
    }
    // Earlier windows hold less of the clip: the official tiling of a shorter sound.
    let first = pipeline
        .generate(&exactly(&clip, 2.5), 2, 11)
        .expect("generate");
    assert_eq!(frames[0].1, first);
}

#[test]
fn chunk_sizes_and_input_rates_do_not_change_the_pictures() {
    let Some(pipeline) = bundled() else { return };
    let clip = exactly(&sound("bell.wav"), 3.0);
    let settings = LiveSettings {
        hop_secs: 1.0,
        window_secs: Some(2.0),
        ..LiveSettings::default()
    };
    let mut small = SceneStream::new(&pipeline, &settings).expect("valid settings");
    let mut large = SceneStream::new(&pipeline, &settings).expect("valid settings");
    let a = stream_all(&mut small, &clip, 333);
    let b = stream_all(&mut large, &clip, 48_000);
    assert_eq!(a.len(), 3);
    assert_eq!(
        a.iter().map(|f| f.0).collect::<Vec<_>>(),
        b.iter().map(|f| f.0).collect::<Vec<_>>()
    );
    for ((_, x), (_, y)) in a.iter().zip(&b) {
        assert_eq!(x, y, "the same windows whatever the chunks");
    }

    // The same sound as 48 kHz stereo: downmixed and resampled on the way in, so the windows
    // are the resampled sound's (a little later: the resampler holds back one block).
    let stereo = Waveform::interleaved(
        clip.resample(48_000)
            .expect("resample")
            .samples
            .iter()
            .flat_map(|&s| [s, s])
            .collect(),
        48_000,
        2,
    )
    .expect("whole frames");
    let mut from_stereo = SceneStream::new(&pipeline, &settings).expect("valid settings");
    let mut frames = Vec::new();
    for samples in stereo.samples.chunks(9_600) {
        frames.extend(from_stereo.push(samples, 48_000, 2).expect("a valid chunk"));
    }
    assert_eq!(
        frames.len(),
        2,
        "the last hop waits for the held-back block"
    );
    for (frame, (_, mono)) in frames.iter().zip(&a) {
        let diff = mean_diff(&frame.images[0], &mono[0]);
        assert!(
            diff < 2.0,
            "resampled twice, the picture stays the same: {diff} levels"
        );
    }
}

#[test]
fn smoothing_steadies_the_pictures_when_the_sound_changes() {
    let Some(pipeline) = bundled() else { return };
    let cow = exactly(&sound("field_cow.wav"), 4.0);
    let engine = exactly(&sound("engine.wav"), 4.0);
    let both: Vec<f32> = cow.samples.iter().chain(&engine.samples).copied().collect();
    let both = Waveform::mono(both, cow.sample_rate);
    let run = |smoothing: f32| {
        let settings = LiveSettings {
            hop_secs: 0.5,
            window_secs: Some(2.0),
            smoothing,
            ..LiveSettings::default()
        };
        let mut stream = SceneStream::new(&pipeline, &settings).expect("valid settings");
        let frames = stream_all(&mut stream, &both, 4_000);
        assert_eq!(frames.len(), 16);
        // The largest change between consecutive pictures, and the change from the cow's
        // last picture to the engine's last.
        let steps: Vec<f64> = frames
            .windows(2)
            .map(|w| mean_diff(&w[0].1[0], &w[1].1[0]))
            .collect();
        let largest = steps.iter().copied().fold(0.0, f64::max);
        (largest, mean_diff(&frames[7].1[0], &frames[15].1[0]))
    };
    let (jump_raw, change_raw) = run(0.0);
    let (jump_smooth, change_smooth) = run(0.8);
    assert!(
        change_raw > 3.0,
        "the scene changes with the sound: {change_raw}"
    );
    assert!(
        change_smooth > 3.0,
        "smoothed, it still changes: {change_smooth}"
    );
    assert!(
        jump_smooth < jump_raw,
        "smoothing makes the largest step smaller: {jump_smooth} vs {jump_raw}"
    );
}

#[test]
fn settings_out_of_range_are_refused_by_name() {
    let Some(pipeline) = bundled() else { return };
    let refused = |settings: LiveSettings, name: &str| match SceneStream::new(&pipeline, &settings)
    {
        Err(InferError::OutOfRange { what, .. }) => assert_eq!(what, name),
        Err(other) => panic!("{name}: wrong error {other}"),
        Ok(_) => panic!("{name}: accepted"),
    };
    let base = LiveSettings::default();
    refused(
        LiveSettings {
            hop_secs: 0.0,
            ..base.clone()
        },
        "hop",
    );
    refused(
        LiveSettings {
            hop_secs: f32::NAN,
            ..base.clone()
        },
        "hop",
    );
    refused(
        LiveSettings {
            window_secs: Some(2.0),
            hop_secs: 3.0,
            ..base.clone()
        },
        "hop",
    );
    refused(
        LiveSettings {
            window_secs: Some(11.0),
            ..base.clone()
        },
        "window",
    );
    refused(
        LiveSettings {
            smoothing: 1.0,
            ..base.clone()
        },
        "smoothing",
    );
    refused(
        LiveSettings {
            count: 0,
            ..base.clone()
        },
        "count",
    );
    refused(
        LiveSettings {
            count: 17,
            ..base.clone()
        },
        "count",
    );
    refused(
        LiveSettings {
            gain_db: 61.0,
            ..base.clone()
        },
        "gain",
    );

    let mut stream = SceneStream::new(&pipeline, &base).expect("defaults are valid");
    assert!(matches!(
        stream.push(&[0.0, 0.1, 0.2], 16_000, 2),
        Err(InferError::Audio(_))
    ));
    assert!(matches!(
        stream.push(&[f32::INFINITY], 16_000, 1),
        Err(InferError::Audio(_))
    ));
    assert!(stream.set_gain_db(f32::NAN).is_err());
    assert!(stream.set_gain_db(6.0).is_ok());
}

#[test]
fn a_louder_stream_draws_what_a_louder_clip_draws() {
    let Some(pipeline) = bundled() else { return };
    let clip = exactly(&sound("field_cow.wav"), 2.0);
    let settings = LiveSettings {
        hop_secs: 2.0,
        window_secs: Some(2.0),
        smoothing: 0.0,
        gain_db: 9.0,
        ..LiveSettings::default()
    };
    let mut stream = SceneStream::new(&pipeline, &settings).expect("valid settings");
    let frames = stream_all(&mut stream, &clip, 16_000);
    let louder = clip.gain_db(9.0).expect("gain");
    assert_eq!(
        frames[0].1,
        pipeline.generate(&louder, 1, 0).expect("generate")
    );
}
