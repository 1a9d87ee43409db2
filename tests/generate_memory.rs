//! `generate --count 3000` on the bundled model draws in batches, so its memory stays flat in
//! the count: before batching the whole count went through G at once and held 2.9 GB
//! (docs/architecture.md, "The data path of `generate`").

use std::path::Path;
use std::process::{Command, Stdio};

/// Peak resident memory allowed for the whole process, in bytes.
const PEAK_RSS_LIMIT: u64 = 300 * 1024 * 1024;

/// Runs `command` and returns its exit status and peak resident set size in bytes: the
/// kernel's accounting of this process's reaped children (`getrusage(RUSAGE_CHILDREN)`'s
/// `ru_maxrss`, in KiB on Linux), which is the child's own peak, as it is this test binary's
/// only child.
#[cfg(target_os = "linux")]
fn run_measuring_peak_rss(command: &mut Command) -> (Option<i32>, u64) {
    let status = command
        .stdout(Stdio::null())
        .status()
        .expect("the binary starts");
    // SAFETY: an all-zero `rusage` is a valid value of the plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is valid for writes for the duration of the call.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    assert_eq!(rc, 0, "getrusage");
    (status.code(), usage.ru_maxrss as u64 * 1024)
}

#[cfg(target_os = "linux")]
#[test]
fn generating_3000_pictures_stays_under_300_mb() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let model = repo.join("assets/models/sound2scene-tiny/generator.bpk");
    assert!(
        model.is_file(),
        "the bundled model {} is missing",
        model.display()
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("scene.png");
    let (code, peak) =
        run_measuring_peak_rss(Command::new(env!("CARGO_BIN_EXE_sound2scene")).args([
            "generate".as_ref(),
            "--audio".as_ref(),
            repo.join("assets/sounds/field_cow.wav").as_os_str(),
            "--count".as_ref(),
            "3000".as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
        ]));
    assert_eq!(code, Some(0), "generate --count 3000 succeeds");
    assert!(out.is_file());
    eprintln!("peak RSS {} MB", peak / (1024 * 1024));
    assert!(
        peak < PEAK_RSS_LIMIT,
        "peak RSS {} MB is over {} MB",
        peak / (1024 * 1024),
        PEAK_RSS_LIMIT / (1024 * 1024)
    );
}
