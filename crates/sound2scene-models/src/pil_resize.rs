//! PIL's bilinear `Image.resize` on 8-bit RGB, reproduced to the bit: the resize torchvision's
//! `Resize` applies to a PIL image, and so the first step of f_V's official preprocessing.
//!
//! PIL (`libImaging/Resample.c`) resamples in two passes, horizontal first, each a weighted sum
//! over a triangle filter whose support widens with the reduction factor (so downscaling is
//! antialiased). The weights are computed in `f64`, normalized to sum to one per output pixel,
//! then turned into 22-bit fixed point; each pass adds half a unit, shifts, and clamps to
//! `0..=255`, so the image between the passes is 8-bit. A generic resampler that keeps the
//! intermediate in floating point (as `image::imageops::resize` does) lands within one gray
//! level of PIL but not on it.

use image::RgbImage;

/// Fractional bits of PIL's fixed-point weights (`PRECISION_BITS = 32 - 8 - 2`).
const PRECISION_BITS: u32 = 22;

/// Per output position: the first input index, and the fixed-point weights of the inputs from
/// there on.
struct Taps {
    first: Vec<usize>,
    weights: Vec<Vec<i32>>,
}

/// PIL's `bilinear_filter`: the triangle `max(0, 1 - |x|)`, support 1.
fn triangle(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 { 1.0 - x } else { 0.0 }
}

/// PIL's `precompute_coeffs` for the box `0..in_size` and `normalize_coeffs_8bpc`.
fn taps(in_size: usize, out_size: usize) -> Taps {
    let scale = in_size as f64 / out_size as f64;
    let filter_scale = scale.max(1.0);
    let support = filter_scale;
    // PIL multiplies by the reciprocal; dividing could differ in the last bit of a weight.
    let ss = 1.0 / filter_scale;
    let mut first = Vec::with_capacity(out_size);
    let mut weights = Vec::with_capacity(out_size);
    for i in 0..out_size {
        let center = (i as f64 + 0.5) * scale;
        // PIL truncates `center ± support + 0.5` towards zero, then clamps to the image.
        let lo = ((center - support + 0.5) as i64).max(0) as usize;
        let hi = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let raw: Vec<f64> = (lo..hi.max(lo))
            .map(|x| triangle((x as f64 - center + 0.5) * ss))
            .collect();
        let total: f64 = raw.iter().sum();
        let fixed = raw
            .iter()
            .map(|&w| {
                let w = if total != 0.0 { w / total } else { w };
                let scaled = w * f64::from(1u32 << PRECISION_BITS);
                // C's `(int)(±0.5 + x)`: round half away from zero by truncation.
                (if scaled < 0.0 {
                    scaled - 0.5
                } else {
                    scaled + 0.5
                }) as i32
            })
            .collect();
        first.push(lo);
        weights.push(fixed);
    }
    Taps { first, weights }
}

/// PIL's `clip8`: the fixed-point accumulator to an 8-bit value.
fn clip8(acc: i64) -> u8 {
    if acc >= 1i64 << (PRECISION_BITS + 8) {
        255
    } else if acc <= 0 {
        0
    } else {
        (acc >> PRECISION_BITS) as u8
    }
}

/// One resampling pass along one line of 8-bit RGB pixels: output pixel `o` is
/// `clip8(half + Σ_k w_k · input[first_o + k])` per channel. Pixel `i` of the input line is at
/// `input[src.0 + i * src.1..][..3]`, pixel `o` of the output line at `out[dst.0 + o * dst.1..]`.
fn resample_line(
    input: &[u8],
    src: (usize, usize),
    taps: &Taps,
    out: &mut [u8],
    dst: (usize, usize),
) {
    let half = 1i64 << (PRECISION_BITS - 1);
    for (o, (&first, weights)) in taps.first.iter().zip(&taps.weights).enumerate() {
        let mut acc = [half; 3];
        for (k, &w) in weights.iter().enumerate() {
            let at = src.0 + (first + k) * src.1;
            for (c, a) in acc.iter_mut().enumerate() {
                *a += i64::from(input[at + c]) * i64::from(w);
            }
        }
        let at = dst.0 + o * dst.1;
        for (c, a) in acc.iter().enumerate() {
            out[at + c] = clip8(*a);
        }
    }
}

/// `image.resize((width, height), Image.BILINEAR)` as PIL computes it for an RGB image.
///
/// An axis whose size does not change is not resampled (as in PIL). An image with no pixel, or
/// a zero target size, gives an empty (black) image of the target size.
pub fn resize_bilinear(image: &RgbImage, width: u32, height: u32) -> RgbImage {
    let (in_w, in_h) = (image.width() as usize, image.height() as usize);
    let (out_w, out_h) = (width as usize, height as usize);
    if in_w == 0 || in_h == 0 || out_w == 0 || out_h == 0 {
        return RgbImage::new(width, height);
    }
    let mut current = image.as_raw().clone();
    // Horizontal pass first, as PIL: each row, pixels 3 bytes apart.
    if out_w != in_w {
        let t = taps(in_w, out_w);
        let mut next = vec![0u8; out_w * in_h * 3];
        for y in 0..in_h {
            resample_line(
                &current,
                (y * in_w * 3, 3),
                &t,
                &mut next,
                (y * out_w * 3, 3),
            );
        }
        current = next;
    }
    // Then vertical: each column, pixels a row apart.
    if out_h != in_h {
        let t = taps(in_h, out_h);
        let row = out_w * 3;
        let mut next = vec![0u8; row * out_h];
        for x in 0..out_w {
            resample_line(&current, (x * 3, row), &t, &mut next, (x * 3, row));
        }
        current = next;
    }
    RgbImage::from_raw(width, height, current).unwrap_or_else(|| RgbImage::new(width, height))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn a_flat_image_stays_flat() {
        let image = RgbImage::from_pixel(37, 11, Rgb([200, 17, 255]));
        let out = resize_bilinear(&image, 256, 256);
        assert!(out.pixels().all(|p| p.0 == [200, 17, 255]));
    }

    #[test]
    fn same_size_is_a_copy() {
        let image = RgbImage::from_fn(5, 4, |x, y| Rgb([(x * 40) as u8, (y * 60) as u8, 7]));
        assert_eq!(resize_bilinear(&image, 5, 4), image);
    }

    #[test]
    fn halving_averages_pairs_with_their_neighbours() {
        // Downscaling by 2: support 2, output pixel 0 is centred at 1.0 and weighs inputs
        // 0, 1, 2 by the triangle at (x - 0.5) / 2: 0.75, 0.75, 0.25, normalized to 3/7,
        // 3/7, 1/7; inputs 10, 20, 40 give (30 + 60 + 40) / 7 = 18.57 -> 19.
        let row = [10u8, 20, 40, 80];
        let image = RgbImage::from_fn(4, 1, |x, _| {
            let v = row[x as usize];
            Rgb([v, v, v])
        });
        let out = resize_bilinear(&image, 2, 1);
        assert_eq!(out.get_pixel(0, 0).0, [19; 3]);
        // Output 1 is centred at 3.0: inputs 1, 2, 3 weigh 0.25, 0.75, 0.75 ->
        // (20 + 120 + 240) / 7 = 54.29 -> 54.
        assert_eq!(out.get_pixel(1, 0).0, [54; 3]);
    }
}
