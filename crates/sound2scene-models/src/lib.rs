//! The networks of Sound2Scene (Sung-Bin et al., CVPR 2023) in Burn, and loaders for the
//! checkpoints the authors released.
//!
//! - [`resnet`]: the ResNet trunk shared by both encoders (BasicBlock / Bottleneck, any
//!   block counts, any input channels).
//! - [`audio_encoder`]: f_A, ResNet-18 on a one-channel log spectrogram, pooled, linear to
//!   2048, ReLU (the official `AVENet`).
//! - [`image_encoder`]: f_V, the SwAV ResNet-50 trunk with global average pooling.
//! - [`biggan`]: the IC-GAN instance-conditioned BigGAN generator and discriminator with
//!   BigGAN-PyTorch's spectral normalization.
//! - [`weights`]: building a network from a `.pth` file's state dict strictly, with every
//!   mismatch listed. The readers themselves ([`StateDict`], burnpack headers) are
//!   `sound2scene-weights`, which does not depend on Burn; they are re-exported here, and
//!   their [`WeightsError`] turns into the [`ModelError`] variant of the same name.
//! - [`checkpoint`]: opening any network from a released file, an IC-GAN folder or burnpack.
//! - [`burnpack`]: saving and loading any of the networks in Burn's own format (f32 or f16).
//! - [`normalize`]: the one L2 normalization (PyTorch `F.normalize`) of the workspace.
//!
//! Every network ([`AudioEncoder`](audio_encoder::AudioEncoder),
//! [`ImageEncoder`](image_encoder::ImageEncoder), [`Generator`](biggan::Generator),
//! [`Discriminator`](biggan::Discriminator)) has the same two entry points: `forward` is
//! infallible and panics with the [`ModelError::InputShape`] message when the input shapes do
//! not fit, for code whose shapes are fixed by construction (training loops, benchmarks);
//! `try_forward` checks the shapes first and returns that error instead, for inputs that come
//! from outside. The image encoder's path for G's pictures is the same pair,
//! `forward_generated` and `try_forward_generated`.
#![deny(missing_docs)]

pub mod audio_encoder;
pub mod biggan;
pub mod burnpack;
pub mod checkpoint;
pub mod error;
pub mod image_encoder;
pub mod normalize;
pub mod pil_resize;
pub mod resnet;
pub mod weights;

pub use error::{ModelError, Result};
pub use normalize::{L2_NORMALIZE_EPS, l2_normalize, l2_normalize_eps, l2_normalize_rows};
pub use sound2scene_weights::WeightsError;
pub use weights::{LoadOptions, StateDict, StoredTensor, WeightLoader};
