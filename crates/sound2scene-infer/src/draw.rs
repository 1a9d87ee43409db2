//! Drawing many pictures in batches of bounded size: the memory stays flat in the number of
//! pictures, of candidates per picture and of feature rows.
//!
//! The noise layout is the one `generate` has always used: every feature row sees the same
//! stream of noise rows from the seed, and picture `c` of a row is drawn from stream rows
//! `c·k .. (c+1)·k` (its `k` best-of-k candidates; `k = 1` draws once). The stream is drawn a
//! batch at a time ([`NoiseStream`]), so each picture gets the same noise, and so the same
//! pixels, whatever the batch size.

use burn::tensor::Tensor;
use image::RgbImage;
use sound2scene_models::image_encoder::ImageEncoder;

use crate::error::{InferError, Result};
use crate::limits::{check_batch_size, check_count, check_rerank, default_batch_size};
use crate::pipeline::{NoiseStream, SoundToScene, l2_normalize};
use crate::visual::values_to_image;

/// Where the generator's noise comes from.
#[derive(Debug, Clone)]
pub enum Noise {
    /// Drawn from N(0, z_var²) with ChaCha8 seeded by `seed` (the official `--z_var` is the
    /// standard deviation, 1.0 by default), the same stream for every feature row.
    Seeded {
        /// Seed of the stream.
        seed: u64,
        /// Standard deviation of the noise.
        z_var: f32,
    },
    /// Given rows `[rows · count · rerank, dim_z]`: feature row `r` uses rows
    /// `r · count · rerank ..`, picture `c` of it the `rerank` rows from `c · rerank` on.
    Given(Box<Tensor<2>>),
}

/// How many pictures to draw, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrawSettings {
    /// Pictures per feature row, 1 ..= [`MAX_COUNT`](crate::limits::MAX_COUNT).
    pub count: usize,
    /// Candidates per picture: above 1, the one f_V re-encodes closest to the feature is kept
    /// (best of k, not in the official code); 1 ..= [`MAX_RERANK`](crate::limits::MAX_RERANK).
    pub rerank: usize,
    /// Generator rows per forward pass (pictures × candidates); `None` picks
    /// [`default_batch_size`] for G's resolution. Changes memory and speed, not the pictures.
    pub batch_size: Option<usize>,
    /// Also return G's raw output ([`Drawn::raw`]).
    pub keep_raw: bool,
}

impl Default for DrawSettings {
    fn default() -> Self {
        Self {
            count: 1,
            rerank: 1,
            batch_size: None,
            keep_raw: false,
        }
    }
}

/// What [`SoundToScene::draw`] returns.
#[derive(Debug, Clone)]
pub struct Drawn {
    /// `rows × count` pictures, row-major (the pictures of feature row 0 first).
    pub images: Vec<RgbImage>,
    /// G's output for the kept pictures, `[rows · count, 3, H, W]` values in `[-1, 1]`
    /// (row-major), when [`DrawSettings::keep_raw`] is set.
    pub raw: Option<Vec<f32>>,
    /// The shape of [`raw`](Self::raw): `[rows · count, 3, H, W]`.
    pub shape: [usize; 4],
}

/// The best candidate of the picture being drawn: its similarity and its values.
struct Best {
    similarity: f32,
    values: Vec<f32>,
}

impl SoundToScene {
    /// Draw `settings.count` pictures for each feature row of `features` (`[rows, dim]`, each
    /// L2-normalized first, as the official code does), at most `batch_size` generator rows
    /// at a time. `progress` is called after each batch with the generator rows drawn so far
    /// and the total (`rows · count · rerank`).
    ///
    /// The pictures are those of one large draw with the same noise (see the
    /// [module docs](crate::draw)); the batch size changes only memory and speed.
    ///
    /// # Errors
    /// [`InferError::OutOfRange`] for a count, rerank or batch size out of range;
    /// [`InferError::Invalid`] for no feature row or given noise of the wrong shape;
    /// [`InferError::NoImageEncoder`] for `rerank` above 1 without f_V; the networks' errors.
    pub fn draw(
        &self,
        features: Tensor<2>,
        noise: &Noise,
        settings: &DrawSettings,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<Drawn> {
        let [rows, _] = features.dims();
        if rows == 0 {
            return Err(InferError::Invalid("no feature to draw from".into()));
        }
        let count = check_count("count", settings.count)?;
        let k = check_rerank("rerank", settings.rerank)?;
        let batch = match settings.batch_size {
            Some(rows) => check_batch_size("batch size", rows)?,
            None => default_batch_size(self.generator_config().resolution),
        };
        let encoder = if k > 1 {
            Some(self.image_encoder().ok_or(InferError::NoImageEncoder)?)
        } else {
            None
        };
        let per_row = count * k;
        let dim_z = self.dim_z();
        if let Noise::Given(z) = noise
            && z.dims() != [rows * per_row, dim_z]
        {
            return Err(InferError::Invalid(format!(
                "noise must be [{}, {dim_z}] ({rows} feature(s) x {count} image(s) x {k} \
                 candidate(s)), found {:?}",
                rows * per_row,
                z.dims()
            )));
        }
        let features = l2_normalize(features);
        let total = rows * per_row;
        let mut drawn = Drawn {
            images: Vec::with_capacity(rows * count),
            raw: settings.keep_raw.then(Vec::new),
            shape: [rows * count, 0, 0, 0],
        };
        let mut done = 0;
        for row in 0..rows {
            let feature = features.clone().narrow(0, row, 1); // [1, dim]
            let mut stream = match noise {
                Noise::Seeded { seed, z_var } => Some(NoiseStream::new(dim_z, *seed, *z_var)?),
                Noise::Given(_) => None,
            };
            let mut best: Option<Best> = None;
            let mut at = 0;
            while at < per_row {
                let n = batch.min(per_row - at);
                let z = match (&mut stream, noise) {
                    (Some(stream), _) => stream.next_rows(n, self.device()),
                    (None, Noise::Given(z)) => z.clone().narrow(0, row * per_row + at, n),
                    (None, Noise::Seeded { .. }) => unreachable!("a seeded draw has a stream"),
                };
                let repeated = feature.clone().repeat_dim(0, n); // [n, dim]
                let pictures = self.generator_ref().try_forward(z, repeated.clone())?; // [n, 3, H, W]
                let similarity = match encoder {
                    Some(encoder) => Some(similarities(encoder, pictures.clone(), repeated)?),
                    None => None,
                };
                let [_, channels, height, width] = pictures.dims();
                drawn.shape = [rows * count, channels, height, width];
                let size = channels * height * width;
                let values = host(pictures)?;
                for (i, picture) in values.chunks_exact(size).enumerate() {
                    let candidate = at + i;
                    let Some(similarity) = &similarity else {
                        emit(&mut drawn, picture.to_vec());
                        continue;
                    };
                    let s = similarity[i];
                    let first = candidate % k == 0;
                    if first || best.as_ref().is_some_and(|b| s > b.similarity) {
                        best = Some(Best {
                            similarity: s,
                            values: picture.to_vec(),
                        });
                    }
                    if candidate % k == k - 1
                        && let Some(kept) = best.take()
                    {
                        emit(&mut drawn, kept.values);
                    }
                }
                at += n;
                done += n;
                progress(done, total);
            }
        }
        Ok(drawn)
    }
}

/// Add one kept picture (`[3, H, W]` values) to `drawn`.
fn emit(drawn: &mut Drawn, values: Vec<f32>) {
    let [_, channels, height, width] = drawn.shape;
    drawn
        .images
        .push(values_to_image(&values, [channels, height, width]));
    if let Some(raw) = &mut drawn.raw {
        raw.extend_from_slice(&values);
    }
}

/// Cosine similarity of f_V's features of `pictures` (`[n, 3, H, W]`) with the unit-norm
/// `features` (`[n, dim]`): `[n]` on the host.
fn similarities(
    encoder: &ImageEncoder,
    pictures: Tensor<4>,
    features: Tensor<2>,
) -> Result<Vec<f32>> {
    let [n, dim] = features.dims();
    let encoded = encoder.try_forward_generated(pictures)?; // [n, dim']
    let [_, width] = encoded.dims();
    if width != dim {
        return Err(sound2scene_models::ModelError::InputShape {
            expected: format!("[n, {width}] features, f_V's width, to compare its pictures with"),
            found: vec![n, dim],
        }
        .into());
    }
    host((l2_normalize(encoded) * features).sum_dim(1).reshape([n]))
}

/// The values of a tensor on the host.
pub(crate) fn host<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f32>> {
    tensor
        .into_data()
        .try_into_vec_as::<f32>()
        .map_err(|e| InferError::Invalid(format!("cannot read a tensor back: {e:?}")))
}
