//! `sound2scene train-gan` as a user runs it: a few steps at 32×32 on a flat folder of images
//! with the reduced SwAV fixture as f_V, then a resumed continuation, and the G_ema it writes
//! opened as a generator.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use burn::tensor::Device;
use image::{Rgb, RgbImage};
use sound2scene::models::LoadOptions;
use sound2scene::models::checkpoint::open_generator;
use sound2scene::train::checkpoint::latest_complete;
use sound2scene::train::gan::{GENERATOR_EMA_FILE, GanMetricsRecord, METRICS_FILE};

use common::{fixtures_dir, require};

fn train_gan(args: &[&str]) -> String {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_sound2scene"))
        .arg("train-gan")
        .args(args)
        .output()
        .expect("the binary starts");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?} failed: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn train_gan_runs_resumes_and_writes_an_openable_ema_generator() {
    let Some(encoder) = require(fixtures_dir().join("models/swav_resnet50_layers1111.pth.tar"))
    else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let images = dir.path().join("images");
    std::fs::create_dir_all(&images).expect("image folder");
    for i in 0..5u8 {
        let image = RgbImage::from_fn(40, 30, |x, y| Rgb([i * 50, (x * 6) as u8, (y * 8) as u8]));
        image
            .save(images.join(format!("im{i}.png")))
            .expect("write image");
    }
    let out = dir.path().join("out");
    let common = [
        "--images",
        s(dir.path()),
        "--image-encoder",
        s(&encoder),
        "--out",
        s(&out),
        "--resolution",
        "32",
        "--width",
        "4",
        // The old spelling of --batch-size, still read.
        "--batch",
        "4",
        "--seed",
        "5",
        "--sample-every",
        "2",
        "--no-progress",
    ];
    let first = train_gan(&[&common[..], &["--steps", "2"]].concat());
    assert!(first.contains("5 images"), "{first}");
    assert!(first.contains("finished after 2 steps"), "{first}");
    assert!(out.join("samples/step-000002.png").is_file());
    assert!(out.join("features/index.json").is_file());

    let second = train_gan(&[&common[..], &["--steps", "3", "--resume"]].concat());
    assert!(second.contains("finished after 3 steps"), "{second}");
    assert!(second.contains("resumed from"), "{second}");
    let records = GanMetricsRecord::read_all(out.join(METRICS_FILE)).expect("metrics");
    let steps: Vec<u64> = records.iter().map(|r| r.step).collect();
    assert_eq!(steps, [1, 2, 3]);

    let (step, ckpt) = latest_complete(&out)
        .expect("listable")
        .expect("a checkpoint");
    assert_eq!(step, 3);
    let (_, config) = open_generator(
        ckpt.join(GENERATOR_EMA_FILE),
        &LoadOptions::default(),
        &Device::flex(),
    )
    .expect("G_ema opens");
    assert_eq!((config.resolution, config.g_ch), (32, 4));
}
