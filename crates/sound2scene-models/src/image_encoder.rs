//! f_V, the image encoder: the SwAV ResNet-50 trunk with global average pooling, and the
//! official image preprocessing.
//!
//! Reference: SwAV `src/resnet50.py` (a torchvision `Bottleneck` ResNet-50 whose
//! `forward_backbone` ends with `avgpool` and `flatten`; its extra zero padding before a
//! padding-2 `conv1` equals torchvision's padding-3 `conv1`), loaded from
//! `swav_800ep_pretrain.pth.tar`, a legacy `torch.save` of the `DataParallel` state dict:
//! keys `module.conv1.weight`, …, `module.layer4.2.bn3.running_var`, plus
//! `module.projection_head.*` and `module.prototypes.weight`, which f_V does not use.
//!
//! Preprocessing follows Sound2Scene `a2s_dataloader.py` (`preprocess_img_feature`) and
//! `inference/generate_images.py`: resize to 256×256 (torchvision `Resize` on a PIL image,
//! i.e. PIL's antialiased bilinear filter, reproduced to the bit by
//! [`pil_resize`](crate::pil_resize)), scale to [0, 1], normalize with the ImageNet mean and
//! standard deviation, then `F.interpolate(…, 224, mode="bicubic", align_corners=True)`.
//! Checked per pixel against the official transform's output; what differs is the JPEG
//! decoder (PIL's libjpeg-turbo, here the `image` crate's), which moves a few pixels by a
//! few gray levels.

use std::path::Path;

use burn::config::Config;
use burn::module::Module;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Tensor, TensorData};
use image::RgbImage;
use image::imageops::FilterType;

use crate::error::ModelError;
use crate::resnet::{ResNet, ResNetConfig};
use crate::weights::{LoadOptions, StateDict, WeightLoader};

/// Key prefixes under which a SwAV ResNet state dict is recognised, tried in this order: as
/// released (`nn.DataParallel`), bare, and nested under a top-level checkpoint key.
pub const IMAGE_KEY_PREFIXES: [&str; 6] = [
    "module.",
    "",
    "state_dict.module.",
    "state_dict.",
    "model_state_dict.module.",
    "model_state_dict.",
];

/// Sub-modules of the SwAV network that f_V leaves out (below the key prefix).
pub const SWAV_HEAD_PREFIXES: [&str; 2] = ["projection_head.", "prototypes."];

/// ImageNet channel means (R, G, B) used to normalize the encoder's input.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet channel standard deviations (R, G, B).
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];
/// Side of the first (PIL bilinear) resize.
pub const RESIZE_SIDE: u32 = 256;
/// Side of the encoder's input after the bicubic resize.
pub const INPUT_SIDE: usize = 224;
/// The Keys cubic-convolution coefficient PyTorch's bicubic interpolation uses.
pub const BICUBIC_A: f32 = -0.75;

/// Configuration of the [`ImageEncoder`].
#[derive(Config, Debug)]
pub struct ImageEncoderConfig {
    /// The trunk: ResNet-50 on RGB in the paper.
    #[config(default = "ResNetConfig::resnet50(3)")]
    pub resnet: ResNetConfig,
    /// Side in pixels of the square input the encoder was trained on. `None` (the paper's
    /// released encoder): the official preprocessing, 256×256 bilinear then 224×224 bicubic.
    /// `Some(side)`: one antialiased bilinear resize to `side`×`side` (small encoders trained on
    /// small images, e.g. the bundled model's).
    pub input_side: Option<usize>,
}

impl ImageEncoderConfig {
    /// A randomly initialized encoder (see [`ResNetConfig::init`]).
    pub fn init(&self, device: &Device) -> ImageEncoder {
        ImageEncoder {
            resnet: self.resnet.init(device),
            input_side: self.input_side,
        }
    }
}

/// f_V: ResNet trunk → global average pool, `[batch, 3, 224, 224] -> [batch, 2048]`.
#[derive(Module, Debug)]
pub struct ImageEncoder {
    /// The ResNet trunk (PyTorch keys at the top level of the SwAV model).
    pub resnet: ResNet,
    /// [`ImageEncoderConfig::input_side`]: how [`ImageEncoder::preprocess`] sizes images.
    #[module(skip)]
    pub input_side: Option<usize>,
}

impl ImageEncoder {
    /// Load SwAV's `swav_800ep_pretrain.pth.tar` or a checkpoint of the same layout.
    ///
    /// The key prefix is detected among [`IMAGE_KEY_PREFIXES`], the projection head and
    /// prototypes are dropped, and the block kind, block counts and width are read from the
    /// keys (the release gives ResNet-50, `[3, 4, 6, 3]`). When no prefix fits, the file is
    /// checked against ResNet-50 under `module.`, which lists what does not fit.
    ///
    /// # Errors
    /// [`ModelError::Io`] for a missing or unreadable file, [`ModelError::Checkpoint`] for a
    /// file that is not a PyTorch checkpoint, [`ModelError::NonFinite`] for NaN or infinite
    /// weights, [`ModelError::Mismatch`] listing every key that does not fit.
    pub fn from_pytorch(
        path: impl AsRef<Path>,
        options: &LoadOptions,
        device: &Device,
    ) -> crate::Result<Self> {
        Self::from_pytorch_with_config(path, options, device).map(|(encoder, _)| encoder)
    }

    /// [`from_pytorch`](Self::from_pytorch), also returning the configuration read from the
    /// checkpoint.
    ///
    /// # Errors
    /// As [`from_pytorch`](Self::from_pytorch).
    pub fn from_pytorch_with_config(
        path: impl AsRef<Path>,
        options: &LoadOptions,
        device: &Device,
    ) -> crate::Result<(Self, ImageEncoderConfig)> {
        let dict = StateDict::from_pytorch(path, None, options)?;
        let Some(prefix) = IMAGE_KEY_PREFIXES
            .into_iter()
            .find(|p| dict.get(&format!("{p}conv1.weight")).is_some())
        else {
            let config = ImageEncoderConfig::new();
            let encoder = Self::from_state_dict(&dict, IMAGE_KEY_PREFIXES[0], &config, device)?;
            return Ok((encoder, config));
        };
        let dict = dict.without(|k| match k.strip_prefix(prefix) {
            Some(rest) => SWAV_HEAD_PREFIXES.iter().any(|h| rest.starts_with(h)),
            None => true,
        });
        let mut config = ImageEncoderConfig::new();
        if let Some(resnet) = ResNetConfig::from_state_dict(&dict, prefix, 3) {
            config.resnet = resnet;
        }
        let encoder = Self::from_state_dict(&dict, prefix, &config, device)?;
        Ok((encoder, config))
    }

    /// Build the encoder of `config` from the tensors under `prefix` (e.g. `"module."`),
    /// requiring every tensor of `dict` to be used.
    ///
    /// # Errors
    /// [`ModelError::Mismatch`] listing every key that does not fit.
    pub fn from_state_dict(
        dict: &StateDict,
        prefix: &str,
        config: &ImageEncoderConfig,
        device: &Device,
    ) -> crate::Result<Self> {
        let mut loader = WeightLoader::new(dict, device, "image encoder (SwAV ResNet)");
        let encoder = Self::load(&mut loader, prefix, config);
        loader.finish()?;
        Ok(encoder)
    }

    /// Build the encoder from the tensors under `prefix`; problems are recorded in `loader`.
    pub fn load(loader: &mut WeightLoader<'_>, prefix: &str, config: &ImageEncoderConfig) -> Self {
        Self {
            resnet: ResNet::load(loader, prefix, &config.resnet),
            input_side: config.input_side,
        }
    }

    /// Side of the square input this encoder takes: 224, or its configured `input_side`.
    pub fn input_side(&self) -> usize {
        self.input_side.unwrap_or(INPUT_SIDE)
    }

    /// This encoder's preprocessing of one image: [`preprocess_image`] for the released
    /// encoder, [`preprocess_image_at`] for one with an `input_side`.
    ///
    /// # Shapes
    /// - output: `3 · side · side` values, channel-major, `side` = [`Self::input_side`].
    ///
    /// # Errors
    /// [`ModelError::InputShape`] for an image without pixels.
    pub fn preprocess_image(&self, image: &RgbImage) -> crate::Result<Vec<f32>> {
        match self.input_side {
            None => preprocess_image(image),
            Some(side) => preprocess_image_at(image, side),
        }
    }

    /// This encoder's preprocessing of a batch of images, `[n, 3, side, side]` on `device`.
    ///
    /// # Errors
    /// [`ModelError::InputShape`] for an empty batch or an image without pixels.
    pub fn preprocess(&self, images: &[RgbImage], device: &Device) -> crate::Result<Tensor<4>> {
        let side = self.input_side();
        batch_of(images, side, device, |image| self.preprocess_image(image))
    }

    /// Encode normalized images (see [`preprocess`]).
    ///
    /// # Shapes
    /// - `images`: `[batch, 3, 224, 224]` (any height and width are accepted)
    /// - output: z^V, `[batch, 2048]`
    ///
    /// # Panics
    /// If the shapes do not fit; [`try_forward`](Self::try_forward) returns an error instead.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        match self.try_forward(images) {
            Ok(features) => features,
            Err(e) => panic!("{e}"),
        }
    }

    /// [`forward`](Self::forward), with mis-shaped inputs reported as
    /// [`ModelError::InputShape`].
    ///
    /// # Errors
    /// [`ModelError::InputShape`] unless `images` is `[batch, 3, height, width]` with no empty
    /// axis.
    pub fn try_forward(&self, images: Tensor<4>) -> crate::Result<Tensor<2>> {
        let dims = images.dims();
        let [_, in_channels, _, _] = self.resnet.conv1.weight.dims();
        if dims[1] != in_channels || dims.contains(&0) {
            return Err(ModelError::InputShape {
                expected: format!("[batch, {in_channels}, height, width] with no empty axis"),
                found: dims.to_vec(),
            });
        }
        // [batch, 2048]
        Ok(self.resnet.forward_pooled(images))
    }

    /// Encode G's pictures, `[batch, 3, h, w]` in `[-1, 1]`, through [`generated_input`]:
    /// differentiable, so a gradient of z^V reaches the pictures.
    ///
    /// # Shapes
    /// - `images`: `[batch, 3, h, w]` in `[-1, 1]`
    /// - output: z^V, `[batch, dim]`
    ///
    /// # Panics
    /// If the shapes do not fit; [`try_forward_generated`](Self::try_forward_generated)
    /// returns an error instead.
    pub fn forward_generated(&self, images: Tensor<4>) -> Tensor<2> {
        match self.try_forward_generated(images) {
            Ok(features) => features,
            Err(e) => panic!("{e}"),
        }
    }

    /// [`forward_generated`](Self::forward_generated), with mis-shaped inputs reported as
    /// [`ModelError::InputShape`].
    ///
    /// # Errors
    /// [`ModelError::InputShape`] unless `images` is `[batch, 3, h, w]` with no empty axis.
    pub fn try_forward_generated(&self, images: Tensor<4>) -> crate::Result<Tensor<2>> {
        self.try_forward(generated_input(images, self.input_side()))
    }
}

/// f_V's input for G's pictures, as tensor operations so that gradients pass: `[-1, 1]` to
/// `[0, 1]`, ImageNet normalization, then a bilinear resize to `side` when the pictures have
/// another size (for the released encoder this one resize stands in for the PIL-then-bicubic
/// pair of [`preprocess_image`]; at equal sides it equals [`preprocess_image_at`] on the
/// pictures' bytes).
///
/// # Shapes
/// - `images`: `[batch, 3, h, w]` in `[-1, 1]`
/// - output: `[batch, 3, side, side]`
pub fn generated_input(images: Tensor<4>, side: usize) -> Tensor<4> {
    let device = images.device();
    let [_, _, h, w] = images.dims();
    let channel =
        |v: [f32; 3]| Tensor::<4>::from_data(TensorData::new(v.to_vec(), [1, 3, 1, 1]), &device);
    let unit = (images + 1.0) / 2.0;
    let normalized = (unit - channel(IMAGENET_MEAN)) / channel(IMAGENET_STD);
    if [h, w] == [side, side] {
        normalized
    } else {
        let options =
            InterpolateOptions::new(InterpolateMode::Bilinear).with_output_size([side, side]);
        interpolate(normalized, options)
    }
}

/// The official preprocessing of one image for f_V: PIL's bilinear resize to 256×256 (as
/// [`pil_resize::resize_bilinear`](crate::pil_resize::resize_bilinear), bit for bit), [0, 1],
/// ImageNet normalization, bicubic (`align_corners=True`) resize to 224×224.
///
/// # Shapes
/// - output: `3 · 224 · 224` values, channel-major (`[3, 224, 224]`, R, G, B).
///
/// # Errors
/// [`ModelError::InputShape`] for an image with no pixels.
pub fn preprocess_image(image: &RgbImage) -> crate::Result<Vec<f32>> {
    if image.width() == 0 || image.height() == 0 {
        return Err(ModelError::InputShape {
            expected: "an image with at least one pixel".into(),
            found: vec![image.height() as usize, image.width() as usize, 3],
        });
    }
    let side = RESIZE_SIDE as usize;
    // [256, 256, 3] u8, PIL's `Image.resize(BILINEAR)` with its 8-bit intermediate.
    let resized = crate::pil_resize::resize_bilinear(image, RESIZE_SIDE, RESIZE_SIDE);
    // [3, 256, 256], normalized.
    let planes = normalized_planes(&resized, side);
    // [3, 224, 224]
    Ok(resize_bicubic_align_corners(
        &planes,
        3,
        [side, side],
        [INPUT_SIDE, INPUT_SIDE],
    ))
}

/// [`preprocess_image`] for a batch, as a tensor.
///
/// # Shapes
/// - output: `[images.len(), 3, 224, 224]`
///
/// # Errors
/// [`ModelError::InputShape`] for an empty batch or an image with no pixels.
pub fn preprocess(images: &[RgbImage], device: &Device) -> crate::Result<Tensor<4>> {
    batch_of(images, INPUT_SIDE, device, preprocess_image)
}

/// Preprocessing for an encoder trained on `side`×`side` images: antialiased bilinear resize
/// to `side`×`side`, [0, 1], ImageNet normalization.
///
/// # Shapes
/// - output: `3 · side · side` values, channel-major (`[3, side, side]`, R, G, B).
///
/// # Errors
/// [`ModelError::InputShape`] for an image without pixels or a zero `side`.
pub fn preprocess_image_at(image: &RgbImage, side: usize) -> crate::Result<Vec<f32>> {
    if image.width() == 0 || image.height() == 0 || side == 0 {
        return Err(ModelError::InputShape {
            expected: "an image with at least one pixel and a positive input side".into(),
            found: vec![image.height() as usize, image.width() as usize, side],
        });
    }
    let resized = image::imageops::resize(image, side as u32, side as u32, FilterType::Triangle);
    Ok(normalized_planes(&resized, side))
}

/// `[3, side, side]` ImageNet-normalized planes of a `side`×`side` image.
fn normalized_planes(image: &RgbImage, side: usize) -> Vec<f32> {
    let mut planes = vec![0.0f32; 3 * side * side];
    for (i, pixel) in image.pixels().enumerate() {
        for c in 0..3 {
            let v = f32::from(pixel.0[c]) / 255.0;
            planes[c * side * side + i] = (v - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
        }
    }
    planes
}

/// `[n, 3, side, side]` from `one`, applied to each image.
fn batch_of(
    images: &[RgbImage],
    side: usize,
    device: &Device,
    one: impl Fn(&RgbImage) -> crate::Result<Vec<f32>>,
) -> crate::Result<Tensor<4>> {
    if images.is_empty() {
        return Err(ModelError::InputShape {
            expected: "at least one image".into(),
            found: vec![0],
        });
    }
    let mut values = Vec::with_capacity(images.len() * 3 * side * side);
    for image in images {
        values.extend(one(image)?);
    }
    let shape = [images.len(), 3, side, side];
    Ok(Tensor::from_data(TensorData::new(values, shape), device))
}

/// Bicubic resize with `align_corners=True`, exactly as PyTorch's
/// `F.interpolate(x, size, mode="bicubic", align_corners=True)`: Keys cubic convolution with
/// A = −0.75 ([`BICUBIC_A`]), border samples repeated, output pixel `i` sampled at input
/// coordinate `i · (in − 1) / (out − 1)` (0 when `out = 1`), no clamping of the result.
///
/// # Shapes
/// - `input`: `channels · in_size[0] · in_size[1]` values, `[channels, height, width]`
/// - output: `channels · out_size[0] · out_size[1]` values, `[channels, out_h, out_w]`
///
/// An input with an empty axis gives zeros.
pub fn resize_bicubic_align_corners(
    input: &[f32],
    channels: usize,
    in_size: [usize; 2],
    out_size: [usize; 2],
) -> Vec<f32> {
    let [in_h, in_w] = in_size;
    let [out_h, out_w] = out_size;
    if in_h == 0 || in_w == 0 || input.len() < channels * in_h * in_w {
        return vec![0.0; channels * out_h * out_w];
    }
    let rows = cubic_taps(in_h, out_h);
    let cols = cubic_taps(in_w, out_w);
    let mut output = Vec::with_capacity(channels * out_h * out_w);
    // Horizontal pass then vertical pass; each output is Σ_ky Σ_kx w_y w_x x[y_k, x_k].
    let mut wide = vec![0.0f32; in_h * out_w];
    for plane in input.chunks_exact(in_h * in_w).take(channels) {
        for (y, row) in plane.chunks_exact(in_w).enumerate() {
            for (x, (idx, w)) in cols.iter().enumerate() {
                wide[y * out_w + x] = (0..4).map(|k| w[k] * row[idx[k]]).sum();
            }
        }
        for (idx, w) in &rows {
            for x in 0..out_w {
                output.push((0..4).map(|k| w[k] * wide[idx[k] * out_w + x]).sum());
            }
        }
    }
    output
}

/// For each output position along an axis: the four clamped input indices and their Keys
/// weights (PyTorch `upsample_bicubic2d`, `align_corners=True`).
fn cubic_taps(in_len: usize, out_len: usize) -> Vec<([usize; 4], [f32; 4])> {
    let scale = if out_len > 1 {
        (in_len - 1) as f32 / (out_len - 1) as f32
    } else {
        0.0
    };
    let last = in_len as isize - 1;
    (0..out_len)
        .map(|i| {
            let real = scale * i as f32;
            let base = real.floor();
            let t = real - base;
            let base = base as isize;
            let idx = [-1, 0, 1, 2].map(|o: isize| (base + o).clamp(0, last) as usize);
            (idx, cubic_weights(t))
        })
        .collect()
}

/// Keys cubic-convolution weights of the four taps at offsets −1, 0, 1, 2 for fraction `t`.
fn cubic_weights(t: f32) -> [f32; 4] {
    let a = BICUBIC_A;
    // |x| ≤ 1: (a + 2)|x|³ − (a + 3)|x|² + 1
    let near = |x: f32| ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    // 1 < |x| < 2: a|x|³ − 5a|x|² + 8a|x| − 4a
    let far = |x: f32| ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a;
    [far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)]
}
