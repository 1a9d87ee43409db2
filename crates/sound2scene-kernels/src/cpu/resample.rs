//! Resampling by two on NCHW planes: nearest-neighbour upsampling (each value repeated over a
//! 2 × 2 block) and 2 × 2 average pooling. Each is, up to a factor 4, the other's transpose, so
//! each one's backward pass is the other.

use rayon::prelude::*;

/// `out[y][x] = x[y / 2][x / 2]`: `planes` planes of `h × w` to `2h × 2w`.
///
/// # Panics
/// When a length does not match.
pub fn upsample2x(x: &[f32], planes: usize, h: usize, w: usize, out: &mut [f32]) {
    assert_eq!(x.len(), planes * h * w, "input length");
    assert_eq!(out.len(), 4 * x.len(), "output length");
    if x.is_empty() {
        return;
    }
    out.par_chunks_mut(4 * h * w)
        .zip(x.par_chunks(h * w))
        .for_each(|(dst, src)| {
            for (rows, src_row) in dst.chunks_mut(4 * w).zip(src.chunks(w)) {
                let (top, bottom) = rows.split_at_mut(2 * w);
                for (pair, &v) in top.chunks_mut(2).zip(src_row) {
                    pair[0] = v;
                    pair[1] = v;
                }
                bottom.copy_from_slice(top);
            }
        });
}

/// `out[y][x] = scale · Σ x[2y..2y+2][2x..2x+2]`: `planes` planes of `h × w` (even) to
/// `h/2 × w/2`; `scale` is `1/4` for the average pool, `1` for the upsampling's transpose.
///
/// # Panics
/// When a length does not match or a size is odd.
pub fn pool2x(x: &[f32], planes: usize, h: usize, w: usize, scale: f32, out: &mut [f32]) {
    assert!(
        h.is_multiple_of(2) && w.is_multiple_of(2),
        "pooled sizes are even"
    );
    assert_eq!(x.len(), planes * h * w, "input length");
    assert_eq!(4 * out.len(), x.len(), "output length");
    if x.is_empty() {
        return;
    }
    out.par_chunks_mut(h * w / 4)
        .zip(x.par_chunks(h * w))
        .for_each(|(dst, src)| {
            for (dst_row, rows) in dst.chunks_mut(w / 2).zip(src.chunks(2 * w)) {
                let (top, bottom) = rows.split_at(w);
                for ((d, t), b) in dst_row.iter_mut().zip(top.chunks(2)).zip(bottom.chunks(2)) {
                    *d = (t[0] + t[1] + b[0] + b[1]) * scale;
                }
            }
        });
}
