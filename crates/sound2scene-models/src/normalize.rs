//! L2 normalization: the one implementation every crate of the workspace calls.
//!
//! # The epsilon rule
//!
//! `x / max(‖x‖₂, eps)` along one dimension, with `eps` = [`L2_NORMALIZE_EPS`] = `1e-12`:
//! PyTorch's `torch.nn.functional.normalize(x, p=2, dim, eps=1e-12)`, which is what every
//! official code this workspace reproduces calls:
//!
//! - Sound2Scene / IC-GAN: the instance feature given to the generator is
//!   `F.normalize(feat, dim=1)` (`sound2scene_infer::l2_normalize`: drawing, the controls and
//!   the re-ranking by the image encoder);
//! - Sound2Scene's `InfoNCE_with_L2` and `InfoNCE_Loss` normalize the audio and image features
//!   row by row (`sound2scene_train::loss`);
//! - SwAV: `nn.functional.normalize(x, dim=1, p=2)` on the projected embedding and on the
//!   prototypes before every forward pass in `main_swav.py` (`sound2scene_train::swav::head`);
//! - LVS, which the localizer of `sound2scene_select` follows: `nn.functional.normalize(·,
//!   dim=1)` on the audio embedding and on every position of the visual map;
//! - BigGAN-PyTorch's power iteration (`F.normalize(·, eps=eps)` with the layer's own `eps`),
//!   through [`l2_normalize_eps`] ([`crate::biggan::spectral_norm`]).
//!
//! The floor is applied to the squared norm: `x / sqrt(max(Σx², eps²))`. Since the square root
//! is monotone this is the same number as `x / max(sqrt(Σx²), eps)` (for a vector whose norm is
//! above the floor both divide by the same `sqrt(Σx²)`), so the official values are kept; a
//! vector of zeros stays zero. The order matters for the gradient only: with the floor after
//! the square root, an all-zero vector backpropagates `0 · ∞ = NaN` through `sqrt` at zero,
//! while this order gives zero through the norm, as PyTorch's `F.normalize` does.
//!
//! Host-side metrics on `ndarray` arrays (`sound2scene_train::metrics::retrieval`) normalize
//! their `f64` rows themselves with the same floor: they never hold a Burn tensor.

use burn::tensor::Tensor;

/// The floor on the L2 norm: the default `eps` of PyTorch's `F.normalize`.
pub const L2_NORMALIZE_EPS: f64 = 1e-12;

/// `x / max(‖x‖₂, 1e-12)` along `dim` (PyTorch `F.normalize(x, p=2, dim=dim)`; see the
/// [module documentation](self) for the epsilon rule).
///
/// # Shapes
/// - `x`: any shape; output: the same, unit L2 norm along `dim` (zero where `x` is zero)
pub fn l2_normalize<const D: usize>(x: Tensor<D>, dim: usize) -> Tensor<D> {
    l2_normalize_eps(x, dim, L2_NORMALIZE_EPS)
}

/// Each row of `x` divided by its L2 norm: [`l2_normalize`] along dimension 1.
///
/// # Shapes
/// - `x`: `[n, d]`; output: `[n, d]`
pub fn l2_normalize_rows(x: Tensor<2>) -> Tensor<2> {
    l2_normalize(x, 1)
}

/// `x / max(‖x‖₂, eps)` along `dim` with another floor (PyTorch `F.normalize(x, dim=dim,
/// eps=eps)`), computed as `x / sqrt(max(Σx², eps²))` like [`l2_normalize`].
///
/// `eps²` must be a normal `f32` (`eps` at least about `1.1e-19`).
///
/// # Shapes
/// - `x`: any shape; output: the same
pub fn l2_normalize_eps<const D: usize>(x: Tensor<D>, dim: usize, eps: f64) -> Tensor<D> {
    debug_assert!(
        eps * eps >= f64::from(f32::MIN_POSITIVE),
        "l2_normalize_eps: eps = {eps} is too small for f32"
    );
    let norm = x.clone().square().sum_dim(dim).clamp_min(eps * eps).sqrt();
    x / norm
}
