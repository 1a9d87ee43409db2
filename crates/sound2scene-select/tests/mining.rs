//! Mining: the moments file round trip through the training loader, sharding, resuming a
//! partial run and heatmaps (issue 8, item 3 and 5).

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use burn::tensor::Device;
use sound2scene_select::clip::discover_videos;
use sound2scene_select::mine::{MineOptions, Shard, merge_moment_files, mine, progress_path};
use sound2scene_select::train::init_localizer;
use sound2scene_select::{Localizer, SelectError, Video};
use sound2scene_train::data::{discover_vggsound, read_moments};
use sound2scene_train::progress::ProgressMode;

fn setup(dir: &Path, clips: usize) -> (Localizer, Vec<Video>) {
    common::world(dir, clips, 3);
    let (frames, audios) = common::dirs(dir);
    let listing = discover_videos(&frames, &audios).expect("listing");
    assert_eq!(listing.videos.len(), clips);
    let model = init_localizer(&common::tiny_model(), 7, &Device::default());
    (model, listing.videos)
}

fn options(top_k: usize) -> MineOptions {
    MineOptions {
        fps: common::FPS as f32,
        top_k,
        progress: ProgressMode::Never,
        ..MineOptions::default()
    }
}

#[test]
fn moments_are_read_back_by_the_training_loader() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (model, videos) = setup(dir.path(), 4);
    let out = dir.path().join("moments.json");
    let mut opts = options(3);
    opts.heatmaps = Some(dir.path().join("heatmaps"));
    let summary = mine(
        &model,
        &common::tiny_model(),
        &videos,
        &out,
        "w",
        &opts,
        &Device::default(),
    )
    .expect("mine");
    assert!(summary.complete && summary.failed.is_empty());
    assert_eq!(summary.mined, 4);

    let read = read_moments(&out).expect("read_moments");
    assert_eq!(read.len(), 4);
    for video in &videos {
        let frames = &read[&video.name];
        assert_eq!(frames, &summary.moments[&video.name]);
        assert_eq!(frames.len(), 3);
        let distinct: BTreeSet<u64> = frames.iter().copied().collect();
        assert_eq!(distinct.len(), 3, "{frames:?}");
        assert!(
            frames
                .iter()
                .all(|n| video.frames.iter().any(|(m, _)| m == n))
        );
        // Every selected frame has its heatmap.
        let heatmaps = std::fs::read_dir(dir.path().join("heatmaps").join(&video.name))
            .expect("heatmap dir")
            .count();
        assert_eq!(heatmaps, 3);
    }
    let found = discover_vggsound(dir.path(), Some(&out)).expect("discover_vggsound");
    assert_eq!(found.pairs.len(), 4);
    assert_eq!(found.middle_frame_fallbacks, 0);
    for pair in &found.pairs {
        let best = read[&pair.name][0];
        let stem: u64 = pair
            .image
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse().ok())
            .expect("numbered frame");
        assert_eq!(stem, best, "{}", pair.name);
    }
}

#[test]
fn shards_cover_every_video_exactly_once() {
    assert!("3/3".parse::<Shard>().is_err());
    assert!("1/0".parse::<Shard>().is_err());
    assert!("a/2".parse::<Shard>().is_err());
    assert_eq!(
        "1/3".parse::<Shard>().expect("shard"),
        Shard { index: 1, count: 3 }
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let (model, videos) = setup(dir.path(), 6);
    let mut outputs = Vec::new();
    let mut seen = 0;
    for index in 0..3 {
        let out = dir.path().join(format!("shard{index}.json"));
        let mut opts = options(2);
        opts.shard = Shard { index, count: 3 };
        let summary = mine(
            &model,
            &common::tiny_model(),
            &videos,
            &out,
            "w",
            &opts,
            &Device::default(),
        )
        .expect("mine");
        assert_eq!(summary.videos_in_shard + summary.other_shards, 6);
        assert_eq!(summary.moments.len(), summary.videos_in_shard);
        seen += summary.videos_in_shard;
        outputs.push(out);
    }
    assert_eq!(seen, 6);
    let (merged, repeated) = merge_moment_files(&outputs).expect("merge");
    assert!(repeated.is_empty(), "{repeated:?}");
    let names: BTreeSet<&str> = merged.keys().map(String::as_str).collect();
    let expected: BTreeSet<&str> = videos.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, expected);
}

#[test]
fn a_partial_run_resumes_where_it_stopped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (model, videos) = setup(dir.path(), 5);
    let config = common::tiny_model();
    let device = Device::default();

    let whole = dir.path().join("whole.json");
    let reference =
        mine(&model, &config, &videos, &whole, "w", &options(3), &device).expect("mine");

    let out = dir.path().join("partial.json");
    let mut first = options(3);
    first.limit = Some(2);
    let partial = mine(&model, &config, &videos, &out, "w", &first, &device).expect("mine");
    assert_eq!((partial.mined, partial.complete), (2, false));
    assert_eq!(read_moments(&out).expect("partial moments").len(), 2);
    // A crash in the middle of writing the next line.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(progress_path(&out))
        .expect("progress file");
    file.write_all(br#"{"video":"clip_0000"#)
        .expect("torn line");
    drop(file);

    let resumed = mine(&model, &config, &videos, &out, "w", &options(3), &device).expect("resume");
    assert_eq!((resumed.resumed, resumed.mined), (2, 3));
    assert!(resumed.complete);
    assert_eq!(resumed.moments, reference.moments);
    assert_eq!(read_moments(&out).expect("moments").len(), 5);

    // Nothing left: a rerun mines nothing; other settings are refused, not mixed in.
    let again = mine(&model, &config, &videos, &out, "w", &options(3), &device).expect("rerun");
    assert_eq!((again.resumed, again.mined), (5, 0));
    let other = mine(&model, &config, &videos, &out, "w", &options(4), &device);
    assert!(
        matches!(other, Err(SelectError::ResumeMismatch { .. })),
        "{other:?}"
    );
}

#[test]
fn world_ground_truth_keeps_every_frame_and_its_boxes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let truth = common::world(dir.path(), 3, 21);
    let ground = sound2scene_select::metrics::world_ground_truth(&truth);
    assert_eq!(ground.len(), 3);
    for clip in &truth.clips {
        let video = &ground[&clip.name];
        assert_eq!(video.side, 32);
        assert_eq!(video.boxes.len(), clip.frames.len());
        for (boxes, frame) in video.boxes.iter().zip(&clip.frames) {
            let expected: Vec<[u32; 4]> = frame.objects.iter().map(|o| o.bbox).collect();
            assert_eq!(boxes, &expected, "frame {} of {}", frame.index, clip.name);
        }
        // Every clip of this world has a source, so some frame shows one.
        assert!(video.has_source(), "{} shows no source", clip.name);
    }
}
