//! `sound2scene train-align` as a user runs it: end to end on the shared training samples, and
//! killed (SIGKILL) at random points while it writes a checkpoint every step, resuming each
//! time, ending on the same weights as a run that was never interrupted.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sound2scene::models::LoadOptions;
use sound2scene::models::burnpack::{self, NetworkKind, Precision};
use sound2scene::models::checkpoint::open_audio_encoder;
use sound2scene::models::image_encoder::ImageEncoderConfig;
use sound2scene::models::resnet::{BlockKind, ResNetConfig};
use sound2scene::synth::{Layout, World, WorldConfig, write_dataset};
use sound2scene::train::align::{MODEL_FILE, STATE_FILE};
use sound2scene::train::checkpoint::{latest_complete, list_complete};

use common::{fixtures_dir, require, samples_dir};

fn command(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sound2scene"));
    cmd.args(args);
    cmd
}

fn ok(args: &[&str]) -> String {
    let out: Output = command(args).output().expect("the binary starts");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?} failed: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn trains_on_the_shared_samples_end_to_end() {
    let Some(data) = require(samples_dir().join("training")) else {
        return;
    };
    let Some(swav) = require(fixtures_dir().join("models/swav_resnet50_layers1111.pth.tar")) else {
        return;
    };
    let out = tempfile::tempdir().expect("tempdir");
    let run = out.path().join("run");
    let args = [
        "train-align",
        "--data",
        s(&data),
        "--image-encoder",
        s(&swav),
        "--out",
        s(&run),
        "--audio-width",
        "4",
        "--batch-size",
        "2",
        "--val-fraction",
        "0.25",
        "--epochs",
        "2",
        "--no-progress",
    ];
    let output = command(&args).output().expect("the binary starts");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{args:?} failed: {stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(stdout.contains("4 audio/image pairs"), "{stdout}");
    assert!(stdout.contains("finished after"), "{stdout}");
    // A quarter of 4 pairs is one validation clip, over which InfoNCE is always 0: the run
    // says so and keeps `best` by the training loss.
    assert!(
        stderr.contains("note: ") && stderr.contains("holds out 1 clip"),
        "{stderr}"
    );
    assert!(stdout.contains("best training loss"), "{stdout}");
    assert!(run.join("config.json").is_file());
    assert!(run.join("metrics.jsonl").is_file());
    // The best encoder is a regular audio-encoder checkpoint.
    let best = stdout
        .lines()
        .find_map(|l| l.strip_prefix("best audio encoder "))
        .expect("best checkpoint printed");
    let (encoder, config) =
        open_audio_encoder(best, &LoadOptions::default(), &Device::default()).expect("loads");
    assert_eq!(config.out_dim, 2048);
    assert_eq!(config.resnet.base_width, 4);
    drop(encoder);

    // A second fresh run into the same directory is refused; --resume continues (nothing left).
    let refused = command(&[
        "train-align",
        "--data",
        s(&data),
        "--image-encoder",
        s(&swav),
        "--out",
        s(&run),
        "--audio-width",
        "4",
        "--batch-size",
        "2",
        "--no-progress",
    ])
    .output()
    .expect("runs");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("resume"));
}

/// A tiny official-layout dataset from the procedural world and a narrow image encoder.
fn tiny_setup(dir: &Path) -> (PathBuf, PathBuf) {
    let data = dir.join("data");
    let world = World::new(WorldConfig {
        seed: 5,
        clips: 8,
        seconds: 1.0,
        image_size: 32,
        ..WorldConfig::default()
    })
    .expect("world");
    write_dataset(&world, &data, Layout::Official, |_, _| {}).expect("dataset");
    let config = ImageEncoderConfig::new().with_resnet(
        ResNetConfig::new(BlockKind::Basic, [1, 1, 1, 1])
            .with_in_channels(3)
            .with_base_width(4),
    );
    let encoder = config.init(&Device::default());
    let path = dir.join("f_v.bpk");
    burnpack::save(
        &encoder,
        NetworkKind::ImageEncoder,
        &config,
        &path,
        Precision::F32,
    )
    .expect("save the image encoder");
    (data, path)
}

fn tiny_args<'a>(data: &'a Path, f_v: &'a Path, out: &'a Path, steps: &'a str) -> Vec<&'a str> {
    vec![
        "train-align",
        "--data",
        s(data),
        "--image-encoder",
        s(f_v),
        "--out",
        s(out),
        "--audio-width",
        "4",
        "--clip-seconds",
        "1",
        "--batch-size",
        "4",
        "--val-fraction",
        "0",
        "--epochs",
        "100000",
        "--max-steps",
        steps,
        "--checkpoint-every",
        "1",
        "--seed",
        "7",
        "--no-progress",
    ]
}

fn parameters(path: &Path) -> Vec<Vec<f32>> {
    struct Collect(Vec<Vec<f32>>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let values = param.val().into_data().try_into_vec_as::<f32>();
            self.0.push(values.expect("f32 values"));
        }
    }
    let (encoder, _) =
        open_audio_encoder(path, &LoadOptions::default(), &Device::default()).expect("loads");
    let mut collect = Collect(Vec::new());
    encoder.visit(&mut collect);
    collect.0
}

fn spawn(args: &[&str]) -> Child {
    command(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts")
}

#[test]
fn data_parallel_over_two_cpu_copies_runs_and_refuses_zero_devices() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, f_v) = tiny_setup(dir.path());
    let run = dir.path().join("parallel");
    let mut args = tiny_args(&data, &f_v, &run, "3");
    args.extend(["--devices", "2"]);
    ok(&args);
    let (step, ckpt) = latest_complete(&run).expect("list").expect("a checkpoint");
    assert_eq!(step, 3);
    assert!(!parameters(&ckpt.join(MODEL_FILE)).is_empty());

    let none = dir.path().join("none");
    let mut args = tiny_args(&data, &f_v, &none, "3");
    args.extend(["--devices", "0"]);
    let out = command(&args).output().expect("the binary starts");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("at least 1"),
        "{stderr}"
    );
}

/// The newest complete checkpoint's step in `dir` (0 when there is none yet). Listing races
/// with the run's own pruning, so a failed listing reads as "no progress yet".
fn newest_step(dir: &Path) -> u64 {
    latest_complete(dir)
        .ok()
        .flatten()
        .map_or(0, |(step, _)| step)
}

/// Waits until the run writing `dir` has a complete checkpoint at `target` steps or later, or
/// has exited; panics (with the run's error output) when it makes no progress for two minutes.
fn wait_for_step(child: &mut Child, dir: &Path, target: u64) {
    let mut last = newest_step(dir);
    let mut since = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return;
        }
        let step = newest_step(dir);
        if step >= target {
            return;
        }
        if step != last {
            (last, since) = (step, Instant::now());
        }
        if since.elapsed() > Duration::from_secs(120) {
            child.kill().expect("SIGKILL");
            child.wait().expect("reaped");
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                pipe.read_to_string(&mut stderr).expect("stderr");
            }
            panic!("no progress past step {step} in two minutes: {stderr}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn killed_during_saves_it_resumes_to_the_uninterrupted_result() {
    const KILLS: usize = 20;
    const STEPS: &str = "120";
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, f_v) = tiny_setup(dir.path());

    // The reference: one uninterrupted run.
    let straight = dir.path().join("straight");
    ok(&tiny_args(&data, &f_v, &straight, STEPS));
    let (last, reference) = latest_complete(&straight)
        .expect("list")
        .expect("a checkpoint");
    assert_eq!(last, 120);

    // The same run, SIGKILLed at random moments (every step writes a checkpoint, so most
    // kills land in a save), then resumed; each time the newest complete checkpoint loads.
    let killed = dir.path().join("killed");
    let mut rng = ChaCha8Rng::seed_from_u64(2024);
    let mut resumes = 0;
    let mut progress = Vec::new();
    for attempt in 0..KILLS {
        let mut args = tiny_args(&data, &f_v, &killed, STEPS);
        if attempt > 0 {
            args.push("--resume");
        }
        let done = newest_step(&killed);
        let mut child = spawn(&args);
        // Kill a random 1 to 6 steps after where this attempt resumed (counted in steps, not
        // seconds, so every machine gets the same number of kills), a random few milliseconds
        // into the next step or save.
        let target = done + rng.random_range(1..=6);
        wait_for_step(&mut child, &killed, target);
        std::thread::sleep(Duration::from_millis(rng.random_range(0..15)));
        if child.try_wait().expect("wait").is_none() {
            child.kill().expect("SIGKILL");
        }
        let status = child.wait().expect("reaped");
        if status.success() {
            break;
        }
        resumes += 1;
        if let Some((step, ckpt)) = latest_complete(&killed).expect("list") {
            progress.push(step);
            let (encoder, _) = open_audio_encoder(
                ckpt.join(MODEL_FILE),
                &LoadOptions::default(),
                &Device::default(),
            )
            .unwrap_or_else(|e| panic!("after kill {attempt}, {} is corrupt: {e}", ckpt.display()));
            drop(encoder);
            assert!(ckpt.join(STATE_FILE).is_file());
        }
    }
    eprintln!("{resumes} kills; newest complete checkpoint after each: steps {progress:?}");
    assert!(resumes >= KILLS / 2, "too few kills landed: {resumes}");
    // Finish (whatever is left) and compare with the uninterrupted run.
    let mut args = tiny_args(&data, &f_v, &killed, STEPS);
    args.push("--resume");
    ok(&args);
    let (last, resumed) = latest_complete(&killed)
        .expect("list")
        .expect("a checkpoint");
    assert_eq!(last, 120, "kills at steps {progress:?}");
    let a = parameters(&reference.join(MODEL_FILE));
    let b = parameters(&resumed.join(MODEL_FILE));
    assert_eq!(a.len(), b.len());
    let worst = a
        .iter()
        .zip(&b)
        .flat_map(|(x, y)| x.iter().zip(y).map(|(p, q)| (p - q).abs()))
        .fold(0.0f32, f32::max);
    assert!(
        worst <= 1e-5,
        "resumed weights differ by {worst} (kills at steps {progress:?})"
    );
    // No half-written checkpoint is ever listed.
    for (_, ckpt) in list_complete(&killed).expect("list") {
        assert!(ckpt.join(MODEL_FILE).is_file());
    }
}

/// The tracker's "a broken sample is skipped and reported, not the end of a day's run": one
/// JPEG replaced by random bytes is skipped and listed when the limit allows it, trips the
/// default 5 % limit among 8 pairs, and stops a `--strict` run at once.
#[test]
fn a_broken_jpeg_is_skipped_and_listed_or_stops_the_run_as_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, f_v) = tiny_setup(dir.path());
    let mut images: Vec<PathBuf> = std::fs::read_dir(data.join("images"))
        .expect("images")
        .map(|e| e.expect("entry").path())
        .collect();
    images.sort();
    let broken = images[0].clone();
    let bytes: Vec<u8> = (0..2_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&broken, bytes).expect("overwrite");
    let name = broken.file_name().and_then(|n| n.to_str()).expect("name");

    let out = dir.path().join("tolerant");
    let mut args = tiny_args(&data, &f_v, &out, "2");
    args.extend(["--max-bad-fraction", "0.2"]);
    let stdout = ok(&args);
    assert!(stdout.contains("skipped 1 of 8 samples"), "{stdout}");
    assert!(
        stdout.contains(name) && stdout.contains("cannot decode the image"),
        "{stdout}"
    );
    assert!(
        stdout.contains("reached --max-steps after 2 steps"),
        "{stdout}"
    );
    let report = std::fs::read_to_string(out.join("skipped.json")).expect("skipped.json");
    assert!(report.contains(name), "{report}");

    for (flags, expected) in [
        (vec![], "wrong folder"),
        (vec!["--strict"], "cannot decode the image"),
    ] {
        let out = dir.path().join(format!("run{}", flags.len()));
        let mut args = tiny_args(&data, &f_v, &out, "2");
        args.extend(flags);
        let output = command(&args).output().expect("the binary starts");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} should stop");
        assert!(
            stderr.contains(expected) && stderr.contains(name),
            "{stderr}"
        );
    }
}
