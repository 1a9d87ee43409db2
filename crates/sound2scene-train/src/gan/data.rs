//! The IC-GAN training data: every instance's image (resized to the GAN's resolution) and its
//! L2-normalized feature h_i = z^V / ‖z^V‖ from the frozen image encoder f_V.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::data::{IMAGE_EXTENSIONS, Pair};
use crate::error::TrainError;
use crate::feature_cache::FeatureCache;
use crate::run::Fnv;
use image::RgbImage;
use image::imageops::FilterType;
use rayon::prelude::*;

/// The instances a GAN trains on: images `[n, 3, res, res]` (stored as bytes) and features
/// `[n, dim]` of unit L2 norm (IC-GAN conditions on normalized SwAV features, `dim` 2048).
#[derive(Debug, Clone)]
pub struct GanData {
    names: Vec<String>,
    /// `[n, dim]` row-major, unit rows.
    features: Vec<f32>,
    dim: usize,
    /// `[n, 3, res, res]` row-major, 0..=255.
    images: Vec<u8>,
    resolution: usize,
}

fn data_error(path: &Path, reason: impl Into<String>) -> TrainError {
    TrainError::data(path, reason)
}

impl GanData {
    /// Instances from memory: `names[i]`, its feature `features[i·dim..(i+1)·dim]` with
    /// `dim = features.len() / n` (any norm; rows are L2-normalized here) and its image,
    /// center-cropped to a square and resized to `resolution` ([`prepare_image`]).
    ///
    /// # Errors
    /// [`TrainError::Config`] when the counts disagree, there is no instance, the features do
    /// not split into `n` rows, or `resolution` is 0; [`TrainError::NonFinite`] for a NaN or
    /// infinite feature.
    pub fn in_memory(
        names: Vec<String>,
        features: Vec<f32>,
        images: &[RgbImage],
        resolution: usize,
    ) -> Result<Self, TrainError> {
        let n = names.len();
        let split = n > 0 && !features.is_empty() && features.len().is_multiple_of(n);
        if !split || images.len() != n || resolution == 0 {
            return Err(TrainError::config(format!(
                "GAN data needs n >= 1 names, n images and [n, dim] features at a positive \
                 resolution; got {n} names, {} images, {} feature values, resolution \
                 {resolution}",
                images.len(),
                features.len()
            )));
        }
        let pixels: Vec<Vec<u8>> = images
            .par_iter()
            .map(|image| prepare_image(image, resolution))
            .collect();
        let dim = features.len() / n;
        Self::from_parts(names, features, dim, pixels.concat(), resolution)
    }

    /// Instances from image files and their cached features (looked up by [`Pair::name`]),
    /// decoded in parallel.
    ///
    /// # Errors
    /// [`TrainError::Cache`] when an image has no cached feature; [`TrainError::Data`] naming an image that cannot be decoded; those of
    /// [`in_memory`](Self::in_memory).
    pub fn from_files(
        images: &[Pair],
        cache: &FeatureCache,
        resolution: usize,
    ) -> Result<Self, TrainError> {
        if resolution == 0 {
            return Err(TrainError::config("the resolution must be positive"));
        }
        let mut features = Vec::with_capacity(images.len() * cache.dim());
        for pair in images {
            let feature = cache.feature(&pair.name).ok_or_else(|| TrainError::Cache {
                path: cache.dir().to_path_buf(),
                reason: format!("no feature for {}; rebuild the cache", pair.image.display()),
                source: None,
            })?;
            features.extend_from_slice(feature);
        }
        let pixels: Result<Vec<Vec<u8>>, TrainError> = images
            .par_iter()
            .map(|pair| {
                let image = image::open(&pair.image)
                    .map_err(|e| {
                        TrainError::data_caused(
                            &pair.image,
                            format!("cannot decode the image: {e}"),
                            e,
                        )
                    })?
                    .to_rgb8();
                Ok(prepare_image(&image, resolution))
            })
            .collect();
        let names = images.iter().map(|p| p.name.clone()).collect();
        Self::from_parts(names, features, cache.dim(), pixels?.concat(), resolution)
    }

    fn from_parts(
        names: Vec<String>,
        mut features: Vec<f32>,
        dim: usize,
        images: Vec<u8>,
        resolution: usize,
    ) -> Result<Self, TrainError> {
        if names.is_empty() || dim == 0 {
            return Err(TrainError::config("GAN data needs at least one image"));
        }
        if let Some(i) = features.iter().position(|v| !v.is_finite()) {
            return Err(TrainError::NonFinite {
                context: "GAN data",
                name: "features",
                index: vec![i / dim, i % dim],
            });
        }
        for row in features.chunks_exact_mut(dim) {
            let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
            if norm > 0.0 {
                row.iter_mut().for_each(|v| *v /= norm);
            }
        }
        Ok(Self {
            names,
            features,
            dim,
            images,
            resolution,
        })
    }

    /// Number of instances.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there is no instance (never true for a constructed value).
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Side of the square images, in pixels.
    pub fn resolution(&self) -> usize {
        self.resolution
    }

    /// The instances' names, in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Width of each feature (2048 for SwAV's ResNet-50).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// All features, `[n, dim]` row-major, unit rows.
    pub fn features(&self) -> &[f32] {
        &self.features
    }

    /// The feature h_i of instance `i`, `[dim]`, unit norm (empty when out of range).
    pub fn feature(&self, i: usize) -> &[f32] {
        self.features
            .get(i * self.dim..(i + 1) * self.dim)
            .unwrap_or(&[])
    }

    /// The image of instance `i`, `[3, res, res]` bytes (empty when out of range).
    pub fn image(&self, i: usize) -> &[u8] {
        let size = 3 * self.resolution * self.resolution;
        self.images.get(i * size..(i + 1) * size).unwrap_or(&[])
    }

    /// Appends the image of instance `i` to `out` as `[3, res, res]` values in `[-1, 1]`
    /// (`2·v/255 − 1`), mirrored left-right when `flip`.
    pub(crate) fn push_image(&self, i: usize, flip: bool, out: &mut Vec<f32>) {
        let res = self.resolution;
        for row in self.image(i).chunks_exact(res) {
            let scaled = |v: &u8| f32::from(*v) * (2.0 / 255.0) - 1.0;
            if flip {
                out.extend(row.iter().rev().map(scaled));
            } else {
                out.extend(row.iter().map(scaled));
            }
        }
    }

    /// A 64-bit FNV-1a fingerprint (hex) of the names, features, images and resolution.
    pub fn fingerprint(&self) -> String {
        let mut hash = Fnv::new();
        hash.write(&(self.resolution as u64).to_le_bytes());
        for name in &self.names {
            hash.write(name.as_bytes());
            hash.write(&[0]);
        }
        for v in &self.features {
            hash.write(&v.to_le_bytes());
        }
        hash.write(&self.images);
        hash.hex()
    }
}

/// An image as the GAN sees it: the centered square of side `min(width, height)` (IC-GAN's
/// `CenterCropLongEdge`), resized to `resolution × resolution` with a triangle (bilinear,
/// antialiased) filter, as `[3, res, res]` bytes.
pub fn prepare_image(image: &RgbImage, resolution: usize) -> Vec<u8> {
    let (w, h) = image.dimensions();
    let side = w.min(h).max(1);
    let crop = image::imageops::crop_imm(image, (w - side) / 2, (h - side) / 2, side, side);
    let res = resolution as u32;
    let resized = image::imageops::resize(&crop.to_image(), res, res, FilterType::Triangle);
    let plane = resolution * resolution;
    let mut out = vec![0u8; 3 * plane];
    for (p, pixel) in resized.pixels().enumerate() {
        for c in 0..3 {
            out[c * plane + p] = pixel.0[c];
        }
    }
    out
}

/// The images of a GAN data set: `DIR/images/*` when `DIR` has an `images` folder (the official
/// layout), else the images directly in `DIR`; JPEG and PNG ([`IMAGE_EXTENSIONS`]), sorted by
/// file name. The name of an instance is its file stem; a later file with the same stem is
/// skipped. The pairs' `audio` paths are empty.
///
/// # Errors
/// [`TrainError::Data`] naming the directory when it is missing or holds no image;
/// [`TrainError::Io`] when it cannot be listed.
pub fn discover_images(dir: impl AsRef<Path>) -> Result<Vec<Pair>, TrainError> {
    let dir = dir.as_ref();
    if !dir.is_dir() {
        return Err(data_error(dir, "the image directory does not exist"));
    }
    let folder = if dir.join("images").is_dir() {
        dir.join("images")
    } else {
        dir.to_path_buf()
    };
    let entries = std::fs::read_dir(&folder).map_err(|source| TrainError::Io {
        path: folder.clone(),
        source,
    })?;
    let mut files: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|source| TrainError::Io {
                path: folder.clone(),
                source,
            })?
            .path();
        let is_image = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
        if is_image && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    let mut seen = HashSet::new();
    let pairs: Vec<Pair> = files
        .into_iter()
        .filter_map(|image| {
            let name = image.file_stem()?.to_string_lossy().into_owned();
            seen.insert(name.clone()).then(|| Pair {
                name,
                audio: PathBuf::new(),
                image,
            })
        })
        .collect();
    if pairs.is_empty() {
        return Err(data_error(
            &folder,
            "no image found (expected .jpg, .jpeg or .png files)",
        ));
    }
    Ok(pairs)
}
