//! A run's configuration file: fingerprints and reading files of earlier versions.

use std::path::Path;

use burn::config::Config;
use serde_json::{Map, Value};

use crate::error::TrainError;

/// 64-bit FNV-1a, used for configuration and data fingerprints (stable across platforms and
/// Rust versions, unlike `std`'s hasher).
#[derive(Debug, Clone, Copy)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Self::new()
    }
}

impl Fnv {
    /// The hash of no bytes (the FNV offset basis).
    pub fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    /// Hashes `bytes` in.
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// The hash so far.
    pub fn finish(self) -> u64 {
        self.0
    }

    /// The hash so far as 16 lowercase hex digits.
    pub fn hex(self) -> String {
        format!("{:016x}", self.0)
    }

    /// The hex hash of `bytes`.
    pub fn hex_of(bytes: &[u8]) -> String {
        let mut hash = Self::new();
        hash.write(bytes);
        hash.hex()
    }
}

/// A training loop's configuration, saved as `config.json` in its output directory and read
/// back by [`read_config`].
pub trait RunConfig: Config {
    /// Settings renamed since files were first written, as `(old key, new key)`; a dot
    /// separates nested keys (`"optimizer.lr"`). [`read_config`] reads the old names.
    const RENAMED: &'static [(&'static str, &'static str)] = &[];

    /// Every setting at its default: what a file written before a setting existed gets.
    fn defaults() -> Self;
}

/// Reads a configuration file of any version: settings under an old name
/// ([`RunConfig::RENAMED`]) are moved to the new one (unless the file has both), and settings
/// the file lacks take their defaults ([`RunConfig::defaults`]; optional settings default to
/// none, as a missing one always did). `Config::load` reads current files only.
///
/// # Errors
/// [`TrainError::Io`] when the file cannot be read; [`TrainError::Config`] naming the file
/// when it is not JSON or a setting has the wrong type or value.
pub fn read_config<C: RunConfig>(path: impl AsRef<Path>) -> Result<C, TrainError> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let invalid =
        |e: serde_json::Error| TrainError::config_caused(format!("{}: {e}", path.display()), e);
    let mut file: Value = serde_json::from_str(&text).map_err(invalid)?;
    for (old, new) in C::RENAMED {
        rename(&mut file, old, new);
    }
    let mut value = serde_json::to_value(C::defaults()).map_err(invalid)?;
    merge(&mut value, file);
    serde_json::from_value(value).map_err(invalid)
}

/// Moves the value at dotted key `old` of `value` to dotted key `new`, creating the objects on
/// the way, unless `new` is already there.
fn rename(value: &mut Value, old: &str, new: &str) {
    if lookup(value, new).is_some() {
        return;
    }
    let Some(moved) = take(value, old) else {
        return;
    };
    let mut keys: Vec<&str> = new.split('.').collect();
    let Some(last) = keys.pop() else {
        return;
    };
    let mut object = value;
    for key in keys {
        let Some(map) = object.as_object_mut() else {
            return;
        };
        object = map.entry(key).or_insert_with(|| Value::Object(Map::new()));
    }
    if let Some(map) = object.as_object_mut() {
        map.insert(last.to_string(), moved);
    }
}

fn lookup<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    key.split('.').try_fold(value, |v, k| v.get(k))
}

fn take(value: &mut Value, key: &str) -> Option<Value> {
    let (parent, last) = match key.rsplit_once('.') {
        Some((parent, last)) => (
            parent.split('.').try_fold(value, |v, k| v.get_mut(k))?,
            last,
        ),
        None => (value, key),
    };
    parent.as_object_mut()?.remove(last)
}

/// Writes `file` over `defaults`: objects key by key, anything else whole.
fn merge(defaults: &mut Value, file: Value) {
    match (defaults, file) {
        (Value::Object(base), Value::Object(file)) => {
            for (key, value) in file {
                match base.get_mut(&key) {
                    Some(slot) => merge(slot, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (slot, file) => *slot = file,
    }
}
