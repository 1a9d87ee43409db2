//! Pictures: drawing a [`SceneSpec`] ([`render_scene`]), its exact ground truth
//! ([`scene_objects`]) and measuring a class's area by colour ([`measure_class_area`]).
//!
//! Objects are drawn with hard edges (no anti-aliasing) in their class's flat colour, so every
//! pixel is either a background pixel or exactly one class colour, and the area of an object is
//! the number of pixels within [`COLOR_TOLERANCE`] of its colour.

use image::{Rgb, RgbImage};

use crate::background;
use crate::class::{Shape, SoundClass};
use crate::error::{Result, SynthError};
use crate::scene::SceneSpec;
use crate::truth::ObjectTruth;

/// Largest accepted image side in pixels.
pub const MAX_IMAGE_SIZE: u32 = 4096;

/// Smallest drawn radius in pixels, so that very quiet sources still cover a few pixels.
pub const MIN_RADIUS_PX: f32 = 1.5;

/// Default colour tolerance of [`measure_class_area`]: largest Euclidean RGB distance (0–441)
/// at which a pixel counts as the class colour. Class colours are at least 100 apart, so the
/// tolerance balls do not overlap.
pub const COLOR_TOLERANCE: f32 = 40.0;

/// Drawn radius in pixels of a `class` object at `gain_db` in a `size`-pixel image:
/// `base_radius_fraction × size × 10^(gain_db / 40)`, at least [`MIN_RADIUS_PX`].
///
/// Since sound pressure falls as 1/distance and apparent size as 1/distance too, the linear
/// size follows amplitude as `10^(gain_db/20)`; we halve that exponent (radius doubles every
/// +12 dB, area every +6 dB) so that a ±12 dB range stays inside a small image.
pub fn radius_px(class: SoundClass, gain_db: f32, size: u32) -> f32 {
    (class.base_radius_fraction() * size as f32 * 10f32.powf(gain_db / 40.0)).max(MIN_RADIUS_PX)
}

/// Whether normalised offset `(u, v)` (units of the radius, `v` downwards) lies in `shape`.
fn inside(shape: Shape, u: f32, v: f32) -> bool {
    match shape {
        Shape::Circle => u * u + v * v <= 1.0,
        Shape::Triangle => v <= 0.8 && u.abs() <= (v + 1.0) / 1.8,
        Shape::Square => u.abs() <= 0.85 && v.abs() <= 0.85,
        Shape::Diamond => u.abs() + v.abs() <= 1.0,
        Shape::Ellipse => u * u + (v / 0.6) * (v / 0.6) <= 1.0,
        Shape::Ring => {
            let d = u * u + v * v;
            (0.55 * 0.55..=1.0).contains(&d)
        }
        Shape::Cross => (u.abs() <= 0.3 && v.abs() <= 1.0) || (v.abs() <= 0.3 && u.abs() <= 1.0),
        Shape::Blob => {
            let theta = v.atan2(u);
            let rho = 0.8 + 0.13 * (3.0 * theta).cos() + 0.07 * (5.0 * theta + 1.0).cos();
            (u * u + v * v).sqrt() <= rho
        }
    }
}

/// Calls `visit(pixel_index, source_index)` (row-major pixel index) for every pixel covered by
/// each source active at the scene's time, source by source in order, so that a later call for
/// the same pixel means the later source is on top.
fn rasterize(scene: &SceneSpec, size: u32, mut visit: impl FnMut(usize, usize)) {
    let s = size as usize;
    for (i, source) in scene.sources.iter().enumerate() {
        if !source.active_at(scene.time_s) {
            continue;
        }
        let r = radius_px(source.class, source.gain_db, size);
        let cx = source.center.0 * size as f32;
        let cy = source.center.1 * size as f32;
        let span = |c: f32| {
            let lo = ((c - r - 1.0).floor().max(0.0) as usize).min(s);
            let hi = ((c + r + 1.0).ceil().max(0.0) as usize).min(s);
            lo..hi
        };
        let shape = source.class.shape();
        for y in span(cy) {
            let v = (y as f32 + 0.5 - cy) / r;
            for x in span(cx) {
                let u = (x as f32 + 0.5 - cx) / r;
                if inside(shape, u, v) {
                    visit(y * s + x, i);
                }
            }
        }
    }
}

fn validate_size(size: u32) -> Result<()> {
    if size == 0 || size > MAX_IMAGE_SIZE {
        return Err(SynthError::InvalidArgument(format!(
            "image size is {size} pixels; it must be in 1..={MAX_IMAGE_SIZE}"
        )));
    }
    Ok(())
}

/// Draws `scene` as a `size × size` picture: the background at the scene's time, then every
/// source active at that time (see [`crate::SourceSpec::active_at`]) as its class's shape in its
/// class's colour, radius [`radius_px`], later sources on top.
///
/// # Errors
/// [`SynthError::InvalidArgument`] if `size` is 0 or above [`MAX_IMAGE_SIZE`], or the scene is
/// invalid (see [`SceneSpec::validate`]).
pub fn render_scene(scene: &SceneSpec, size: u32) -> Result<RgbImage> {
    validate_size(size)?;
    scene.validate()?;
    Ok(paint(scene, size))
}

/// [`render_scene`] without validation.
pub(crate) fn paint(scene: &SceneSpec, size: u32) -> RgbImage {
    let mut img = RgbImage::new(size, size);
    background::paint(scene.background, scene.seed, scene.time_s, &mut img);
    let s = size as usize;
    rasterize(scene, size, |p, i| {
        let (x, y) = ((p % s) as u32, (p / s) as u32);
        img.put_pixel(x, y, Rgb(scene.sources[i].class.color()));
    });
    img
}

/// The objects visible in [`render_scene`]`(scene, size)`: for each active source with at least
/// one visible pixel (after occlusion by later sources), its tight bounding box and pixel area.
///
/// # Errors
/// As [`render_scene`].
pub fn scene_objects(scene: &SceneSpec, size: u32) -> Result<Vec<ObjectTruth>> {
    validate_size(size)?;
    scene.validate()?;
    Ok(objects(scene, size))
}

/// [`scene_objects`] without validation.
pub(crate) fn objects(scene: &SceneSpec, size: u32) -> Vec<ObjectTruth> {
    let s = size as usize;
    let mut labels = vec![u32::MAX; s * s];
    rasterize(scene, size, |p, i| labels[p] = i as u32);
    let mut found: Vec<Option<ObjectTruth>> = vec![None; scene.sources.len()];
    for (p, label) in labels.into_iter().enumerate() {
        if label == u32::MAX {
            continue;
        }
        let i = label as usize;
        let (x, y) = ((p % s) as u32, (p / s) as u32);
        let source = &scene.sources[i];
        let object = found[i].get_or_insert(ObjectTruth {
            source: i,
            class: source.class,
            gain_db: source.gain_db,
            bbox: [x, y, x + 1, y + 1],
            area_px: 0,
        });
        object.area_px += 1;
        object.bbox = [
            object.bbox[0].min(x),
            object.bbox[1].min(y),
            object.bbox[2].max(x + 1),
            object.bbox[3].max(y + 1),
        ];
    }
    found.into_iter().flatten().collect()
}

/// Number of pixels of `img` within [`COLOR_TOLERANCE`] (Euclidean RGB distance) of `class`'s
/// colour: the class's visible area in pixels.
pub fn measure_class_area(img: &RgbImage, class: SoundClass) -> usize {
    measure_class_area_within(img, class, COLOR_TOLERANCE)
}

/// [`measure_class_area`] with an explicit `tolerance` (Euclidean RGB distance, 0–441).
pub fn measure_class_area_within(img: &RgbImage, class: SoundClass, tolerance: f32) -> usize {
    let target = class.color().map(f32::from);
    let limit = tolerance * tolerance;
    img.pixels()
        .filter(|p| {
            let d: f32 =
                p.0.iter()
                    .zip(target)
                    .map(|(&a, b)| (f32::from(a) - b).powi(2))
                    .sum();
            d <= limit
        })
        .count()
}
