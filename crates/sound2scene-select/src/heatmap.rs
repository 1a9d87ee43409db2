//! Heatmaps for people: a frame with its localization map blended over it in the viridis
//! colour map ([`sound2scene_infer::visual::viridis`]: dark purple = low, yellow = high), written
//! as PNG.

use std::path::Path;

use image::{Rgb, RgbImage};
use sound2scene_infer::visual::viridis;

use crate::error::{Result, SelectError};
use crate::metrics::{min_max_normalize, upsample_bilinear};

/// Weight of the heatmap colour in the blend (the frame gets the rest).
pub const HEATMAP_ALPHA: f32 = 0.5;
/// Heatmaps smaller than this many pixels a side are enlarged by a whole factor.
pub const MIN_HEATMAP_SIDE: u32 = 128;

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
        let colour = viridis(up[my * out_side + mx]);
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
