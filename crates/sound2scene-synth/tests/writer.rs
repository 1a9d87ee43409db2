//! Dataset writers: file trees of both layouts and the ground-truth file.

use std::fs;
use std::path::Path;

use sound2scene_synth::{DatasetTruth, Layout, World, WorldConfig, encode_wav, write_dataset};

fn tiny_world() -> World {
    World::new(WorldConfig {
        seed: 1,
        clips: 2,
        seconds: 1.0,
        fps: 2,
        ..WorldConfig::default()
    })
    .unwrap()
}

fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(
                    path.strip_prefix(dir)
                        .unwrap()
                        .to_string_lossy()
                        .replace('\\', "/"),
                );
            }
        }
    }
    out.sort();
    out
}

fn check_wav(path: &Path) {
    let bytes = fs::read(path).unwrap();
    assert_eq!(&bytes[0..4], b"RIFF");
    assert_eq!(&bytes[8..16], b"WAVEfmt ");
    assert_eq!(u16::from_le_bytes([bytes[22], bytes[23]]), 1, "mono");
    assert_eq!(
        u32::from_le_bytes(bytes[24..28].try_into().unwrap()),
        16_000
    );
    assert_eq!(u16::from_le_bytes([bytes[34], bytes[35]]), 16, "16-bit");
    assert_eq!(bytes.len(), 44 + 2 * 16_000);
}

fn check_jpeg(path: &Path) {
    let img = image::open(path).unwrap();
    assert_eq!((img.width(), img.height()), (64, 64));
}

#[test]
fn official_layout() {
    let dir = tempfile::tempdir().unwrap();
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let truth = write_dataset(
        &tiny_world(),
        dir.path(),
        Layout::Official,
        |done, total| {
            assert!(done <= total && total == 2);
            calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        },
    )
    .unwrap();
    assert_eq!(calls.into_inner(), 2);
    assert_eq!(
        listing(dir.path()),
        [
            "audios/clip_000000.wav",
            "audios/clip_000001.wav",
            "ground_truth.json",
            "images/clip_000000.jpg",
            "images/clip_000001.jpg",
        ]
    );
    check_wav(&dir.path().join("audios/clip_000000.wav"));
    check_jpeg(&dir.path().join("images/clip_000001.jpg"));
    let stored: DatasetTruth =
        serde_json::from_slice(&fs::read(dir.path().join("ground_truth.json")).unwrap()).unwrap();
    assert_eq!(stored, truth);
    assert_eq!(stored.layout, Layout::Official);
    assert_eq!(stored.clips.len(), 2);
    assert!(
        stored
            .clips
            .iter()
            .all(|c| c.frames.len() == 2 && c.middle_frame == 1)
    );
}

#[test]
fn vggsound_layout() {
    let dir = tempfile::tempdir().unwrap();
    let truth = write_dataset(&tiny_world(), dir.path(), Layout::Vggsound, |_, _| {}).unwrap();
    assert_eq!(
        listing(dir.path()),
        [
            "audios/clip_000000.wav",
            "audios/clip_000001.wav",
            "frames/clip_000000/0000.jpg",
            "frames/clip_000000/0001.jpg",
            "frames/clip_000001/0000.jpg",
            "frames/clip_000001/0001.jpg",
            "ground_truth.json",
        ]
    );
    check_wav(&dir.path().join("audios/clip_000001.wav"));
    check_jpeg(&dir.path().join("frames/clip_000001/0001.jpg"));
    let json: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.path().join("ground_truth.json")).unwrap()).unwrap();
    assert_eq!(json["layout"], "vggsound");
    assert_eq!(json["clips"][1]["name"], "clip_000001");
    assert_eq!(truth.clips[0].name, "clip_000000");
}

#[test]
fn wav_samples_are_clamped_and_quantised() {
    let bytes = encode_wav(&[0.0, 1.0, -1.0, 2.0, 0.5]);
    let samples: Vec<i16> = bytes[44..]
        .chunks(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    assert_eq!(samples, [0, 32767, -32767, 32767, 16384]);
}

#[test]
fn unwritable_directory_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not_a_dir");
    fs::write(&file, b"x").unwrap();
    assert!(write_dataset(&tiny_world(), &file, Layout::Official, |_, _| {}).is_err());
}
