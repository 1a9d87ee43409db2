//! Pictures: the gain → size law, colour exclusivity, and ground-truth boxes.

mod common;

use sound2scene_synth::{
    Background, COLOR_TOLERANCE, SceneSpec, SoundClass, SourceSpec, World, WorldConfig,
    measure_class_area, radius_px, render_scene, scene_objects,
};

fn color_distance(a: [u8; 3], b: [u8; 3]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(&x, y)| (f32::from(x) - f32::from(y)).powi(2))
        .sum::<f32>()
        .sqrt()
}

#[test]
fn area_grows_strictly_with_gain_for_every_class_and_background() {
    for class in SoundClass::ALL {
        for background in Background::ALL {
            let mut last = 0;
            for gain in [-12.0, -6.0, 0.0, 6.0] {
                let scene = SceneSpec::new(background, 3)
                    .with_source(SourceSpec::new(class, gain).at(0.45, 0.55));
                let img = render_scene(&scene, 64).unwrap();
                let area = measure_class_area(&img, class);
                assert!(
                    area > last,
                    "{class} on {background}: area {area} at {gain} dB is not above {last}"
                );
                last = area;
            }
        }
    }
}

#[test]
fn plus_twelve_db_doubles_the_radius() {
    for class in SoundClass::ALL {
        let ratio = radius_px(class, 6.0, 256) / radius_px(class, -6.0, 256);
        assert!(
            (ratio - 10f32.powf(0.3)).abs() < 1e-4,
            "{class}: ratio {ratio}"
        ); // 10^(12/40) ≈ 1.995
        let area = |g| {
            let scene = SceneSpec::new(Background::Water, 0).with_source(SourceSpec::new(class, g));
            measure_class_area(&render_scene(&scene, 256).unwrap(), class) as f32
        };
        let area_ratio = area(6.0) / area(-6.0);
        assert!(
            (3.6..4.4).contains(&area_ratio),
            "{class}: area ratio {area_ratio} for +12 dB, expected ≈ 4"
        );
    }
}

#[test]
fn class_colours_are_far_apart() {
    for a in SoundClass::ALL {
        for b in SoundClass::ALL {
            if a != b {
                let d = color_distance(a.color(), b.color());
                assert!(d >= 2.0 * COLOR_TOLERANCE + 20.0, "{a} vs {b}: {d}");
            }
        }
    }
}

#[test]
fn pure_backgrounds_contain_no_class_colour() {
    for background in Background::ALL {
        for seed in 0..12u64 {
            for time_s in [0.0, 3.3, 9.9] {
                let scene = SceneSpec::new(background, seed).at_time(time_s);
                let img = render_scene(&scene, 96).unwrap();
                for class in SoundClass::ALL {
                    let area = measure_class_area(&img, class);
                    assert_eq!(
                        area, 0,
                        "{class} measured {area} px in {background} seed {seed}"
                    );
                }
                for p in img.pixels() {
                    for class in SoundClass::ALL {
                        assert!(color_distance(p.0, class.color()) > COLOR_TOLERANCE + 10.0);
                    }
                }
            }
        }
    }
}

#[test]
fn each_class_is_measured_only_in_its_own_render() {
    for class in SoundClass::ALL {
        for background in Background::ALL {
            let scene = SceneSpec::new(background, 11)
                .with_source(SourceSpec::new(class, 3.0).at(0.4, 0.6));
            let img = render_scene(&scene, 64).unwrap();
            let truth = scene_objects(&scene, 64).unwrap();
            assert_eq!(truth.len(), 1);
            assert_eq!(measure_class_area(&img, class), truth[0].area_px);
            for other in SoundClass::ALL.into_iter().filter(|&o| o != class) {
                assert_eq!(
                    measure_class_area(&img, other),
                    0,
                    "{other} in {class} render"
                );
            }
        }
    }
}

#[test]
fn two_sources_are_both_drawn() {
    let scene = SceneSpec::new(Background::Field, 5)
        .with_source(SourceSpec::new(SoundClass::Siren, 0.0).at(0.25, 0.3))
        .with_source(SourceSpec::new(SoundClass::Cow, 0.0).at(0.75, 0.7));
    let img = render_scene(&scene, 64).unwrap();
    assert!(measure_class_area(&img, SoundClass::Siren) > 50);
    assert!(measure_class_area(&img, SoundClass::Cow) > 50);
}

#[test]
fn sources_outside_their_interval_are_not_drawn() {
    let scene = SceneSpec::new(Background::Sky, 2)
        .with_source(SourceSpec::new(SoundClass::Drum, 0.0).during(2.0, 4.0));
    let before = render_scene(&scene.clone().at_time(1.9), 64).unwrap();
    let during = render_scene(&scene.clone().at_time(2.0), 64).unwrap();
    let after = render_scene(&scene.at_time(4.0), 64).unwrap();
    assert_eq!(measure_class_area(&before, SoundClass::Drum), 0);
    assert!(measure_class_area(&during, SoundClass::Drum) > 0);
    assert_eq!(measure_class_area(&after, SoundClass::Drum), 0);
}

#[test]
fn ground_truth_boxes_hold_exactly_the_class_colour() {
    let world = World::new(WorldConfig {
        seed: 9,
        clips: 12,
        seconds: 4.0,
        fps: 5,
        ..WorldConfig::default()
    })
    .unwrap();
    let mut checked = 0;
    for i in 0..world.len() {
        let clip = world.clip(i);
        let truth = clip.truth();
        for (frame_truth, img) in truth.frames.iter().zip(clip.frames()) {
            let classes_here: Vec<SoundClass> =
                frame_truth.objects.iter().map(|o| o.class).collect();
            for class in SoundClass::ALL {
                let total: usize = frame_truth
                    .objects
                    .iter()
                    .filter(|o| o.class == class)
                    .map(|o| o.area_px)
                    .sum();
                assert_eq!(measure_class_area(&img, class), total, "{}", truth.name);
                if !classes_here.contains(&class) {
                    assert_eq!(total, 0);
                }
            }
            for object in &frame_truth.objects {
                let [x0, y0, x1, y1] = object.bbox;
                assert!(x0 < x1 && y0 < y1 && x1 <= 64 && y1 <= 64);
                let crop = image::imageops::crop_imm(&img, x0, y0, x1 - x0, y1 - y0).to_image();
                assert_eq!(measure_class_area(&crop, object.class), object.area_px);
                // The box is tight: each edge row/column holds the colour.
                let edge = |x: u32, y: u32, w: u32, h: u32| {
                    let e = image::imageops::crop_imm(&img, x, y, w, h).to_image();
                    measure_class_area(&e, object.class) > 0
                };
                assert!(edge(x0, y0, x1 - x0, 1) && edge(x0, y1 - 1, x1 - x0, 1));
                assert!(edge(x0, y0, 1, y1 - y0) && edge(x1 - 1, y0, 1, y1 - y0));
                checked += 1;
            }
        }
    }
    assert!(checked > 10, "only {checked} objects checked");
}

#[test]
fn bad_render_arguments_are_errors() {
    let scene = SceneSpec::new(Background::Sky, 0);
    assert!(render_scene(&scene, 0).is_err());
    assert!(render_scene(&scene, 100_000).is_err());
    let nan = scene
        .clone()
        .with_source(SourceSpec::new(SoundClass::Bell, f32::NAN));
    assert!(render_scene(&nan, 64).is_err());
    let outside = scene
        .clone()
        .with_source(SourceSpec::new(SoundClass::Bell, 0.0).at(1.5, 0.5));
    assert!(render_scene(&outside, 64).is_err());
    let backwards = scene.with_source(SourceSpec::new(SoundClass::Bell, 0.0).during(3.0, 1.0));
    assert!(scene_objects(&backwards, 64).is_err());
}
