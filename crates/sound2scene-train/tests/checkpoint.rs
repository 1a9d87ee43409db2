//! Tests of the crash-safe checkpoint directories: what readers pick after a crash at each
//! point of a save, failed saves, pruning and pointers.

use std::path::Path;

use sound2scene_train::TrainError;
use sound2scene_train::checkpoint::{
    BEST_POINTER, COMPLETE_MARKER, LATEST_POINTER, checkpoint_name, damaged_checkpoints,
    latest_complete, list_complete, parse_checkpoint_name, prune, read_complete, read_pointer,
    remove_incomplete, save_checkpoint, verify_complete, write_pointer,
};

/// Saves a checkpoint of `step` holding `payload.bin` (`step` repeated) and `state.json`.
fn save(out: &Path, step: u64) -> Result<std::path::PathBuf, TrainError> {
    save_checkpoint(out, step, |dir| {
        std::fs::write(dir.join("payload.bin"), vec![step as u8; 64]).expect("payload");
        std::fs::write(dir.join("state.json"), format!("{{\"step\":{step}}}")).expect("state");
        Ok(())
    })
}

fn steps(out: &Path) -> Vec<u64> {
    list_complete(out)
        .expect("list")
        .into_iter()
        .map(|(s, _)| s)
        .collect()
}

#[test]
fn names_round_trip() {
    assert_eq!(checkpoint_name(123), "ckpt-000123");
    assert_eq!(checkpoint_name(12_345_678), "ckpt-12345678");
    assert_eq!(parse_checkpoint_name("ckpt-000123"), Some(123));
    assert_eq!(parse_checkpoint_name("ckpt-000123.tmp"), None);
    assert_eq!(parse_checkpoint_name("ckpt-"), None);
    assert_eq!(parse_checkpoint_name("best"), None);
}

#[test]
fn a_save_is_complete_and_updates_latest() {
    let out = tempfile::tempdir().expect("tempdir");
    for step in [1, 2, 3] {
        save(out.path(), step).expect("save");
    }
    assert_eq!(steps(out.path()), [1, 2, 3]);
    let dir = out.path().join("ckpt-000003");
    let marker = read_complete(&dir).expect("complete");
    assert_eq!(marker.step, 3);
    assert_eq!(marker.files.get("payload.bin"), Some(&64));
    assert_eq!(
        read_pointer(out.path(), LATEST_POINTER).as_deref(),
        Some(dir.as_path())
    );
    assert!(!out.path().join("ckpt-000003.tmp").exists());
    // Saving a step that is already complete keeps it.
    let again = save_checkpoint(out.path(), 3, |_| panic!("must not rewrite")).expect("resave");
    assert_eq!(again, dir);
}

#[test]
fn crash_leftovers_are_ignored_and_cleaned() {
    let out = tempfile::tempdir().expect("tempdir");
    save(out.path(), 3).expect("save");
    // Killed while writing files: a .tmp directory.
    let tmp = out.path().join("ckpt-000004.tmp");
    std::fs::create_dir(&tmp).expect("tmp");
    std::fs::write(tmp.join("payload.bin"), [0u8; 10]).expect("partial");
    // Killed after the rename, before COMPLETE.
    let unmarked = out.path().join("ckpt-000005");
    std::fs::create_dir(&unmarked).expect("dir");
    std::fs::write(unmarked.join("payload.bin"), [5u8; 64]).expect("payload");
    // A marker whose files do not match (a truncated file).
    let truncated = out.path().join("ckpt-000006");
    std::fs::create_dir(&truncated).expect("dir");
    std::fs::write(truncated.join("payload.bin"), [6u8; 10]).expect("payload");
    std::fs::write(
        truncated.join(COMPLETE_MARKER),
        r#"{"step":6,"files":{"payload.bin":64}}"#,
    )
    .expect("marker");
    // A stale pointer to a checkpoint that never completed.
    write_pointer(out.path(), LATEST_POINTER, &unmarked).expect("pointer");

    let (step, dir) = latest_complete(out.path()).expect("list").expect("one");
    assert_eq!((step, dir), (3, out.path().join("ckpt-000003")));
    assert_eq!(remove_incomplete(out.path()).expect("clean"), 3);
    assert!(!tmp.exists() && !unmarked.exists() && !truncated.exists());
    assert_eq!(steps(out.path()), [3]);
    // The next save of an interrupted step succeeds.
    save(out.path(), 4).expect("save after crash");
    assert_eq!(steps(out.path()), [3, 4]);
}

#[test]
fn a_failed_save_names_the_path_and_keeps_the_previous_checkpoint() {
    let out = tempfile::tempdir().expect("tempdir");
    save(out.path(), 1).expect("save");

    // The final name is taken by a file, so the rename cannot happen (works as root too).
    let blocker = out.path().join("ckpt-000002");
    std::fs::write(&blocker, b"not a directory").expect("blocker");
    let err = save(out.path(), 2).expect_err("rename onto a file");
    match &err {
        TrainError::Checkpoint { path, .. } => assert_eq!(path, &blocker),
        other => panic!("unexpected error {other}"),
    }
    assert!(
        !out.path().join("ckpt-000002.tmp").exists(),
        "tmp cleaned up"
    );
    assert_eq!(steps(out.path()), [1]);
    assert_eq!(
        read_pointer(out.path(), LATEST_POINTER).as_deref(),
        Some(out.path().join("ckpt-000001").as_path())
    );

    // A writer that fails (e.g. a full disk) leaves nothing behind either.
    let err = save_checkpoint(out.path(), 3, |dir| {
        Err(TrainError::Checkpoint {
            path: dir.join("model.bpk"),
            reason: "No space left on device".into(),
            source: None,
        })
    })
    .expect_err("writer error");
    assert!(err.to_string().contains("model.bpk"), "{err}");
    assert!(!out.path().join("ckpt-000003.tmp").exists());
    assert_eq!(steps(out.path()), [1]);
}

#[cfg(unix)]
#[test]
fn a_read_only_directory_fails_cleanly() {
    use std::os::unix::fs::PermissionsExt;
    let out = tempfile::tempdir().expect("tempdir");
    save(out.path(), 1).expect("save");
    let permissions = |mode| std::fs::Permissions::from_mode(mode);
    std::fs::set_permissions(out.path(), permissions(0o555)).expect("chmod");
    // Root ignores directory permissions: detect it by trying to write.
    let probe = out.path().join("probe");
    if std::fs::write(&probe, b"x").is_ok() {
        let _ = std::fs::remove_file(&probe);
        std::fs::set_permissions(out.path(), permissions(0o755)).expect("chmod back");
        eprintln!(
            "note: running with privileges that ignore permissions (root); the read-only check \
             is covered by a_failed_save_names_the_path_and_keeps_the_previous_checkpoint"
        );
        return;
    }
    let err = save(out.path(), 2).expect_err("read-only");
    std::fs::set_permissions(out.path(), permissions(0o755)).expect("chmod back");
    match &err {
        TrainError::Checkpoint { path, .. } => {
            assert_eq!(path, &out.path().join("ckpt-000002.tmp"))
        }
        other => panic!("unexpected error {other}"),
    }
    assert_eq!(steps(out.path()), [1]);
}

#[test]
fn prune_keeps_the_newest_and_the_pointed() {
    let out = tempfile::tempdir().expect("tempdir");
    for step in 1..=6 {
        save(out.path(), step).expect("save");
    }
    write_pointer(out.path(), BEST_POINTER, &out.path().join("ckpt-000002")).expect("best");
    let removed = prune(out.path(), 3).expect("prune");
    assert_eq!(removed.len(), 2);
    assert_eq!(steps(out.path()), [2, 4, 5, 6]);
    assert_eq!(
        read_pointer(out.path(), BEST_POINTER).as_deref(),
        Some(out.path().join("ckpt-000002").as_path())
    );
}

#[test]
fn the_marker_records_each_file_s_sha256() {
    let out = tempfile::tempdir().expect("tempdir");
    let dir = save(out.path(), 1).expect("save");
    let marker = verify_complete(&dir).expect("undamaged");
    // SHA-256 of 64 bytes of 0x01, from Python's hashlib.
    assert_eq!(
        marker.sha256.get("payload.bin").map(String::as_str),
        Some("7c8975e1e60a5c8337f28edf8c33c3b180360b7279644a9bc1af3c51e6220bf5")
    );
    assert_eq!(marker.sha256.len(), marker.files.len());
}

#[test]
fn a_flipped_byte_is_named_and_resuming_falls_back_to_the_previous_checkpoint() {
    let out = tempfile::tempdir().expect("tempdir");
    save(out.path(), 1).expect("save 1");
    let newest = save(out.path(), 2).expect("save 2");
    let payload = newest.join("payload.bin");
    let mut bytes = std::fs::read(&payload).expect("read");
    bytes[17] ^= 0x01;
    std::fs::write(&payload, bytes).expect("flip one byte");

    let err = verify_complete(&newest).expect_err("damaged").to_string();
    assert!(
        err.contains("payload.bin") && err.contains("SHA-256"),
        "{err}"
    );
    let (step, dir) = latest_complete(out.path())
        .expect("list")
        .expect("one left");
    assert_eq!((step, dir), (1, out.path().join("ckpt-000001")));
    let damaged = damaged_checkpoints(out.path()).expect("list");
    assert_eq!(damaged.len(), 1);
    assert!(
        damaged[0].to_string().contains("ckpt-000002"),
        "{}",
        damaged[0]
    );
    // Damaged is not incomplete: it stays on disk for the user to look at.
    assert_eq!(remove_incomplete(out.path()).expect("clean"), 0);
    assert!(newest.is_dir());
}

#[test]
fn markers_written_before_checksums_are_checked_by_size() {
    let out = tempfile::tempdir().expect("tempdir");
    let dir = save(out.path(), 3).expect("save");
    std::fs::write(
        dir.join(COMPLETE_MARKER),
        r#"{"step": 3, "files": {"payload.bin": 64, "state.json": 10}}"#,
    )
    .expect("old marker");
    assert!(verify_complete(&dir).is_ok());
    assert_eq!(
        latest_complete(out.path()).expect("list").map(|c| c.0),
        Some(3)
    );
}

/// The operating system's error under `err`, found by walking its `source()` chain.
fn os_error_under<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a std::io::Error> {
    let mut cause = err.source();
    while let Some(e) = cause {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        cause = e.source();
    }
    None
}

#[test]
fn a_failed_save_keeps_the_os_error_as_its_source() {
    let out = tempfile::tempdir().expect("tempdir");
    // The output "directory" is a file: making the checkpoint's directory in it fails in the OS.
    let blocker = out.path().join("not-a-directory");
    std::fs::write(&blocker, b"a file").expect("blocker");
    let err = save(&blocker, 1).expect_err("a directory inside a file");
    assert!(
        matches!(err, TrainError::Checkpoint { .. }),
        "unexpected error {err}"
    );
    let io = os_error_under(&err).expect("the chain reaches the OS error");
    // The message still names the cause itself.
    assert!(err.to_string().contains(&io.to_string()), "{err}");

    // Writing into a directory that does not exist fails the same way.
    let missing = out.path().join("missing").join("report.json");
    let err = sound2scene_train::SkipReport::default()
        .write(&missing)
        .expect_err("no such directory");
    let io = os_error_under(&err).expect("the chain reaches the OS error");
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound, "{err}");
}
