//! The training loop itself: the steps, the EMA update, sample grids and checkpoints.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor, TensorData};
use image::{Rgb, RgbImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sound2scene_models::biggan::{Discriminator, DiscriminatorConfig, Generator, GeneratorConfig};
use sound2scene_models::burnpack::NetworkKind;
use sound2scene_models::image_encoder::ImageEncoder;

use super::augment;
use super::{
    D_OPTIMIZER_FILE, DISCRIMINATOR_FILE, DStepBatch, G_OPTIMIZER_FILE, GENERATOR_EMA_FILE,
    GENERATOR_FILE, GanBatch, GanConfig, GanData, GanHooks, GanMetricsRecord, GanSession, GanState,
    GanStepReport, GanSummary, KnnIndex, SAMPLES_DIR, STATE_FORMAT, ema_update,
    feature_consistency, hinge_d_loss, hinge_g_loss, init_networks, knn_cosine,
};
use crate::control::{Control, Outcome};
use crate::error::TrainError;
use crate::finite::all_finite;
use crate::init::splitmix;
use crate::progress::{ProgressMode, StepBar, unix_time};
use crate::run::{RunDir, load_network, read_optimizer, read_state, save_network, write_optimizer};

/// Salt of the sample grids' noise stream (distinct from every step's).
const SAMPLE_SALT: u64 = 0x5a3e_9d1c_0b7f_4e21;

/// A standard normal draw (Box–Muller; `u1` in (0, 1]).
fn gaussian(rng: &mut ChaCha8Rng) -> f32 {
    let u1: f32 = 1.0 - rng.random::<f32>();
    let u2: f32 = rng.random::<f32>();
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

fn scalar(t: Tensor<1>) -> f64 {
    f64::from(t.into_scalar::<f32>())
}

/// A run in progress.
pub(super) struct Run {
    config: GanConfig,
    data: GanData,
    knn: KnnIndex,
    out: RunDir,
    progress: ProgressMode,
    device: Device,
    ad_device: Device,
    g: Generator,
    d: Discriminator,
    g_ema: Generator,
    /// f_V on the autodiff device, frozen, for the feature-consistency term (when weighted).
    f_v: Option<ImageEncoder>,
    optim_g: ModuleOptimizer,
    optim_d: ModuleOptimizer,
    state: GanState,
    last_samples: Option<PathBuf>,
}

impl Run {
    pub(super) fn start(session: GanSession, resume: bool) -> Result<Self, TrainError> {
        let GanSession {
            config,
            data,
            out_dir,
            device,
            progress,
            image_encoder,
        } = session;
        let f_v = match (config.feature_weight() > 0.0, image_encoder) {
            (false, _) => None,
            // `train` moves it onto the autodiff device; `freeze` keeps its weights fixed and
            // its batch norms on their running statistics.
            (true, Some(f_v)) => Some(f_v.train().freeze()),
            (true, None) => {
                return Err(TrainError::config(
                    "feature_loss is set but the run has no image encoder to re-encode G's \
                     pictures with; pass it with GanSession::with_image_encoder or set \
                     feature_loss to 0",
                ));
            }
        };
        let start = RunDir::prepare(out_dir, resume)?;
        let device = device.inner();
        let ad_device = device.clone().autodiff();
        let knn = knn_cosine(data.features(), data.dim(), config.k_nn, &device)?;
        let fresh = GanState {
            format: STATE_FORMAT,
            step: 0,
            config_hash: config.fingerprint(),
            data_hash: data.fingerprint(),
            instances: data.len(),
            d_loss_real: None,
            d_loss_fake: None,
            g_loss: None,
            saved_at: 0.0,
        };
        let (optim_g, optim_d) = (config.g_optimizer.init(), config.d_optimizer.init());
        let (g, d, g_ema, optim_g, optim_d, state) = match start.checkpoint() {
            Some(dir) => load_checkpoint(dir, &fresh, optim_g, optim_d, &device)?,
            None => {
                let (g, d) = init_networks(&config, &device);
                // `valid` gives G_ema its own running states (a clone would share them).
                let g_ema = g.valid();
                (g, d, g_ema, optim_g, optim_d, fresh)
            }
        };
        let out = start.open(&config, &state, config.keep_last, config.log_every)?;
        Ok(Self {
            // `train` moves the parameters onto the autodiff device, tracked, keeping the ids
            // the optimizer states refer to.
            g: g.train(),
            d: d.train(),
            g_ema,
            f_v,
            config,
            data,
            knn,
            out,
            progress,
            device,
            ad_device,
            optim_g,
            optim_d,
            state,
            last_samples: None,
        })
    }

    pub(super) fn train(mut self, mut hooks: GanHooks) -> Result<GanSummary, TrainError> {
        let bar = StepBar::new(self.progress, self.state.step, self.config.steps);
        let result = self.train_steps(&mut hooks, &bar);
        bar.finish();
        let outcome = result?;
        let last_losses = match (
            self.state.d_loss_real,
            self.state.d_loss_fake,
            self.state.g_loss,
        ) {
            (Some(r), Some(f), Some(g)) => Some((r, f, g)),
            _ => None,
        };
        Ok(GanSummary {
            outcome,
            steps: self.state.step,
            last_checkpoint: self.out.last_checkpoint().map(Path::to_path_buf),
            resumed_from: self.out.resumed_from().map(Path::to_path_buf),
            last_samples: self.last_samples,
            last_losses,
            generator: self.g.valid(),
            discriminator: self.d.valid(),
            generator_ema: self.g_ema,
        })
    }

    fn train_steps(&mut self, hooks: &mut GanHooks, bar: &StepBar) -> Result<Outcome, TrainError> {
        loop {
            if hooks.stopping() {
                self.save()?;
                return Ok(Outcome::Stopped);
            }
            if self.state.step >= self.config.steps {
                self.save()?;
                let every = self.config.sample_every;
                if every > 0 && !self.state.step.is_multiple_of(every) && self.state.step > 0 {
                    self.write_samples()?;
                }
                return Ok(Outcome::MaxSteps);
            }
            let step = self.state.step + 1;
            let started = Instant::now();
            let mut batch = self.draw(step);
            hooks.before_batch(step, &mut batch);
            let mut d_losses = (f64::NAN, f64::NAN);
            for d_batch in &batch.d_steps {
                d_losses = self.d_step(d_batch, step)?;
            }
            let (g_loss, feature_loss) = self.g_step(&batch, step)?;
            self.update_ema(step);
            let seconds = started.elapsed().as_secs_f64().max(1e-9);
            let samples_per_sec = (self.config.batch_size * self.config.d_steps) as f64 / seconds;
            let (d_loss_real, d_loss_fake) = d_losses;
            self.state.step = step;
            self.state.d_loss_real = Some(d_loss_real);
            self.state.d_loss_fake = Some(d_loss_fake);
            self.state.g_loss = Some(g_loss);
            self.out.log_step(step, || GanMetricsRecord {
                step,
                d_loss_real,
                d_loss_fake,
                g_loss,
                feature_loss,
                samples_per_sec,
                time: unix_time(),
            })?;
            bar.update(
                step,
                format!(
                    "D real {d_loss_real:.3} fake {d_loss_fake:.3} G {g_loss:.3} \
                     {samples_per_sec:.1} img/s"
                ),
            );
            let report = GanStepReport {
                step,
                d_loss_real,
                d_loss_fake,
                g_loss,
                feature_loss,
                samples_per_sec,
            };
            if hooks.after_step(&report) == Control::Abort {
                return Ok(Outcome::Aborted);
            }
            let every = self.config.sample_every;
            if every > 0 && step.is_multiple_of(every) {
                self.write_samples()?;
            }
            let every = self.config.checkpoint_every;
            let ends_here = step >= self.config.steps || hooks.stopping();
            if every > 0 && step.is_multiple_of(every) && !ends_here {
                self.save()?;
            }
        }
    }

    /// The draws of `step`: a ChaCha8 stream seeded by `(seed, step)`.
    fn draw(&self, step: u64) -> GanBatch {
        let mut rng = ChaCha8Rng::seed_from_u64(splitmix(self.config.seed ^ splitmix(step)));
        let n = self.data.len();
        let b = self.config.batch_size;
        let dim_z = self.config.generator.dim_z();
        let z_var = self.config.z_var;
        let res = self.data.resolution();
        let policy = self.config.augmentation();
        let noise = |rng: &mut ChaCha8Rng| -> Vec<f32> {
            (0..b * dim_z).map(|_| gaussian(rng) * z_var).collect()
        };
        let instances = |rng: &mut ChaCha8Rng| -> Vec<usize> {
            (0..b).map(|_| rng.random_range(0..n)).collect()
        };
        let d_steps = (0..self.config.d_steps)
            .map(|_| {
                let real_instances = instances(&mut rng);
                let real_images: Vec<usize> = real_instances
                    .iter()
                    .map(|&i| {
                        let hood = self.knn.neighbours(i);
                        hood[rng.random_range(0..hood.len())] as usize
                    })
                    .collect();
                let flips: Vec<bool> = (0..b)
                    .map(|_| self.config.hflip && rng.random_bool(0.5))
                    .collect();
                let mut real_pixels = Vec::with_capacity(b * 3 * res * res);
                for (&j, &flip) in real_images.iter().zip(&flips) {
                    self.data.push_image(j, flip, &mut real_pixels);
                }
                let fake_instances = instances(&mut rng);
                let z = noise(&mut rng);
                let augment = augment::draw(policy, 2 * b, res, &mut rng);
                DStepBatch {
                    real_instances,
                    real_images,
                    flips,
                    real_pixels,
                    fake_instances,
                    z,
                    augment,
                }
            })
            .collect();
        let g_instances = instances(&mut rng);
        let g_z = noise(&mut rng);
        let g_augment = augment::draw(policy, b, res, &mut rng);
        GanBatch {
            d_steps,
            g_instances,
            g_z,
            g_augment,
        }
    }

    /// The features of `instances`, `[len, dim]`, on `device`.
    fn features(&self, instances: &[usize], device: &Device) -> Tensor<2> {
        let dim = self.data.dim();
        let mut values = Vec::with_capacity(instances.len() * dim);
        for &i in instances {
            values.extend_from_slice(self.data.feature(i));
        }
        Tensor::from_data(TensorData::new(values, [instances.len(), dim]), device)
    }

    /// One Adam step of D; returns its (real, fake) hinge losses. Nothing is applied when a
    /// loss or gradient is not finite.
    fn d_step(&mut self, batch: &DStepBatch, step: u64) -> Result<(f64, f64), TrainError> {
        let b = batch.real_instances.len();
        let res = self.data.resolution();
        let dim_z = self.config.generator.dim_z();
        let ad = &self.ad_device;
        let real = Tensor::<4>::from_data(
            TensorData::new(batch.real_pixels.clone(), [b, 3, res, res]),
            ad,
        );
        let feat_real = self.features(&batch.real_instances, ad); // [b, 2048]
        let feat_fake = self.features(&batch.fake_instances, ad); // [b', 2048]
        let bf = batch.fake_instances.len();
        let z = Tensor::<2>::from_data(TensorData::new(batch.z.clone(), [bf, dim_z]), ad);
        // G in training mode without gradients: its statistics update, no graph is kept.
        let fake = self
            .g
            .clone()
            .no_grad()
            .try_forward(z, feat_fake.clone())?
            .detach(); // [b', 3, res, res]
        let images = augment::apply(
            Tensor::cat(vec![fake, real], 0),
            self.config.augmentation(),
            &batch.augment,
        );
        let logits = self
            .d
            .try_forward(images, Tensor::cat(vec![feat_fake, feat_real], 0))?; // [b' + b, 1]
        let d_fake = logits.clone().slice([0..bf, 0..1]);
        let d_real = logits.slice([bf..bf + b, 0..1]);
        let (loss_real, loss_fake) = hinge_d_loss(d_real, d_fake);
        let (real_value, fake_value) = (scalar(loss_real.clone()), scalar(loss_fake.clone()));
        if !(real_value.is_finite() && fake_value.is_finite()) {
            return Err(TrainError::NonFiniteLoss { step });
        }
        let grads = GradientsParams::from_grads((loss_real + loss_fake).backward(), &self.d);
        if !all_finite(&self.d, Some(&grads)) {
            return Err(TrainError::NonFiniteGradient { step });
        }
        let d = self.d.clone();
        self.d = self.optim_d.step(self.config.d_optimizer.lr, d, grads);
        Ok((real_value, fake_value))
    }

    /// One Adam step of G; returns its hinge loss and, when weighted, the feature-consistency
    /// term. Nothing is applied when a loss or a gradient is not finite.
    fn g_step(&mut self, batch: &GanBatch, step: u64) -> Result<(f64, Option<f64>), TrainError> {
        let b = batch.g_instances.len();
        let dim_z = self.config.generator.dim_z();
        let ad = &self.ad_device;
        let feat = self.features(&batch.g_instances, ad); // [b, 2048]
        let z = Tensor::<2>::from_data(TensorData::new(batch.g_z.clone(), [b, dim_z]), ad);
        let fake = self.g.try_forward(z, feat.clone())?; // [b, 3, res, res]
        // f_V sees G's picture itself, not D's augmented view of it.
        let consistency = match &self.f_v {
            Some(f_v) => Some(feature_consistency(f_v, fake.clone(), feat.clone())?),
            None => None,
        };
        let fake = augment::apply(fake, self.config.augmentation(), &batch.g_augment);
        // D in training mode (its spectral norms update) without gradients for its weights.
        let d_fake = self.d.clone().no_grad().try_forward(fake, feat)?; // [b, 1]
        let mut loss = hinge_g_loss(d_fake);
        let value = scalar(loss.clone());
        let feature_value = match consistency {
            Some(term) => {
                let term_value = scalar(term.clone());
                loss = loss + term * self.config.feature_weight();
                Some(term_value)
            }
            None => None,
        };
        if !(value.is_finite() && feature_value.is_none_or(f64::is_finite)) {
            return Err(TrainError::NonFiniteLoss { step });
        }
        let grads = GradientsParams::from_grads(loss.backward(), &self.g);
        if !all_finite(&self.g, Some(&grads)) {
            return Err(TrainError::NonFiniteGradient { step });
        }
        let g = self.g.clone();
        self.g = self.optim_g.step(self.config.g_optimizer.lr, g, grads);
        Ok((value, feature_value))
    }

    /// G_ema ← G before `ema_start`, the moving average from then on.
    fn update_ema(&mut self, step: u64) {
        // `valid` folds pending statistics in and gives an independent plain-device copy.
        let g_now = self.g.valid();
        self.g_ema = if step < self.config.ema_start {
            g_now
        } else {
            ema_update(self.g_ema.clone(), &g_now, self.config.ema_decay)
        };
    }

    /// Writes `samples/step-NNNNNN.png`: for `sample_rows` instances spread over the data set,
    /// the real image and `sample_columns` images of G_ema (inference mode) from noise fixed by
    /// the seed.
    fn write_samples(&mut self) -> Result<(), TrainError> {
        let n = self.data.len();
        let rows = self.config.sample_rows.clamp(1, n);
        let cols = self.config.sample_columns.max(1);
        let instances: Vec<usize> = (0..rows).map(|r| r * n / rows).collect();
        let repeated: Vec<usize> = instances
            .iter()
            .flat_map(|&i| std::iter::repeat_n(i, cols))
            .collect();
        let dim_z = self.config.generator.dim_z();
        let mut rng = ChaCha8Rng::seed_from_u64(splitmix(self.config.seed ^ SAMPLE_SALT));
        let z: Vec<f32> = (0..repeated.len() * dim_z)
            .map(|_| gaussian(&mut rng) * self.config.z_var)
            .collect();
        let z = Tensor::<2>::from_data(TensorData::new(z, [repeated.len(), dim_z]), &self.device);
        let feat = self.features(&repeated, &self.device);
        let images = self.g_ema.try_forward(z, feat)?; // [rows·cols, 3, res, res]
        let values = images
            .clamp(-1.0, 1.0)
            .try_into_vec_as::<f32>()
            .map_err(|e| {
                TrainError::config_caused(format!("cannot read G_ema's samples: {e}"), e)
            })?;
        let res = self.data.resolution();
        let gap = 2usize;
        let cell = res + gap;
        let mut grid = RgbImage::from_pixel(
            ((cols + 1) * cell + gap) as u32,
            (rows * cell + gap) as u32,
            Rgb([255, 255, 255]),
        );
        let plane = res * res;
        for (r, &i) in instances.iter().enumerate() {
            let real = self.data.image(i);
            for p in 0..plane {
                let (x, y) = (gap + p % res, gap + r * cell + p / res);
                let pixel = Rgb([real[p], real[plane + p], real[2 * plane + p]]);
                grid.put_pixel(x as u32, y as u32, pixel);
            }
            for c in 0..cols {
                let image = &values[(r * cols + c) * 3 * plane..(r * cols + c + 1) * 3 * plane];
                let byte = |v: f32| ((v + 1.0) * 127.5).round().clamp(0.0, 255.0) as u8;
                for p in 0..plane {
                    let (x, y) = (gap + (c + 1) * cell + p % res, gap + r * cell + p / res);
                    let pixel = Rgb([
                        byte(image[p]),
                        byte(image[plane + p]),
                        byte(image[2 * plane + p]),
                    ]);
                    grid.put_pixel(x as u32, y as u32, pixel);
                }
            }
        }
        let dir = self.out.path().join(SAMPLES_DIR);
        std::fs::create_dir_all(&dir).map_err(|source| TrainError::Io {
            path: dir.clone(),
            source,
        })?;
        let path = dir.join(format!("step-{:06}.png", self.state.step));
        grid.save(&path).map_err(|e| TrainError::Io {
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        self.last_samples = Some(path);
        Ok(())
    }

    /// Writes the checkpoint of the current step and prunes old ones. Returns its directory.
    fn save(&mut self) -> Result<PathBuf, TrainError> {
        // Fold pending running-state updates into the stored values (see `align`); the run
        // itself would fold them in the same way at the next forward pass.
        drop(self.g.valid());
        drop(self.d.valid());
        let finite =
            all_finite(&self.g, None) && all_finite(&self.d, None) && all_finite(&self.g_ema, None);
        let (g, d, g_ema) = (&self.g, &self.d, &self.g_ema);
        let (optim_g, optim_d) = (&self.optim_g, &self.optim_d);
        let (g_config, d_config) = (&self.config.generator, &self.config.discriminator);
        self.out.save(&mut self.state, finite, false, |tmp| {
            let generator = NetworkKind::Generator;
            save_network(g, generator, g_config, &tmp.join(GENERATOR_FILE))?;
            save_network(g_ema, generator, g_config, &tmp.join(GENERATOR_EMA_FILE))?;
            let discriminator = NetworkKind::Discriminator;
            save_network(d, discriminator, d_config, &tmp.join(DISCRIMINATOR_FILE))?;
            write_optimizer(&tmp.join(G_OPTIMIZER_FILE), optim_g)?;
            write_optimizer(&tmp.join(D_OPTIMIZER_FILE), optim_d)
        })
    }
}

/// What [`load_checkpoint`] reads.
type Loaded = (
    Generator,
    Discriminator,
    Generator,
    ModuleOptimizer,
    ModuleOptimizer,
    GanState,
);

/// Reads a checkpoint (networks with the parameter ids the optimizer states refer to,
/// optimizers, state) after checking that it belongs to this run.
fn load_checkpoint(
    dir: &Path,
    fresh: &GanState,
    optim_g: ModuleOptimizer,
    optim_d: ModuleOptimizer,
    device: &Device,
) -> Result<Loaded, TrainError> {
    let state = read_state(dir, fresh)?;
    let load_g = |name: &str| {
        load_network(
            &dir.join(name),
            NetworkKind::Generator,
            device,
            |c: &GeneratorConfig, d| c.init(d),
        )
    };
    let g = load_g(GENERATOR_FILE)?;
    let g_ema = load_g(GENERATOR_EMA_FILE)?;
    let d = load_network(
        &dir.join(DISCRIMINATOR_FILE),
        NetworkKind::Discriminator,
        device,
        |c: &DiscriminatorConfig, d| c.init(d),
    )?;
    let optim_g = read_optimizer(&dir.join(G_OPTIMIZER_FILE), optim_g)?;
    let optim_d = read_optimizer(&dir.join(D_OPTIMIZER_FILE), optim_d)?;
    Ok((g, d, g_ema, optim_g, optim_d, state))
}
