//! Hostile checkpoints: a file handed to the loaders never runs code, never panics and never
//! makes them allocate what it merely claims.
//!
//! Every crafted file is built here, byte by byte, in a temporary directory: torch ZIP
//! archives (STORED and DEFLATE entries), legacy `torch.save` streams and bare pickles with
//! hand-written opcodes, burnpack files written by [`burnpack::save`], and safetensors files.
//! The released fixtures are only copied, then truncated or edited. A counting allocator
//! records the largest single allocation each thread makes, so "without allocating what it
//! claims" is measured.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::Device;
use sound2scene_models::audio_encoder::{AudioEncoder, AudioEncoderConfig};
use sound2scene_models::burnpack::{self, NetworkKind, Precision};
use sound2scene_models::resnet::ResNetConfig;
use sound2scene_models::{LoadOptions, ModelError, StateDict};

/// A file that claims gigabytes must be refused in well under this, i.e. before anything of
/// that size is allocated or read.
const FAST: Duration = Duration::from_secs(1);

/// Largest single allocation a refused file may cause: far below the gigabytes claimed.
const MAX_ALLOCATION: usize = 64 << 20;

/// The system allocator, recording per thread the largest block asked for.
struct PeakAllocator;

thread_local! {
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn record(size: usize) {
    let _ = PEAK.try_with(|peak| peak.set(peak.get().max(size)));
}

// SAFETY: every call is forwarded unchanged to `System`; only the size is recorded.
unsafe impl GlobalAlloc for PeakAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: the caller's contract is passed on to `System` as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        // SAFETY: as for `alloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for `alloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: PeakAllocator = PeakAllocator;

// ---------------------------------------------------------------------------------------------
// Building pickles by hand
// ---------------------------------------------------------------------------------------------

/// A pickle written opcode by opcode.
#[derive(Clone, Default)]
struct Pickle(Vec<u8>);

impl Pickle {
    fn proto(version: u8) -> Self {
        Self(vec![0x80, version])
    }
    fn raw(mut self, bytes: &[u8]) -> Self {
        self.0.extend_from_slice(bytes);
        self
    }
    /// `BINUNICODE`.
    fn str(self, s: &str) -> Self {
        let len = (s.len() as u32).to_le_bytes();
        self.raw(b"X").raw(&len).raw(s.as_bytes())
    }
    /// `SHORT_BINUNICODE` then `MEMOIZE` (protocol 4), as a protocol 4 pickler names globals.
    fn short_str_memo(self, s: &str) -> Self {
        self.raw(&[0x8c, s.len() as u8])
            .raw(s.as_bytes())
            .raw(&[0x94])
    }
    /// `GLOBAL module name`.
    fn global(self, module: &str, name: &str) -> Self {
        self.raw(b"c")
            .raw(module.as_bytes())
            .raw(b"\n")
            .raw(name.as_bytes())
            .raw(b"\n")
    }
    /// `BININT`.
    fn int(self, v: i64) -> Self {
        self.raw(b"J").raw(&(v as i32).to_le_bytes())
    }
    /// `MARK ints... TUPLE`.
    fn int_tuple(self, values: &[usize]) -> Self {
        values
            .iter()
            .fold(self.raw(b"("), |p, &v| p.int(v as i64))
            .raw(b"t")
    }
    fn stop(self) -> Vec<u8> {
        self.raw(b".").0
    }
}

/// One tensor of a crafted state dict.
#[derive(Clone)]
struct TensorSpec {
    key: &'static str,
    /// `FloatStorage`, `HalfStorage`, ...
    storage_type: &'static str,
    storage_key: &'static str,
    /// Elements the storage declares.
    numel: usize,
    shape: Vec<usize>,
    stride: Vec<usize>,
}

impl TensorSpec {
    fn f32(key: &'static str, storage_key: &'static str, shape: &[usize]) -> Self {
        let numel = shape.iter().product();
        Self {
            key,
            storage_type: "FloatStorage",
            storage_key,
            numel,
            shape: shape.to_vec(),
            stride: contiguous_stride(shape),
        }
    }
}

fn contiguous_stride(shape: &[usize]) -> Vec<usize> {
    let mut stride = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        stride[i] = stride[i + 1] * shape[i + 1];
    }
    stride
}

/// `torch._utils._rebuild_tensor_v2(storage, 0, shape, stride, False, OrderedDict())`, the
/// storage a persistent id `('storage', type, key, 'cpu', numel[, None])`.
fn push_tensor(p: Pickle, t: &TensorSpec, legacy: bool) -> Pickle {
    let pid = p
        .global("torch._utils", "_rebuild_tensor_v2")
        .raw(b"((")
        .str("storage")
        .global("torch", t.storage_type)
        .str(t.storage_key)
        .str("cpu")
        .int(t.numel as i64);
    let pid = if legacy { pid.raw(b"N") } else { pid };
    pid.raw(b"tQ")
        .int(0)
        .int_tuple(&t.shape)
        .int_tuple(&t.stride)
        .raw(&[0x89])
        .global("collections", "OrderedDict")
        .raw(b")R")
        .raw(b"tR")
}

/// A state dict pickle: the tensors, then `extra` (opcodes that leave the stack as they
/// found it, e.g. `key value SETITEM`).
fn state_dict_pickle(proto: u8, tensors: &[TensorSpec], legacy: bool, extra: &Pickle) -> Vec<u8> {
    let mut p = Pickle::proto(proto).raw(b"}");
    for t in tensors {
        p = push_tensor(p.str(t.key), t, legacy).raw(b"s");
    }
    p.raw(&extra.0).stop()
}

// ---------------------------------------------------------------------------------------------
// Containers
// ---------------------------------------------------------------------------------------------

/// One entry of a hand-made ZIP archive.
struct ZipEntry {
    name: String,
    /// The bytes stored (compressed ones for DEFLATE).
    stored: Vec<u8>,
    /// 0 = STORED, 8 = DEFLATE.
    method: u16,
    /// Uncompressed size and CRC the headers declare.
    size: u32,
    crc: u32,
}

impl ZipEntry {
    fn stored(name: impl Into<String>, data: &[u8]) -> Self {
        Self {
            name: name.into(),
            stored: data.to_vec(),
            method: 0,
            size: data.len() as u32,
            crc: crc32fast::hash(data),
        }
    }
}

/// A ZIP archive with local headers, a central directory and an end record, as the `zip`
/// format defines them (no data descriptors, no ZIP64).
fn zip_archive(entries: &[ZipEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for e in entries {
        let offset = out.len() as u32;
        let common = |v: &mut Vec<u8>| {
            v.extend_from_slice(&20u16.to_le_bytes()); // version needed
            v.extend_from_slice(&0u16.to_le_bytes()); // flags
            v.extend_from_slice(&e.method.to_le_bytes());
            v.extend_from_slice(&0u16.to_le_bytes()); // time
            v.extend_from_slice(&0x21u16.to_le_bytes()); // date 1980-01-01
            v.extend_from_slice(&e.crc.to_le_bytes());
            v.extend_from_slice(&(e.stored.len() as u32).to_le_bytes());
            v.extend_from_slice(&e.size.to_le_bytes());
            v.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
            v.extend_from_slice(&0u16.to_le_bytes()); // extra length
        };
        out.extend_from_slice(b"PK\x03\x04");
        common(&mut out);
        out.extend_from_slice(e.name.as_bytes());
        out.extend_from_slice(&e.stored);

        central.extend_from_slice(b"PK\x01\x02");
        central.extend_from_slice(&20u16.to_le_bytes()); // version made by
        common(&mut central);
        central.extend_from_slice(&[0; 6]); // comment length, disk, internal attributes
        central.extend_from_slice(&0u32.to_le_bytes()); // external attributes
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(e.name.as_bytes());
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(b"PK\x05\x06");
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// A torch ZIP checkpoint (`archive/data.pkl`, `archive/data/<key>`, `byteorder`,
/// `version`) holding `pickle` and the given storages.
fn torch_zip(pickle: &[u8], storages: Vec<ZipEntry>) -> Vec<u8> {
    let mut entries = vec![ZipEntry::stored("archive/data.pkl", pickle)];
    entries.push(ZipEntry::stored("archive/byteorder", b"little"));
    entries.extend(storages);
    entries.push(ZipEntry::stored("archive/version", b"3\n"));
    zip_archive(&entries)
}

fn storage_entry(key: &str, data: &[u8]) -> ZipEntry {
    ZipEntry::stored(format!("archive/data/{key}"), data)
}

/// The magic number, protocol and system info pickles that open a legacy `torch.save` file.
fn legacy_prelude() -> Vec<u8> {
    let mut out = Pickle::proto(2)
        .raw(&[
            0x8a, 10, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19,
        ])
        .stop();
    out.extend(Pickle::proto(2).raw(&[b'M', 0xe9, 0x03]).stop());
    out.extend(
        Pickle::proto(2)
            .raw(b"}(")
            .str("protocol_version")
            .raw(&[b'M', 0xe9, 0x03])
            .str("little_endian")
            .raw(&[0x88])
            .str("type_sizes")
            .raw(b"}(")
            .str("short")
            .int(2)
            .str("int")
            .int(4)
            .str("long")
            .int(4)
            .raw(b"uu")
            .stop(),
    );
    out
}

/// A legacy `torch.save` file: prelude, `main` pickle, key list, then each storage as an
/// `i64` element count and its bytes.
fn legacy_file(main: &[u8], storages: &[(&str, usize, Vec<u8>)]) -> Vec<u8> {
    let mut out = legacy_prelude();
    out.extend_from_slice(main);
    let keys = storages
        .iter()
        .fold(Pickle::proto(2).raw(b"]("), |p, (k, _, _)| p.str(k))
        .raw(b"e")
        .stop();
    out.extend(keys);
    for (_, numel, bytes) in storages {
        out.extend_from_slice(&(*numel as i64).to_le_bytes());
        out.extend_from_slice(bytes);
    }
    out
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The weights of the small crafted state dict: `w` `[2, 3]` and `b` `[3]`.
const W: [f32; 6] = [0.5, -1.0, 2.0, 0.25, 3.0, -4.5];
const B: [f32; 3] = [1.0, 2.0, 3.0];

fn small_specs() -> Vec<TensorSpec> {
    vec![
        TensorSpec::f32("w", "0", &[2, 3]),
        TensorSpec::f32("b", "1", &[3]),
    ]
}

fn small_zip(extra: &Pickle) -> Vec<u8> {
    torch_zip(
        &state_dict_pickle(2, &small_specs(), false, extra),
        vec![
            storage_entry("0", &f32_bytes(&W)),
            storage_entry("1", &f32_bytes(&B)),
        ],
    )
}

fn small_legacy(extra: &Pickle) -> Vec<u8> {
    legacy_file(
        &state_dict_pickle(2, &small_specs(), true, extra),
        &[("0", 6, f32_bytes(&W)), ("1", 3, f32_bytes(&B))],
    )
}

// ---------------------------------------------------------------------------------------------
// Running the loaders
// ---------------------------------------------------------------------------------------------

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write crafted file");
    path
}

/// Read `path` as the loaders do: its errors as the [`ModelError`] variants they become.
fn load(path: &Path) -> sound2scene_models::Result<StateDict> {
    StateDict::from_pytorch(path, None, &LoadOptions::default()).map_err(ModelError::from)
}

/// Run `f`, failing the test with `case` if it panics.
fn no_panic<T>(case: &str, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => value,
        Err(payload) => {
            let detail = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            panic!("{case}: the loader panicked: {detail}");
        }
    }
}

/// Load `path`, expecting a [`ModelError::Checkpoint`] within [`FAST`] and without any
/// allocation of [`MAX_ALLOCATION`] or more; return its message.
fn expect_refused_fast(case: &str, path: &Path) -> String {
    let start = Instant::now();
    PEAK.with(|p| p.set(0));
    let result = no_panic(case, || load(path));
    let peak = PEAK.with(Cell::get);
    let elapsed = start.elapsed();
    assert!(
        peak < MAX_ALLOCATION,
        "{case}: allocated {peak} bytes at once"
    );
    let err = match result {
        Ok(dict) => panic!("{case}: loaded {} tensors, expected an error", dict.len()),
        Err(e) => e,
    };
    assert!(
        matches!(err, ModelError::Checkpoint { .. }),
        "{case}: expected a checkpoint error, got {err:?}"
    );
    assert!(elapsed < FAST, "{case}: took {elapsed:?}");
    err.to_string()
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// The crafted containers are real checkpoints: without anything hostile in them they load,
/// with the exact values written. Every refusal below is therefore the hostile part's doing.
#[test]
fn crafted_checkpoints_load_when_benign() {
    let dir = tempfile::tempdir().expect("temp dir");
    let benign = Pickle::default();
    let benign_call = Pickle::default()
        .str("meta")
        .global("collections", "OrderedDict")
        .raw(b")Rs");
    for (name, bytes) in [
        ("small.pth", small_zip(&benign)),
        ("small_legacy.pth", small_legacy(&benign)),
        ("small_meta.pth", small_zip(&benign_call)),
    ] {
        let path = write(dir.path(), name, &bytes);
        let dict = load(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(dict.len(), 2, "{name}");
        let w = dict.get("w").expect("w");
        assert_eq!(w.shape, vec![2, 3], "{name}");
        assert_eq!(w.values, W.to_vec(), "{name}");
        assert_eq!(dict.get("b").expect("b").values, B.to_vec(), "{name}");
    }
}

/// The released checkpoints pass the pickle screen and the memory bound: every fixture
/// `torch.save` wrote (ZIP and legacy, weights and a pickle of plain values) loads.
#[test]
fn released_checkpoints_pass_the_screen() {
    for (fixture, min_tensors) in [
        ("models/sound2scene_audio_resnet18.pth", 50),
        ("models/swav_resnet50_layers1111.pth.tar", 50),
        ("models/icgan_biggan_ch8_res128/G_ema_best0.pth", 10),
        ("models/icgan_biggan_ch8_res128/D_best0.pth", 10),
        ("models/icgan_biggan_ch8_res128/state_dict_best0.pth", 0),
    ] {
        let Some(path) = common::fixture(fixture) else {
            continue;
        };
        let dict = load(&path).unwrap_or_else(|e| panic!("{fixture}: {e}"));
        assert!(
            dict.len() >= min_tensors,
            "{fixture}: {} tensors",
            dict.len()
        );
    }
}

/// The callables a hostile pickle reaches for, and ways to name and call them.
const CALLABLES: [(&str, &str); 4] = [
    ("os", "system"),
    ("posix", "system"),
    ("builtins", "eval"),
    ("subprocess", "Popen"),
];

/// Opcodes that push `module.name(command)` (or build an object of that class) by each route
/// a pickle has to a callable. Protocol 4 for `STACK_GLOBAL`'s `MEMOIZE`.
fn calls(module: &str, name: &str, command: &str) -> Vec<(&'static str, u8, Pickle)> {
    let arg = Pickle::default().raw(b"(").str(command).raw(b"t");
    vec![
        (
            "GLOBAL+REDUCE",
            2,
            Pickle::default().global(module, name).raw(&arg.0).raw(b"R"),
        ),
        (
            "STACK_GLOBAL+REDUCE",
            4,
            Pickle::default()
                .short_str_memo(module)
                .short_str_memo(name)
                .raw(&[0x93])
                .raw(&arg.0)
                .raw(b"R"),
        ),
        (
            "INST",
            2,
            Pickle::default()
                .raw(b"(")
                .str(command)
                .raw(b"i")
                .raw(module.as_bytes())
                .raw(b"\n")
                .raw(name.as_bytes())
                .raw(b"\n"),
        ),
        (
            "OBJ",
            2,
            Pickle::default()
                .raw(b"(")
                .global(module, name)
                .str(command)
                .raw(b"o"),
        ),
        (
            "NEWOBJ+BUILD (__reduce__/__setstate__)",
            2,
            Pickle::default()
                .global(module, name)
                .raw(&arg.0)
                .raw(&[0x81])
                .raw(b"}")
                .str("cmd")
                .str(command)
                .raw(b"sb"),
        ),
    ]
}

/// A pickle that calls `os.system` (and the like) is refused, naming the callable, whether
/// the call's result is stored in the state dict, thrown away with `POP`, or is the whole
/// pickle; in a ZIP checkpoint, a legacy one and a bare pickle file. Nothing runs: the
/// command would create a sentinel file.
#[test]
fn pickles_that_name_code_are_refused_in_every_container() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sentinel = dir.path().join("pwned");
    let command = format!("touch {}", sentinel.display());
    let mut cases = 0;
    for (module, name) in CALLABLES {
        let callable = format!("{module}.{name}");
        for (route, proto, call) in calls(module, name, &command) {
            let stored = Pickle::default().str("evil").raw(&call.0).raw(b"s");
            let popped = Pickle::default().raw(&call.0).raw(b"0");
            let files = [
                (
                    "zip, stored",
                    torch_zip(
                        &state_dict_pickle(proto, &small_specs(), false, &stored),
                        vec![
                            storage_entry("0", &f32_bytes(&W)),
                            storage_entry("1", &f32_bytes(&B)),
                        ],
                    ),
                ),
                (
                    "zip, popped",
                    torch_zip(
                        &state_dict_pickle(proto, &small_specs(), false, &popped),
                        vec![
                            storage_entry("0", &f32_bytes(&W)),
                            storage_entry("1", &f32_bytes(&B)),
                        ],
                    ),
                ),
                (
                    "legacy, stored",
                    legacy_file(
                        &state_dict_pickle(proto, &small_specs(), true, &stored),
                        &[("0", 6, f32_bytes(&W)), ("1", 3, f32_bytes(&B))],
                    ),
                ),
                (
                    "bare pickle, stored",
                    Pickle::proto(proto).raw(b"}").raw(&stored.0).stop(),
                ),
                (
                    "bare pickle, root",
                    Pickle::proto(proto).raw(&call.0).stop(),
                ),
                (
                    "zip, root",
                    torch_zip(&Pickle::proto(proto).raw(&call.0).stop(), Vec::new()),
                ),
            ];
            for (container, bytes) in files {
                let case = format!("{callable} via {route} in {container}");
                let path = write(dir.path(), "hostile.pth", &bytes);
                let msg = expect_refused_fast(&case, &path);
                assert!(msg.contains(&callable), "{case}: {msg}");
                assert!(!sentinel.exists(), "{case}: the command ran");
                cases += 1;
            }
        }
    }
    assert_eq!(cases, 4 * 5 * 6);
}

/// A storage shorter than its tensor, a storage the pickle declares too small for the view,
/// and a storage entry that is missing are errors, never zero-filled weights.
#[test]
fn short_or_missing_storage_is_an_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pickle = state_dict_pickle(2, &small_specs(), false, &Pickle::default());
    let under_declared = {
        let mut specs = small_specs();
        specs[0].numel = 3;
        state_dict_pickle(2, &specs, false, &Pickle::default())
    };
    let cases = [
        (
            "zip storage 12 of 24 bytes",
            torch_zip(
                &pickle,
                vec![
                    storage_entry("0", &f32_bytes(&W[..3])),
                    storage_entry("1", &f32_bytes(&B)),
                ],
            ),
        ),
        (
            "zip storage 23 of 24 bytes",
            torch_zip(
                &pickle,
                vec![
                    storage_entry("0", &f32_bytes(&W)[..23]),
                    storage_entry("1", &f32_bytes(&B)),
                ],
            ),
        ),
        (
            "zip storage declared 3 elements for a [2, 3] view",
            torch_zip(
                &under_declared,
                vec![
                    storage_entry("0", &f32_bytes(&W)),
                    storage_entry("1", &f32_bytes(&B)),
                ],
            ),
        ),
        (
            "zip storage entry missing",
            torch_zip(&pickle, vec![storage_entry("1", &f32_bytes(&B))]),
        ),
        (
            "legacy storage count disagrees",
            legacy_file(
                &state_dict_pickle(2, &small_specs(), true, &Pickle::default()),
                &[("0", 5, f32_bytes(&W)), ("1", 3, f32_bytes(&B))],
            ),
        ),
        (
            "legacy storage missing from the key list",
            legacy_file(
                &state_dict_pickle(2, &small_specs(), true, &Pickle::default()),
                &[("1", 3, f32_bytes(&B))],
            ),
        ),
    ];
    for (case, bytes) in cases {
        let path = write(dir.path(), "short.pth", &bytes);
        expect_refused_fast(case, &path);
    }
    // Only storage "0" is missing, so only "w" could have been zero-filled: check that the
    // reader did not hand it over on its own either.
    let path = write(
        dir.path(),
        "missing.pth",
        &torch_zip(&pickle, vec![storage_entry("1", &f32_bytes(&B))]),
    );
    let msg = expect_refused_fast("missing storage", &path);
    assert!(msg.contains("data/0"), "{msg}");
}

/// Truncate a copy of `source` at each of `cuts` (in any order) and check that `check`
/// refuses every prefix without panicking.
fn check_truncations(
    what: &str,
    source: &[u8],
    dir: &Path,
    check: impl Fn(&Path) -> Result<(), String>,
) {
    let path = dir.join(format!("truncated-{}", what.replace([' ', '/'], "_")));
    let len = source.len();
    // The first 64 bytes one by one, then 64 cut points spread over the file.
    let mut cuts: Vec<usize> = (0..64.min(len)).collect();
    cuts.extend((1..=64).map(|i| len * i / 65));
    cuts.sort_unstable();
    cuts.dedup();
    // Descending, so one copy is shortened in place instead of rewritten for every cut.
    std::fs::write(&path, source).expect("copy");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open copy");
    for &cut in cuts.iter().rev() {
        file.set_len(cut as u64).expect("truncate");
        let case = format!("{what} cut at {cut} of {len} bytes");
        let start = Instant::now();
        match no_panic(&case, || check(&path)) {
            Ok(()) => panic!("{case}: accepted"),
            Err(_) => assert!(start.elapsed() < FAST, "{case}: took {:?}", start.elapsed()),
        }
    }
}

fn check_pytorch(path: &Path) -> Result<(), String> {
    load(path).map(|_| ()).map_err(|e| e.to_string())
}

/// Every prefix of a checkpoint is an error, never a panic: the crafted ZIP and legacy files
/// at every byte, the released ZIP and legacy fixtures at 64 points and their first 64 bytes.
#[test]
fn truncated_checkpoints_are_errors_never_panics() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (what, bytes) in [
        ("crafted zip", small_zip(&Pickle::default())),
        ("crafted legacy", small_legacy(&Pickle::default())),
    ] {
        let full = write(dir.path(), "full.pth", &bytes);
        check_pytorch(&full).unwrap_or_else(|e| panic!("{what}: {e}"));
        let path = dir.path().join("prefix.pth");
        for cut in 0..bytes.len() {
            std::fs::write(&path, &bytes[..cut]).expect("write prefix");
            let case = format!("{what} cut at {cut} of {}", bytes.len());
            if no_panic(&case, || check_pytorch(&path)).is_ok() {
                panic!("{case}: accepted");
            }
        }
    }
    for fixture in [
        "models/sound2scene_audio_resnet18.pth",
        "models/swav_resnet50_layers1111.pth.tar",
    ] {
        let Some(path) = common::fixture(fixture) else {
            continue;
        };
        let bytes = std::fs::read(&path).expect("read fixture");
        check_truncations(fixture, &bytes, dir.path(), check_pytorch);
    }
}

/// A narrow audio encoder (ResNet-18 layout at base width 2, 8 outputs) and its config.
fn tiny_encoder(device: &Device) -> (AudioEncoder, AudioEncoderConfig) {
    let config = AudioEncoderConfig::new()
        .with_resnet(ResNetConfig::resnet18(1).with_base_width(2))
        .with_out_dim(8);
    (config.init(device), config)
}

/// Every prefix of a burnpack file is refused by `burnpack::load`; `read_header` either
/// refuses it or reads the same header as the full file (the header precedes the tensors).
#[test]
fn truncated_burnpack_is_an_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let device = Device::default();
    let (encoder, config) = tiny_encoder(&device);
    let full = dir.path().join("tiny.bpk");
    burnpack::save(
        &encoder,
        NetworkKind::AudioEncoder,
        &config,
        &full,
        Precision::F32,
    )
    .expect("save burnpack");
    let header = burnpack::read_header(&full).expect("read full header");
    let load = |path: &Path| {
        burnpack::load::<AudioEncoder, AudioEncoderConfig>(
            path,
            NetworkKind::AudioEncoder,
            &device,
            |c, d| c.init(d),
        )
    };
    let (loaded, _) = load(&full).expect("load full burnpack");
    assert_eq!(loaded.num_params(), encoder.num_params());
    let bytes = std::fs::read(&full).expect("read burnpack");
    check_truncations("burnpack", &bytes, dir.path(), |path| {
        if let Ok(h) = burnpack::read_header(path)
            && (h.network != header.network || h.config_json != header.config_json)
        {
            return Ok(());
        }
        match load(path) {
            Ok(_) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    });
    // A checkpoint reader handed a burnpack file refuses it too.
    let case = "burnpack read as a PyTorch checkpoint";
    assert!(no_panic(case, || load_pytorch_err(&full)), "{case}");
}

fn load_pytorch_err(path: &Path) -> bool {
    load(path).is_err()
}

/// A safetensors file for a `Linear(3 -> 2)`: Burn's layout, weight `[3, 2]` and bias `[2]`.
fn safetensors_linear(weight: &[f32; 6], bias: &[f32; 2]) -> Vec<u8> {
    let header = r#"{"weight":{"dtype":"F32","shape":[3,2],"data_offsets":[0,24]},"bias":{"dtype":"F32","shape":[2],"data_offsets":[24,32]}}"#;
    let mut header = header.as_bytes().to_vec();
    while !header.len().is_multiple_of(8) {
        header.push(b' ');
    }
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend(header);
    out.extend(f32_bytes(weight));
    out.extend(f32_bytes(bias));
    out
}

fn load_linear(path: &Path, device: &Device) -> Result<Linear, String> {
    let mut linear = LinearConfig::new(3, 2).init(device);
    let mut store = SafetensorsStore::from_file(path);
    let result = linear.load_from(&mut store).map_err(|e| e.to_string())?;
    if !result.is_success() || !result.missing.is_empty() {
        return Err(format!("incomplete: {result:?}"));
    }
    Ok(linear)
}

/// Every prefix of a safetensors file is refused by burn-store's `SafetensorsStore` (the
/// project has no safetensors path of its own) and by the PyTorch reader.
#[test]
fn truncated_safetensors_is_an_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let device = Device::default();
    let weight = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let bytes = safetensors_linear(&weight, &[0.5, -0.5]);
    let full = write(dir.path(), "linear.safetensors", &bytes);
    let linear = load_linear(&full, &device).expect("load full safetensors");
    let got: Vec<f32> = linear.weight.val().into_data().try_to_vec().expect("f32");
    assert_eq!(got, weight.to_vec());
    check_truncations("safetensors", &bytes, dir.path(), |path| {
        load_linear(path, &device).map(|_| ())
    });
    let case = "safetensors read as a PyTorch checkpoint";
    assert!(no_panic(case, || load_pytorch_err(&full)), "{case}");
}

/// Pickles declaring 4 GiB strings or bytes, and ZIP entries claiming 4 GiB, are refused
/// within a second, without allocating what they claim.
#[test]
fn huge_declared_lengths_fail_fast() {
    let dir = tempfile::tempdir().expect("temp dir");
    let huge32 = 0xFFFF_FFF0u32.to_le_bytes();
    let huge64 = (4u64 << 30).to_le_bytes();
    let strings: Vec<(&str, Vec<u8>)> = vec![
        ("BINUNICODE8", [&[0x8d][..], &huge64].concat()),
        ("BINBYTES8", [&[0x8e][..], &huge64].concat()),
        ("BYTEARRAY8", [&[0x96][..], &huge64].concat()),
        ("BINUNICODE", [&b"X"[..], &huge32].concat()),
        ("BINBYTES", [&b"B"[..], &huge32].concat()),
        ("BINSTRING", [&b"T"[..], &huge32].concat()),
        ("LONG4", [&[0x8b][..], &huge32].concat()),
        ("SHORT_BINBYTES past the end", vec![b'C', 0xff]),
    ];
    for (op, prefix) in strings {
        let pickle = Pickle::proto(4)
            .raw(b"}")
            .str("k")
            .raw(&prefix)
            .raw(b"abc")
            .raw(b"s")
            .stop();
        let bare = write(dir.path(), "huge.pkl", &pickle);
        expect_refused_fast(&format!("bare pickle {op}"), &bare);
        let zipped = write(dir.path(), "huge.pth", &torch_zip(&pickle, Vec::new()));
        expect_refused_fast(&format!("zip pickle {op}"), &zipped);
    }

    // data.pkl claiming 4 GiB.
    let mut pkl = ZipEntry::stored("archive/data.pkl", b"\x80\x02}.");
    pkl.size = u32::from_le_bytes(huge32);
    let path = write(dir.path(), "huge_pkl.pth", &zip_archive(&[pkl]));
    expect_refused_fast("data.pkl claiming 4 GiB", &path);

    // A storage entry claiming 4 GiB behind a tensor that wants all of it.
    let numel = 0xFFFF_FFF0usize / 4;
    let pickle = state_dict_pickle(
        2,
        &[TensorSpec::f32("w", "0", &[numel])],
        false,
        &Pickle::default(),
    );
    let mut entry = storage_entry("0", &f32_bytes(&W));
    entry.size = u32::from_le_bytes(huge32);
    let path = write(
        dir.path(),
        "huge_entry.pth",
        &torch_zip(&pickle, vec![entry]),
    );
    expect_refused_fast("storage entry claiming 4 GiB", &path);
}

/// A raw DEFLATE stream (fixed Huffman codes) that expands to `len` zero bytes: a literal 0,
/// then back-references of 258 bytes at distance 1, so about 1/1300 of the output's size.
fn deflate_zeros(len: usize) -> Vec<u8> {
    struct Bits {
        out: Vec<u8>,
        acc: u64,
        n: u32,
    }
    impl Bits {
        fn put(&mut self, value: u32, bits: u32) {
            self.acc |= u64::from(value) << self.n;
            self.n += bits;
            while self.n >= 8 {
                self.out.push(self.acc as u8);
                self.acc >>= 8;
                self.n -= 8;
            }
        }
        /// A Huffman code, sent most significant bit first.
        fn code(&mut self, code: u32, bits: u32) {
            self.put(code.reverse_bits() >> (32 - bits), bits);
        }
    }
    let mut b = Bits {
        out: Vec::new(),
        acc: 0,
        n: 0,
    };
    b.put(1, 1); // BFINAL
    b.put(1, 2); // fixed Huffman
    let literal_zero = |b: &mut Bits| b.code(0x30, 8);
    literal_zero(&mut b);
    let matches = (len - 1) / 258;
    for _ in 0..matches {
        b.code(0xc5, 8); // length code 285: 258 bytes
        b.code(0, 5); // distance code 0: distance 1
    }
    for _ in 0..(len - 1 - matches * 258) {
        literal_zero(&mut b);
    }
    b.code(0, 7); // end of block
    b.put(0, 7);
    b.out
}

/// Shapes that claim far more data than the file holds are refused before that memory is
/// allocated: a DEFLATE entry of 0.4 MB that expands to 64 MiB, a stride-0 view of one
/// element as 256 Mi elements, and 16 views of one 256 KiB storage.
#[test]
fn decompression_and_view_bombs_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");

    let bomb_len = 64 << 20;
    let zeros = vec![0u8; bomb_len];
    let bomb = ZipEntry {
        name: "archive/data/0".into(),
        stored: deflate_zeros(bomb_len),
        method: 8,
        size: bomb_len as u32,
        crc: crc32fast::hash(&zeros),
    };
    drop(zeros);
    let pickle = state_dict_pickle(
        2,
        &[TensorSpec::f32("w", "0", &[bomb_len / 4])],
        false,
        &Pickle::default(),
    );
    let path = write(dir.path(), "bomb.pth", &torch_zip(&pickle, vec![bomb]));
    let msg = expect_refused_fast("DEFLATE bomb", &path);
    assert!(msg.contains("'w'"), "{msg}");

    let broadcast = TensorSpec {
        key: "w",
        storage_type: "FloatStorage",
        storage_key: "0",
        numel: 1,
        shape: vec![256 << 20],
        stride: vec![0],
    };
    let pickle = state_dict_pickle(2, &[broadcast], false, &Pickle::default());
    let path = write(
        dir.path(),
        "broadcast.pth",
        &torch_zip(&pickle, vec![storage_entry("0", &f32_bytes(&[1.0]))]),
    );
    expect_refused_fast("stride-0 view", &path);

    let numel = 64 << 10;
    const KEYS: [&str; 16] = [
        "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12", "v13",
        "v14", "v15",
    ];
    let views: Vec<TensorSpec> = KEYS
        .iter()
        .map(|key| TensorSpec::f32(key, "0", &[numel]))
        .collect();
    let pickle = state_dict_pickle(2, &views, false, &Pickle::default());
    let path = write(
        dir.path(),
        "views.pth",
        &torch_zip(&pickle, vec![storage_entry("0", &vec![0u8; numel * 4])]),
    );
    expect_refused_fast("16 views of one storage", &path);
    // Two views of it (tied weights) are within bounds.
    let pickle = state_dict_pickle(2, &views[..2], false, &Pickle::default());
    let path = write(
        dir.path(),
        "tied.pth",
        &torch_zip(&pickle, vec![storage_entry("0", &vec![0u8; numel * 4])]),
    );
    assert_eq!(load(&path).expect("tied weights load").len(), 2);
}

/// NaN or infinite weights are refused by default, naming the tensor, and loaded when
/// `allow_non_finite` asks for it: an `f32` NaN and an `f16` infinity in crafted files.
#[test]
fn non_finite_weights_are_refused_by_default() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut w = W;
    w[4] = f32::NAN;
    let nan = torch_zip(
        &state_dict_pickle(2, &small_specs(), false, &Pickle::default()),
        vec![
            storage_entry("0", &f32_bytes(&w)),
            storage_entry("1", &f32_bytes(&B)),
        ],
    );
    let half = TensorSpec {
        storage_type: "HalfStorage",
        ..TensorSpec::f32("layer.scale", "0", &[4])
    };
    let inf_bytes: Vec<u8> = [0x3c00u16, 0x7c00, 0xfc00, 0x0000]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let inf = torch_zip(
        &state_dict_pickle(2, &[half], false, &Pickle::default()),
        vec![storage_entry("0", &inf_bytes)],
    );
    for (name, bytes, key, count) in [("nan.pth", nan, "w", 1), ("inf.pth", inf, "layer.scale", 2)]
    {
        let path = write(dir.path(), name, &bytes);
        match load(&path) {
            Err(ModelError::NonFinite {
                key: k, count: c, ..
            }) => {
                assert_eq!((k.as_str(), c), (key, count), "{name}");
            }
            other => panic!("{name}: expected NonFinite, got {other:?}"),
        }
        let allow = LoadOptions {
            allow_non_finite: true,
        };
        let dict = StateDict::from_pytorch(&path, None, &allow).expect("allowed on request");
        let values = &dict.get(key).expect("key").values;
        assert_eq!(values.iter().filter(|v| !v.is_finite()).count(), count);
    }
}

/// Find `suffix` in a ZIP's central directory: (local header offset, compressed size,
/// central directory entry offset).
fn find_zip_entry(bytes: &[u8], suffix: &str) -> (usize, usize, usize) {
    let u16_at = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]) as usize;
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    let eocd = bytes
        .windows(4)
        .rposition(|w| w == b"PK\x05\x06")
        .expect("end of central directory");
    let (count, mut at) = (u16_at(eocd + 10), u32_at(eocd + 16));
    assert_ne!(at, 0xFFFF_FFFF, "ZIP64 offsets are not handled here");
    for _ in 0..count {
        assert_eq!(&bytes[at..at + 4], b"PK\x01\x02");
        let name_len = u16_at(at + 28);
        let name = std::str::from_utf8(&bytes[at + 46..at + 46 + name_len]).expect("name");
        if name.ends_with(suffix) {
            return (u32_at(at + 42), u32_at(at + 20), at);
        }
        at += 46 + name_len + u16_at(at + 30) + u16_at(at + 32);
    }
    panic!("no entry ending in {suffix}");
}

/// A NaN written into a copy of the released audio encoder checkpoint (its first storage,
/// with the ZIP checksums updated so that only the value is wrong) is refused naming the
/// tensor that holds it, and loads with `allow_non_finite`.
#[test]
fn non_finite_weight_in_fixture_copy_is_named() {
    let Some(fixture) = common::fixture("models/sound2scene_audio_resnet18.pth") else {
        return;
    };
    let mut bytes = std::fs::read(&fixture).expect("read fixture");
    let clean = load(&fixture).expect("the fixture loads");

    let (local, size, central) = find_zip_entry(&bytes, "/data/0");
    let u16_at = |b: &[u8], at: usize| u16::from_le_bytes([b[at], b[at + 1]]) as usize;
    let data = local + 30 + u16_at(&bytes, local + 26) + u16_at(&bytes, local + 28);
    bytes[data..data + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    let crc = crc32fast::hash(&bytes[data..data + size]).to_le_bytes();
    bytes[central + 16..central + 20].copy_from_slice(&crc);
    if bytes[local + 14..local + 18] != [0; 4] {
        bytes[local + 14..local + 18].copy_from_slice(&crc);
    }
    if bytes[data + size..data + size + 4] == *b"PK\x07\x08" {
        bytes[data + size + 4..data + size + 8].copy_from_slice(&crc);
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write(dir.path(), "nan_copy.pth", &bytes);

    let key = match load(&path) {
        Err(ModelError::NonFinite { key, count, .. }) => {
            assert_eq!(count, 1);
            key
        }
        other => panic!("expected NonFinite, got {other:?}"),
    };
    let allow = LoadOptions {
        allow_non_finite: true,
    };
    let damaged = StateDict::from_pytorch(&path, None, &allow).expect("allowed on request");
    assert_eq!(damaged.len(), clean.len());
    for k in clean.keys() {
        let (a, b) = (clean.get(k).unwrap(), damaged.get(k).unwrap());
        if k == key {
            assert!(b.values[0].is_nan(), "{k}");
            assert_eq!(a.values[1..], b.values[1..], "{k}");
        } else {
            assert_eq!(a, b, "{k} changed");
        }
    }
}
