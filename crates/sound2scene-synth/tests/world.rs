//! World statistics, configuration errors and names.

use std::str::FromStr;

use sound2scene_synth::{Background, DatasetTruth, Layout, SoundClass, World, WorldConfig};

#[test]
fn middle_frame_misses_a_source_in_a_substantial_fraction_of_clips() {
    let world = World::new(WorldConfig::new(2023, 2000)).unwrap();
    let truth = DatasetTruth::new(Layout::Official, world.config().clone(), world.truths());
    let n = truth.clips.len() as f32;
    let without = truth.middle_frame_without_source as f32 / n;
    let missing = truth.middle_frame_missing_a_source as f32 / n;
    println!("middle frame shows no source: {without:.3}; misses a source: {missing:.3}");
    assert!((0.3..0.5).contains(&without), "{without}");
    assert!(missing >= without);
    let empty = truth.clips.iter().filter(|c| c.sources.is_empty()).count() as f32 / n;
    assert!((0.07..0.13).contains(&empty), "{empty}");
    let backgrounds =
        Background::ALL.map(|b| truth.clips.iter().filter(|c| c.background == b).count());
    assert!(backgrounds.iter().all(|&k| k > 500), "{backgrounds:?}");
    for class in SoundClass::ALL {
        let k = truth
            .clips
            .iter()
            .filter(|c| c.classes().contains(&class))
            .count();
        assert!(k > 200, "{class}: {k}");
    }
}

#[test]
fn clips_respect_the_configuration() {
    let config = WorldConfig {
        seed: 3,
        clips: 50,
        seconds: 5.0,
        fps: 6,
        image_size: 48,
        ..WorldConfig::default()
    };
    let world = World::new(config).unwrap();
    for truth in world.truths() {
        assert_eq!(truth.frames.len(), 30);
        assert_eq!(truth.middle_frame, 15);
        assert!(truth.sources.len() <= 2);
        let classes = truth.classes();
        assert!(classes.len() < 2 || classes[0] != classes[1]);
        for s in &truth.sources {
            assert!((-12.0..=6.0).contains(&s.gain_db));
            let (start, end) = s.interval_s;
            let fraction = (end - start) / 5.0;
            assert!((0.199..=0.501).contains(&fraction) && start >= 0.0 && end <= 5.0 + 1e-4);
            for &k in &s.visible_frames {
                let t = k as f32 / 6.0;
                assert!(start <= t && t < end);
            }
        }
    }
}

#[test]
fn invalid_configurations_are_errors() {
    let ok = WorldConfig::new(0, 1);
    assert!(World::new(ok.clone()).is_ok());
    let bad = [
        WorldConfig {
            fps: 0,
            ..ok.clone()
        },
        WorldConfig {
            image_size: 0,
            ..ok.clone()
        },
        WorldConfig {
            seconds: 0.0,
            ..ok.clone()
        },
        WorldConfig {
            seconds: f32::NAN,
            ..ok.clone()
        },
        WorldConfig {
            seconds: 0.01,
            fps: 1,
            ..ok.clone()
        },
        WorldConfig {
            max_sources: 9,
            ..ok.clone()
        },
        WorldConfig {
            empty_probability: 1.5,
            ..ok.clone()
        },
        WorldConfig {
            gain_db_range: (6.0, -6.0),
            ..ok.clone()
        },
        WorldConfig {
            gain_db_range: (f32::NEG_INFINITY, 0.0),
            ..ok.clone()
        },
        WorldConfig {
            level_db_range: (3.0, -3.0),
            ..ok.clone()
        },
        WorldConfig {
            level_db_range: (0.0, f32::NAN),
            ..ok.clone()
        },
        WorldConfig {
            level_db_range: (-50.0, 0.0),
            ..ok.clone()
        },
        WorldConfig {
            visible_fraction: (0.0, 0.5),
            ..ok.clone()
        },
        WorldConfig {
            visible_fraction: (0.5, 1.5),
            ..ok.clone()
        },
    ];
    for config in bad {
        assert!(World::new(config.clone()).is_err(), "{config:?} accepted");
    }
    assert!(World::new(ok).unwrap().clip(0).frame(10_000).is_err());
}

#[test]
fn names_round_trip() {
    for class in SoundClass::ALL {
        assert_eq!(SoundClass::from_str(class.name()).unwrap(), class);
        assert_eq!(
            class
                .to_string()
                .to_uppercase()
                .parse::<SoundClass>()
                .unwrap(),
            class
        );
        assert_eq!(SoundClass::ALL[class.index()], class);
    }
    for bg in Background::ALL {
        assert_eq!(bg.name().parse::<Background>().unwrap(), bg);
    }
    assert!("tuba".parse::<SoundClass>().is_err());
    assert!("desert".parse::<Background>().is_err());
    assert_eq!(World::clip_name(42), "clip_000042");
}

#[test]
fn ranked_frames_put_the_frames_showing_the_most_sources_first() {
    let world = World::new(WorldConfig::new(7, 200)).unwrap();
    let mut checked = 0;
    for truth in world.truths() {
        let ranked = truth.ranked_frames();
        let mut sorted = ranked.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..truth.frames.len()).collect::<Vec<_>>());
        let on_screen = |f: usize| {
            truth
                .sources
                .iter()
                .filter(|s| s.visible_frames.contains(&f))
                .count()
        };
        // Counts never increase down the ranking, and the first frame shows the most sources.
        let counts: Vec<usize> = ranked.iter().map(|&f| on_screen(f)).collect();
        assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{}", truth.name);
        if !truth.sources.is_empty() {
            assert!(on_screen(ranked[0]) >= 1, "{}", truth.name);
            // Every object of the chosen frame is drawn: the frame's objects agree.
            let objects = truth.frames[ranked[0]].objects.len();
            assert!(objects >= on_screen(ranked[0]), "{}", truth.name);
            checked += 1;
        }
    }
    assert!(checked > 150, "{checked}");
}

/// A world whose recordings vary in level: each clip's level lies in the range and spreads
/// over it, a source's loudness at the microphone (what sets its size) is its gain plus the
/// level, and the clip's classes, background and first source's interval are those of the
/// same clip recorded at level 0.
#[test]
fn recording_levels_move_every_source_and_keep_the_scene() {
    let flat = World::new(WorldConfig::new(11, 300)).unwrap();
    let varied = World::new(WorldConfig {
        level_db_range: (-6.0, 6.0),
        ..WorldConfig::new(11, 300)
    })
    .unwrap();
    let (flat, varied) = (flat.truths(), varied.truths());
    let levels: Vec<f32> = varied.iter().map(|c| c.level_db).collect();
    assert!(flat.iter().all(|c| c.level_db == 0.0));
    assert!(levels.iter().all(|l| (-6.0..=6.0).contains(l)));
    assert!(
        levels.iter().filter(|&&l| l < -3.0).count() > 50,
        "{levels:?}"
    );
    assert!(
        levels.iter().filter(|&&l| l > 3.0).count() > 50,
        "{levels:?}"
    );
    for (a, b) in flat.iter().zip(&varied) {
        assert_eq!((a.background, a.classes()), (b.background, b.classes()));
        if let (Some(s), Some(t)) = (a.sources.first(), b.sources.first()) {
            assert!((t.gain_db - s.gain_db - b.level_db).abs() < 1e-4);
            assert_eq!(s.interval_s, t.interval_s);
            assert_eq!(
                t.radius_px,
                sound2scene_synth::radius_px(t.class, t.gain_db, b.image_size)
            );
        }
    }
}

/// The point of the level: a one-source clip recorded `level` dB louder is the level-0 clip's
/// waveform times 10^(level/20), source and bed alike, so a gain on a whole waveform is a
/// change the world itself makes.
#[test]
fn a_louder_recording_is_the_same_waveform_scaled() {
    let config = WorldConfig {
        seconds: 2.0,
        ..WorldConfig::new(5, 40)
    };
    let flat = World::new(config.clone()).unwrap();
    let varied = World::new(WorldConfig {
        level_db_range: (-9.0, 9.0),
        ..config
    })
    .unwrap();
    let mut checked = 0;
    for i in 0..40 {
        let (a, b) = (flat.clip(i), varied.clip(i));
        if a.truth().sources.len() != 1 {
            continue;
        }
        let scale = 10f32.powf(b.truth().level_db / 20.0);
        let (x, y) = (a.audio(), b.audio());
        let peak = x.iter().fold(0f32, |m, v| m.max(v.abs()));
        let worst = x
            .iter()
            .zip(&y)
            .map(|(p, q)| (p * scale - q).abs())
            .fold(0f32, f32::max);
        assert!(worst <= 1e-4 * peak * scale.max(1.0), "clip {i}: {worst}");
        checked += 1;
    }
    assert!(checked >= 10, "{checked} one-source clips");
}
