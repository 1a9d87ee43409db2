//! Parity of the IC-GAN BigGAN generator and discriminator with the official PyTorch
//! networks, BigGAN-PyTorch's spectral norm, experiment-folder loading, and training mode.

mod common;

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::module::RunningState;
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use common::{assert_close, fixture, max_abs_diff, npy_tensor, read_npy, values};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use sound2scene_models::biggan::layers::{Ccbn, CcbnConfig};
use sound2scene_models::biggan::spectral_norm::{power_iteration, spectral_sigma};
use sound2scene_models::biggan::{
    Discriminator, DiscriminatorConfig, Generator, GeneratorConfig, IcganExperiment, select_best,
};
use sound2scene_models::{LoadOptions, ModelError, StateDict, StoredTensor, WeightLoader};

/// Bound on the generated image (values in [-1, 1]): float32 convolutions over up to
/// 128·9 terms through 5 residual blocks, attention and batch norm, summed in a different
/// order than PyTorch's oneDNN kernels, give ~1e-5; 2e-3 is the bound.
const G_IMAGE_TOL: f32 = 2e-3;

/// Relative bound on D's logits, `≤ 1e-3 · max(1, |b|)`, as for every other network (it was
/// 1e-2): D sums ReLU features over all positions and projects them, so absolute errors scale
/// with the logit. Measured on the ch8 fixture: 7.2e-7 on logits up to 2.08 in magnitude.
const D_LOGIT_REL_TOL: f32 = 1e-3;

/// Relative bound on a network read back from a burnpack file against the one that wrote it.
/// The weights round-trip exactly in f32, but on wgpu two forwards of the same weights need
/// not sum in the same order: on lavapipe D's logits then differed by up to 0.9e-6 of their
/// size (3.8e-6 on logits of 4.2), which left the 1e-6 once used a tenth of margin there.
const READBACK_REL_TOL: f32 = 1e-5;

const FOLDER: &str = "models/icgan_biggan_ch8_res128";

fn fixture_inputs(device: &Device) -> Option<(Tensor<2>, Tensor<2>)> {
    let z = fixture("models/gen_in_z.npy")?;
    let feat = fixture("models/gen_in_feat.npy")?;
    Some((npy_tensor(&z, device), npy_tensor(&feat, device)))
}

#[test]
fn generator_matches_official_icgan() {
    let (Some(dir), Some(expected)) = (fixture(FOLDER), fixture("models/gen_out_img_ch8.npy"))
    else {
        return;
    };
    let device = Device::default();
    let Some((z, feat)) = fixture_inputs(&device) else {
        return;
    };
    let (g, config) = Generator::from_icgan_folder(&dir, &LoadOptions::default(), &device)
        .expect("load the ch8 experiment");
    assert_eq!(config.g_ch, 8);
    assert_eq!(config.dim_z(), 120);
    assert_eq!(config.z_chunk_size(), 20);
    let img = g.forward(z.clone(), feat.clone());
    assert_eq!(img.dims(), [2, 3, 128, 128]);
    let (shape, want) = read_npy(&expected);
    assert_eq!(shape, vec![2, 3, 128, 128]);
    let got = values(img);
    let err = max_abs_diff(&got, &want);
    eprintln!("G image: max|a-b| = {err:.3e} (bound {G_IMAGE_TOL:.1e})");
    assert!(err <= G_IMAGE_TOL, "G image differs by {err}");
    assert!(got.iter().all(|v| (-1.0..=1.0).contains(v)));

    // The fixture's config has no SN_eps: BigGAN-PyTorch's command line says 1e-6, the
    // Generator class 1e-12. Both give the same image, because every normalized vector has
    // a norm far above either epsilon.
    let tiny_eps = config.clone().with_sn_eps(1e-12);
    let g12 = Generator::from_pth(
        dir.join("G_ema_best0.pth"),
        &tiny_eps,
        &LoadOptions::default(),
        &device,
    )
    .expect("load with SN_eps 1e-12");
    let got12 = values(g12.forward(z, feat));
    let err12 = max_abs_diff(&got12, &want);
    let between = max_abs_diff(&got12, &got);
    eprintln!("G image with SN_eps 1e-12: max|a-b| = {err12:.3e}, {between:.3e} from SN_eps 1e-6");
    assert!(between <= 1e-6);
}

#[test]
fn generator_rejects_mis_shaped_inputs() {
    let device = Device::default();
    let g = GeneratorConfig::new()
        .with_g_ch(8)
        .with_resolution(32)
        .with_g_attn("0".into())
        .init(&device);
    assert_eq!(g.dim_z, 120);
    let z = Tensor::<2>::zeros([1, 100], &device);
    let feat = Tensor::<2>::zeros([1, 2048], &device);
    let err = g.try_forward(z, feat.clone()).expect_err("z too short");
    assert!(matches!(err, ModelError::InputShape { .. }), "{err}");
    let z = Tensor::<2>::zeros([1, 120], &device);
    let err = g
        .try_forward(z.clone(), Tensor::zeros([1, 512], &device))
        .expect_err("feat too short");
    assert!(err.to_string().contains("2048"), "{err}");
    assert_eq!(g.forward(z, feat).dims(), [1, 3, 32, 32]);
}

#[test]
fn discriminator_matches_official_icgan() {
    let (Some(dir), Some(image), Some(expected)) = (
        fixture(FOLDER),
        fixture("models/gen_out_img_ch8.npy"),
        fixture("models/disc_out_ch8.npy"),
    ) else {
        return;
    };
    let device = Device::default();
    let Some((_, feat)) = fixture_inputs(&device) else {
        return;
    };
    let (d, config) = Discriminator::from_icgan_folder(&dir, &LoadOptions::default(), &device)
        .expect("load the ch8 discriminator");
    assert_eq!(config.d_ch, 8);
    // disc_out = D(G(z), None, feat); G(z) is the fixture image.
    let x: Tensor<4> = npy_tensor(&image, &device);
    let out = d.forward(x, feat);
    assert_eq!(out.dims(), [2, 1]);
    let (_, want) = read_npy(&expected);
    assert_close("D logits", &values(out), &want, D_LOGIT_REL_TOL);
}

/// Largest singular value of a row-major `[rows, cols]` matrix, by f64 power iteration on
/// `AᵀA` to convergence.
fn largest_singular_value(a: &[f64], rows: usize, cols: usize) -> f64 {
    let mut x = vec![1.0; cols];
    let mut sigma = 0.0;
    for _ in 0..2000 {
        let ax: Vec<f64> = (0..rows)
            .map(|r| (0..cols).map(|c| a[r * cols + c] * x[c]).sum())
            .collect();
        let atax: Vec<f64> = (0..cols)
            .map(|c| (0..rows).map(|r| a[r * cols + c] * ax[r]).sum())
            .collect();
        let norm = atax.iter().map(|v| v * v).sum::<f64>().sqrt();
        sigma = norm.sqrt() / x.iter().map(|v| v * v).sum::<f64>().sqrt().sqrt();
        x = atax.iter().map(|v| v / norm).collect();
    }
    sigma
}

/// A `[rows, cols]` matrix of standard normal draws, the same for the same `seed` on every
/// backend and run. The device's own generator is seeded from the OS, and about one 16×27 draw
/// in 250 (numpy, 50,000 draws) has two largest singular values so close that 300 power
/// iterations do not separate them to the test's 1e-3.
fn random_matrix(rows: usize, cols: usize, seed: u64, device: &Device) -> Tensor<2> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let draws: Vec<f32> = (0..rows * cols)
        .map(|_| rng.sample(StandardNormal))
        .collect();
    Tensor::from_data(TensorData::new(draws, [rows, cols]), device)
}

fn to_f64(t: Tensor<2>) -> Vec<f64> {
    values(t).into_iter().map(f64::from).collect()
}

#[test]
fn spectral_norm_one_step_matches_f64_reference() {
    let device = Device::default();
    let (rows, cols) = (7, 12);
    let w = random_matrix(rows, cols, 1, &device);
    let u0 = random_matrix(1, rows, 2, &device);
    let (wv, uv) = (to_f64(w.clone()), to_f64(u0.clone()));
    let eps = 1e-6;

    // Plain loops: v = normalize(u·W), u' = normalize(v·Wᵀ), σ = v·Wᵀ·u'ᵀ.
    let normalize = |x: Vec<f64>| {
        let n = x.iter().map(|v| v * v).sum::<f64>().sqrt().max(eps);
        x.into_iter().map(|v| v / n).collect::<Vec<f64>>()
    };
    let v = normalize(
        (0..cols)
            .map(|c| (0..rows).map(|r| uv[r] * wv[r * cols + c]).sum())
            .collect(),
    );
    let wvt: Vec<f64> = (0..rows)
        .map(|r| (0..cols).map(|c| v[c] * wv[r * cols + c]).sum())
        .collect();
    let u_new = normalize(wvt.clone());
    let sigma_ref: f64 = wvt.iter().zip(&u_new).map(|(a, b)| a * b).sum();

    let u_state = RunningState::new(u0.clone());
    let sv_state = RunningState::new(Tensor::<1>::ones([1], &device));
    let sigma = values(spectral_sigma(w.clone(), &u_state, &sv_state, eps))[0] as f64;
    eprintln!("sigma = {sigma}, f64 reference = {sigma_ref}");
    assert!(
        (sigma - sigma_ref).abs() <= 1e-5 * sigma_ref,
        "{sigma} vs {sigma_ref}"
    );
    // Evaluation leaves the stored vector alone.
    assert_eq!(values(u_state.value()), values(u0.clone()));

    let (u_t, _, _) = power_iteration(w.clone(), u0.clone(), eps);
    let err = max_abs_diff(
        &values(u_t),
        &u_new.iter().map(|&x| x as f32).collect::<Vec<_>>(),
    );
    assert!(err < 1e-5, "u differs by {err}");

    // Training (autodiff device) stores the new u and sigma.
    let ad = device.clone().autodiff();
    let u_state = RunningState::new(Tensor::from_data(u0.to_data(), &ad));
    let sv_state = RunningState::new(Tensor::<1>::ones([1], &ad));
    let w_ad: Tensor<2> = Tensor::from_data(w.to_data(), &ad).require_grad();
    let _ = spectral_sigma(w_ad, &u_state, &sv_state, eps);
    let stored_u = values(u_state.value_sync());
    let err = max_abs_diff(
        &stored_u,
        &u_new.iter().map(|&x| x as f32).collect::<Vec<_>>(),
    );
    assert!(err < 1e-5, "stored u differs by {err}");
    let stored_sv = values(sv_state.value_sync())[0] as f64;
    assert!((stored_sv - sigma_ref).abs() <= 1e-5 * sigma_ref);
}

#[test]
fn spectral_norm_converges_to_unit_spectral_norm() {
    let device = Device::default().autodiff();
    let (rows, cols) = (16, 27);
    let w = random_matrix(rows, cols, 3, &device);
    let u = RunningState::new(random_matrix(1, rows, 4, &device));
    let sv = RunningState::new(Tensor::<1>::ones([1], &device));
    let mut normalized = w.clone();
    for _ in 0..300 {
        // Each training-mode call runs one power iteration and stores the new u.
        normalized =
            sound2scene_models::biggan::spectral_norm::spectral_normalize(w.clone(), &u, &sv, 1e-6);
    }
    let s = largest_singular_value(&to_f64(normalized.detach()), rows, cols);
    let s_w = largest_singular_value(&to_f64(w), rows, cols);
    let sv0 = values(sv.value_sync())[0] as f64;
    eprintln!("σ(W) = {s_w}, stored sv0 = {sv0}, σ(W/σ̂) = {s}");
    assert!((s - 1.0).abs() < 1e-3, "largest singular value {s}");
    assert!((sv0 - s_w).abs() < 1e-3 * s_w);
}

/// CRC-32 (IEEE) of `bytes`, for patching a ZIP entry.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn u16_at(b: &[u8], i: usize) -> usize {
    usize::from(u16::from_le_bytes([b[i], b[i + 1]]))
}

fn u32_at(b: &[u8], i: usize) -> usize {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]) as usize
}

/// A copy of a `torch.save`d state dict (uncompressed ZIP, `data.pkl` first, sizes and
/// CRC in a data descriptor and the central directory) whose pickled float `old` (a BINFLOAT
/// opcode) is replaced by `new`, with the entry's CRC-32 updated.
fn with_patched_float(bytes: &[u8], old: f64, new: f64) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let mut pattern = vec![b'G'];
    pattern.extend(old.to_be_bytes());
    let pos = out
        .windows(pattern.len())
        .position(|w| w == pattern.as_slice())
        .expect("best_FID stored as a BINFLOAT");
    out[pos + 1..pos + 9].copy_from_slice(&new.to_be_bytes());
    assert_eq!(&out[0..4], b"PK\x03\x04", "a ZIP archive");
    assert_eq!(u16_at(&out, 8), 0, "data.pkl is stored uncompressed");
    let start = 30 + u16_at(&out, 26) + u16_at(&out, 28);
    let central = (0..out.len() - 46)
        .find(|&i| &out[i..i + 4] == b"PK\x01\x02" && u32_at(&out, i + 42) == 0)
        .expect("central directory entry of data.pkl");
    let size = u32_at(&out, central + 20);
    assert!(
        pos > start && pos + 9 <= start + size,
        "the float is in data.pkl"
    );
    let crc = crc32(&out[start..start + size]).to_le_bytes();
    out[central + 16..central + 20].copy_from_slice(&crc);
    if u16_at(&out, 6) & 0x8 != 0 {
        // Data descriptor after the data, with an optional signature.
        let at = start
            + size
            + if &out[start + size..start + size + 4] == b"PK\x07\x08" {
                4
            } else {
                0
            };
        out[at..at + 4].copy_from_slice(&crc);
    } else {
        out[14..18].copy_from_slice(&crc);
    }
    out
}

/// A fresh per-test temporary directory.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("s2s-biggan-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
}

#[test]
fn select_best_prefers_the_lowest_fid() {
    assert_eq!(select_best(&[(0, Some(12.5)), (1, Some(10.0))]), Some(1));
    assert_eq!(select_best(&[(0, Some(5.0)), (1, Some(10.0))]), Some(0));
    assert_eq!(
        select_best(&[(0, Some(7.0)), (1, Some(7.0))]),
        Some(0),
        "tie: first"
    );
    assert_eq!(select_best(&[(1, Some(3.0))]), Some(1), "only one set");
    assert_eq!(
        select_best(&[(0, None), (1, Some(9.0))]),
        Some(1),
        "unknown ranks last"
    );
    assert_eq!(select_best(&[(0, None), (1, None)]), Some(0));
    assert_eq!(select_best(&[]), None);
}

#[test]
fn experiment_folder_config_is_read() {
    let Some(dir) = fixture(FOLDER) else {
        return;
    };
    let exp = IcganExperiment::open(&dir).expect("open the fixture folder");
    assert_eq!(exp.best, 0);
    assert_eq!(exp.best_fid, Some(12.5));
    assert!(exp.generator_path().ends_with("G_ema_best0.pth"));
    assert!(exp.discriminator_path().ends_with("D_best0.pth"));
    let g = &exp.config.generator;
    assert_eq!((g.g_ch, g.dim_z, g.resolution), (8, 120, 128));
    assert_eq!(
        (g.g_attn.as_str(), g.hier, g.shared_dim_feat),
        ("64", true, 512)
    );
    assert!(g.g_shared_feat);
    assert_eq!(
        g.sn_eps, 1e-6,
        "SN_eps absent: BigGAN-PyTorch's command-line default"
    );
    let d = &exp.config.discriminator;
    assert_eq!((d.d_ch, d.resolution, d.d_attn.as_str()), (8, 128, "64"));
    assert_eq!(
        exp.config.experiment_name.as_deref(),
        Some("icgan_biggan_ch8_res128")
    );
}

#[test]
fn folder_with_two_sets_uses_the_lower_best_fid() {
    let (Some(src), Some(expected)) = (fixture(FOLDER), fixture("models/gen_out_img_ch8.npy"))
    else {
        return;
    };
    let device = Device::default();
    let Some((z, feat)) = fixture_inputs(&device) else {
        return;
    };
    let dir = temp_dir("two-sets");
    let state = std::fs::read(src.join("state_dict_best0.pth")).expect("read state dict");
    copy(
        &src.join("state_dict_best0.pth"),
        &dir.join("state_dict_best0.pth"),
    );
    // Set 1 is better (FID 3.0 < 12.5) and is the only one with weights.
    std::fs::write(
        dir.join("state_dict_best1.pth"),
        with_patched_float(&state, 12.5, 3.0),
    )
    .expect("write state dict");
    copy(&src.join("G_ema_best0.pth"), &dir.join("G_ema_best1.pth"));
    copy(&src.join("D_best0.pth"), &dir.join("D_best1.pth"));

    let exp = IcganExperiment::open(&dir).expect("open two sets");
    assert_eq!((exp.best, exp.best_fid), (1, Some(3.0)));
    let (g, _) = Generator::from_icgan_folder(&dir, &LoadOptions::default(), &device)
        .expect("G_ema_best1.pth");
    let (_, want) = read_npy(&expected);
    assert!(max_abs_diff(&values(g.forward(z, feat)), &want) <= G_IMAGE_TOL);
    Discriminator::from_icgan_folder(&dir, &LoadOptions::default(), &device).expect("D_best1.pth");

    // Now set 1 is worse (FID 20): set 0 is chosen, and its G file is missing.
    std::fs::write(
        dir.join("state_dict_best1.pth"),
        with_patched_float(&state, 12.5, 20.0),
    )
    .expect("write state dict");
    let err = Generator::from_icgan_folder(&dir, &LoadOptions::default(), &device)
        .expect_err("G_ema_best0.pth is missing");
    match &err {
        ModelError::Io { path, .. } => assert!(path.ends_with("G_ema_best0.pth"), "{err}"),
        other => panic!("expected an Io error naming the file, got {other}"),
    }
    assert!(err.to_string().contains("G_ema_best0.pth"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn folder_without_state_dict_is_refused() {
    let dir = temp_dir("empty");
    let err = Generator::from_icgan_folder(&dir, &LoadOptions::default(), &Device::default())
        .expect_err("no state dict");
    assert!(matches!(err, ModelError::Config { .. }), "{err}");
    assert!(err.to_string().contains("state_dict_best0.pth"), "{err}");
    let missing = dir.join("nowhere");
    let err = Generator::from_icgan_folder(&missing, &LoadOptions::default(), &Device::default())
        .expect_err("no folder");
    assert!(matches!(err, ModelError::Io { .. }), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn wrong_checkpoint_lists_the_mismatch() {
    let Some(dir) = fixture(FOLDER) else {
        return;
    };
    // The ch8 weights do not fit a ch16 generator; the error names the file and keys.
    let config = IcganExperiment::open(&dir)
        .expect("open")
        .config
        .generator
        .with_g_ch(16);
    let err = Generator::from_pth(
        dir.join("G_ema_best0.pth"),
        &config,
        &LoadOptions::default(),
        &Device::default(),
    )
    .expect_err("widths differ");
    assert!(matches!(err, ModelError::Mismatch { .. }), "{err}");
    assert!(err.to_string().contains("G_ema_best0.pth"), "{err}");
}

/// Deterministic pseudo-random values in [-1, 1].
fn wavy(n: usize, seed: f32) -> Vec<f32> {
    (0..n).map(|i| (i as f32 * 0.7381 + seed).sin()).collect()
}

fn stored(shape: &[usize], values: Vec<f32>) -> StoredTensor {
    StoredTensor {
        shape: shape.to_vec(),
        values,
    }
}

fn ccbn_dict(c: usize, cond: usize, mean: Vec<f32>, var: Vec<f32>) -> StateDict {
    let mut dict = StateDict::new("ccbn.pth");
    let options = LoadOptions::default();
    for (i, part) in ["gain", "bias"].into_iter().enumerate() {
        let seed = i as f32;
        let entries = [
            ("weight", stored(&[c, cond], wavy(c * cond, seed))),
            ("u0", stored(&[1, c], wavy(c, seed + 0.5))),
            ("sv0", stored(&[1], vec![1.0])),
        ];
        for (name, t) in entries {
            dict.insert(format!("bn.{part}.{name}"), t, &options)
                .expect("finite");
        }
    }
    dict.insert("bn.stored_mean", stored(&[c], mean), &options)
        .expect("finite");
    dict.insert("bn.stored_var", stored(&[c], var), &options)
        .expect("finite");
    dict
}

fn load_ccbn(dict: &StateDict, config: &CcbnConfig, device: &Device) -> Ccbn {
    let mut loader = WeightLoader::new(dict, device, "ccbn");
    let bn = Ccbn::load(&mut loader, "bn", config);
    loader.finish().expect("exact fit");
    bn
}

#[test]
fn ccbn_trains_with_batch_statistics() {
    let (b, c, hw, cond) = (3, 4, 5, 6);
    let config = CcbnConfig::new(c, cond);
    let device = Device::default();
    let ad = device.clone().autodiff();
    let x_values: Vec<f32> = wavy(b * c * hw * hw, 2.0)
        .iter()
        .enumerate()
        .map(|(i, v)| 3.0 * v + (i / (hw * hw) % c) as f32)
        .collect();
    let y_values = wavy(b * cond, 3.0);
    let input = |dev: &Device| {
        (
            Tensor::<4>::from_data(TensorData::new(x_values.clone(), [b, c, hw, hw]), dev),
            Tensor::<2>::from_data(TensorData::new(y_values.clone(), [b, cond]), dev),
        )
    };

    // Batch statistics per channel, in f64.
    let n = b * hw * hw;
    let (mut mean, mut var) = (vec![0f64; c], vec![0f64; c]);
    for (i, v) in x_values.iter().enumerate() {
        mean[i / (hw * hw) % c] += f64::from(*v) / n as f64;
    }
    for (i, v) in x_values.iter().enumerate() {
        let ch = i / (hw * hw) % c;
        var[ch] += (f64::from(*v) - mean[ch]).powi(2) / n as f64;
    }

    let (init_mean, init_var) = (vec![0.5f32; c], vec![2.0f32; c]);
    let train = load_ccbn(&ccbn_dict(c, cond, init_mean, init_var), &config, &ad);
    let (x, y) = input(&ad);
    let out_train = values(train.forward(x, y).detach());

    // The same layer in evaluation mode with the batch statistics stored gives the same.
    let as_f32 = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
    let eval = load_ccbn(
        &ccbn_dict(c, cond, as_f32(&mean), as_f32(&var)),
        &config,
        &device,
    );
    let (x, y) = input(&device);
    let out_eval = values(eval.forward(x, y));
    let err = max_abs_diff(&out_train, &out_eval);
    assert!(
        err < 1e-4,
        "training output differs from batch-statistics BN by {err}"
    );

    // Stored statistics move 10% towards the batch ones (unbiased variance, as PyTorch).
    let unbiased = n as f64 / (n as f64 - 1.0);
    let want_mean: Vec<f32> = mean.iter().map(|m| (0.9 * 0.5 + 0.1 * m) as f32).collect();
    let want_var: Vec<f32> = var
        .iter()
        .map(|v| (0.9 * 2.0 + 0.1 * v * unbiased) as f32)
        .collect();
    assert!(max_abs_diff(&values(train.stored_mean.value_sync()), &want_mean) < 1e-5);
    assert!(max_abs_diff(&values(train.stored_var.value_sync()), &want_var) < 1e-5);
    // The spectral norms of the gain and bias layers stepped their u0; evaluation did not.
    let u_init = wavy(c, 0.5);
    assert!(max_abs_diff(&values(train.gain.u0.value_sync()), &u_init) > 1e-3);
    assert_eq!(values(eval.gain.u0.value_sync()), u_init);
}

#[test]
fn generator_trains_on_an_autodiff_device() {
    let device = Device::default().autodiff();
    let config = GeneratorConfig::new()
        .with_g_ch(8)
        .with_resolution(32)
        .with_g_attn("16".into());
    let g = config.init(&device);
    let z = Tensor::<2>::random([2, config.dim_z()], Distribution::Normal(0.0, 1.0), &device);
    let feat = Tensor::<2>::random([2, 2048], Distribution::Default, &device);
    let u_before = values(g.linear.u0.value_sync());
    let img = g.forward(z.clone(), feat.clone());
    let grads = img.mean().backward();
    for (name, grad) in [
        ("linear.weight", g.linear.weight.grad(&grads).map(values)),
        (
            "shared_feat.weight",
            g.shared_feat
                .as_ref()
                .and_then(|l| l.weight.grad(&grads))
                .map(values),
        ),
        (
            "blocks.1.1.gamma",
            g.blocks[1]
                .attention
                .as_ref()
                .and_then(|a| a.gamma.val().grad(&grads))
                .map(values),
        ),
    ] {
        let grad = grad.unwrap_or_else(|| panic!("no gradient for {name}"));
        assert!(grad.iter().all(|v| v.is_finite()), "{name}");
    }
    assert!(max_abs_diff(&values(g.linear.u0.value_sync()), &u_before) > 0.0);
    let mean = values(g.blocks[0].block.bn1.stored_mean.value_sync());
    assert!(mean.iter().any(|&m| m != 0.0), "stored statistics updated");

    // The inference copy uses the stored statistics and leaves u0 alone.
    let eval = g.valid();
    let u_eval = values(eval.linear.u0.value_sync());
    let inner = z.inner();
    let img = eval.forward(inner, feat.inner());
    assert!(values(img).iter().all(|v| v.is_finite()));
    assert_eq!(values(eval.linear.u0.value_sync()), u_eval);
}

#[test]
fn feature_scale_and_linear_cond_follow_their_formula() {
    let device = Device::default();
    let config = GeneratorConfig::new()
        .with_g_ch(8)
        .with_resolution(32)
        .with_g_attn("0".into())
        .with_instance_dim(Some(64))
        .with_feature_scale(Some(3.0))
        .with_linear_cond(Some(true));
    let g = config.init(&device);
    let chunk = config.z_chunk_size();
    assert_eq!(
        g.linear.weight.dims()[1],
        config.shared_dim_feat + chunk,
        "the first layer takes [y, z_0]"
    );
    let z = Tensor::<2>::random([2, config.dim_z()], Distribution::Normal(0.0, 1.0), &device);
    let feat = Tensor::<2>::random([2, 64], Distribution::Normal(0.0, 0.2), &device);

    // The documented formula, composed from G's public layers.
    let shared = g.shared_feat.as_ref().expect("g_shared_feat is on");
    let y = shared.forward(feat.clone().mul_scalar(3.0));
    let mut chunks = z.clone().split(chunk, 1).into_iter();
    let z0 = chunks.next().expect("z_0");
    let mut h = g
        .linear
        .forward(Tensor::cat(vec![y.clone(), z0], 1))
        .reshape([2, -1, 4, 4]);
    for (stage, zc) in g.blocks.iter().zip(chunks) {
        h = stage.block.forward(h, Tensor::cat(vec![y.clone(), zc], 1));
    }
    let expected = g
        .output_conv
        .forward(burn::tensor::activation::relu(g.output_bn.forward(h)))
        .tanh();
    assert_close(
        "G with feature_scale 3 and linear_cond",
        &values(g.forward(z.clone(), feat.clone())),
        &values(expected),
        1e-5,
    );

    // The factor is applied once: G(z, f) at scale 3 is G(z, 3f) at scale 1.
    let mut unscaled = g.clone();
    unscaled.feature_scale = 1.0;
    assert_close(
        "scale 3 against a scaled feature",
        &values(g.forward(z.clone(), feat.clone())),
        &values(unscaled.forward(z.clone(), feat.clone().mul_scalar(3.0))),
        1e-5,
    );

    // Both options travel in a burnpack file's header.
    use sound2scene_models::burnpack::{self, NetworkKind, Precision};
    let dir = temp_dir("generator_options");
    let path = dir.join("generator.bpk");
    burnpack::save(&g, NetworkKind::Generator, &config, &path, Precision::F32)
        .expect("burnpack written");
    let (loaded, loaded_config) =
        sound2scene_models::checkpoint::open_generator(&path, &LoadOptions::default(), &device)
            .expect("burnpack read");
    assert_eq!(loaded_config.feature_scale, Some(3.0));
    assert_eq!(loaded_config.linear_cond, Some(true));
    assert_eq!(loaded.feature_scale, 3.0);
    assert!(loaded.linear_cond);
    assert_close(
        "G read back from burnpack",
        &values(loaded.forward(z.clone(), feat.clone())),
        &values(g.forward(z.clone(), feat.clone())),
        READBACK_REL_TOL,
    );

    let bad = GeneratorConfig::new().with_feature_scale(Some(0.0));
    let err = bad.validate().expect_err("a zero feature scale");
    assert!(err.to_string().contains("feature_scale"), "{err}");
}

#[test]
fn configs_without_the_new_generator_keys_are_official_icgan() {
    let json = GeneratorConfig::new()
        .with_g_ch(8)
        .with_resolution(32)
        .to_string();
    let mut value: serde_json::Value = serde_json::from_str(&json).expect("config json");
    let object = value.as_object_mut().expect("an object");
    object.remove("feature_scale");
    object.remove("linear_cond");
    let config: GeneratorConfig =
        serde_json::from_value(value).expect("a config from before the keys existed");
    assert_eq!(config.feature_factor(), 1.0);
    assert!(!config.conditions_linear());
    let g = config.init(&Device::default());
    assert_eq!(g.linear.weight.dims()[1], config.z_chunk_size());
    assert_eq!(g.feature_scale, 1.0);
    assert!(!g.linear_cond);
}

#[test]
fn discriminator_feature_scale_scales_the_projected_feature() {
    let device = Device::default();
    let config = DiscriminatorConfig::new()
        .with_d_ch(8)
        .with_resolution(32)
        .with_d_attn("0".into())
        .with_instance_dim(Some(64))
        .with_feature_scale(Some(3.0));
    let d = config.init(&device);
    let x = Tensor::<4>::random([2, 3, 32, 32], Distribution::Uniform(-1.0, 1.0), &device);
    let feat = Tensor::<2>::random([2, 64], Distribution::Normal(0.0, 0.2), &device);

    // The factor is applied once: D(x, f) at scale 3 is D(x, 3f) at scale 1, and it matters.
    let mut unscaled = d.clone();
    unscaled.feature_scale = 1.0;
    let scaled_out = values(d.forward(x.clone(), feat.clone()));
    assert_close(
        "D at scale 3 against a scaled feature",
        &scaled_out,
        &values(unscaled.forward(x.clone(), feat.clone().mul_scalar(3.0))),
        1e-5,
    );
    assert!(
        max_abs_diff(
            &scaled_out,
            &values(unscaled.forward(x.clone(), feat.clone()))
        ) > 1e-4,
        "the scale changes D's score"
    );

    // The setting travels in a burnpack file's header.
    use sound2scene_models::burnpack::{self, NetworkKind, Precision};
    let dir = temp_dir("discriminator_options");
    let path = dir.join("discriminator.bpk");
    burnpack::save(
        &d,
        NetworkKind::Discriminator,
        &config,
        &path,
        Precision::F32,
    )
    .expect("burnpack written");
    let (loaded, loaded_config) =
        sound2scene_models::checkpoint::open_discriminator(&path, &LoadOptions::default(), &device)
            .expect("burnpack read");
    assert_eq!(loaded_config.feature_scale, Some(3.0));
    assert_eq!(loaded.feature_scale, 3.0);
    assert_close(
        "D read back from burnpack",
        &values(loaded.forward(x.clone(), feat.clone())),
        &scaled_out,
        READBACK_REL_TOL,
    );

    let bad = DiscriminatorConfig::new().with_feature_scale(Some(-1.0));
    let err = bad.validate().expect_err("a negative feature scale");
    assert!(err.to_string().contains("feature_scale"), "{err}");

    let json = DiscriminatorConfig::new().to_string();
    let mut value: serde_json::Value = serde_json::from_str(&json).expect("config json");
    value
        .as_object_mut()
        .expect("an object")
        .remove("feature_scale");
    let old: DiscriminatorConfig =
        serde_json::from_value(value).expect("a config from before the key existed");
    assert_eq!(old.feature_factor(), 1.0);
}
