//! The `sound2scene` binary end to end on the fixture checkpoints and samples: every command
//! writes what it promises, and bad input is a clear error, never a panic.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{WavSamples, fixtures_dir, require, samples_dir, wav_bytes};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sound2scene"))
        .args(args)
        .output()
        .expect("the binary starts")
}

fn ok(args: &[&str]) -> String {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?} failed: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

struct Fixtures {
    audio_weights: PathBuf,
    generator: PathBuf,
    image_weights: PathBuf,
    cow: PathBuf,
    ocean: PathBuf,
    photo: PathBuf,
}

fn fixtures() -> Option<Fixtures> {
    let models = fixtures_dir().join("models");
    let photo_dir = require(samples_dir().join("training/images"))?;
    let photo = std::fs::read_dir(photo_dir).ok()?.flatten().next()?.path();
    Some(Fixtures {
        audio_weights: require(models.join("sound2scene_audio_resnet18.pth"))?,
        generator: require(models.join("icgan_biggan_ch8_res128"))?,
        image_weights: require(models.join("swav_resnet50_layers1111.pth.tar"))?,
        cow: require(samples_dir().join("inference/cow.wav"))?,
        ocean: require(samples_dir().join("inference/ocean.wav"))?,
        photo,
    })
}

fn npy_shape(path: &Path) -> Vec<usize> {
    sound2scene::audio::read_npy_f32(path)
        .expect("valid npy")
        .shape
}

#[test]
fn spectrogram_command_writes_npy_and_png() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bell = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/sounds/bell.wav");
    let (npy, png) = (dir.path().join("bell.npy"), dir.path().join("bell.png"));
    ok(&[
        "spectrogram",
        "--audio",
        s(&bell),
        "--out",
        s(&npy),
        "--png",
        s(&png),
    ]);
    assert_eq!(npy_shape(&npy), vec![257, 1004]);
    let picture = image::open(&png).expect("a PNG").to_rgb8();
    assert_eq!(picture.dimensions(), (1004, 257));
    let short = dir.path().join("short.npy");
    ok(&[
        "spectrogram",
        "--audio",
        s(&bell),
        "--out",
        s(&short),
        "--seconds",
        "2",
    ]);
    assert_eq!(npy_shape(&short)[0], 257);
    assert!(npy_shape(&short)[1] < 250);
}

#[test]
fn short_clips_are_cut_as_the_official_code_cuts_them_unless_filled() {
    let Some(short) = require(fixtures_dir().join("audio/short_500ms.wav")) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let (official, filled) = (
        dir.path().join("official.npy"),
        dir.path().join("filled.npy"),
    );
    ok(&["spectrogram", "--audio", s(&short), "--out", s(&official)]);
    assert_eq!(npy_shape(&official), vec![257, 500]);
    ok(&[
        "spectrogram",
        "--audio",
        s(&short),
        "--out",
        s(&filled),
        "--fill",
    ]);
    assert_eq!(npy_shape(&filled), vec![257, 1004]);

    // A 10 s clip and a 0.5 s clip have spectrograms of different widths; both are encoded.
    let Some(f) = fixtures() else {
        return;
    };
    let features = dir.path().join("z.npy");
    ok(&[
        "embed-audio",
        "--weights",
        s(&f.audio_weights),
        "--audio",
        s(&f.cow),
        s(&short),
        "--out",
        s(&features),
    ]);
    assert_eq!(npy_shape(&features), vec![2, 2048]);
}

#[test]
fn a_cut_off_file_is_used_with_a_printed_warning() {
    // The first 1000 bytes of a 10 s, 16 kHz mono 16-bit WAV: 478 samples, about 0.03 s.
    let dir = tempfile::tempdir().expect("temp dir");
    let samples: Vec<f32> = (0..160_000)
        .map(|i| (i as f32 * 0.17).sin() * 8_000.0 / 32_767.0)
        .collect();
    let bytes = wav_bytes(&samples, 16_000, WavSamples::Pcm16);
    let cut = dir.path().join("cut.wav");
    std::fs::write(&cut, &bytes[..1000]).expect("write");
    let out = run(&[
        "spectrogram",
        "--audio",
        s(&cut),
        "--out",
        s(&dir.path().join("cut.npy")),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: ") && stderr.contains("declares 10.0 s, holds 0.03 s"),
        "{stderr}"
    );
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fake = dir.path().join("fake.wav");
    std::fs::write(&fake, b"this is not audio").expect("write");
    let out = run(&[
        "spectrogram",
        "--audio",
        s(&fake),
        "--out",
        s(&dir.path().join("x.npy")),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("fake.wav"), "names the file: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let out = run(&[
        "embed-audio",
        "--weights",
        s(&fake),
        "--audio",
        s(&fake),
        "--out",
        "x.npy",
    ]);
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    let out = run(&[
        "generate",
        "--generator",
        s(dir.path()),
        "--feature",
        s(&fake),
        "--out",
        "x.png",
        "--device",
        "cuda",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cuda"));
}

#[test]
fn embed_and_generate_commands_run_on_the_released_formats() {
    let Some(f) = fixtures() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let za = dir.path().join("za.npy");
    let pooled = dir.path().join("pooled.npy");
    ok(&[
        "embed-audio",
        "--weights",
        s(&f.audio_weights),
        "--audio",
        s(&f.cow),
        s(&f.ocean),
        "--out",
        s(&za),
        "--pooled-out",
        s(&pooled),
    ]);
    assert_eq!(npy_shape(&za), vec![2, 2048]);
    assert_eq!(npy_shape(&pooled), vec![2, 512]);

    let spec_in = fixtures_dir().join("models/audio_in_cow_ocean.npy");
    let zs = dir.path().join("zs.npy");
    ok(&[
        "embed-audio",
        "--weights",
        s(&f.audio_weights),
        "--spectrogram",
        s(&spec_in),
        "--out",
        s(&zs),
    ]);
    assert_eq!(npy_shape(&zs), vec![2, 2048]);

    let zv = dir.path().join("zv.npy");
    ok(&[
        "embed-image",
        "--weights",
        s(&f.image_weights),
        "--image",
        s(&f.photo),
        "--out",
        s(&zv),
    ]);
    assert_eq!(npy_shape(&zv), vec![1, 2048]);

    let png = dir.path().join("scene.png");
    let raw = dir.path().join("scene.npy");
    ok(&[
        "generate",
        "--generator",
        s(&f.generator),
        "--audio",
        s(&f.cow),
        "--audio-weights",
        s(&f.audio_weights),
        "--count",
        "2",
        "--seed",
        "3",
        "--out",
        s(&png),
        "--out-npy",
        s(&raw),
    ]);
    assert_eq!(npy_shape(&raw), vec![2, 3, 128, 128]);
    let raw_values = sound2scene::audio::read_npy_f32(&raw).expect("npy").data;
    assert!(raw_values.iter().all(|v| (-1.0..=1.0).contains(v)));

    let from_feature = dir.path().join("feature.npy");
    ok(&[
        "generate",
        "--generator",
        s(&f.generator),
        "--feature",
        s(&za),
        "--seed",
        "3",
        "--count",
        "2",
        "--out",
        s(&png),
        "--out-npy",
        s(&from_feature),
    ]);
    assert_eq!(npy_shape(&from_feature), vec![4, 3, 128, 128]);
    let first_row = &sound2scene::audio::read_npy_f32(&from_feature)
        .expect("npy")
        .data[..raw_values.len()];
    let err = first_row
        .iter()
        .zip(&raw_values)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(
        err < 1e-4,
        "cow's row from its feature equals generation from the sound: {err}"
    );

    ok(&[
        "generate",
        "--generator",
        s(&f.generator),
        "--audio",
        s(&f.cow),
        "--audio-weights",
        s(&f.audio_weights),
        "--mix",
        s(&f.ocean),
        "--gain-db",
        "-6",
        "--out",
        s(&png),
    ]);
    assert!(image::open(&png).is_ok());
}

#[test]
fn convert_round_trips_to_burnpack() {
    let Some(f) = fixtures() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let spec_in = fixtures_dir().join("models/audio_in_cow_ocean.npy");
    let reference = dir.path().join("ref.npy");
    ok(&[
        "embed-audio",
        "--weights",
        s(&f.audio_weights),
        "--spectrogram",
        s(&spec_in),
        "--out",
        s(&reference),
    ]);
    let want = sound2scene::audio::read_npy_f32(&reference)
        .expect("npy")
        .data;
    for (half, tol) in [(false, 0.0f32), (true, 1e-2)] {
        let bpk = dir
            .path()
            .join(if half { "audio16.bpk" } else { "audio.bpk" });
        let mut args = vec!["convert", "--from", s(&f.audio_weights), "--to", s(&bpk)];
        if half {
            args.push("--half");
        }
        ok(&args);
        let got_path = dir.path().join("got.npy");
        ok(&[
            "embed-audio",
            "--weights",
            s(&bpk),
            "--spectrogram",
            s(&spec_in),
            "--out",
            s(&got_path),
        ]);
        let got = sound2scene::audio::read_npy_f32(&got_path)
            .expect("npy")
            .data;
        let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        let err = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(err <= tol * scale, "half={half}: max error {err}");
    }
    let g_bpk = dir.path().join("g.bpk");
    ok(&["convert", "--from", s(&f.generator), "--to", s(&g_bpk)]);
    let za = dir.path().join("za.npy");
    ok(&[
        "embed-audio",
        "--weights",
        s(&f.audio_weights),
        "--audio",
        s(&f.cow),
        "--out",
        s(&za),
    ]);
    let (a, b) = (dir.path().join("a.npy"), dir.path().join("b.npy"));
    let png = dir.path().join("x.png");
    ok(&[
        "generate",
        "--generator",
        s(&f.generator),
        "--feature",
        s(&za),
        "--out",
        s(&png),
        "--out-npy",
        s(&a),
    ]);
    ok(&[
        "generate",
        "--generator",
        s(&g_bpk),
        "--feature",
        s(&za),
        "--out",
        s(&png),
        "--out-npy",
        s(&b),
    ]);
    let (a, b) = (
        sound2scene::audio::read_npy_f32(&a).expect("npy").data,
        sound2scene::audio::read_npy_f32(&b).expect("npy").data,
    );
    assert_eq!(a, b, "the burnpack generator draws the same image");
}

#[test]
fn eval_commands_print_name_value_lines() {
    let metrics = fixtures_dir().join("metrics");
    let (Some(a), Some(b), Some(logits)) = (
        require(metrics.join("fid_feats_a.npy")),
        require(metrics.join("fid_feats_b.npy")),
        require(metrics.join("is_logits.npy")),
    ) else {
        return;
    };
    let fid = ok(&["eval", "fid", "--features-a", s(&a), "--features-b", s(&b)]);
    assert!(fid.starts_with("fid "), "{fid}");
    let is = ok(&["eval", "is", "--logits", s(&logits)]);
    assert!(is.contains("is_mean ") && is.contains("is_std "), "{is}");
    let r = ok(&["eval", "retrieval", "--queries", s(&a), "--keys", s(&a)]);
    assert!(r.contains("r_at_1 1.0000"), "a set finds itself: {r}");
}

#[test]
fn control_commands_write_labelled_grids() {
    let Some(f) = fixtures() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let common = |out: &Path| -> Vec<String> {
        [
            "--audio-weights",
            s(&f.audio_weights),
            "--generator",
            s(&f.generator),
            "--count",
            "2",
            "--out",
            s(out),
        ]
        .map(String::from)
        .to_vec()
    };
    let with = |head: &[&str], out: &Path| -> Vec<String> {
        let mut v: Vec<String> = head.iter().map(|x| x.to_string()).collect();
        v.extend(common(out));
        v
    };
    let check = |args: Vec<String>, out: &Path, rows: u32| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        ok(&refs);
        let img = image::open(out).expect("PNG").to_rgb8();
        assert!(
            img.height() >= rows * 128,
            "{} rows in {}",
            rows,
            out.display()
        );
    };
    let sweep = dir.path().join("sweep.png");
    check(
        with(
            &["volume-sweep", "--audio", s(&f.cow), "--gains=-6,0,6"],
            &sweep,
        ),
        &sweep,
        3,
    );
    let interp = dir.path().join("interp.png");
    check(
        with(
            &[
                "interpolate",
                "--from",
                s(&f.cow),
                "--to",
                s(&f.ocean),
                "--steps",
                "3",
                "--slerp",
            ],
            &interp,
        ),
        &interp,
        3,
    );
    let comp = dir.path().join("compose.png");
    check(
        with(
            &[
                "compose",
                "--image",
                s(&f.photo),
                "--image-weights",
                s(&f.image_weights),
                "--audio",
                s(&f.cow),
                "--alpha",
                "0,1",
            ],
            &comp,
        ),
        &comp,
        2,
    );
    let edit = dir.path().join("edit.png");
    check(
        with(
            &[
                "edit",
                "--image",
                s(&f.photo),
                "--image-weights",
                s(&f.image_weights),
                "--quiet",
                s(&f.cow),
                "--loud",
                s(&f.ocean),
                "--steps",
                "3",
            ],
            &edit,
        ),
        &edit,
        1,
    );
}

#[test]
fn generate_without_weights_uses_the_bundled_model_or_says_how_to_get_it() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bundle = repo.join("assets/models/sound2scene-tiny");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("scene.png");
    let result = run(&[
        "generate",
        "--audio",
        s(&repo.join("assets/sounds/bell.wav")),
        "--out",
        s(&out),
    ]);
    let shipped = ["audio_encoder.bpk", "generator.bpk"]
        .iter()
        .all(|f| bundle.join(f).is_file());
    if shipped {
        assert!(result.status.success(), "{result:?}");
        assert!(out.is_file());
    } else {
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(!result.status.success());
        assert!(
            stderr.contains("bundled model is missing") && stderr.contains("train_tiny.sh"),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn generate_best_of_k_writes_a_picture_and_refuses_zero() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("scene.png");
    let bell = repo.join("assets/sounds/bell.wav");
    let args = |k: &'static str| {
        [
            "generate",
            "--audio",
            s(&bell),
            "--count",
            "2",
            "--rerank",
            k,
            "--out",
            s(&out),
        ]
    };
    let stdout = ok(&args("4"));
    assert!(stdout.contains("1 x 2 images"), "{stdout}");
    let picture = image::open(&out).expect("a PNG").to_rgb8();
    assert!(
        picture.width() > picture.height(),
        "two pictures side by side"
    );

    let result = run(&args("0"));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(!result.status.success());
    assert!(stderr.contains("--rerank must be at least 1"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    // One's own generator needs its own image encoder for reranking.
    let generator = repo.join("assets/models/sound2scene-tiny/generator.bpk");
    let result = run(&[
        "generate",
        "--audio",
        s(&bell),
        "--generator",
        s(&generator),
        "--rerank",
        "2",
        "--out",
        s(&out),
    ]);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(!result.status.success());
    assert!(stderr.contains("give --image-weights too"), "{stderr}");
}

#[test]
fn controls_without_weights_use_the_bundled_model() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("tempdir");
    let bell = repo.join("assets/sounds/bell.wav");
    let sweep = dir.path().join("sweep.png");
    let stdout = ok(&[
        "volume-sweep",
        "--audio",
        s(&bell),
        "--gains=-6,0,6",
        "--count",
        "2",
        "--out",
        s(&sweep),
    ]);
    assert!(stdout.contains("3 rows x 2 images"), "{stdout}");
    let grid = image::open(&sweep).expect("a PNG").to_rgb8();
    assert!(grid.height() >= 3 * 32, "three rows of 32-pixel pictures");

    // compose needs f_V too, also taken from the bundle.
    let photo = dir.path().join("photo.png");
    image::RgbImage::from_fn(32, 32, |x, y| {
        image::Rgb([(8 * x) as u8, 200, (8 * y) as u8])
    })
    .save(&photo)
    .expect("write the photo");
    let composed = dir.path().join("compose.png");
    let stdout = ok(&[
        "compose",
        "--image",
        s(&photo),
        "--audio",
        s(&bell),
        "--alpha",
        "0,1",
        "--out",
        s(&composed),
    ]);
    assert!(stdout.contains("2 rows x 3 images"), "{stdout}");
    assert!(composed.is_file());

    // Best of k in a control, and edit, which draws from inverted noise, refusing it.
    let reranked = dir.path().join("reranked.png");
    let stdout = ok(&[
        "volume-sweep",
        "--audio",
        s(&bell),
        "--gains=-6,6",
        "--rerank",
        "3",
        "--out",
        s(&reranked),
    ]);
    assert!(stdout.contains("2 rows x 3 images"), "{stdout}");
    let result = run(&[
        "edit",
        "--image",
        s(&photo),
        "--quiet",
        s(&bell),
        "--loud",
        s(&bell),
        "--rerank",
        "2",
        "--out",
        s(&reranked),
    ]);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(!result.status.success());
    assert!(stderr.contains("--rerank does not apply"), "{stderr}");
}

#[test]
fn out_of_range_inputs_say_what_is_allowed() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bell = repo.join("assets/sounds/bell.wav");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("x.png");
    let refused = |args: &[&str], expected: &str| {
        let result = run(args);
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(!result.status.success(), "{args:?} is refused");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!out.exists(), "nothing is written");
    };
    for (extra, expected) in [
        (
            &["--count", "0"][..],
            "--count must be at least 1 and at most 10000, got 0",
        ),
        (
            &["--count", "20000"][..],
            "--count must be at least 1 and at most 10000",
        ),
        (
            &["--mix", "x.wav", "--mix-weight", "2"][..],
            "--mix-weight must be in [0, 1]",
        ),
        (
            &["--gain-db", "1000"][..],
            "--gain-db must be within ±60 dB, got 1000 dB",
        ),
        (
            &["--rerank", "100000"][..],
            "--rerank must be at least 1 (1 draws once) and at most 1000, got 100000",
        ),
        (
            &["--batch-size", "0"][..],
            "--batch-size must be at least 1",
        ),
    ] {
        let mut args = vec!["generate", "--audio", s(&bell), "--out", s(&out)];
        args.extend_from_slice(extra);
        refused(&args, expected);
    }
    refused(
        &[
            "interpolate",
            "--from",
            s(&bell),
            "--to",
            s(&bell),
            "--steps",
            "1000000",
            "--out",
            s(&out),
        ],
        "--steps must be at least 2 (both endpoints) and at most 1000, got 1000000",
    );
    let photo = dir.path().join("photo.png");
    image::RgbImage::from_pixel(32, 32, image::Rgb([40, 160, 60]))
        .save(&photo)
        .expect("write the photo");
    refused(
        &[
            "edit",
            "--image",
            s(&photo),
            "--quiet",
            s(&bell),
            "--loud",
            s(&bell),
            "--steps",
            "100000000",
            "--out",
            s(&out),
        ],
        "--steps must be at least 1 and at most 10000, got 100000000",
    );
    refused(
        &[
            "edit",
            "--image",
            s(&photo),
            "--quiet",
            s(&bell),
            "--loud",
            s(&bell),
            "--strength",
            "0,NaN",
            "--out",
            s(&out),
        ],
        "--strength must be finite numbers, got NaN",
    );
    refused(
        &[
            "volume-sweep",
            "--audio",
            s(&bell),
            "--gains=0,1000",
            "--out",
            s(&out),
        ],
        "--gains must be within ±60 dB",
    );
    refused(
        &[
            "volume-sweep",
            "--audio",
            s(&bell),
            "--rerank",
            "100000",
            "--out",
            s(&out),
        ],
        "--rerank must be at least 1 (1 draws once) and at most 1000",
    );
}

#[test]
fn live_writes_one_gif_frame_per_hop_and_refuses_bad_timing() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("tempdir");
    // 7 s: the cow (4 s) then the engine (3 s).
    let cow =
        sound2scene::audio::load_audio(repo.join("assets/sounds/field_cow.wav")).expect("decodes");
    let engine =
        sound2scene::audio::load_audio(repo.join("assets/sounds/engine.wav")).expect("decodes");
    let both: Vec<f32> = cow.samples.iter().chain(&engine.samples).copied().collect();
    let long = dir.path().join("long.wav");
    std::fs::write(&long, wav_bytes(&both, 16_000, WavSamples::Pcm16)).expect("write");
    let gif = dir.path().join("scene.gif");
    let stdout = ok(&[
        "live",
        "--audio",
        s(&long),
        "--hop",
        "0.5",
        "--window",
        "2",
        "--count",
        "2",
        "--out",
        s(&gif),
    ]);
    assert!(stdout.contains("14 pictures"), "{stdout}");
    let decoder = image::codecs::gif::GifDecoder::new(std::io::BufReader::new(
        std::fs::File::open(&gif).expect("the GIF"),
    ))
    .expect("a GIF");
    let frames = image::AnimationDecoder::into_frames(decoder)
        .collect_frames()
        .expect("frames");
    assert_eq!(frames.len(), 14, "one frame per 0.5 s hop of 7 s");
    let (numer, denom) = frames[0].delay().numer_denom_ms();
    assert_eq!(numer / denom, 500, "played in real time");
    // Two 32-pixel pictures side by side, enlarged four times.
    assert_eq!(frames[0].buffer().dimensions(), (256, 128));
    assert_ne!(
        frames[5].buffer(),
        frames[13].buffer(),
        "the cow's scene and the engine's differ"
    );

    for (flag, value, named) in [
        ("--hop", "0", "hop"),
        ("--window", "30", "window"),
        ("--smoothing", "1", "smoothing"),
        ("--count", "17", "count"),
    ] {
        let out = run(&["live", "--audio", s(&long), flag, value, "--out", s(&gif)]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flag} {value} accepted");
        assert!(stderr.contains(named), "{flag} {value}: {stderr}");
    }
}

/// `synth --world` reads a world description, the options override it, and the ground truth
/// records each clip's recording level.
#[test]
fn synth_reads_a_world_description_and_records_levels() {
    let dir = tempfile::tempdir().expect("temp dir");
    let world = dir.path().join("world.json");
    std::fs::write(
        &world,
        r#"{"seconds": 2.0, "image_size": 64, "level_db_range": [-9, 9]}"#,
    )
    .expect("write world.json");
    let out = dir.path().join("data");
    ok(&[
        "synth",
        "--out",
        s(&out),
        "--clips",
        "40",
        "--world",
        s(&world),
        "--image-size",
        "16",
    ]);
    let text = std::fs::read_to_string(out.join("ground_truth.json")).expect("ground truth");
    let truth: sound2scene::synth::DatasetTruth = serde_json::from_str(&text).expect("parses");
    assert_eq!(truth.config.seconds, 2.0);
    assert_eq!(truth.config.image_size, 16);
    let levels: Vec<f32> = truth.clips.iter().map(|c| c.level_db).collect();
    assert!(
        levels.iter().all(|l| (-9.0..=9.0).contains(l)),
        "{levels:?}"
    );
    assert!(levels.iter().any(|&l| l < -3.0) && levels.iter().any(|&l| l > 3.0));

    std::fs::write(&world, r#"{"level_db": 3}"#).expect("write a typo");
    let failed = run(&["synth", "--out", s(&out), "--world", s(&world)]);
    assert!(!failed.status.success());
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains("world.json") && stderr.contains("level_db"),
        "{stderr}"
    );
}

/// `synth-sound --background` records the source over the background's bed, sounding only in
/// its interval: the bed is 30 dB below a 0 dB source.
#[test]
fn synth_sound_over_a_background_sounds_in_its_interval() {
    let dir = tempfile::tempdir().expect("temp dir");
    let wav = dir.path().join("cow.wav");
    ok(&[
        "synth-sound",
        "--class",
        "cow",
        "--background",
        "field",
        "--interval",
        "1,2",
        "--seconds",
        "3",
        "--out",
        s(&wav),
    ]);
    let wave = sound2scene::audio::load_audio(&wav).expect("decodes");
    let samples = &wave.samples;
    assert_eq!(samples.len(), 48_000);
    let rms = |part: &[f32]| (part.iter().map(|x| x * x).sum::<f32>() / part.len() as f32).sqrt();
    let (before, during, after) = (
        rms(&samples[..15_000]),
        rms(&samples[17_000..31_000]),
        rms(&samples[33_000..]),
    );
    assert!(
        during > 10.0 * before && during > 10.0 * after,
        "{before} {during} {after}"
    );
    assert!(before > 0.0 && after > 0.0, "the bed is silent");

    for bad in [&["--interval", "1"][..], &["--background", "moon"][..]] {
        let mut args = vec!["synth-sound", "--class", "cow", "--out", s(&wav)];
        if bad[0] == "--interval" {
            args.extend(["--background", "field"]);
        }
        args.extend(bad);
        let failed = run(&args);
        assert!(!failed.status.success(), "{args:?} accepted");
        let stderr = String::from_utf8_lossy(&failed.stderr);
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
