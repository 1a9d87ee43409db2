//! Tests of the evaluation metrics: parity with pytorch-fid / BigGAN-PyTorch fixtures, values
//! known by construction, and input validation.

mod common;

use ndarray::{Array1, Array2, Axis, array};
use sound2scene_train::{
    TrainError,
    metrics::{
        DEFAULT_IS_SPLITS, FeatureStatistics, fid_from_features, frechet_distance, inception_score,
        read_npy_f64, recall_at_k, retrieval_recall,
    },
};

/// FID parity target (relative): the fixture is pytorch-fid's float64 result cast to float32,
/// and scipy's `sqrtm` differs from the eigenvalue route only by rounding.
const FID_RELATIVE_TOLERANCE: f64 = 1e-3;

/// Inception Score parity target (relative) for both the mean and the std over splits.
const IS_RELATIVE_TOLERANCE: f64 = 1e-4;

/// Absolute tolerance for `f64` identities over a few hundred samples (rounding only).
const F64_TOLERANCE: f64 = 1e-9;

fn random_features(seed: u64, rows: usize, cols: usize) -> Array2<f64> {
    Array2::from_shape_vec((rows, cols), common::pseudo_random(seed, rows * cols)).unwrap()
}

#[test]
fn fid_matches_pytorch_fid_fixture() {
    let (Some(a_path), Some(b_path), Some(value_path)) = (
        common::fixture("metrics/fid_feats_a.npy"),
        common::fixture("metrics/fid_feats_b.npy"),
        common::fixture("metrics/fid_value.npy"),
    ) else {
        return;
    };
    let a: Array2<f64> = read_npy_f64(&a_path).unwrap();
    let b: Array2<f64> = read_npy_f64(&b_path).unwrap();
    let want: Array1<f64> = read_npy_f64(&value_path).unwrap();
    assert_eq!(a.dim(), (300, 64));
    let got = fid_from_features(a.view(), b.view()).unwrap();
    let error = common::relative_error(got, want[0]);
    println!(
        "FID parity: {got} vs {} (relative error {error:.3e})",
        want[0]
    );
    assert!(error <= FID_RELATIVE_TOLERANCE, "relative error {error:e}");
}

#[test]
fn fid_of_a_set_with_itself_is_zero() {
    let a = random_features(21, 200, 16);
    let got = fid_from_features(a.view(), a.view()).unwrap();
    assert!(got.abs() < F64_TOLERANCE, "{got}");
}

#[test]
fn fid_of_a_shifted_set_is_the_squared_shift() {
    // Same covariance, means differ by `shift`: FID = ||shift||^2.
    let a = random_features(22, 150, 12);
    let shift = Array1::from_vec(common::pseudo_random(23, 12));
    let b = &a + &shift;
    let got = fid_from_features(a.view(), b.view()).unwrap();
    let want = shift.dot(&shift);
    assert!((got - want).abs() < F64_TOLERANCE, "{got} vs {want}");
}

#[test]
fn fid_of_a_scaled_set_has_closed_form() {
    // b = 2a: S_b = 4 S_a, tr(sqrtm(S_a S_b)) = 2 tr(S_a), so
    // FID = ||mu_a||^2 + tr(S_a) + 4 tr(S_a) - 4 tr(S_a) = ||mu_a||^2 + tr(S_a).
    let a = random_features(24, 120, 9);
    let b = a.mapv(|v| 2.0 * v);
    let stats = FeatureStatistics::from_features(a.view()).unwrap();
    let want = stats.mean().dot(&stats.mean()) + stats.covariance().diag().sum();
    let got = fid_from_features(a.view(), b.view()).unwrap();
    assert!((got - want).abs() < F64_TOLERANCE, "{got} vs {want}");
}

#[test]
fn fid_handles_singular_covariances() {
    // Fewer samples than dimensions: both covariances are rank deficient. The shifted copy
    // still has FID equal to the squared shift.
    let a = random_features(25, 10, 32);
    let shift = Array1::from_elem(32, 0.5);
    let b = &a + &shift;
    let got = fid_from_features(a.view(), b.view()).unwrap();
    let want = shift.dot(&shift);
    assert!((got - want).abs() < 1e-6, "{got} vs {want}");
}

#[test]
fn feature_statistics_match_unbiased_covariance_definition() {
    let x = array![[1.0, 2.0], [3.0, 0.0], [5.0, 4.0]];
    let stats = FeatureStatistics::from_features(x.view()).unwrap();
    // Means 3 and 2; deviations (-2, 0), (0, -2), (2, 2); divided by N - 1 = 2.
    assert_eq!(stats.mean(), array![3.0, 2.0]);
    assert_eq!(stats.covariance(), array![[4.0, 2.0], [2.0, 4.0]]);
    let rebuilt =
        FeatureStatistics::from_parts(stats.mean().to_owned(), stats.covariance().to_owned())
            .unwrap();
    let distance = frechet_distance(&stats, &rebuilt).unwrap();
    assert!(distance.abs() < F64_TOLERANCE, "{distance}");
}

#[test]
fn fid_rejects_bad_inputs() {
    let a = random_features(26, 20, 4);
    let b = random_features(27, 20, 5);
    let err = fid_from_features(a.view(), b.view()).unwrap_err();
    assert!(matches!(err, TrainError::ShapeMismatch { .. }), "{err}");
    assert!(err.to_string().contains("[20, 4]"), "{err}");

    let one_row = random_features(28, 1, 4);
    let err = fid_from_features(one_row.view(), a.view()).unwrap_err();
    assert!(
        matches!(
            err,
            TrainError::TooFewSamples {
                required: 2,
                got: 1,
                ..
            }
        ),
        "{err}"
    );

    let mut nan = a.clone();
    nan[[3, 2]] = f64::NAN;
    let err = fid_from_features(nan.view(), a.view()).unwrap_err();
    assert!(
        matches!(err, TrainError::NonFinite { ref index, .. } if index == &[3, 2]),
        "{err}"
    );

    let err = FeatureStatistics::from_parts(Array1::zeros(3), Array2::zeros((3, 2))).unwrap_err();
    assert!(matches!(err, TrainError::ShapeMismatch { .. }), "{err}");
}

#[test]
fn inception_score_matches_biggan_fixture() {
    let (Some(logits_path), Some(value_path)) = (
        common::fixture("metrics/is_logits.npy"),
        common::fixture("metrics/is_value.npy"),
    ) else {
        return;
    };
    let logits: Array2<f64> = read_npy_f64(&logits_path).unwrap();
    let want: Array1<f64> = read_npy_f64(&value_path).unwrap();
    assert_eq!(logits.dim(), (500, 10));
    let got = inception_score(logits.view(), DEFAULT_IS_SPLITS).unwrap();
    let mean_error = common::relative_error(got.mean, want[0]);
    let std_error = common::relative_error(got.std, want[1]);
    println!(
        "IS parity: mean {} vs {} (rel err {mean_error:.3e}), std {} vs {} (rel err {std_error:.3e})",
        got.mean, want[0], got.std, want[1]
    );
    assert!(
        mean_error <= IS_RELATIVE_TOLERANCE,
        "mean relative error {mean_error:e}"
    );
    assert!(
        std_error <= IS_RELATIVE_TOLERANCE,
        "std relative error {std_error:e}"
    );
}

#[test]
fn inception_score_of_uniform_logits_is_one() {
    let logits = Array2::from_elem((40, 7), 3.5);
    let score = inception_score(logits.view(), 4).unwrap();
    assert!((score.mean - 1.0).abs() < F64_TOLERANCE, "{score:?}");
    assert!(score.std.abs() < F64_TOLERANCE, "{score:?}");
}

#[test]
fn inception_score_of_confident_balanced_predictions_is_the_class_count() {
    // Each row is (almost) one-hot and every split holds each class equally often: the
    // marginal is uniform, KL = ln(classes), so the score is `classes` in every split.
    let (classes, splits, per_class) = (5, 4, 3);
    let rows = classes * per_class * splits;
    let logits = Array2::from_shape_fn(
        (rows, classes),
        |(i, c)| {
            if i % classes == c { 60.0 } else { 0.0 }
        },
    );
    let score = inception_score(logits.view(), splits).unwrap();
    assert!((score.mean - classes as f64).abs() < 1e-9, "{score:?}");
    assert!(score.std < 1e-9, "{score:?}");
}

#[test]
fn inception_score_drops_trailing_rows_like_biggan() {
    // 23 rows in 2 splits use rows 0..22; row 22 must not matter.
    let mut logits = random_features(30, 23, 6).mapv(|v| 4.0 * v);
    let head = inception_score(logits.slice(ndarray::s![..22, ..]), 2).unwrap();
    logits.row_mut(22).fill(1000.0);
    let full = inception_score(logits.view(), 2).unwrap();
    assert_eq!(head, full);
}

#[test]
fn inception_score_rejects_bad_inputs() {
    let logits = random_features(31, 8, 3);
    for splits in [0, 9] {
        let err = inception_score(logits.view(), splits).unwrap_err();
        assert!(
            matches!(err, TrainError::InvalidSplits { samples: 8, .. }),
            "{err}"
        );
    }
    let mut inf = logits.clone();
    inf[[1, 1]] = f64::INFINITY;
    let err = inception_score(inf.view(), 2).unwrap_err();
    assert!(matches!(err, TrainError::NonFinite { .. }), "{err}");
    let empty = Array2::<f64>::zeros((0, 3));
    assert!(matches!(
        inception_score(empty.view(), 1).unwrap_err(),
        TrainError::Empty { .. }
    ));
}

#[test]
fn recall_is_perfect_when_keys_are_queries_plus_tiny_noise() {
    let queries = random_features(40, 60, 16);
    let keys = &queries + &random_features(41, 60, 16).mapv(|v| 1e-6 * v);
    let recall = retrieval_recall(queries.view(), keys.view()).unwrap();
    assert_eq!((recall.r1, recall.r5, recall.r10), (1.0, 1.0, 1.0));
    let reverse = retrieval_recall(keys.view(), queries.view()).unwrap();
    assert_eq!((reverse.r1, reverse.r5, reverse.r10), (1.0, 1.0, 1.0));
}

#[test]
fn recall_counts_exactly_the_keys_ranked_ahead_by_construction() {
    // Keys are the one-hot basis e_j. Query i is e_i plus 2 e_j for every j in a set S_i of
    // other keys, so exactly |S_i| keys outrank the true key: rank_i = |S_i| = i mod 12.
    let n = 30;
    let keys = Array2::<f64>::eye(n);
    let rank_of = |i: usize| i % 12;
    let queries = Array2::from_shape_fn((n, n), |(i, j)| {
        let ahead = (1..=rank_of(i)).map(|step| (i + step) % n);
        if j == i {
            1.0
        } else if ahead.clone().any(|a| a == j) {
            2.0
        } else {
            0.0
        }
    });
    let ks = [1, 2, 5, 10, 12, 30];
    let got = recall_at_k(queries.view(), keys.view(), &ks).unwrap();
    for (&k, &recall) in ks.iter().zip(&got) {
        let want = (0..n).filter(|&i| rank_of(i) < k).count() as f64 / n as f64;
        assert_eq!(recall, want, "recall@{k}");
    }
    let summary = retrieval_recall(queries.view(), keys.view()).unwrap();
    assert_eq!(
        [summary.r1, summary.r5, summary.r10],
        [got[0], got[2], got[3]]
    );
}

#[test]
fn recall_of_permuted_keys_counts_fixed_points() {
    // Keys are a permutation of orthonormal queries; only fixed points of the permutation
    // retrieve their own key, every other query has similarity 0 to it and ties it with all.
    let n = 20;
    let permutation: Vec<usize> = (0..n)
        .map(|i| if i < 7 { i } else { 7 + (i - 7 + 3) % 13 })
        .collect();
    let queries = Array2::<f64>::eye(n);
    let keys = queries.select(Axis(0), &permutation);
    let recall = retrieval_recall(queries.view(), keys.view()).unwrap();
    let fixed = 7.0 / n as f64;
    assert_eq!((recall.r1, recall.r5, recall.r10), (fixed, fixed, fixed));
}

#[test]
fn recall_of_collapsed_embeddings_is_not_rewarded() {
    let queries = Array2::from_elem((20, 4), 1.0);
    let recall = retrieval_recall(queries.view(), queries.view()).unwrap();
    assert_eq!((recall.r1, recall.r5, recall.r10), (0.0, 0.0, 0.0));
}

#[test]
fn recall_is_scale_invariant_and_spans_query_blocks() {
    // More than one 256-query block; scaling rows must not change cosine ranking.
    let queries = random_features(42, 600, 8);
    let keys = &queries + &random_features(43, 600, 8).mapv(|v| 0.3 * v);
    let scaled = Array2::from_shape_fn(keys.dim(), |(i, j)| keys[[i, j]] * (1.0 + i as f64));
    let plain = recall_at_k(queries.view(), keys.view(), &[1, 5, 10]).unwrap();
    let rescaled = recall_at_k(queries.view(), scaled.view(), &[1, 5, 10]).unwrap();
    assert_eq!(plain, rescaled);
    assert!(plain[0] < 1.0 && plain[0] <= plain[1] && plain[1] <= plain[2]);
}

#[test]
fn recall_rejects_bad_inputs() {
    let a = random_features(44, 10, 4);
    let b = random_features(45, 9, 4);
    let err = retrieval_recall(a.view(), b.view()).unwrap_err();
    assert!(matches!(err, TrainError::ShapeMismatch { .. }), "{err}");
    assert!(err.to_string().contains("[9, 4]"), "{err}");
    let err = recall_at_k(a.view(), a.view(), &[0]).unwrap_err();
    assert!(matches!(err, TrainError::InvalidK { k: 0 }), "{err}");
    let mut nan = a.clone();
    nan[[0, 0]] = f64::NAN;
    assert!(matches!(
        retrieval_recall(a.view(), nan.view()).unwrap_err(),
        TrainError::NonFinite { .. }
    ));
}

#[test]
fn read_npy_f64_reads_f32_and_f64_and_names_bad_files() {
    let dir = std::env::temp_dir().join(format!("s2s-train-npy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let values = array![[1.5_f32, -2.0], [0.25, 8.0]];
    let f32_path = dir.join("f32.npy");
    let f64_path = dir.join("f64.npy");
    ndarray_npy::write_npy(&f32_path, &values).unwrap();
    ndarray_npy::write_npy(&f64_path, &values.mapv(f64::from)).unwrap();
    let from_f32: Array2<f64> = read_npy_f64(&f32_path).unwrap();
    let from_f64: Array2<f64> = read_npy_f64(&f64_path).unwrap();
    assert_eq!(from_f32, values.mapv(f64::from));
    assert_eq!(from_f32, from_f64);

    let wrong_rank = read_npy_f64::<ndarray::Ix1>(&f32_path).unwrap_err();
    assert!(wrong_rank.to_string().contains("f32.npy"), "{wrong_rank}");
    let missing = dir.join("missing.npy");
    let err = read_npy_f64::<ndarray::Ix2>(&missing).unwrap_err();
    assert!(matches!(err, TrainError::Npy { .. }), "{err}");
    assert!(err.to_string().contains("missing.npy"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
