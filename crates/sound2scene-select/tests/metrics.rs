//! Selection and localization metrics on constructed maps (issue 8, "Measured").

use sound2scene_select::heatmap::blend;
use sound2scene_select::metrics::{
    SelectionReport, VideoTruth, box_mask, ciou, ciou_summary, evaluate_video, upsample_bilinear,
};

#[test]
fn ciou_of_exact_half_and_empty_maps() {
    let side = 16;
    let mask = box_mask(&[[4, 4, 8, 8]], side);
    assert_eq!(mask.iter().filter(|&&m| m).count(), 16);
    let exact: Vec<f32> = mask.iter().map(|&m| if m { 1.0 } else { 0.0 }).collect();
    assert!((ciou(&exact, &mask) - 1.0).abs() < 1e-6);
    // The box plus as many pixels outside it: |P ∩ G| = 16, |G| = 16, |P \ G| = 16.
    let mut doubled = exact.clone();
    for x in 8..12 {
        for y in 4..8 {
            doubled[y * side + x] = 0.9;
        }
    }
    assert!((ciou(&doubled, &mask) - 0.5).abs() < 1e-6);
    // A map peaking away from the box overlaps nothing.
    let mut away = vec![0.0; side * side];
    away[15 * side + 15] = 1.0;
    assert_eq!(ciou(&away, &mask), 0.0);
    // No ground truth: nothing to localize.
    assert_eq!(ciou(&exact, &vec![false; side * side]), 0.0);
}

#[test]
fn auc_and_ciou_at_half_follow_their_definitions() {
    // Success rate 1 at threshold 0 and 1/2 at every threshold in (0, 1]: the trapezoids
    // give 0.05 · (1 + 1/2)/2 + 19 · 0.05 · 1/2.
    let (at_half, auc) = ciou_summary(&[1.0, 0.0]);
    assert!((at_half - 0.5).abs() < 1e-12);
    assert!((auc - (0.05 * 0.75 + 19.0 * 0.05 * 0.5)).abs() < 1e-9);
    let (at_half, auc) = ciou_summary(&[1.0; 3]);
    assert_eq!(at_half, 1.0);
    assert!((auc - 1.0).abs() < 1e-9);
    assert_eq!(ciou_summary(&[]), (0.0, 0.0));
}

#[test]
fn bilinear_upsampling_keeps_constants_and_order() {
    let up = upsample_bilinear(&[2.0; 4], 2, 2, 8);
    assert!(up.iter().all(|&v| (v - 2.0).abs() < 1e-6));
    let ramp = upsample_bilinear(&[0.0, 1.0, 0.0, 1.0], 2, 2, 8);
    for row in ramp.chunks(8) {
        assert!(row.windows(2).all(|w| w[0] <= w[1]), "{row:?}");
        assert_eq!(row[0], 0.0);
        assert_eq!(row[7], 1.0);
    }
}

#[test]
fn video_evaluation_and_report_count_what_they_should() {
    // Four frames of 16×16; frames 2 and 3 show a source in the top-left quarter.
    let quarter = [0, 0, 8, 8];
    let truth = VideoTruth {
        side: 16,
        boxes: vec![vec![], vec![], vec![quarter], vec![quarter]],
    };
    // 2×2 maps: frame 2 points at the source, frame 3 at the opposite corner.
    let maps = [
        [0.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0],
        [1.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 1.0],
    ]
    .concat();
    let good = evaluate_video(&truth, &[2, 0, 1, 3], &maps, 2);
    assert!(good.has_source && good.top1 && good.middle);
    assert_eq!(good.random, 0.5);
    assert_eq!(good.ciou.len(), 2);
    assert!(good.ciou[0] > 0.5, "{:?}", good.ciou);
    assert_eq!(good.ciou[1], 0.0);
    let bad = evaluate_video(&truth, &[0, 2, 1, 3], &maps, 2);
    assert!(!bad.top1);
    let empty = evaluate_video(
        &VideoTruth {
            side: 16,
            boxes: vec![vec![]; 4],
        },
        &[1],
        &maps,
        2,
    );
    assert!(!empty.has_source);

    let report = SelectionReport::from_videos([&good, &bad, &empty]);
    assert_eq!(report.videos, 3);
    assert_eq!(report.videos_with_source, 2);
    assert_eq!(report.top1_precision, 0.5);
    assert_eq!(report.middle_precision, 1.0);
    assert_eq!(report.random_precision, 0.5);
    assert_eq!(report.frames_localized, 4);
    assert_eq!(report.ciou_at_05, 0.5);
}

#[test]
fn heatmap_blend_is_enlarged_and_coloured_by_the_map() {
    let frame = image::RgbImage::from_pixel(32, 32, image::Rgb([128, 128, 128]));
    let out = blend(&frame, &[0.0, 1.0, 0.0, 0.0], 2);
    assert_eq!(out.dimensions(), (128, 128));
    // The top-right corner is the map's peak (yellow: more red than blue), the bottom-left
    // its floor (purple: more blue than green).
    let peak = out.get_pixel(127, 0);
    let floor = out.get_pixel(0, 127);
    assert!(peak[0] > peak[2], "{peak:?}");
    assert!(floor[2] > floor[1], "{floor:?}");
}
