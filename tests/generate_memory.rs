//! `generate --count 3000` on the bundled model draws in batches, so its memory stays flat in
//! the count: before batching the whole count went through G at once and held 2.9 GB
//! (docs/architecture.md, "The data path of `generate`").

use std::path::Path;
use std::process::{Command, Stdio};

/// Peak resident memory allowed for the whole process, in bytes.
const PEAK_RSS_LIMIT: u64 = 300 * 1024 * 1024;

/// Runs `command` and returns its exit status and peak resident set size in bytes, read from
/// the kernel's accounting of the finished child (`wait4`'s `ru_maxrss`, in KiB on Linux).
#[cfg(target_os = "linux")]
fn run_measuring_peak_rss(command: &mut Command) -> (i32, u64) {
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero `rusage` is a valid value of the plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not yet reaped; `status` and `usage` are valid for
    // writes for the duration of the call.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4 reaps the child");
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    (code, usage.ru_maxrss as u64 * 1024)
}

#[cfg(target_os = "linux")]
#[test]
fn generating_3000_pictures_stays_under_300_mb() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let model = repo.join("assets/models/sound2scene-tiny/generator.bpk");
    if !model.is_file() {
        eprintln!("skip: the bundled model is not in this checkout");
        return;
    }
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
    assert_eq!(code, 0, "generate --count 3000 succeeds");
    assert!(out.is_file());
    eprintln!("peak RSS {} MB", peak / (1024 * 1024));
    assert!(
        peak < PEAK_RSS_LIMIT,
        "peak RSS {} MB is over {} MB",
        peak / (1024 * 1024),
        PEAK_RSS_LIMIT / (1024 * 1024)
    );
}
