//! The header of a burnpack file (Burn's own weight format) written by this project.
//!
//! A burnpack file written by `sound2scene convert` or a training loop carries two metadata
//! entries beside the tensors: [`NETWORK_KEY`] (which network it holds, a [`NetworkKind`]) and
//! [`CONFIG_KEY`] (the network's configuration as JSON), so it can be loaded without knowing
//! anything else about it. [`read_header`] reads them; writing and loading the tensors is
//! `sound2scene_models::burnpack`'s job, since it needs the networks.

use std::path::Path;

use burn_pack::Reader;

use crate::error::{Result, WeightsError};

/// Metadata key naming the network a file holds.
pub const NETWORK_KEY: &str = "sound2scene.network";
/// Metadata key holding the network's configuration as JSON.
pub const CONFIG_KEY: &str = "sound2scene.config";

/// The networks a burnpack file can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkKind {
    /// The audio encoder f_A.
    AudioEncoder,
    /// The image encoder f_V.
    ImageEncoder,
    /// The IC-GAN generator G.
    Generator,
    /// The IC-GAN discriminator D.
    Discriminator,
}

impl NetworkKind {
    /// Every kind, in the order above.
    pub const ALL: [NetworkKind; 4] = [
        NetworkKind::AudioEncoder,
        NetworkKind::ImageEncoder,
        NetworkKind::Generator,
        NetworkKind::Discriminator,
    ];

    /// The name stored in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkKind::AudioEncoder => "audio_encoder",
            NetworkKind::ImageEncoder => "image_encoder",
            NetworkKind::Generator => "generator",
            NetworkKind::Discriminator => "discriminator",
        }
    }

    /// The kind whose stored name is `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// What a burnpack file says about itself.
#[derive(Debug, Clone)]
pub struct BurnpackHeader {
    /// The network the file holds.
    pub network: NetworkKind,
    /// The network's configuration as JSON.
    pub config_json: String,
}

fn burnpack_error(path: &Path, reason: impl std::fmt::Display) -> WeightsError {
    WeightsError::Burnpack {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Read the network kind and configuration stored in the burnpack file at `path`, without
/// reading its tensors.
///
/// # Errors
/// [`WeightsError::Io`] when the file is missing, [`WeightsError::Burnpack`] when it is not a
/// burnpack file written by this project.
pub fn read_header(path: impl AsRef<Path>) -> Result<BurnpackHeader> {
    let path = path.as_ref();
    std::fs::metadata(path).map_err(|source| WeightsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let reader = Reader::from_file_exact(path).map_err(|e| burnpack_error(path, e))?;
    let metadata = reader.metadata();
    let name = metadata.get(NETWORK_KEY).ok_or_else(|| {
        burnpack_error(
            path,
            format!("no '{NETWORK_KEY}' entry: not written by sound2scene convert"),
        )
    })?;
    let network = NetworkKind::from_name(name)
        .ok_or_else(|| burnpack_error(path, format!("unknown network '{name}'")))?;
    let config_json = metadata
        .get(CONFIG_KEY)
        .ok_or_else(|| burnpack_error(path, format!("no '{CONFIG_KEY}' entry")))?
        .clone();
    Ok(BurnpackHeader {
        network,
        config_json,
    })
}

#[cfg(test)]
mod tests {
    use burn_pack::{Bytes, DType, Tensor, Writer};

    use super::*;

    /// A burnpack file of one tensor with `metadata`, as bytes.
    fn pack(metadata: &[(&str, &str)]) -> Vec<u8> {
        let raw: Vec<u8> = [1.0f32, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let tensor = Tensor::new(
            "fc.weight".to_string(),
            DType::F32,
            vec![1, 2],
            None,
            Bytes::from_bytes_vec(raw),
        );
        let mut writer = Writer::new(vec![tensor]);
        for (key, value) in metadata {
            writer = writer.with_metadata(key, value);
        }
        writer.into_bytes().expect("pack").to_vec()
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).expect("write");
        path
    }

    #[test]
    fn the_header_names_network_and_config() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = r#"{"out_dim":8}"#;
        let path = write(
            dir.path(),
            "a.bpk",
            &pack(&[(NETWORK_KEY, "generator"), (CONFIG_KEY, config)]),
        );
        let header = read_header(&path).expect("header");
        assert_eq!(header.network, NetworkKind::Generator);
        assert_eq!(header.config_json, config);
    }

    #[test]
    fn a_pack_without_our_entries_or_with_an_unknown_network_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        for (name, metadata, expected) in [
            ("bare.bpk", vec![], NETWORK_KEY),
            (
                "no_config.bpk",
                vec![(NETWORK_KEY, "generator")],
                CONFIG_KEY,
            ),
            (
                "unknown.bpk",
                vec![(NETWORK_KEY, "vocoder"), (CONFIG_KEY, "{}")],
                "unknown network 'vocoder'",
            ),
        ] {
            let path = write(dir.path(), name, &pack(&metadata));
            let err = read_header(&path).expect_err(name);
            assert!(
                matches!(err, WeightsError::Burnpack { .. }) && err.to_string().contains(expected),
                "{name}: {err}"
            );
        }
    }

    #[test]
    fn every_prefix_of_a_pack_is_refused_or_reads_the_same_header() {
        let dir = tempfile::tempdir().expect("temp dir");
        let bytes = pack(&[(NETWORK_KEY, "audio_encoder"), (CONFIG_KEY, "{}")]);
        for len in 0..bytes.len() {
            let path = write(dir.path(), "cut.bpk", &bytes[..len]);
            if let Ok(header) = read_header(&path) {
                assert_eq!(header.network, NetworkKind::AudioEncoder, "{len} bytes");
            }
        }
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in NetworkKind::ALL {
            assert_eq!(NetworkKind::from_name(kind.as_str()), Some(kind));
        }
        assert_eq!(NetworkKind::from_name("Generator"), None);
    }
}
