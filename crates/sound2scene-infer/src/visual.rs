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

/// The viridis colour map at `t` in `[0, 1]`, interpolated between nine anchor colours.
fn viridis(t: f32) -> Rgb<u8> {
    const ANCHORS: [[f32; 3]; 9] = [
        [68.0, 1.0, 84.0],
        [72.0, 40.0, 120.0],
        [62.0, 74.0, 137.0],
        [49.0, 104.0, 142.0],
        [38.0, 130.0, 142.0],
        [31.0, 158.0, 137.0],
        [53.0, 183.0, 121.0],
        [110.0, 206.0, 88.0],
        [253.0, 231.0, 37.0],
    ];
    let t = t.clamp(0.0, 1.0) * (ANCHORS.len() - 1) as f32;
    let i = (t.floor() as usize).min(ANCHORS.len() - 2);
    let f = t - i as f32;
    let mix = |c: usize| (ANCHORS[i][c] * (1.0 - f) + ANCHORS[i + 1][c] * f).round() as u8;
    Rgb([mix(0), mix(1), mix(2)])
}

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
}
