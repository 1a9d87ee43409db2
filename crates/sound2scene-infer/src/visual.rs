//! Turning arrays into pictures people can look at: generator outputs, grids, spectrograms.

use burn::tensor::Tensor;
use image::{Rgb, RgbImage};

/// Convert generator output `[batch, 3, height, width]` in `[-1, 1]` to 8-bit RGB images.
///
/// Values are clamped to `[-1, 1]` first (as the official code clamps before saving), then
/// mapped linearly to `0..=255` with rounding.
pub fn tensor_to_images(images: Tensor<4>) -> Vec<RgbImage> {
    let [batch, channels, height, width] = images.dims();
    let values: Vec<f32> = images
        .clamp(-1.0, 1.0)
        .into_data()
        .try_into_vec_as::<f32>()
        .unwrap_or_default();
    let size = channels * height * width;
    (0..batch)
        .map(|b| {
            let picture = values.get(b * size..(b + 1) * size).unwrap_or(&[]);
            values_to_image(picture, [channels, height, width])
        })
        .collect()
}

/// Convert one picture of generator output, `[channels, height, width]` values in `[-1, 1]`
/// (row-major), to an 8-bit RGB image as [`tensor_to_images`] does: clamped, mapped linearly
/// to `0..=255` with rounding; a single channel is drawn grey and missing values mid-grey.
pub fn values_to_image(values: &[f32], [channels, height, width]: [usize; 3]) -> RgbImage {
    let plane = height * width;
    RgbImage::from_fn(width as u32, height as u32, |x, y| {
        let at = |c: usize| {
            let c = c.min(channels.saturating_sub(1));
            let v = values
                .get(c * plane + y as usize * width + x as usize)
                .copied()
                .unwrap_or(0.0)
                .clamp(-1.0, 1.0);
            ((v + 1.0) * 127.5).round().clamp(0.0, 255.0) as u8
        };
        Rgb([at(0), at(1), at(2)])
    })
}

/// Lay images out in a grid of `columns` columns with a `gap`-pixel white border between cells.
///
/// Images may differ in size; each cell is as large as the largest image. An empty input gives
/// a 1×1 white image.
pub fn grid(images: &[RgbImage], columns: usize, gap: u32) -> RgbImage {
    if images.is_empty() {
        return RgbImage::from_pixel(1, 1, Rgb([255, 255, 255]));
    }
    let columns = columns.clamp(1, images.len());
    let rows = images.len().div_ceil(columns);
    let cell_w = images.iter().map(|i| i.width()).max().unwrap_or(1);
    let cell_h = images.iter().map(|i| i.height()).max().unwrap_or(1);
    let width = columns as u32 * cell_w + (columns as u32 + 1) * gap;
    let height = rows as u32 * cell_h + (rows as u32 + 1) * gap;
    let mut canvas = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
    for (i, img) in images.iter().enumerate() {
        let x0 = gap + (i % columns) as u32 * (cell_w + gap);
        let y0 = gap + (i / columns) as u32 * (cell_h + gap);
        image::imageops::replace(&mut canvas, img, x0 as i64, y0 as i64);
    }
    canvas
}

/// Height in pixels of a label row drawn by [`labelled_grid`].
const LABEL_HEIGHT: u32 = 11;

/// A 5×7 bitmap font for labels: each glyph is 7 rows of 5 bits (most significant bit on the
/// left). Letters are drawn upper case; characters without a glyph are drawn as a space.
fn glyph(c: char) -> [u8; 7] {
    match c.to_ascii_uppercase() {
        '0' => [14, 17, 19, 21, 25, 17, 14],
        '1' => [4, 12, 4, 4, 4, 4, 14],
        '2' => [14, 17, 1, 2, 4, 8, 31],
        '3' => [30, 1, 1, 14, 1, 1, 30],
        '4' => [2, 6, 10, 18, 31, 2, 2],
        '5' => [31, 16, 30, 1, 1, 17, 14],
        '6' => [6, 8, 16, 30, 17, 17, 14],
        '7' => [31, 1, 2, 4, 8, 8, 8],
        '8' => [14, 17, 17, 14, 17, 17, 14],
        '9' => [14, 17, 17, 15, 1, 2, 12],
        'A' => [14, 17, 17, 31, 17, 17, 17],
        'B' => [30, 17, 17, 30, 17, 17, 30],
        'C' => [14, 17, 16, 16, 16, 17, 14],
        'D' => [28, 18, 17, 17, 17, 18, 28],
        'E' => [31, 16, 16, 30, 16, 16, 31],
        'F' => [31, 16, 16, 30, 16, 16, 16],
        'G' => [14, 17, 16, 23, 17, 17, 15],
        'H' => [17, 17, 17, 31, 17, 17, 17],
        'I' => [14, 4, 4, 4, 4, 4, 14],
        'J' => [7, 2, 2, 2, 2, 18, 12],
        'K' => [17, 18, 20, 24, 20, 18, 17],
        'L' => [16, 16, 16, 16, 16, 16, 31],
        'M' => [17, 27, 21, 21, 17, 17, 17],
        'N' => [17, 17, 25, 21, 19, 17, 17],
        'O' => [14, 17, 17, 17, 17, 17, 14],
        'P' => [30, 17, 17, 30, 16, 16, 16],
        'Q' => [14, 17, 17, 17, 21, 18, 13],
        'R' => [30, 17, 17, 30, 20, 18, 17],
        'S' => [15, 16, 16, 14, 1, 1, 30],
        'T' => [31, 4, 4, 4, 4, 4, 4],
        'U' => [17, 17, 17, 17, 17, 17, 14],
        'V' => [17, 17, 17, 17, 17, 10, 4],
        'W' => [17, 17, 17, 21, 21, 21, 10],
        'X' => [17, 17, 10, 4, 10, 17, 17],
        'Y' => [17, 17, 10, 4, 4, 4, 4],
        'Z' => [31, 1, 2, 4, 8, 16, 31],
        '.' => [0, 0, 0, 0, 0, 12, 12],
        '-' => [0, 0, 0, 31, 0, 0, 0],
        '+' => [0, 4, 4, 31, 4, 4, 0],
        '=' => [0, 0, 31, 0, 31, 0, 0],
        ':' => [0, 12, 12, 0, 12, 12, 0],
        '/' => [1, 1, 2, 4, 8, 16, 16],
        '_' => [0, 0, 0, 0, 0, 0, 31],
        _ => [0; 7],
    }
}

/// Draw `text` in black onto `canvas` with its top-left corner at `(x, y)`, clipped to the
/// canvas.
pub fn draw_text(canvas: &mut RgbImage, text: &str, x: u32, y: u32) {
    for (i, c) in text.chars().enumerate() {
        let rows = glyph(c);
        let x0 = x + i as u32 * 6;
        for (dy, bits) in rows.iter().enumerate() {
            for dx in 0..5u32 {
                if bits & (16 >> dx) != 0 {
                    let (px, py) = (x0 + dx, y + dy as u32);
                    if px < canvas.width() && py < canvas.height() {
                        canvas.put_pixel(px, py, Rgb([0, 0, 0]));
                    }
                }
            }
        }
    }
}

/// A [`grid`] of `columns` columns with a text label above each row (`labels[r]` for row `r`;
/// missing labels are left blank).
pub fn labelled_grid(images: &[RgbImage], columns: usize, labels: &[String]) -> RgbImage {
    let columns = columns.max(1);
    let rows: Vec<RgbImage> = images
        .chunks(columns)
        .enumerate()
        .map(|(r, row)| {
            let body = grid(row, columns, 2);
            let mut canvas = RgbImage::from_pixel(
                body.width(),
                body.height() + LABEL_HEIGHT,
                Rgb([255, 255, 255]),
            );
            image::imageops::replace(&mut canvas, &body, 0, LABEL_HEIGHT as i64);
            if let Some(label) = labels.get(r) {
                draw_text(&mut canvas, label, 2, 2);
            }
            canvas
        })
        .collect();
    grid(&rows, 1, 0)
}

/// Render a `[rows, cols]` row-major array (e.g. a `[257, frames]` spectrogram) as an image
/// with the viridis colour map, low frequencies at the bottom.
///
/// Values are scaled between the array's own minimum and maximum; NaN is drawn black.
pub fn heatmap(values: &[f32], rows: usize, cols: usize) -> RgbImage {
    let finite = values.iter().copied().filter(|v| v.is_finite());
    let (lo, hi) = finite.fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let span = if hi > lo { hi - lo } else { 1.0 };
    RgbImage::from_fn(cols as u32, rows as u32, |x, y| {
        let row = rows - 1 - y as usize;
        match values.get(row * cols + x as usize) {
            Some(v) if v.is_finite() => viridis((v - lo) / span),
            _ => Rgb([0, 0, 0]),
        }
    })
}

/// The viridis colour map at `t` in `[0, 1]` (clamped): matplotlib's `viridis`, the colour
/// `cm.viridis(t)` gives, with its 256 entries rounded to 8 bits (`#440154` at 0, `#21918c` at
/// 0.5, `#fde725` at 1).
///
/// The one colour map of the workspace: spectrogram pictures ([`heatmap`]) and the
/// localization heatmaps of `sound2scene-select` use it.
pub fn viridis(t: f32) -> Rgb<u8> {
    // Entry `floor(t · 256)`, the last one for `t = 1`, as matplotlib's `Colormap.__call__`
    // picks it (NaN gives the first).
    let index = ((t.clamp(0.0, 1.0) * 256.0) as usize).min(255);
    let rgb = &VIRIDIS[3 * index..3 * index + 3];
    Rgb([rgb[0], rgb[1], rgb[2]])
}

/// matplotlib's `_viridis_data` (`lib/matplotlib/_cm_listed.py`), 256 RGB entries, each channel
/// `round(255 · value)`.
#[rustfmt::skip]
const VIRIDIS: [u8; 768] = [
    68, 1, 84, 68, 2, 86, 69, 4, 87, 69, 5, 89, 70, 7, 90, 70, 8, 92, 70, 10, 93, 70, 11, 94,
    71, 13, 96, 71, 14, 97, 71, 16, 99, 71, 17, 100, 71, 19, 101, 72, 20, 103, 72, 22, 104, 72, 23, 105,
    72, 24, 106, 72, 26, 108, 72, 27, 109, 72, 28, 110, 72, 29, 111, 72, 31, 112, 72, 32, 113, 72, 33, 115,
    72, 35, 116, 72, 36, 117, 72, 37, 118, 72, 38, 119, 72, 40, 120, 72, 41, 121, 71, 42, 122, 71, 44, 122,
    71, 45, 123, 71, 46, 124, 71, 47, 125, 70, 48, 126, 70, 50, 126, 70, 51, 127, 70, 52, 128, 69, 53, 129,
    69, 55, 129, 69, 56, 130, 68, 57, 131, 68, 58, 131, 68, 59, 132, 67, 61, 132, 67, 62, 133, 66, 63, 133,
    66, 64, 134, 66, 65, 134, 65, 66, 135, 65, 68, 135, 64, 69, 136, 64, 70, 136, 63, 71, 136, 63, 72, 137,
    62, 73, 137, 62, 74, 137, 62, 76, 138, 61, 77, 138, 61, 78, 138, 60, 79, 138, 60, 80, 139, 59, 81, 139,
    59, 82, 139, 58, 83, 139, 58, 84, 140, 57, 85, 140, 57, 86, 140, 56, 88, 140, 56, 89, 140, 55, 90, 140,
    55, 91, 141, 54, 92, 141, 54, 93, 141, 53, 94, 141, 53, 95, 141, 52, 96, 141, 52, 97, 141, 51, 98, 141,
    51, 99, 141, 50, 100, 142, 50, 101, 142, 49, 102, 142, 49, 103, 142, 49, 104, 142, 48, 105, 142, 48, 106, 142,
    47, 107, 142, 47, 108, 142, 46, 109, 142, 46, 110, 142, 46, 111, 142, 45, 112, 142, 45, 113, 142, 44, 113, 142,
    44, 114, 142, 44, 115, 142, 43, 116, 142, 43, 117, 142, 42, 118, 142, 42, 119, 142, 42, 120, 142, 41, 121, 142,
    41, 122, 142, 41, 123, 142, 40, 124, 142, 40, 125, 142, 39, 126, 142, 39, 127, 142, 39, 128, 142, 38, 129, 142,
    38, 130, 142, 38, 130, 142, 37, 131, 142, 37, 132, 142, 37, 133, 142, 36, 134, 142, 36, 135, 142, 35, 136, 142,
    35, 137, 142, 35, 138, 141, 34, 139, 141, 34, 140, 141, 34, 141, 141, 33, 142, 141, 33, 143, 141, 33, 144, 141,
    33, 145, 140, 32, 146, 140, 32, 146, 140, 32, 147, 140, 31, 148, 140, 31, 149, 139, 31, 150, 139, 31, 151, 139,
    31, 152, 139, 31, 153, 138, 31, 154, 138, 30, 155, 138, 30, 156, 137, 30, 157, 137, 31, 158, 137, 31, 159, 136,
    31, 160, 136, 31, 161, 136, 31, 161, 135, 31, 162, 135, 32, 163, 134, 32, 164, 134, 33, 165, 133, 33, 166, 133,
    34, 167, 133, 34, 168, 132, 35, 169, 131, 36, 170, 131, 37, 171, 130, 37, 172, 130, 38, 173, 129, 39, 173, 129,
    40, 174, 128, 41, 175, 127, 42, 176, 127, 44, 177, 126, 45, 178, 125, 46, 179, 124, 47, 180, 124, 49, 181, 123,
    50, 182, 122, 52, 182, 121, 53, 183, 121, 55, 184, 120, 56, 185, 119, 58, 186, 118, 59, 187, 117, 61, 188, 116,
    63, 188, 115, 64, 189, 114, 66, 190, 113, 68, 191, 112, 70, 192, 111, 72, 193, 110, 74, 193, 109, 76, 194, 108,
    78, 195, 107, 80, 196, 106, 82, 197, 105, 84, 197, 104, 86, 198, 103, 88, 199, 101, 90, 200, 100, 92, 200, 99,
    94, 201, 98, 96, 202, 96, 99, 203, 95, 101, 203, 94, 103, 204, 92, 105, 205, 91, 108, 205, 90, 110, 206, 88,
    112, 207, 87, 115, 208, 86, 117, 208, 84, 119, 209, 83, 122, 209, 81, 124, 210, 80, 127, 211, 78, 129, 211, 77,
    132, 212, 75, 134, 213, 73, 137, 213, 72, 139, 214, 70, 142, 214, 69, 144, 215, 67, 147, 215, 65, 149, 216, 64,
    152, 216, 62, 155, 217, 60, 157, 217, 59, 160, 218, 57, 162, 218, 55, 165, 219, 54, 168, 219, 52, 170, 220, 50,
    173, 220, 48, 176, 221, 47, 178, 221, 45, 181, 222, 43, 184, 222, 41, 186, 222, 40, 189, 223, 38, 192, 223, 37,
    194, 223, 35, 197, 224, 33, 200, 224, 32, 202, 225, 31, 205, 225, 29, 208, 225, 28, 210, 226, 27, 213, 226, 26,
    216, 226, 25, 218, 227, 25, 221, 227, 24, 223, 227, 24, 226, 228, 24, 229, 228, 25, 231, 228, 25, 234, 229, 26,
    236, 229, 27, 239, 229, 28, 241, 229, 29, 244, 230, 30, 246, 230, 32, 248, 230, 33, 251, 231, 35, 253, 231, 37,
];

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn generator_range_maps_to_bytes() {
        let device = Device::default();
        let data = TensorData::new(vec![-1.0f32, 0.0, 1.0, 2.0], [1, 1, 2, 2]);
        let images = tensor_to_images(Tensor::from_data(data, &device));
        assert_eq!(images.len(), 1);
        let px: Vec<u8> = images[0].pixels().map(|p| p.0[0]).collect();
        assert_eq!(px, vec![0, 128, 255, 255]);
    }

    #[test]
    fn grid_places_cells_with_gaps() {
        let red = RgbImage::from_pixel(2, 2, Rgb([255, 0, 0]));
        let g = grid(&[red.clone(), red.clone(), red], 2, 1);
        assert_eq!(g.dimensions(), (2 * 2 + 3, 2 * 2 + 3));
        assert_eq!(g.get_pixel(1, 1).0, [255, 0, 0]);
        assert_eq!(
            g.get_pixel(4, 1).0,
            [255, 0, 0],
            "second cell of the first row"
        );
        assert_eq!(
            g.get_pixel(1, 4).0,
            [255, 0, 0],
            "first cell of the second row"
        );
        assert_eq!(
            g.get_pixel(4, 4).0,
            [255, 255, 255],
            "the missing fourth cell is blank"
        );
        assert_eq!(g.get_pixel(3, 1).0, [255, 255, 255], "gap between columns");
    }

    #[test]
    fn labels_draw_dark_pixels_above_each_row() {
        let white = RgbImage::from_pixel(20, 20, Rgb([200, 200, 200]));
        let out = labelled_grid(&[white.clone(), white], 1, &["+6 DB".into(), String::new()]);
        let dark_in = |y0: u32, y1: u32| {
            (y0..y1).any(|y| (0..out.width()).any(|x| out.get_pixel(x, y).0 == [0, 0, 0]))
        };
        let row_h = 20 + 4 + LABEL_HEIGHT;
        assert!(dark_in(0, LABEL_HEIGHT), "first label drawn");
        assert!(
            !dark_in(row_h, row_h + LABEL_HEIGHT),
            "empty label stays blank"
        );
        assert_eq!(out.height(), 2 * row_h);
    }

    #[test]
    fn heatmap_spans_the_colour_map() {
        let img = heatmap(&[0.0, 1.0], 2, 1);
        assert_eq!(img.get_pixel(0, 1).0, [68, 1, 84]);
        assert_eq!(img.get_pixel(0, 0).0, [253, 231, 37]);
    }

    #[test]
    fn viridis_is_matplotlibs() {
        // matplotlib.colors.to_hex(cm.viridis(t)) for t = 0, 0.25, 0.5, 0.75, 1.
        let expected = [
            (0.0, [0x44, 0x01, 0x54]),
            (0.25, [0x3b, 0x52, 0x8b]),
            (0.5, [0x21, 0x91, 0x8c]),
            (0.75, [0x5e, 0xc9, 0x62]),
            (1.0, [0xfd, 0xe7, 0x25]),
        ];
        for (t, rgb) in expected {
            assert_eq!(viridis(t).0, rgb, "viridis({t})");
        }
        assert_eq!(viridis(-1.0), viridis(0.0));
        assert_eq!(viridis(2.0), viridis(1.0));
    }
}
