//! A tiny procedural-world dataset and a tiny localizer for the tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use sound2scene_select::model::LocalizerConfig;
use sound2scene_select::train::SelectTrainConfig;
use sound2scene_synth::{DatasetTruth, Layout, World, WorldConfig, write_dataset};

/// Frames per second of the test worlds.
pub const FPS: u32 = 5;

/// Writes `clips` clips of 3 s at 5 fps, 32×32, in the VGGSound layout under `dir`.
pub fn world(dir: &Path, clips: usize, seed: u64) -> DatasetTruth {
    let config = WorldConfig {
        seed,
        clips,
        seconds: 3.0,
        fps: FPS,
        image_size: 32,
        empty_probability: 0.0,
        visible_fraction: (0.3, 0.5),
        ..WorldConfig::default()
    };
    let world = World::new(config).expect("world");
    write_dataset(&world, dir, Layout::Vggsound, |_, _| {}).expect("dataset")
}

/// The frames and audio directories of a dataset.
pub fn dirs(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("frames"), dir.join("audios"))
}

/// A localizer small enough to train in seconds.
pub fn tiny_model() -> LocalizerConfig {
    LocalizerConfig::new()
        .with_image_size(32)
        .with_visual_width(4)
        .with_visual_blocks(1)
        .with_audio_width(4)
        .with_embed_dim(8)
        .with_window_seconds(0.5)
}

/// A training configuration for the tiny localizer.
pub fn tiny_training() -> SelectTrainConfig {
    SelectTrainConfig::new()
        .with_model(tiny_model())
        .with_fps(FPS as f32)
        .with_clips_per_batch(4)
        .with_frames_per_clip(2)
        .with_epochs(2)
        .with_checkpoint_every(0)
}
