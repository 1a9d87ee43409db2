//! Max pooling on NCHW planes, for inference: no indices are kept (training takes Burn's
//! `max_pool2d_with_indices` and its backward).

use rayon::prelude::*;

/// The sizes of a max pooling: `kernel`, `stride` and (implicit −∞) `padding`, each
/// `[rows, columns]`, over planes of `h × w`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolGeometry {
    /// Input height and width.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Window size.
    pub kernel: [usize; 2],
    /// Step between windows.
    pub stride: [usize; 2],
    /// Padding on each side, never chosen as a maximum.
    pub padding: [usize; 2],
}

impl PoolGeometry {
    /// Whether the sizes make sense: a window and a stride of at least one, padding below the
    /// window (so that every window holds an input), and at least one output.
    pub fn is_valid(&self) -> bool {
        let [kh, kw] = self.kernel;
        kh > 0
            && kw > 0
            && self.stride.iter().all(|&s| s > 0)
            && self.padding[0] < kh
            && self.padding[1] < kw
            && self.h + 2 * self.padding[0] >= kh
            && self.w + 2 * self.padding[1] >= kw
    }

    /// Output height, `(h + 2p − k) / s + 1`.
    pub fn h_out(&self) -> usize {
        (self.h + 2 * self.padding[0] - self.kernel[0]) / self.stride[0] + 1
    }

    /// Output width.
    pub fn w_out(&self) -> usize {
        (self.w + 2 * self.padding[1] - self.kernel[1]) / self.stride[1] + 1
    }
}

/// `out[y][x] = max` of the input window of output `(y, x)`, for `planes` planes; a NaN in a
/// window makes its output NaN, as in PyTorch.
///
/// # Panics
/// When `g` is not valid or a length does not match.
pub fn max_pool2d(x: &[f32], planes: usize, g: &PoolGeometry, out: &mut [f32]) {
    assert!(g.is_valid(), "invalid max pooling {g:?}");
    let (h_out, w_out) = (g.h_out(), g.w_out());
    assert_eq!(x.len(), planes * g.h * g.w, "input length");
    assert_eq!(out.len(), planes * h_out * w_out, "output length");
    if out.is_empty() {
        return;
    }
    // Rows of output are the tasks, so that a batch of one with few channels keeps every
    // thread busy.
    out.par_chunks_mut(w_out)
        .enumerate()
        .for_each(|(row, dst)| {
            let (plane, y) = (row / h_out, row % h_out);
            let src = &x[plane * g.h * g.w..][..g.h * g.w];
            let top = (y * g.stride[0]).saturating_sub(g.padding[0]);
            let bottom = (y * g.stride[0] + g.kernel[0] - g.padding[0]).min(g.h);
            for (xo, d) in dst.iter_mut().enumerate() {
                let left = (xo * g.stride[1]).saturating_sub(g.padding[1]);
                let right = (xo * g.stride[1] + g.kernel[1] - g.padding[1]).min(g.w);
                let mut m = f32::NEG_INFINITY;
                for r in top..bottom {
                    for &v in &src[r * g.w + left..r * g.w + right] {
                        if v > m || v.is_nan() {
                            m = v;
                        }
                    }
                }
                *d = m;
            }
        });
}
