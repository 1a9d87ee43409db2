//! The measurement side of issue 6: Spearman's ρ, the world classifier and `eval-world`.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use burn::tensor::Device;
use sound2scene::infer::bundle;
use sound2scene::models::audio_encoder::AudioEncoderConfig;
use sound2scene::models::biggan::GeneratorConfig;
use sound2scene::models::burnpack::{self, NetworkKind, Precision};
use sound2scene::models::image_encoder::ImageEncoderConfig;
use sound2scene::models::resnet::{BlockKind, ResNetConfig};
use sound2scene::synth::{SoundClass, WORLD_FILE, World, WorldConfig};
use sound2scene::train::gan::GanConfig;
use sound2scene::train::run::read_config;
use sound2scene::train::swav::SwavConfig;
use sound2scene::world::{
    ClassifierTrainConfig, EXTRA_KEYS, REQUIRED_KEYS, WorldClassifier, WorldClassifierConfig,
    WorldEvalConfig, WorldEvalError, average_ranks, eval_world, evaluate_classifier, spearman,
    train_world_classifier,
};

/// `scipy.stats.spearmanr([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]).statistic` (the example of SciPy's
/// documentation: one tie in y).
const SCIPY_ONE_TIE: f64 = 0.820_782_681_668_123_3;
/// `scipy.stats.spearmanr([1, 1, 2, 3, 3, 3], [2, 1, 4, 4, 3, 5]).statistic` (ties on both
/// sides).
const SCIPY_TIES_BOTH: f64 = 0.751_469_149_302_179_6;
/// Rounding allowed against SciPy.
const TOL: f64 = 1e-12;

#[test]
fn spearman_matches_scipy_with_ties() {
    let rho = spearman(&[1.0, 2.0, 3.0, 4.0, 5.0], &[5.0, 6.0, 7.0, 8.0, 7.0]).expect("defined");
    assert!((rho - SCIPY_ONE_TIE).abs() < TOL, "{rho}");
    let rho = spearman(
        &[1.0, 1.0, 2.0, 3.0, 3.0, 3.0],
        &[2.0, 1.0, 4.0, 4.0, 3.0, 5.0],
    )
    .expect("defined");
    assert!((rho - SCIPY_TIES_BOTH).abs() < TOL, "{rho}");
}

#[test]
fn spearman_edge_cases() {
    assert_eq!(
        average_ranks(&[10.0, 20.0, 20.0, 30.0]),
        [1.0, 2.5, 2.5, 4.0]
    );
    assert_eq!(average_ranks(&[3.0, 1.0, 2.0]), [3.0, 1.0, 2.0]);
    let x = [1.0, 2.0, 3.0, 4.0];
    // Any increasing map is a perfect rank correlation, any decreasing one a perfect inverse.
    let up = spearman(&x, &[1.0, 10.0, 100.0, 1000.0]).expect("defined");
    let down = spearman(&x, &[4.0, 0.5, 0.2, -7.0]).expect("defined");
    assert!(
        (up - 1.0).abs() < TOL && (down + 1.0).abs() < TOL,
        "{up} {down}"
    );
    // A constant side has no ranks to correlate; mismatched or too short input is refused.
    assert_eq!(spearman(&x, &[2.0; 4]), None);
    assert_eq!(spearman(&x, &[1.0, 2.0]), None);
    assert_eq!(spearman(&[1.0], &[1.0]), None);
}

#[test]
fn classifier_trained_briefly_beats_chance_on_held_out_frames() {
    let device = Device::default();
    let config = ClassifierTrainConfig::new()
        .with_model(WorldClassifierConfig::new().with_image_size(32))
        .with_steps(300)
        .with_batch_size(32);
    let mut losses = Vec::new();
    let classifier =
        train_world_classifier(&config, 3, &device, |_, loss| losses.push(loss)).expect("trains");
    assert_eq!(losses.len(), 300);
    let first: f64 = losses[..20].iter().sum::<f64>() / 20.0;
    let last: f64 = losses[280..].iter().sum::<f64>() / 20.0;
    assert!(last < 0.8 * first, "loss {first} -> {last}");

    // Held-out world (another seed); chance for the top class is 1/8.
    let accuracy = evaluate_classifier(&classifier, 4, 256).expect("evaluates");
    assert_eq!(accuracy.frames, 256);
    assert!(accuracy.top1_accuracy > 0.35, "{accuracy:?}");
    assert!(accuracy.label_accuracy > 0.85, "{accuracy:?}");

    // Save and load give the same verdicts.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("classifier.bpk");
    classifier.save(&path).expect("saves");
    let loaded = WorldClassifier::load(&path, &device).expect("loads");
    let again = evaluate_classifier(&loaded, 4, 64).expect("evaluates");
    assert_eq!(
        again,
        evaluate_classifier(&classifier, 4, 64).expect("evaluates")
    );
}

#[test]
fn classifier_load_refuses_missing_and_foreign_files() {
    let device = Device::default();
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = WorldClassifier::load(dir.path().join("none.bpk"), &device).unwrap_err();
    assert!(
        missing.to_string().contains("train-world-classifier"),
        "{missing}"
    );

    let config = AudioEncoderConfig::new().with_resnet(
        ResNetConfig::new(BlockKind::Basic, [1, 1, 1, 1])
            .with_in_channels(1)
            .with_base_width(4),
    );
    let path = dir.path().join("audio.bpk");
    let encoder = config.init(&device);
    burnpack::save(
        &encoder,
        NetworkKind::AudioEncoder,
        &config,
        &path,
        Precision::F32,
    )
    .expect("saves");
    let foreign = WorldClassifier::load(&path, &device).unwrap_err();
    assert!(
        matches!(foreign, WorldEvalError::Weights { .. })
            && foreign.to_string().contains("audio_encoder"),
        "{foreign}"
    );
}

#[test]
fn classifier_save_keeps_the_writer_error_as_its_source() {
    use std::error::Error as _;
    let device = Device::default();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = WorldClassifierConfig::new().with_image_size(32);
    let classifier = WorldClassifier::init(&config, 1, &device);
    let err = classifier
        .save(dir.path().join("missing").join("classifier.bpk"))
        .expect_err("no such directory");
    assert!(matches!(err, WorldEvalError::Weights { .. }), "{err}");
    // Burn's burnpack writer reports the OS error as text (`IoError(String)`), so the chain ends
    // at the writer's error; it is kept, not flattened into the message only.
    let source = err.source().expect("the writer's error is kept");
    assert!(
        source
            .downcast_ref::<burn::store::burn_pack::Error>()
            .is_some(),
        "{source:?}"
    );
    assert!(err.to_string().contains(&source.to_string()), "{err}");
}

/// Random-weight networks at the narrowest widths that fit together (G takes 2048-wide
/// features, so f_V is a one-block-per-stage ResNet-50 trunk), saved in the model-directory
/// layout, and a random classifier at 32 pixels.
fn tiny_model_dir(dir: &Path) -> std::path::PathBuf {
    let device = Device::default();
    let models = dir.join("model");
    std::fs::create_dir_all(&models).expect("mkdir");
    let audio = AudioEncoderConfig::new().with_resnet(
        ResNetConfig::new(BlockKind::Basic, [1, 1, 1, 1])
            .with_in_channels(1)
            .with_base_width(4),
    );
    burnpack::save(
        &audio.init(&device),
        NetworkKind::AudioEncoder,
        &audio,
        models.join(bundle::AUDIO_ENCODER_FILE),
        Precision::F32,
    )
    .expect("save f_A");
    let image = ImageEncoderConfig::new()
        .with_resnet(ResNetConfig::new(BlockKind::Bottleneck, [1, 1, 1, 1]).with_base_width(64));
    burnpack::save(
        &image.init(&device),
        NetworkKind::ImageEncoder,
        &image,
        models.join(bundle::IMAGE_ENCODER_FILE),
        Precision::F32,
    )
    .expect("save f_V");
    let generator = GeneratorConfig::new()
        .with_g_ch(4)
        .with_dim_z(20)
        .with_resolution(32)
        .with_g_attn("0".into())
        .with_shared_dim_feat(16);
    burnpack::save(
        &generator.init(&device),
        NetworkKind::Generator,
        &generator,
        models.join(bundle::GENERATOR_FILE),
        Precision::F32,
    )
    .expect("save G");
    let classifier = WorldClassifier::init(
        &WorldClassifierConfig::new().with_image_size(32),
        1,
        &device,
    );
    classifier
        .save(dir.join("classifier.bpk"))
        .expect("save the classifier");
    models
}

/// A small evaluation: 6 clips in retrieval groups of 4, 3 gains, one mix per pair.
fn small_config(seed: u64) -> WorldEvalConfig {
    let mut config = WorldEvalConfig::new(seed, 6);
    config.candidates = 4;
    config.volume_gains = 3;
    config.volume_samples = 1;
    config.mix_samples = 1;
    config.batch_size = 16;
    config
}

/// Among the first `config.world.clips` clips with a source, those with a frame that shows two
/// distinct classes, counted from the world's ground truth.
fn two_object_clips(config: &WorldEvalConfig) -> usize {
    let world = World::new(config.world.clone()).expect("world");
    (0..)
        .map(|i| world.clip(i).truth().clone())
        .filter(|truth| !truth.sources.is_empty())
        .take(config.world.clips)
        .filter(|truth| {
            truth.frames.iter().any(|frame| {
                let classes: BTreeSet<SoundClass> = frame.objects.iter().map(|o| o.class).collect();
                classes.len() == 2
            })
        })
        .count()
}

#[test]
fn eval_world_runs_end_to_end_on_random_networks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let models = tiny_model_dir(dir.path());
    let device = Device::default();
    let pipeline = bundle::load_pipeline(&models, &device).expect("loads the model directory");
    let classifier =
        WorldClassifier::load(dir.path().join("classifier.bpk"), &device).expect("classifier");
    let report = eval_world(&pipeline, &classifier, &small_config(12)).expect("evaluates");

    assert_eq!(report.clips, 6);
    assert_eq!(
        (report.retrieval_candidates, report.retrieval_queries),
        (4, 4)
    );
    assert_eq!(report.mix_pairs, 28);
    assert_eq!(report.volume_spearman_by_class.len(), SoundClass::ALL.len());
    let fractions = [
        report.r_at_1,
        report.r_at_5,
        report.r_at_10,
        report.class_accuracy,
        report.class_accuracy_true_feature,
        report.class_accuracy_random_feature,
        report.class_accuracy_real,
        report.mix_both_fraction,
        report.mix_both_fraction_area,
        report.mix_exact_fraction,
        report.two_object_both_fraction,
        report.two_object_both_fraction_true_feature,
    ];
    assert!(
        fractions.iter().all(|f| (0.0..=1.0).contains(f)),
        "{report:?}"
    );
    // Seed 12's first six clips with a source hold frames with two classes.
    assert!(report.two_object_clips > 0, "{report:?}");
    assert_eq!(
        report.two_object_clips,
        two_object_clips(&small_config(12)),
        "{report:?}"
    );
    assert!(report.r_at_1 <= report.r_at_5 && report.r_at_5 <= report.r_at_10);
    // With 4 candidates, the top 5 and 10 hold every candidate.
    assert_eq!(report.r_at_10, 1.0);
    assert!(report.mix_exact_fraction <= report.mix_both_fraction);
    assert!(report.class_accuracy_chance > 0.0 && report.class_accuracy_chance <= 0.25);
    for fid in [
        report.fid,
        report.fid_true_feature,
        report.fid_random_feature,
    ] {
        assert!(fid.is_finite() && fid > -1e-6, "{report:?}");
    }
    for is in [
        report.is_mean,
        report.is_mean_true_feature,
        report.is_mean_random_feature,
        report.is_mean_real,
    ] {
        assert!((1.0 - 1e-9..=8.0 + 1e-9).contains(&is), "{report:?}");
    }
    assert!(report.is_std.is_finite() && report.is_std >= 0.0);
    assert!((-1.0..=1.0).contains(&report.volume_spearman), "{report:?}");
    assert!(
        report
            .volume_spearman_by_class
            .values()
            .all(|r| (-1.0..=1.0).contains(r))
    );
    assert!(
        (-1.0..=1.0).contains(&report.volume_spearman_waveform),
        "{report:?}"
    );
    assert_eq!(
        report.volume_spearman_waveform_by_class.len(),
        SoundClass::ALL.len()
    );
    assert!(
        report
            .volume_spearman_waveform_by_class
            .values()
            .all(|r| (-1.0..=1.0).contains(r))
    );
}

#[test]
fn eval_world_cli_writes_exactly_the_report_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let models = tiny_model_dir(dir.path());
    let json = dir.path().join("report.json");
    let output = Command::new(env!("CARGO_BIN_EXE_sound2scene"))
        .args([
            "eval-world",
            "--seed",
            "21",
            "--clips",
            "4",
            "--candidates",
            "4",
        ])
        .args([
            "--volume-gains",
            "2",
            "--volume-samples",
            "1",
            "--mix-samples",
            "1",
        ])
        .arg("--weights")
        .arg(&models)
        .arg("--classifier")
        .arg(dir.path().join("classifier.bpk"))
        .arg("--json")
        .arg(&json)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for key in REQUIRED_KEYS {
        assert!(stdout.contains(key), "the table lacks {key}:\n{stdout}");
    }
    let text = std::fs::read_to_string(&json).expect("the JSON is written");
    let value: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let object = value.as_object().expect("an object");
    let keys: BTreeSet<&str> = object.keys().map(String::as_str).collect();
    let expected: BTreeSet<&str> = REQUIRED_KEYS.iter().chain(&EXTRA_KEYS).copied().collect();
    assert_eq!(keys, expected);
    for key in REQUIRED_KEYS {
        let number = object[key].as_f64().unwrap_or(f64::NAN);
        assert!(number.is_finite(), "{key} = {}", object[key]);
    }
    assert_eq!(object["clips"], 4);
    assert_eq!(object["seed"], 21);
}

/// `eval-world` holds out clips of the world the model was trained on: the model directory's
/// `world.json` unless `--world` names another, and a description with an unknown key is
/// refused naming the file and the key.
#[test]
fn eval_world_reads_the_model_directorys_world() {
    let dir = tempfile::tempdir().expect("tempdir");
    let models = tiny_model_dir(dir.path());
    std::fs::write(
        models.join(WORLD_FILE),
        r#"{"image_size": 24, "seconds": 2.0, "level_db_range": [-6, 6]}"#,
    )
    .expect("write world.json");
    let typo = dir.path().join("typo.json");
    std::fs::write(&typo, r#"{"level_range": [-6, 6]}"#).expect("write typo.json");
    let run = |extra: &[&std::ffi::OsStr]| {
        Command::new(env!("CARGO_BIN_EXE_sound2scene"))
            .args(["eval-world", "--seed", "21", "--clips", "3"])
            .args(["--candidates", "3", "--volume-gains", "2"])
            .args(["--volume-samples", "1", "--mix-samples", "1"])
            .arg("--weights")
            .arg(&models)
            .arg("--classifier")
            .arg(dir.path().join("classifier.bpk"))
            .args(extra)
            .output()
            .expect("runs")
    };
    let output = run(&[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let expected = format!("world {}", models.join(WORLD_FILE).display());
    assert!(stdout.contains(&expected), "{stdout}");

    let output = run(&["--world".as_ref(), typo.as_os_str()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    for needle in ["typo.json", "level_range", "level_db_range"] {
        assert!(stderr.contains(needle), "{stderr}");
    }
}

#[test]
fn eval_world_cli_names_the_missing_model_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = Command::new(env!("CARGO_BIN_EXE_sound2scene"))
        .args(["eval-world", "--clips", "2", "--weights"])
        .arg(dir.path().join("absent"))
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    for needle in [
        bundle::AUDIO_ENCODER_FILE,
        bundle::IMAGE_ENCODER_FILE,
        bundle::GENERATOR_FILE,
        "--weights",
    ] {
        assert!(stderr.contains(needle), "{stderr}");
    }
}

/// The bundle's recipe files, read by `scripts/train_tiny.sh`, load as the loops' configs and
/// fit together: G draws pictures of the world's size (in the shipped recipe, `tiny2_*`, whose
/// recordings vary in level, and in the first generation's, `tiny_*`), G and D are conditioned
/// on features as wide as f_V's, G_ema starts averaging before G's last step, f_V's crops keep
/// every colour (a class is a colour in this world, which is why docs/results.md's recipe B
/// drops the colour jitter), and the shipped model carries the description of the world it was
/// trained on.
#[test]
fn the_bundle_recipe_files_load_and_fit_together() {
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts");
    let swav: SwavConfig = read_config(scripts.join("tiny_swav.json")).expect("a SwAV config");
    let gan: GanConfig = read_config(scripts.join("tiny2_gan.json")).expect("a GAN config");

    for (world, gan) in [
        ("tiny_world.json", "tiny_gan.json"),
        ("tiny2_world.json", "tiny2_gan.json"),
    ] {
        let world = WorldConfig::load(&scripts.join(world)).expect("a world");
        let gan: GanConfig = read_config(scripts.join(gan)).expect("a GAN config");
        assert_eq!(gan.generator.resolution, world.image_size as usize);
        let side = swav.encoder.input_side.expect("a small f_V's input side");
        assert!(side <= world.image_size as usize);
    }
    let second = WorldConfig::load(&scripts.join("tiny2_world.json")).expect("a world");
    assert!(second.level_db_range.0 < 0.0 && second.level_db_range.1 > 0.0);
    let shipped = WorldConfig::load(&bundle::default_model_dir().join(WORLD_FILE))
        .expect("the bundled model's world.json");
    assert_eq!(
        shipped, second,
        "the bundle was trained on the recipe's world"
    );

    let feature = swav.encoder.resnet.out_channels();
    assert_eq!(gan.generator.instance_size(), feature);
    assert_eq!(gan.discriminator.instance_size(), feature);
    assert!(
        gan.ema_start < gan.steps,
        "{} >= {}",
        gan.ema_start,
        gan.steps
    );
    let crops = &swav.crops;
    assert_eq!(
        (
            crops.jitter_probability,
            crops.hue,
            crops.grayscale_probability
        ),
        (0.0, 0.0, 0.0)
    );
}
