//! Reading a released IC-GAN experiment folder, as Sound2Scene's `inference/utils.py`
//! `load_model_inference` and BigGAN-PyTorch's `utils.load_weights` do:
//!
//! - `state_dict_best0.pth` / `state_dict_best1.pth` hold `best_FID` and the training
//!   `config`; the one with the lower `best_FID` names the checkpoint set `bestN`.
//! - `G_ema_bestN.pth` (when the config has `ema` and `use_ema`, as every release does,
//!   else `G_bestN.pth`) holds the generator, `D_bestN.pth` the discriminator.
//!
//! Configuration keys missing from the stored `config` take BigGAN-PyTorch's command-line
//! defaults (utils.py `prepare_parser`), as they did when the official code rebuilt the
//! model from the merged dictionary.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::tensor::Device;
use pytorch_reader::{PickleValue, PytorchReader};

use super::discriminator::{Discriminator, DiscriminatorConfig};
use super::generator::{Generator, GeneratorConfig};
use crate::error::{ModelError, Result};
use crate::weights::{LoadOptions, StateDict, WeightLoader};

/// The checkpoint sets an experiment folder may hold, in the order the official code tries
/// them.
pub const BEST_SETS: [usize; 2] = [0, 1];

/// The architecture recorded in an experiment's `state_dict_bestN.pth`.
#[derive(Debug, Clone)]
pub struct IcganConfig {
    /// The generator's architecture.
    pub generator: GeneratorConfig,
    /// The discriminator's architecture.
    pub discriminator: DiscriminatorConfig,
    /// Whether inference uses the EMA generator `G_ema_bestN.pth` (`ema` and `use_ema`).
    pub use_ema: bool,
    /// `experiment_name`, if recorded.
    pub experiment_name: Option<String>,
}

/// Typed access to a pickled `config` dict, with BigGAN-PyTorch's defaults.
struct ConfigDict<'a> {
    map: &'a HashMap<String, PickleValue>,
    path: &'a Path,
}

impl ConfigDict<'_> {
    fn error(&self, reason: String) -> ModelError {
        ModelError::Config {
            path: self.path.to_path_buf(),
            reason,
        }
    }

    fn present(&self, key: &str) -> Option<&PickleValue> {
        self.map
            .get(key)
            .filter(|v| !matches!(v, PickleValue::None))
    }

    fn usize(&self, key: &str, default: usize) -> Result<usize> {
        match self.present(key) {
            None => Ok(default),
            Some(PickleValue::Int(i)) if *i >= 0 => Ok(*i as usize),
            Some(other) => Err(self.error(format!(
                "config '{key}' should be a non-negative integer, found {other:?}"
            ))),
        }
    }

    fn f64(&self, key: &str, default: f64) -> Result<f64> {
        match self.present(key) {
            None => Ok(default),
            Some(PickleValue::Float(f)) => Ok(*f),
            Some(PickleValue::Int(i)) => Ok(*i as f64),
            Some(other) => Err(self.error(format!(
                "config '{key}' should be a number, found {other:?}"
            ))),
        }
    }

    fn bool(&self, key: &str, default: bool) -> Result<bool> {
        match self.present(key) {
            None => Ok(default),
            Some(PickleValue::Bool(b)) => Ok(*b),
            Some(PickleValue::Int(i @ (0 | 1))) => Ok(*i == 1),
            Some(other) => Err(self.error(format!(
                "config '{key}' should be a boolean, found {other:?}"
            ))),
        }
    }

    fn string(&self, key: &str, default: &str) -> Result<String> {
        match self.present(key) {
            None => Ok(default.to_string()),
            Some(PickleValue::String(s)) => Ok(s.clone()),
            Some(PickleValue::Int(i)) => Ok(i.to_string()),
            Some(other) => Err(self.error(format!(
                "config '{key}' should be a string, found {other:?}"
            ))),
        }
    }

    /// Refuse a setting this port does not implement.
    fn require<T: PartialEq + std::fmt::Debug>(
        &self,
        key: &str,
        found: T,
        wanted: T,
    ) -> Result<()> {
        if found == wanted {
            return Ok(());
        }
        Err(self.error(format!(
            "config '{key}' is {found:?}; only {wanted:?} is supported (IC-GAN with \
             instance conditioning, BigGAN backbone, spectral norm)"
        )))
    }
}

impl IcganConfig {
    /// Read the architecture from a pickled `config` dict (`path` names the file in errors).
    ///
    /// # Errors
    /// [`ModelError::Config`] when `config` is not a dict, a key has the wrong type, or the
    /// experiment is not an instance-conditioned BigGAN IC-GAN (e.g. class-conditional
    /// cc-IC-GAN, StyleGAN2 backbone, BigGAN-deep, non-SN parameterization).
    pub fn from_pickle(config: &PickleValue, path: &Path) -> Result<Self> {
        let PickleValue::Dict(map) = config else {
            return Err(ModelError::Config {
                path: path.to_path_buf(),
                reason: "'config' is not a dict".into(),
            });
        };
        let c = ConfigDict { map, path };
        c.require(
            "model_backbone",
            c.string("model_backbone", "biggan")?.as_str(),
            "biggan",
        )?;
        c.require("model", c.string("model", "BigGAN")?.as_str(), "BigGAN")?;
        c.require("instance_cond", c.bool("instance_cond", false)?, true)?;
        c.require("class_cond", c.bool("class_cond", false)?, false)?;
        c.require("G_shared", c.bool("G_shared", true)?, true)?;
        c.require("G_param", c.string("G_param", "SN")?.as_str(), "SN")?;
        c.require("D_param", c.string("D_param", "SN")?.as_str(), "SN")?;
        c.require("norm_style", c.string("norm_style", "bn")?.as_str(), "bn")?;
        c.require("cross_replica", c.bool("cross_replica", false)?, false)?;
        c.require("mybn", c.bool("mybn", false)?, false)?;
        for key in ["num_G_SVs", "num_G_SV_itrs", "num_D_SVs", "num_D_SV_itrs"] {
            c.require(key, c.usize(key, 1)?, 1)?;
        }
        let resolution = c.usize("resolution", 64)?;
        let sn_eps = c.f64("SN_eps", 1e-6)?;
        let generator = GeneratorConfig::new()
            .with_g_ch(c.usize("G_ch", 64)?)
            .with_dim_z(c.usize("dim_z", 120)?)
            .with_resolution(resolution)
            .with_g_attn(c.string("G_attn", "64")?)
            .with_hier(c.bool("hier", false)?)
            .with_shared_dim_feat(c.usize("shared_dim_feat", 2048)?)
            .with_g_shared_feat(c.bool("G_shared_feat", false)?)
            .with_bn_eps(c.f64("BN_eps", 1e-5)?)
            .with_sn_eps(sn_eps);
        let discriminator = DiscriminatorConfig::new()
            .with_d_ch(c.usize("D_ch", 64)?)
            .with_resolution(resolution)
            .with_d_attn(c.string("D_attn", "64")?)
            .with_d_wide(c.bool("D_wide", true)?)
            .with_sn_eps(sn_eps);
        let with_path = |e: ModelError| match e {
            ModelError::Config { reason, .. } => ModelError::Config {
                path: path.to_path_buf(),
                reason,
            },
            other => other,
        };
        generator.validate().map_err(with_path)?;
        discriminator.validate().map_err(with_path)?;
        Ok(Self {
            generator,
            discriminator,
            use_ema: c.bool("ema", false)? && c.bool("use_ema", false)?,
            experiment_name: c.present("experiment_name").and_then(|v| match v {
                PickleValue::String(s) => Some(s.clone()),
                _ => None,
            }),
        })
    }
}

/// Which checkpoint set to use: the lowest `best_FID` among `(N, best_FID)` candidates, as
/// `load_model_inference` chooses. An unknown FID (not stored, or stored in a type the
/// reader cannot represent, such as a numpy scalar) ranks after every known one; ties go to
/// the set listed first. `None` for no candidates.
pub fn select_best(candidates: &[(usize, Option<f64>)]) -> Option<usize> {
    let rank = |fid: Option<f64>| fid.filter(|f| !f.is_nan()).unwrap_or(f64::INFINITY);
    let mut best: Option<(usize, f64)> = None;
    for &(n, fid) in candidates {
        let r = rank(fid);
        match best {
            Some((_, b)) if r >= b => {}
            _ => best = Some((n, r)),
        }
    }
    best.map(|(n, _)| n)
}

/// A released IC-GAN experiment folder with its chosen checkpoint set.
#[derive(Debug, Clone)]
pub struct IcganExperiment {
    /// The folder.
    pub dir: PathBuf,
    /// The chosen set `N` of `*_bestN.pth`.
    pub best: usize,
    /// Its `best_FID`, when stored as a number.
    pub best_fid: Option<f64>,
    /// The architecture stored in `state_dict_bestN.pth`.
    pub config: IcganConfig,
}

impl IcganExperiment {
    /// Open `dir`: read every `state_dict_bestN.pth` present, choose the lowest `best_FID`
    /// ([`select_best`]) and read that set's config.
    ///
    /// # Errors
    /// [`ModelError::Io`] if `dir` cannot be read, [`ModelError::Config`] if it holds no
    /// `state_dict_best0.pth` or `state_dict_best1.pth` or the config is unusable,
    /// [`ModelError::Checkpoint`] if a state dict cannot be parsed.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        std::fs::read_dir(dir).map_err(|source| ModelError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut found: Vec<(usize, Option<f64>, PickleValue, PathBuf)> = Vec::new();
        for n in BEST_SETS {
            let path = dir.join(format!("state_dict_best{n}.pth"));
            if !path.is_file() {
                continue;
            }
            let value = PytorchReader::read_pickle_data(&path, None).map_err(|e| {
                ModelError::Checkpoint {
                    path: path.clone(),
                    reason: e.to_string(),
                }
            })?;
            let PickleValue::Dict(mut map) = value else {
                return Err(ModelError::Config {
                    path,
                    reason: "not a BigGAN-PyTorch state dict (expected a dict with \
                             'best_FID' and 'config')"
                        .into(),
                });
            };
            let fid = match map.get("best_FID") {
                Some(PickleValue::Float(f)) => Some(*f),
                Some(PickleValue::Int(i)) => Some(*i as f64),
                _ => None,
            };
            let config = map.remove("config").ok_or_else(|| ModelError::Config {
                path: path.clone(),
                reason: "no 'config' entry; pass the architecture yourself and load the \
                         weights with from_pth"
                    .into(),
            })?;
            found.push((n, fid, config, path));
        }
        let candidates: Vec<(usize, Option<f64>)> =
            found.iter().map(|(n, fid, _, _)| (*n, *fid)).collect();
        let Some(best) = select_best(&candidates) else {
            return Err(ModelError::Config {
                path: dir.to_path_buf(),
                reason: "holds neither state_dict_best0.pth nor state_dict_best1.pth, so it is \
                         not an IC-GAN experiment folder (pass the architecture yourself and \
                         load a G_*.pth with Generator::from_pth)"
                    .into(),
            });
        };
        let Some((_, best_fid, config, path)) = found.into_iter().find(|(n, ..)| *n == best) else {
            unreachable!("select_best returns one of the candidates")
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            best,
            best_fid,
            config: IcganConfig::from_pickle(&config, &path)?,
        })
    }

    /// The generator weights: `G_ema_bestN.pth` with EMA, else `G_bestN.pth`.
    pub fn generator_path(&self) -> PathBuf {
        let prefix = if self.config.use_ema { "G_ema" } else { "G" };
        self.dir.join(format!("{prefix}_best{}.pth", self.best))
    }

    /// The discriminator weights, `D_bestN.pth`.
    pub fn discriminator_path(&self) -> PathBuf {
        self.dir.join(format!("D_best{}.pth", self.best))
    }
}

fn read_state_dict(path: &Path, options: &LoadOptions) -> Result<StateDict> {
    let dict = StateDict::from_pytorch(path, None, options)?;
    // Checkpoints saved from a DataParallel / DDP wrapper prefix every key with "module.".
    Ok(if dict.has_prefix("module.") {
        dict.select_prefix("module.")
    } else {
        dict
    })
}

impl Generator {
    /// Load G from a `G_*.pth` state dict with an architecture given by the caller.
    ///
    /// # Errors
    /// [`ModelError::Io`] naming the file if it is missing, [`ModelError::Checkpoint`] if it
    /// is not a checkpoint, [`ModelError::Mismatch`] listing every key that does not fit
    /// `config`, [`ModelError::NonFinite`], [`ModelError::Config`].
    pub fn from_pth(
        path: impl AsRef<Path>,
        config: &GeneratorConfig,
        options: &LoadOptions,
        device: &Device,
    ) -> Result<Self> {
        let dict = read_state_dict(path.as_ref(), options)?;
        let mut loader = WeightLoader::owning(dict, device, "IC-GAN BigGAN generator");
        let generator = Self::load(&mut loader, config)?;
        loader.finish()?;
        Ok(generator)
    }

    /// Load the inference generator of a released IC-GAN experiment folder (see
    /// [`IcganExperiment::open`] and [`IcganExperiment::generator_path`]), with its
    /// architecture.
    ///
    /// # Errors
    /// Those of [`IcganExperiment::open`] and [`from_pth`](Self::from_pth); a missing
    /// `G_ema_bestN.pth` is a [`ModelError::Io`] naming it.
    pub fn from_icgan_folder(
        dir: impl AsRef<Path>,
        options: &LoadOptions,
        device: &Device,
    ) -> Result<(Self, GeneratorConfig)> {
        let experiment = IcganExperiment::open(dir)?;
        let config = experiment.config.generator.clone();
        let generator = Self::from_pth(experiment.generator_path(), &config, options, device)?;
        Ok((generator, config))
    }
}

impl Discriminator {
    /// Load D from a `D_*.pth` state dict with an architecture given by the caller.
    ///
    /// # Errors
    /// As [`Generator::from_pth`].
    pub fn from_pth(
        path: impl AsRef<Path>,
        config: &DiscriminatorConfig,
        options: &LoadOptions,
        device: &Device,
    ) -> Result<Self> {
        let dict = read_state_dict(path.as_ref(), options)?;
        let mut loader = WeightLoader::owning(dict, device, "IC-GAN BigGAN discriminator");
        let discriminator = Self::load(&mut loader, config)?;
        loader.finish()?;
        Ok(discriminator)
    }

    /// Load the discriminator `D_bestN.pth` of a released IC-GAN experiment folder, with
    /// its architecture.
    ///
    /// # Errors
    /// Those of [`IcganExperiment::open`] and [`from_pth`](Self::from_pth).
    pub fn from_icgan_folder(
        dir: impl AsRef<Path>,
        options: &LoadOptions,
        device: &Device,
    ) -> Result<(Self, DiscriminatorConfig)> {
        let experiment = IcganExperiment::open(dir)?;
        let config = experiment.config.discriminator.clone();
        let discriminator =
            Self::from_pth(experiment.discriminator_path(), &config, options, device)?;
        Ok((discriminator, config))
    }
}
