//! Heatmaps for people: a frame with its localization map blended over it in a viridis-like
//! colour scale (dark purple = low, yellow = high), written as PNG.

use std::path::Path;

use image::{Rgb, RgbImage};

use crate::error::{Result, SelectError};
use crate::metrics::{min_max_normalize, upsample_bilinear};

/// Anchors of the colour scale at 0, 1/8, …, 1 (the viridis palette's sRGB values).
const PALETTE: [[u8; 3]; 9] = [
    [68, 1, 84],
    [71, 44, 122],
    [59, 81, 139],
    [44, 113, 142],
    [33, 144, 141],
    [39, 173, 129],
    [92, 200, 99],
    [170, 220, 50],
    [253, 231, 37],
];

/// Weight of the heatmap colour in the blend (the frame gets the rest).
pub const HEATMAP_ALPHA: f32 = 0.5;
/// Heatmaps smaller than this many pixels a side are enlarged by a whole factor.
pub const MIN_HEATMAP_SIDE: u32 = 128;

/// The colour of `value` in `[0, 1]` (clamped) on the viridis-like scale.
pub fn colormap(value: f32) -> [u8; 3] {
    let x = value.clamp(0.0, 1.0) * (PALETTE.len() - 1) as f32;
    let i = (x.floor() as usize).min(PALETTE.len() - 2);
    let t = x - i as f32;
    let (a, b) = (PALETTE[i], PALETTE[i + 1]);
    std::array::from_fn(|c| (f32::from(a[c]) * (1.0 - t) + f32::from(b[c]) * t).round() as u8)
}

/// `frame` with the `[side, side]` localization `map` (any scale; min-max normalized and
/// bilinearly upsampled) blended over it, enlarged by a whole factor to at least
/// [`MIN_HEATMAP_SIDE`] pixels.
pub fn blend(frame: &RgbImage, map: &[f32], side: usize) -> RgbImage {
    let (w, h) = frame.dimensions();
    let scale = MIN_HEATMAP_SIDE.div_ceil(w.max(h).max(1)).max(1);
    let (out_w, out_h) = (w * scale, h * scale);
    let out_side = out_w.max(out_h) as usize;
    let up = min_max_normalize(&upsample_bilinear(map, side, side, out_side));
    RgbImage::from_fn(out_w, out_h, |x, y| {
        let pixel = frame.get_pixel(x / scale, y / scale);
        let mx = (x as usize * out_side) / out_w as usize;
        let my = (y as usize * out_side) / out_h as usize;
        let colour = colormap(up[my * out_side + mx]);
        Rgb(std::array::from_fn(|c| {
            (f32::from(pixel[c]) * (1.0 - HEATMAP_ALPHA) + f32::from(colour[c]) * HEATMAP_ALPHA)
                .round() as u8
        }))
    })
}

/// Writes [`blend`] of `frame` and `map` to `path` as PNG.
///
/// # Errors
/// [`SelectError::Image`] naming the file.
pub fn write_heatmap(path: &Path, frame: &RgbImage, map: &[f32], side: usize) -> Result<()> {
    blend(frame, map, side)
        .save(path)
        .map_err(|source| SelectError::Image {
            path: path.to_path_buf(),
            source,
        })
}
