//! Reading Sound2Scene's checkpoint files without Burn's tensors: a PyTorch `.pth` file into
//! a [`StateDict`] of shapes and `f32` values, and the header of a burnpack file.
//!
//! ```no_run
//! use sound2scene_weights::{LoadOptions, StateDict, burnpack};
//!
//! // The released audio encoder: screened (no pickle may name a callable that is not a
//! // tensor type), read, converted to f32, NaN and infinity refused.
//! let dict = StateDict::from_pytorch("sound2scene.pth", None, &LoadOptions::default())?;
//! let fc = dict.get("audnet.fc.weight").expect("AVENet's projection");
//! assert_eq!(fc.shape, [2048, 512]); // [out, in], row-major values
//!
//! // Which network a file written by `sound2scene convert` holds, and its configuration.
//! let header = burnpack::read_header("audio_encoder.bpk")?;
//! println!("{} {}", header.network.as_str(), header.config_json);
//! # Ok::<(), sound2scene_weights::WeightsError>(())
//! ```
//!
//! These are the readers that take untrusted files, kept apart from the networks so that
//! they build quickly, with coverage instrumentation, for the `checkpoint` fuzz target.
//! `sound2scene-models` re-exports them and builds its networks from a [`StateDict`].
#![deny(missing_docs)]

pub mod burnpack;
pub mod error;
pub mod state_dict;

pub use error::{Result, WeightsError};
pub use state_dict::{EXPANSION_SLACK, LoadOptions, MAX_EXPANSION, StateDict, StoredTensor};
