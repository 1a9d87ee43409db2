//! The training-loop kit (`sound2scene_train::run`): configuration files of earlier versions
//! still read, fingerprints of earlier runs unchanged by the renames (issue #24, items 3–4), and
//! the epoch cut every epoch loop shares.

use burn::config::Config;
use serde::Serialize;
use serde_json::json;
use sound2scene_train::align::AlignConfig;
use sound2scene_train::gan::GanConfig;
use sound2scene_train::run::{Fnv, batches, epoch_batches, read_config};
use sound2scene_train::swav::SwavConfig;

fn write(dir: &std::path::Path, value: &serde_json::Value) -> std::path::PathBuf {
    let path = dir.join("config.json");
    std::fs::write(&path, value.to_string()).expect("write");
    path
}

fn to_value<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).expect("serializes")
}

/// A current file reads as `Config::load` reads it.
#[test]
fn current_files_read_as_config_load_reads_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let align = AlignConfig::new().with_epochs(3).with_max_steps(Some(7));
    let path = write(dir.path(), &to_value(&align));
    let read: AlignConfig = read_config(&path).expect("align");
    assert_eq!(
        to_value(&read),
        to_value(&AlignConfig::load(&path).expect("load"))
    );
    let gan = GanConfig::new().with_architecture(32, 8).with_steps(12);
    let path = write(dir.path(), &to_value(&gan));
    let read: GanConfig = read_config(&path).expect("gan");
    assert_eq!(
        to_value(&read),
        to_value(&GanConfig::load(&path).expect("load"))
    );
    let swav = SwavConfig::narrow(32, 8).with_steps(40);
    let path = write(dir.path(), &to_value(&swav));
    let read: SwavConfig = read_config(&path).expect("swav");
    assert_eq!(
        to_value(&read),
        to_value(&SwavConfig::load(&path).expect("load"))
    );
}

/// A GAN `config.json` written before `max_steps` became `steps` and before the optimizers had
/// a weight decay still reads, to the same settings and the same fingerprint, so such a run
/// resumes.
#[test]
fn gan_files_of_earlier_versions_read_and_keep_their_fingerprint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = GanConfig::new().with_architecture(32, 8).with_steps(1750);
    let mut old = to_value(&config);
    let object = old.as_object_mut().expect("an object");
    let steps = object.remove("steps").expect("steps");
    object.insert("max_steps".into(), steps);
    for optimizer in ["g_optimizer", "d_optimizer"] {
        object[optimizer]
            .as_object_mut()
            .expect("an optimizer")
            .remove("weight_decay");
    }
    assert!(
        GanConfig::load(write(dir.path(), &old)).is_err(),
        "Config::load reads current names only"
    );
    let read: GanConfig = read_config(write(dir.path(), &old)).expect("an old GAN config");
    assert_eq!(read.steps, 1750);
    assert_eq!(read.g_optimizer.weight_decay, 0.0);
    assert_eq!(to_value(&read), to_value(&config));
    assert_eq!(read.fingerprint(), config.fingerprint());

    // The fingerprint of the IC-GAN era: optimizers without a weight decay.
    let mut identity = json!({
        "generator": to_value(&config.generator),
        "discriminator": to_value(&config.discriminator),
        "g_optimizer": old["g_optimizer"],
        "d_optimizer": old["d_optimizer"],
        "batch_size": config.batch_size,
        "d_steps": config.d_steps,
        "ema_decay": config.ema_decay,
        "ema_start": config.ema_start,
        "k_nn": config.k_nn,
        "z_var": config.z_var,
        "hflip": config.hflip,
        "seed": config.seed,
    });
    for (network, keys) in [
        ("generator", &["feature_scale", "linear_cond"][..]),
        ("discriminator", &["feature_scale"][..]),
    ] {
        let object = identity[network].as_object_mut().expect("a network");
        for key in keys {
            object.remove(*key);
        }
    }
    assert_eq!(
        config.fingerprint(),
        Fnv::hex_of(identity.to_string().as_bytes())
    );
    let mut decayed = config.clone();
    decayed.g_optimizer.weight_decay = 1e-4;
    assert_ne!(decayed.fingerprint(), config.fingerprint());
}

/// When a file has both an old and a new name, the new one wins; settings a file lacks take
/// their defaults.
#[test]
fn new_names_win_and_missing_settings_take_defaults() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut value = to_value(&GanConfig::new().with_steps(5));
    value["max_steps"] = json!(99);
    value.as_object_mut().expect("object").remove("keep_last");
    let read: GanConfig = read_config(write(dir.path(), &value)).expect("reads");
    assert_eq!(read.steps, 5);
    assert_eq!(read.keep_last, GanConfig::new().keep_last);

    let err = read_config::<GanConfig>(write(dir.path(), &json!({"steps": "many"})))
        .expect_err("a setting of the wrong type is refused");
    assert!(std::error::Error::source(&err).is_some(), "{err}");
}

#[test]
fn epoch_batches_shuffle_per_epoch_and_fold_a_lone_last_item_in() {
    let items: Vec<usize> = (0..9).collect();
    let first = epoch_batches(&items, 4, 3, 0);
    assert_eq!(first.iter().map(Vec::len).collect::<Vec<_>>(), [4, 5]);
    assert_eq!(first, epoch_batches(&items, 4, 3, 0));
    assert_ne!(first, epoch_batches(&items, 4, 3, 1));
    let mut seen: Vec<usize> = first.concat();
    seen.sort_unstable();
    assert_eq!(seen, items);
    assert_eq!(batches(&[0, 1, 2, 3, 4], 2), [vec![0, 1], vec![2, 3, 4]]);
    assert_eq!(batches(&[0], 2), [vec![0]]);
}
