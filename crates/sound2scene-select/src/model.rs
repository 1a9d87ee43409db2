//! The sound-source localization network: an audio encoder on a short spectrogram window, a
//! visual encoder that keeps a spatial map, their cosine-similarity localization map, the
//! audio-visual correlation C_av of a frame, and the self-supervised training loss.
//!
//! Reference: Chen et al., "Localizing Visual Sounds the Hard Way" (LVS, CVPR 2021), the
//! self-supervised member of the localization family Sound2Scene cites (Senocak et al., WACV
//! 2022): the localization map `S(p) = cos(a, v(p))` between the audio embedding `a` and every
//! position `p` of the visual map; soft positive and negative regions
//! `m_pos = σ((S − ε_pos)/τ_m)`, `m_neg = σ((S − ε_neg)/τ_m)`; the positive score is the mean of
//! `S` over `m_pos`, the hard negative the mean of `S` over the frame's own background
//! `1 − m_neg`, and the easy negatives the positive-region means of the other frames of the
//! batch. Sound2Scene (Sec. 2.3) then scores a frame by `C_av = q^V · q^A`, `q^A = a` and
//! `q^V = Σ_p m_pos(p) v(p) / Σ_p m_pos(p)`, the visual map pooled with the localization as
//! weights — which is exactly the positive score.
//!
//! Both encoders are narrow torchvision-layout ResNets
//! ([`sound2scene_models::resnet`]): the audio one on a one-channel `[257, W]` log spectrogram
//! with all four stages, pooled; the visual one with only `layer1` and `layer2`, so a 64×64
//! frame keeps an 8×8 map (stride 8).

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::{log_softmax, sigmoid};
use burn::tensor::{Bool, Device, Tensor};
use sound2scene_audio::{SpectrogramConfig, Tiling};
use sound2scene_models::normalize::l2_normalize;
use sound2scene_models::resnet::{BlockKind, ResNet, ResNetConfig};

/// Added to the weight sums of the pooled scores before dividing.
const NORM_EPS: f32 = 1e-6;
/// Logit given to a frame's own pair among the easy negatives (it is the positive).
const MASKED_LOGIT: f32 = -1e4;

/// Architecture and localization settings of a [`Localizer`]. Saved with its weights.
#[derive(Config, Debug, PartialEq)]
pub struct LocalizerConfig {
    /// Side in pixels of the square frames the visual encoder sees (frames are resized).
    #[config(default = 64)]
    pub image_size: usize,
    /// Stem width of the visual ResNet; its map has `2 · visual_width` channels.
    #[config(default = 16)]
    pub visual_width: usize,
    /// Basic blocks in each of the visual ResNet's two stages (ResNet-18 has 2).
    #[config(default = 2)]
    pub visual_blocks: usize,
    /// Stem width of the audio ResNet; its pooled output has `8 · audio_width` channels.
    #[config(default = 8)]
    pub audio_width: usize,
    /// Basic blocks in each of the audio ResNet's four stages.
    #[config(default = 1)]
    pub audio_blocks: usize,
    /// Width of the shared embedding space of `a` and `v(p)`.
    #[config(default = 32)]
    pub embed_dim: usize,
    /// Length in seconds of the audio window centred on each frame.
    #[config(default = 2.0)]
    pub window_seconds: f32,
    /// ε_pos: similarity above which a position is in the positive (sounding) region.
    #[config(default = 0.65)]
    pub eps_pos: f32,
    /// ε_neg: similarity below which a position is in the negative (background) region.
    #[config(default = 0.4)]
    pub eps_neg: f32,
    /// τ_m: temperature of the soft region masks.
    #[config(default = 0.03)]
    pub tau_mask: f32,
}

impl LocalizerConfig {
    /// The spectrogram front end of whole clips (the official one, 16 kHz, 512-sample FFT,
    /// hop 159) for a clip of `seconds`; windows are cut from it, so loudness is relative to
    /// the whole clip. A clip shorter than one window is repeated to fill it
    /// ([`Tiling::Fill`]), so that there is always at least one window of columns.
    pub fn spectrogram_config(&self, seconds: f32) -> SpectrogramConfig {
        SpectrogramConfig {
            seconds: seconds.max(self.window_seconds),
            tiling: Tiling::Fill,
            ..SpectrogramConfig::default()
        }
    }

    /// Spectrogram columns of one audio window: `round(window_seconds · 16000 / 159)`.
    pub fn window_columns(&self) -> usize {
        let spec = SpectrogramConfig::default();
        ((f64::from(self.window_seconds) * f64::from(spec.sample_rate) / spec.hop() as f64).round()
            as usize)
            .max(1)
    }

    /// Frequency bins of the audio input (257).
    pub fn bins(&self) -> usize {
        SpectrogramConfig::default().bins()
    }

    /// Side of the visual map: the frame side after the stride-8 trunk.
    pub fn map_side(&self) -> usize {
        // conv1 (stride 2), max pool (stride 2), layer2 (stride 2): n -> floor((n-1)/2)+1.
        (0..3).fold(self.image_size, |n, _| (n.max(1) - 1) / 2 + 1)
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// A message naming the bad setting.
    pub fn check(&self) -> Result<(), String> {
        if self.image_size < 16 {
            return Err(format!(
                "image_size must be at least 16, got {}",
                self.image_size
            ));
        }
        if self.visual_width == 0 || self.audio_width == 0 || self.embed_dim == 0 {
            return Err("visual_width, audio_width and embed_dim must be positive".into());
        }
        if self.visual_blocks == 0 || self.audio_blocks == 0 {
            return Err("visual_blocks and audio_blocks must be at least 1".into());
        }
        if !(self.window_seconds.is_finite() && (0.05..=10.0).contains(&self.window_seconds)) {
            return Err(format!(
                "window_seconds must be in [0.05, 10], got {}",
                self.window_seconds
            ));
        }
        if !(self.tau_mask.is_finite() && self.tau_mask > 0.0) {
            return Err(format!("tau_mask must be positive, got {}", self.tau_mask));
        }
        if !(-1.0..=1.0).contains(&self.eps_pos) || !(-1.0..=1.0).contains(&self.eps_neg) {
            return Err("eps_pos and eps_neg are cosine similarities, in [-1, 1]".into());
        }
        Ok(())
    }

    /// A randomly initialized localizer (the ResNets as torchvision initializes them for
    /// training from scratch, the projections as Burn's defaults).
    pub fn init(&self, device: &Device) -> Localizer {
        let visual = ResNetConfig::new(
            BlockKind::Basic,
            [self.visual_blocks, self.visual_blocks, 0, 0],
        )
        .with_in_channels(3)
        .with_base_width(self.visual_width)
        .init(device);
        let audio = ResNetConfig::new(BlockKind::Basic, [self.audio_blocks; 4])
            .with_in_channels(1)
            .with_base_width(self.audio_width)
            .init(device);
        Localizer {
            visual,
            visual_proj: Conv2dConfig::new([2 * self.visual_width, self.embed_dim], [1, 1])
                .init(device),
            audio,
            audio_proj: LinearConfig::new(8 * self.audio_width, self.embed_dim).init(device),
            eps_pos: self.eps_pos,
            eps_neg: self.eps_neg,
            tau_mask: self.tau_mask,
        }
    }
}

/// The localization network (see the [module docs](self)).
#[derive(Module, Debug)]
pub struct Localizer {
    /// Visual trunk: stem, `layer1`, `layer2` (stages 3 and 4 have no blocks).
    pub visual: ResNet,
    /// 1×1 convolution from the trunk's `2 · visual_width` channels to the embedding.
    pub visual_proj: Conv2d,
    /// Audio trunk: a four-stage ResNet on the one-channel spectrogram window.
    pub audio: ResNet,
    /// Linear map from the pooled `8 · audio_width` channels to the embedding.
    pub audio_proj: Linear,
    /// ε_pos of the configuration.
    pub eps_pos: f32,
    /// ε_neg of the configuration.
    pub eps_neg: f32,
    /// τ_m of the configuration.
    pub tau_mask: f32,
}

impl Localizer {
    /// The unit-norm audio embedding q^A of each spectrogram window.
    ///
    /// # Shapes
    /// - `spectrograms`: `[n, 1, 257, window_columns]`
    /// - output: `[n, embed_dim]`
    pub fn audio_embedding(&self, spectrograms: Tensor<4>) -> Tensor<2> {
        let pooled = self.audio.forward_pooled(spectrograms); // [n, 8 · audio_width]
        l2_normalize(self.audio_proj.forward(pooled), 1) // [n, D]
    }

    /// The visual map v, unit-norm at every position.
    ///
    /// # Shapes
    /// - `frames`: `[n, 3, image_size, image_size]`, normalized (see
    ///   [`crate::clip::normalize_pixel`])
    /// - output: `[n, embed_dim, h, w]` with `h = w = map_side`
    pub fn visual_map(&self, frames: Tensor<4>) -> Tensor<4> {
        let trunk = self.visual.forward_trunk(frames); // [n, 2 · visual_width, h, w]
        l2_normalize(self.visual_proj.forward(trunk), 1) // [n, D, h, w]
    }

    /// The localization map of every audio against every frame: `S[i, j, p] = a_i · v_j(p)`.
    ///
    /// # Shapes
    /// - `audio`: `[n_a, D]`, `visual`: `[n_v, D, h, w]`
    /// - output: `[n_a, n_v, h · w]`
    pub fn all_pairs(&self, audio: Tensor<2>, visual: Tensor<4>) -> Tensor<3> {
        let [n_v, d, h, w] = visual.dims();
        let n_a = audio.dims()[0];
        // [D, n_v · h · w]
        let v = visual
            .reshape([n_v, d, h * w])
            .swap_dims(0, 1)
            .reshape([d, n_v * h * w]);
        audio.matmul(v).reshape([n_a, n_v, h * w])
    }

    /// The localization map of each audio against its own frame: `S[i, p] = a_i · v_i(p)`.
    ///
    /// # Shapes
    /// - `audio`: `[n, D]`, `visual`: `[n, D, h, w]`
    /// - output: `[n, h · w]`
    pub fn paired(&self, audio: Tensor<2>, visual: Tensor<4>) -> Tensor<2> {
        let [n, d, h, w] = visual.dims();
        let v = visual.reshape([n, d, h * w]);
        (v * audio.reshape([n, d, 1]))
            .sum_dim(1)
            .reshape([n, h * w])
    }

    /// The soft positive region `σ((S − ε_pos)/τ_m)` of maps `S`.
    fn positive_mask<const D: usize>(&self, maps: Tensor<D>) -> Tensor<D> {
        sigmoid(maps.sub_scalar(self.eps_pos).div_scalar(self.tau_mask))
    }

    /// The mean of `S` over its soft positive region along the last axis: for a paired map
    /// this is `C_av = q^V · q^A` (the visual map pooled with the localization as weights,
    /// dotted with the audio embedding).
    ///
    /// # Shapes
    /// - `maps`: `[..., h · w]`
    /// - output: `[..., 1]`
    pub fn positive_score<const D: usize>(&self, maps: Tensor<D>) -> Tensor<D> {
        let weights = self.positive_mask(maps.clone());
        (weights.clone() * maps)
            .sum_dim(D - 1)
            .div(weights.sum_dim(D - 1).add_scalar(NORM_EPS))
    }

    /// The audio-visual correlation C_av of each (audio window, frame) pair.
    ///
    /// # Shapes
    /// - `paired_maps`: `[n, h · w]` (from [`Localizer::paired`])
    /// - output: `[n]`
    pub fn correlation(&self, paired_maps: Tensor<2>) -> Tensor<1> {
        let n = paired_maps.dims()[0];
        self.positive_score(paired_maps).reshape([n])
    }

    /// The LVS contrastive loss (nats) of a batch of true (audio window, frame) pairs: each
    /// audio's own frame scored over its positive region against the frame's background
    /// (hard negative) and the other frames of the batch (easy negatives), at temperature
    /// `tau`.
    ///
    /// # Shapes
    /// - `audio`: `[n, D]`, `visual`: `[n, D, h, w]`, `n ≥ 2`
    /// - output: `[1]`
    pub fn lvs_loss(&self, audio: Tensor<2>, visual: Tensor<4>, tau: f32) -> Tensor<1> {
        let n = audio.dims()[0];
        let device = audio.device();
        let own = self.paired(audio.clone(), visual.clone()); // [n, P]
        let positive = self.positive_score(own.clone()); // [n, 1]
        let background = sigmoid(
            own.clone()
                .sub_scalar(self.eps_neg)
                .div_scalar(self.tau_mask),
        )
        .neg()
        .add_scalar(1.0); // [n, P]
        let hard = (background.clone() * own)
            .sum_dim(1)
            .div(background.sum_dim(1).add_scalar(NORM_EPS)); // [n, 1]
        let all = self.all_pairs(audio, visual); // [n, n, P]
        let easy = self.positive_score(all).reshape([n, n]); // [n, n]
        let own_pair = Tensor::<2, Bool>::diag_mask([n, n], 0, &device).bool_not();
        let easy = easy.mask_fill(own_pair, MASKED_LOGIT);
        // [n, n + 2]: the positive first.
        let logits = Tensor::cat(vec![positive, easy, hard], 1).div_scalar(tau);
        log_softmax(logits, 1).slice([0..n, 0..1]).neg().mean()
    }
}
