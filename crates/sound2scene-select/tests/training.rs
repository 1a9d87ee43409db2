//! Training the localizer: the loss goes down, and a stopped run resumes to the same weights
//! (issue 8, item 2).

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use burn::tensor::Device;
use sound2scene_select::clip::discover_videos;
use sound2scene_select::mine::score_video;
use sound2scene_select::train::{
    SelectData, SelectHooks, SelectTrainConfig, load_localizer, train_select,
};
use sound2scene_train::control::Outcome;
use sound2scene_train::progress::{MetricsLog, ProgressMode};

fn data(dir: &std::path::Path, clips: usize) -> SelectData {
    common::world(dir, clips, 11);
    let (frames, audios) = common::dirs(dir);
    let listing = discover_videos(&frames, &audios).expect("listing");
    SelectData::load(&listing.videos, &common::tiny_model()).expect("load")
}

fn run(
    config: &SelectTrainConfig,
    data: &SelectData,
    out: &std::path::Path,
    resume: bool,
) -> (Outcome, Vec<f64>) {
    let losses = Rc::new(RefCell::new(Vec::new()));
    let sink = Rc::clone(&losses);
    let hooks = SelectHooks {
        on_step: Some(Box::new(move |r| {
            sink.borrow_mut().push(r.loss);
            sound2scene_train::control::Control::Continue
        })),
        ..SelectHooks::default()
    };
    let summary = train_select(
        config,
        data,
        out,
        &Device::default(),
        resume,
        ProgressMode::Never,
        hooks,
    )
    .expect("train");
    let losses = losses.borrow().clone();
    (summary.outcome, losses)
}

#[test]
fn a_tiny_run_lowers_the_loss() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = data(dir.path(), 8);
    let mut config = common::tiny_training().with_epochs(20);
    config.optimizer.lr = 3e-3;
    let out = dir.path().join("run");
    let (outcome, losses) = run(&config, &data, &out, false);
    assert_eq!(outcome, Outcome::Finished);
    assert_eq!(losses.len(), 40);
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len() as f64;
    let (early, late) = (mean(&losses[..8]), mean(&losses[32..]));
    assert!(
        late < early - 0.1,
        "loss did not go down: {early:.3} -> {late:.3}"
    );
    // The metrics log has one line per step and one per epoch; the weights load back.
    assert_eq!(
        MetricsLog::read(out.join("metrics.jsonl"))
            .expect("metrics")
            .len(),
        60
    );
    let (model, loaded) = load_localizer(&out, &Device::default()).expect("load");
    assert_eq!(loaded, config.model);
    let video = &data.videos()[0];
    let scores = score_video(
        &model,
        &loaded,
        video,
        common::FPS as f32,
        7,
        &Device::default(),
    );
    assert_eq!(scores.c_av.len(), video.len());
    assert_eq!(scores.contrastive.len(), video.len());
    // Cosine similarities and their differences.
    assert!(
        scores
            .c_av
            .iter()
            .all(|s| s.is_finite() && s.abs() <= 1.0 + 1e-4)
    );
    assert!(
        scores
            .contrastive
            .iter()
            .all(|s| s.is_finite() && s.abs() <= 2.0 + 1e-4)
    );
}

#[test]
fn a_stopped_run_resumes_to_the_same_losses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = data(dir.path(), 6);
    let config = common::tiny_training()
        .with_epochs(3)
        .with_clips_per_batch(3);
    let (_, whole) = run(&config, &data, &dir.path().join("whole"), false);
    assert_eq!(whole.len(), 6);

    let out = dir.path().join("parts");
    let (outcome, first) = run(&config.clone().with_max_steps(Some(3)), &data, &out, false);
    assert_eq!(outcome, Outcome::MaxSteps);
    // Without --resume an occupied directory is refused.
    let refused = train_select(
        &config,
        &data,
        &out,
        &Device::default(),
        false,
        ProgressMode::Never,
        SelectHooks::default(),
    );
    assert!(refused.is_err());
    let (outcome, rest) = run(&config, &data, &out, true);
    assert_eq!(outcome, Outcome::Finished);
    let resumed: Vec<f64> = first.into_iter().chain(rest).collect();
    assert_eq!(resumed.len(), whole.len());
    for (a, b) in resumed.iter().zip(&whole) {
        assert!(
            (a - b).abs() < 1e-4,
            "resumed {resumed:?} vs whole {whole:?}"
        );
    }
}

/// A video whose frame is not an image, and one whose audio is empty, are left out with their
/// causes; the run's data is the rest, in order. Too many broken videos stop the load, and a
/// strict policy stops at the first.
#[test]
fn broken_videos_are_skipped_and_reported() {
    use sound2scene_select::SelectError;
    use sound2scene_train::{SkipPolicy, TrainError};

    let dir = tempfile::tempdir().expect("tempdir");
    common::world(dir.path(), 5, 13);
    let (frames, audios) = common::dirs(dir.path());
    let listing = discover_videos(&frames, &audios).expect("listing");
    let videos = &listing.videos;
    assert_eq!(videos.len(), 5);
    let frame = &videos[1].frames[2].1;
    std::fs::write(frame, b"not an image at all").expect("break a frame");
    std::fs::write(&videos[3].audio, b"").expect("empty an audio file");
    let config = common::tiny_model();

    let (data, report) =
        SelectData::load_checked(videos, &config, &SkipPolicy::tolerating(0.5), &frames, None)
            .expect("two of five broken are tolerated at 50 %");
    let names: Vec<&str> = data.videos().iter().map(|v| v.name.as_str()).collect();
    let want: Vec<&str> = [0, 2, 4].iter().map(|&i| videos[i].name.as_str()).collect();
    assert_eq!(names, want);
    assert_eq!((report.total, report.skipped.len()), (5, 2));
    assert_eq!(report.skipped[0].name, videos[1].name);
    assert_eq!(report.skipped[0].file, frames.join(&videos[1].name));
    assert!(
        report.skipped[0]
            .cause
            .contains(&frame.display().to_string()),
        "{}",
        report.skipped[0].cause
    );
    assert_eq!(report.skipped[1].name, videos[3].name);
    assert!(
        report.skipped[1]
            .cause
            .contains(&videos[3].audio.display().to_string()),
        "{}",
        report.skipped[1].cause
    );

    assert_eq!((report.checked, report.recorded), (5, 0));

    // Resuming with the earlier report: the same data, the broken videos neither decoded again
    // (one is repaired, to tell) nor warned about.
    std::fs::copy(&videos[0].frames[2].1, frame).expect("repair the frame");
    let (again, resumed) = SelectData::load_checked(
        videos,
        &config,
        &SkipPolicy::tolerating(0.5),
        &frames,
        Some(&report),
    )
    .expect("resumed load");
    assert_eq!(again.fingerprint(), data.fingerprint());
    assert_eq!(resumed.skipped, report.skipped);
    assert_eq!((resumed.checked, resumed.recorded), (3, 2));
    std::fs::write(frame, b"not an image at all").expect("break the frame again");

    let err = SelectData::load_checked(videos, &config, &SkipPolicy::default(), &frames, None)
        .expect_err("two of five is over the default 5 %");
    assert!(
        matches!(
            err,
            SelectError::Train(TrainError::TooManyBroken {
                broken: 2,
                total: 5,
                ..
            })
        ),
        "{err}"
    );
    let err = SelectData::load_checked(videos, &config, &SkipPolicy::strict(), &frames, None)
        .expect_err("strict stops at the first broken video");
    assert!(!matches!(err, SelectError::Train(_)), "{err}");
}

/// A `config.json` written when the learning rate and weight decay were top-level settings
/// (`lr`, `weight_decay`) reads into `optimizer`, with the fingerprint of its runs unchanged, so
/// they resume (issue #24, item 4).
#[test]
fn configs_with_top_level_lr_read_and_keep_their_fingerprint() {
    use sound2scene_select::train::fnv_hex;
    use sound2scene_train::run::read_config;

    let dir = tempfile::tempdir().expect("tempdir");
    let config = SelectTrainConfig::new().with_seed(5);
    let mut old = serde_json::to_value(&config).expect("json");
    let object = old.as_object_mut().expect("an object");
    object.remove("optimizer");
    object.insert("lr".into(), serde_json::json!(3e-4));
    object.insert("weight_decay".into(), serde_json::json!(0.0));
    let path = dir.path().join("config.json");
    std::fs::write(&path, old.to_string()).expect("write");
    let read: SelectTrainConfig = read_config(&path).expect("an old configuration");
    assert_eq!(read.optimizer.lr, 3e-4);
    assert_eq!(read.optimizer.weight_decay, 0.0);
    assert_eq!(
        read.optimizer.epsilon, 1e-5,
        "Burn's Adam epsilon, as before"
    );

    // The fingerprint as runs before the rename computed it.
    let before = serde_json::json!({
        "model": serde_json::to_value(&read.model).expect("json"),
        "fps": read.fps,
        "lr": 3e-4,
        "weight_decay": 0.0,
        "clips_per_batch": read.clips_per_batch,
        "frames_per_clip": read.frames_per_clip,
        "seed": read.seed,
        "temperature": read.temperature,
    });
    assert_eq!(read.fingerprint(), fnv_hex(before.to_string().as_bytes()));
    let mut other = read.clone();
    other.optimizer.beta_1 = 0.5;
    assert_ne!(other.fingerprint(), read.fingerprint());
}
