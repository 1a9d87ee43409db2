//! Screening a checkpoint's pickles before the reader parses them.
//!
//! The reader never calls anything a pickle names: a call it does not know becomes an inert
//! placeholder. A checkpoint that names `os.system` or `builtins.eval` is still hostile (under
//! Python's `torch.load(weights_only=False)` it runs that code), so it is refused with the
//! callable named rather than loaded around it. Every `GLOBAL`, `STACK_GLOBAL` and `INST` is
//! checked against the types a state dict is made of, the allowlist of PyTorch's
//! `torch.load(weights_only=True)` plus numpy scalars; anything else is an error.
//!
//! The scan follows the pickle's stack only as far as `STACK_GLOBAL` needs (the module and
//! name strings it pops), keeps strings only up to [`MAX_KEPT_STRING`] bytes and skips longer
//! payloads without allocating them, so a declared length cannot make it allocate more than
//! the file holds.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::rc::Rc;

use pytorch_reader::MAX_PICKLE_SIZE;

/// Longest string kept as a possible `STACK_GLOBAL` operand; longer ones are skipped.
const MAX_KEPT_STRING: u64 = 256;
/// Longest text field (protocol 0 numbers, `GLOBAL` names, memo indices) accepted.
const MAX_LINE: u64 = 64 * 1024;
/// How far into a legacy file its magic number is looked for (as the reader does).
const LEGACY_MAGIC_SEARCH: usize = 64;
/// The legacy magic number as protocols 2+ write it (`LONG1` bytes) and as text.
const LEGACY_MAGIC_BYTES: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
const LEGACY_MAGIC_TEXT: &[u8] = b"119547037146038801333356";
/// A legacy file is five pickles (magic, protocol, system info, object, storage keys) and
/// then raw storage bytes.
const LEGACY_PICKLES: usize = 5;
/// Offset of the `ustar` magic within a TAR header.
const TAR_MAGIC_OFFSET: usize = 257;

/// Check every pickle of the checkpoint at `path`; the reason it is refused, if it is.
///
/// A file that is not a recognizable checkpoint passes: the reader refuses it with its own
/// message.
pub(super) fn screen(path: &Path) -> Result<(), String> {
    let mut header = Vec::new();
    File::open(path)
        .and_then(|f| f.take(TAR_MAGIC_OFFSET as u64 + 5).read_to_end(&mut header))
        .map_err(|e| e.to_string())?;
    if header.starts_with(b"PK\x03\x04") || header.starts_with(b"PK\x05\x06") {
        return screen_zip(path);
    }
    if header.get(TAR_MAGIC_OFFSET..TAR_MAGIC_OFFSET + 5) == Some(b"ustar") {
        return Err(
            "TAR checkpoints (PyTorch before 0.1.10) are not supported; re-save the weights \
             with a current torch.save"
                .into(),
        );
    }
    let pickles = if starts_with_legacy_magic(&header) {
        LEGACY_PICKLES
    } else if matches!(header.first(), Some(0x80 | b'(' | b'}' | b']' | b'c'))
        && !starts_like_safetensors(&header)
    {
        1
    } else {
        return Ok(());
    };
    let mut reader = BufReader::new(File::open(path).map_err(|e| e.to_string())?);
    for _ in 0..pickles {
        scan(&mut reader)?;
    }
    Ok(())
}

/// Scan every `data.pkl` of a ZIP checkpoint (the reader picks one; all are checked).
fn screen_zip(path: &Path) -> Result<(), String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let mut archive = zip::ZipArchive::new(BufReader::new(file)).map_err(|e| e.to_string())?;
    let pickles: Vec<String> = archive
        .file_names()
        .filter_map(|name| name.ok())
        .filter(|name| *name == "data.pkl" || name.ends_with("/data.pkl"))
        .map(|name| name.into_owned())
        .collect();
    for name in pickles {
        let entry = archive
            .by_name(&name)
            .map_err(|e| format!("ZIP entry '{name}': {e}"))?;
        if entry.size() > MAX_PICKLE_SIZE {
            return Err(format!(
                "ZIP entry '{name}' is {} bytes, above the {MAX_PICKLE_SIZE} byte limit",
                entry.size()
            ));
        }
        scan(&mut BufReader::new(entry.take(MAX_PICKLE_SIZE)))
            .map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(())
}

fn starts_with_legacy_magic(header: &[u8]) -> bool {
    let window = &header[..header.len().min(LEGACY_MAGIC_SEARCH)];
    window
        .windows(LEGACY_MAGIC_BYTES.len())
        .any(|b| b == LEGACY_MAGIC_BYTES)
        || window
            .windows(LEGACY_MAGIC_TEXT.len())
            .any(|b| b == LEGACY_MAGIC_TEXT)
}

/// A little-endian `u64` JSON length then `{`: a safetensors file, which the reader refuses.
fn starts_like_safetensors(header: &[u8]) -> bool {
    header
        .first_chunk::<8>()
        .is_some_and(|b| u64::from_le_bytes(*b) <= 100_000_000 && header.get(8) == Some(&b'{'))
}

/// Whether `module.name` is one of the types a state dict is built from.
///
/// PyTorch's `weights_only` allowlist (tensor rebuild functions, storage, tensor and dtype
/// types, `OrderedDict`, sets, `torch.device`, `torch.Size`) plus numpy scalars, which
/// training scripts save beside the weights (a best accuracy, an epoch).
fn allowed(module: &str, name: &str) -> bool {
    const ELEMENT_TYPES: [&str; 18] = [
        "Double",
        "Float",
        "Half",
        "BFloat16",
        "Long",
        "Int",
        "Short",
        "Char",
        "Byte",
        "Bool",
        "ComplexDouble",
        "ComplexFloat",
        "QUInt8",
        "QInt8",
        "QInt32",
        "QUInt4x2",
        "QUInt2x4",
        "Untyped",
    ];
    const DTYPES: [&str; 42] = [
        "float16",
        "float32",
        "float64",
        "bfloat16",
        "half",
        "float",
        "double",
        "complex32",
        "complex64",
        "complex128",
        "cfloat",
        "cdouble",
        "chalf",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
        "int8",
        "int16",
        "int32",
        "int64",
        "short",
        "int",
        "long",
        "bool",
        "quint8",
        "qint8",
        "qint32",
        "quint4x2",
        "quint2x4",
        "float8_e4m3fn",
        "float8_e5m2",
        "float8_e4m3fnuz",
        "float8_e5m2fnuz",
        "per_tensor_affine",
        "per_tensor_symmetric",
        "per_channel_affine",
        "per_channel_symmetric",
        "per_channel_affine_float_qparams",
        "strided",
        "sparse_coo",
        "Size",
    ];
    let typed = |suffix: &str| {
        name.strip_suffix(suffix)
            .is_some_and(|t| t.is_empty() || ELEMENT_TYPES.contains(&t))
    };
    match module {
        "collections" => matches!(name, "OrderedDict" | "Counter"),
        "builtins" | "__builtin__" => {
            matches!(name, "set" | "frozenset" | "bytearray" | "complex")
        }
        "_codecs" => name == "encode",
        "torch._utils" => name.starts_with("_rebuild_"),
        "torch._tensor" => name == "_rebuild_from_type_v2",
        "torch.nn.parameter" => name == "Parameter",
        "torch.serialization" => name == "_get_layout",
        "torch.storage" => matches!(name, "TypedStorage" | "UntypedStorage"),
        "torch" => {
            typed("Storage")
                || typed("Tensor")
                || name == "device"
                || DTYPES.contains(&name)
                || name
                    .strip_prefix("uint")
                    .or_else(|| name.strip_prefix("int"))
                    .is_some_and(|bits| matches!(bits, "1" | "2" | "3" | "4" | "5" | "6" | "7"))
        }
        "numpy" => name == "dtype",
        "numpy.core.multiarray" | "numpy._core.multiarray" => name == "scalar",
        _ => false,
    }
}

/// A stack or memo value, as far as the scan needs it: a short string, or anything else.
#[derive(Clone)]
enum Value {
    Str(Rc<str>),
    Other,
}

/// Why a scan stopped.
enum Stop {
    /// The pickle names a callable outside the allowlist.
    Refused(String),
    /// The pickle is not well formed.
    Malformed(String),
}

impl From<io::Error> for Stop {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::UnexpectedEof => {
                Stop::Malformed("it ends before its STOP opcode".into())
            }
            _ => Stop::Malformed(e.to_string()),
        }
    }
}

fn malformed<T>(detail: impl Into<String>) -> Result<T, Stop> {
    Err(Stop::Malformed(detail.into()))
}

/// Scan one pickle from `r` up to and including its `STOP`.
fn scan<R: BufRead>(r: &mut R) -> Result<(), String> {
    Scanner::default().run(r).map_err(|stop| match stop {
        Stop::Refused(global) => format!(
            "the pickle references `{global}`, which is not a type a state dict is made of; \
             refused, since torch.load without weights_only would call it and run code"
        ),
        Stop::Malformed(detail) => format!("malformed pickle: {detail}"),
    })
}

#[derive(Default)]
struct Scanner {
    stack: Vec<Value>,
    /// Stack heights at each open `MARK`, innermost last.
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
}

impl Scanner {
    fn pop(&mut self) -> Result<Value, Stop> {
        if self.marks.last() == Some(&self.stack.len()) {
            return malformed("a value is expected on the stack, found MARK");
        }
        self.stack
            .pop()
            .map_or_else(|| malformed("stack underflow"), Ok)
    }

    fn pop_n(&mut self, n: usize) -> Result<(), Stop> {
        for _ in 0..n {
            self.pop()?;
        }
        Ok(())
    }

    fn pop_to_mark(&mut self) -> Result<(), Stop> {
        let Some(mark) = self.marks.pop() else {
            return malformed("MARK not found on stack");
        };
        self.stack.truncate(mark);
        Ok(())
    }

    fn top(&self) -> Result<Value, Stop> {
        if self.marks.last() == Some(&self.stack.len()) {
            return malformed("a value is expected on the stack, found MARK");
        }
        self.stack
            .last()
            .cloned()
            .map_or_else(|| malformed("stack underflow"), Ok)
    }

    fn memo_put(&mut self, idx: u32) -> Result<(), Stop> {
        let top = self.top()?;
        self.memo.insert(idx, top);
        Ok(())
    }

    fn memo_get(&mut self, idx: u32) -> Result<(), Stop> {
        match self.memo.get(&idx) {
            Some(value) => {
                self.stack.push(value.clone());
                Ok(())
            }
            None => malformed(format!("memo reference {idx} not found")),
        }
    }

    fn check(module: &str, name: &str) -> Result<(), Stop> {
        if allowed(module, name) {
            Ok(())
        } else {
            Err(Stop::Refused(format!("{module}.{name}")))
        }
    }

    fn run<R: BufRead>(mut self, r: &mut R) -> Result<(), Stop> {
        loop {
            let op = read_u8(r)?;
            match op {
                0x80 => {
                    read_u8(r)?;
                }
                0x95 => skip(r, 8)?,
                b'.' => return Ok(()),
                // Scalars with a fixed-size or text argument.
                b'N' | 0x88 | 0x89 => self.stack.push(Value::Other),
                b'I' | b'L' | b'F' => {
                    read_line(r)?;
                    self.stack.push(Value::Other);
                }
                b'J' => self.skip_push(r, 4)?,
                b'K' => self.skip_push(r, 1)?,
                b'M' => self.skip_push(r, 2)?,
                b'G' => self.skip_push(r, 8)?,
                0x8a => {
                    let len = u64::from(read_u8(r)?);
                    self.skip_push(r, len)?;
                }
                0x8b => {
                    let len = read_u32(r)?;
                    self.skip_push(r, len)?;
                }
                // Strings: kept when short, possibly a STACK_GLOBAL operand.
                b'V' => {
                    let line = read_line(r)?;
                    let value = match String::from_utf8(line) {
                        Ok(s) if !s.contains('\\') && s.len() as u64 <= MAX_KEPT_STRING => {
                            Value::Str(s.into())
                        }
                        _ => Value::Other,
                    };
                    self.stack.push(value);
                }
                0x8c | b'U' => {
                    let len = u64::from(read_u8(r)?);
                    self.push_string(r, len)?;
                }
                b'X' | b'T' => {
                    let len = read_u32(r)?;
                    self.push_string(r, len)?;
                }
                0x8d => {
                    let len = read_u64(r)?;
                    self.push_string(r, len)?;
                }
                // Bytes.
                b'C' => {
                    let len = u64::from(read_u8(r)?);
                    self.skip_push(r, len)?;
                }
                b'B' => {
                    let len = read_u32(r)?;
                    self.skip_push(r, len)?;
                }
                0x8e | 0x96 => {
                    let len = read_u64(r)?;
                    self.skip_push(r, len)?;
                }
                // Containers.
                b'(' => self.marks.push(self.stack.len()),
                b')' | b']' | b'}' | 0x8f => self.stack.push(Value::Other),
                b't' | b'l' | b'd' | 0x91 => {
                    self.pop_to_mark()?;
                    self.stack.push(Value::Other);
                }
                0x85..=0x87 => {
                    self.pop_n(usize::from(op - 0x84))?;
                    self.stack.push(Value::Other);
                }
                b'a' => self.pop_n(1)?,
                b's' => self.pop_n(2)?,
                b'e' | b'u' | 0x90 => self.pop_to_mark()?,
                // Stack manipulation.
                b'0' => {
                    if self.marks.last() == Some(&self.stack.len()) {
                        self.marks.pop();
                    } else {
                        self.pop()?;
                    }
                }
                b'1' => self.pop_to_mark()?,
                b'2' => {
                    let top = self.top()?;
                    self.stack.push(top);
                }
                // Memo.
                b'g' => {
                    let idx = parse_index(&read_line(r)?)?;
                    self.memo_get(idx)?;
                }
                b'h' => {
                    let idx = u32::from(read_u8(r)?);
                    self.memo_get(idx)?;
                }
                b'j' => {
                    let idx = read_u32(r)? as u32;
                    self.memo_get(idx)?;
                }
                b'p' => {
                    let idx = parse_index(&read_line(r)?)?;
                    self.memo_put(idx)?;
                }
                b'q' => {
                    let idx = u32::from(read_u8(r)?);
                    self.memo_put(idx)?;
                }
                b'r' => {
                    let idx = read_u32(r)? as u32;
                    self.memo_put(idx)?;
                }
                0x94 => {
                    let idx = u32::try_from(self.memo.len())
                        .map_or_else(|_| malformed("memo too large"), Ok)?;
                    self.memo_put(idx)?;
                }
                // Names of callables: the point of the scan.
                b'c' | b'i' => {
                    let module = text(read_line(r)?)?;
                    let name = text(read_line(r)?)?;
                    Self::check(&module, &name)?;
                    if op == b'i' {
                        self.pop_to_mark()?;
                    }
                    self.stack.push(Value::Other);
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module, name) {
                        (Value::Str(module), Value::Str(name)) => Self::check(&module, &name)?,
                        _ => {
                            return Err(Stop::Refused(
                                "<STACK_GLOBAL of a computed name>".to_string(),
                            ));
                        }
                    }
                    self.stack.push(Value::Other);
                }
                // Calls and objects; their callables were checked when named.
                b'P' => {
                    read_line(r)?;
                    self.stack.push(Value::Other);
                }
                b'Q' => {
                    self.pop()?;
                    self.stack.push(Value::Other);
                }
                b'R' | 0x81 => {
                    self.pop_n(2)?;
                    self.stack.push(Value::Other);
                }
                0x92 => {
                    self.pop_n(3)?;
                    self.stack.push(Value::Other);
                }
                b'o' => {
                    self.pop_to_mark()?;
                    self.stack.push(Value::Other);
                }
                b'b' => self.pop_n(1)?,
                // The extension registry names callables indirectly.
                0x82..=0x84 => {
                    return Err(Stop::Refused("<copyreg extension code>".to_string()));
                }
                other => return malformed(format!("unsupported opcode 0x{other:02x}")),
            }
        }
    }

    fn skip_push<R: BufRead>(&mut self, r: &mut R, len: u64) -> Result<(), Stop> {
        skip(r, len)?;
        self.stack.push(Value::Other);
        Ok(())
    }

    fn push_string<R: BufRead>(&mut self, r: &mut R, len: u64) -> Result<(), Stop> {
        if len > MAX_KEPT_STRING {
            return self.skip_push(r, len);
        }
        let mut bytes = vec![0u8; len as usize];
        r.read_exact(&mut bytes)?;
        self.stack.push(match String::from_utf8(bytes) {
            Ok(s) => Value::Str(s.into()),
            Err(_) => Value::Other,
        });
        Ok(())
    }
}

fn read_u8<R: Read>(r: &mut R) -> Result<u8, Stop> {
    let mut b = [0u8; 1];
    r.read_exact(&mut b)?;
    Ok(b[0])
}

fn read_u32<R: Read>(r: &mut R) -> Result<u64, Stop> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(u64::from(u32::from_le_bytes(b)))
}

fn read_u64<R: Read>(r: &mut R) -> Result<u64, Stop> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

/// Skip `len` bytes without holding them; a file shorter than that is malformed.
fn skip<R: Read>(r: &mut R, len: u64) -> Result<(), Stop> {
    let copied = io::copy(&mut r.take(len), &mut io::sink())?;
    if copied < len {
        return malformed(format!(
            "a {len} byte field runs past the end ({copied} bytes left)"
        ));
    }
    Ok(())
}

/// A newline-terminated text field of at most [`MAX_LINE`] bytes, without the newline.
fn read_line<R: BufRead>(r: &mut R) -> Result<Vec<u8>, Stop> {
    let mut line = Vec::new();
    r.take(MAX_LINE + 1).read_until(b'\n', &mut line)?;
    if line.pop() != Some(b'\n') {
        return malformed("an unterminated or over-long text field");
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(line)
}

fn text(line: Vec<u8>) -> Result<String, Stop> {
    String::from_utf8(line).map_or_else(|_| malformed("a name that is not UTF-8"), Ok)
}

fn parse_index(line: &[u8]) -> Result<u32, Stop> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .map_or_else(|| malformed("an invalid memo index"), Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_bytes(bytes: &[u8]) -> Result<(), String> {
        scan(&mut io::Cursor::new(bytes))
    }

    #[test]
    fn state_dict_types_pass() {
        // {'w': _rebuild_tensor_v2(...)}-like: OrderedDict and a storage type.
        let pickle = b"\x80\x02}q\x00X\x01\x00\x00\x00wccollections\nOrderedDict\n)Rctorch\nFloatStorage\n0s.";
        scan_bytes(pickle).expect("allowed globals");
    }

    #[test]
    fn stack_global_is_resolved_through_the_memo() {
        let pickle = b"\x80\x04\x8c\x02os\x94\x8c\x06system\x94h\x00h\x01\x93.";
        let err = scan_bytes(pickle).expect_err("os.system refused");
        assert!(err.contains("`os.system`"), "{err}");
    }

    #[test]
    fn allowlist_is_exact() {
        assert!(allowed("torch", "FloatStorage"));
        assert!(allowed("torch", "float32"));
        assert!(allowed("torch", "uint3"));
        assert!(allowed("torch._utils", "_rebuild_tensor_v2"));
        assert!(!allowed("torch", "load"));
        assert!(!allowed("torch", "from_file"));
        assert!(!allowed("torch.hub", "load"));
        assert!(!allowed("torch", "XStorage"));
        assert!(!allowed("builtins", "eval"));
        assert!(!allowed("os", "system"));
    }
}
