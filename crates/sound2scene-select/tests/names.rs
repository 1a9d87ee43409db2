//! Tolerant matching of renamed downloads against released moments keys (issue 8, item 4).

use std::collections::HashMap;

use sound2scene_select::clip::discover_videos;
use sound2scene_select::names::{MatchKind, match_names, remap_moments, strip_numeric_suffix};

#[test]
fn numeric_suffixes_are_recognized() {
    assert_eq!(strip_numeric_suffix("abc_30000"), Some("abc"));
    assert_eq!(strip_numeric_suffix("a_b-c_30.5"), Some("a_b-c"));
    assert_eq!(strip_numeric_suffix("abc_x1"), None);
    assert_eq!(strip_numeric_suffix("abc"), None);
    assert_eq!(strip_numeric_suffix("_30"), None);
}

/// Writes a VGGSound-layout dataset whose files are renamed the ways downloads are, and
/// matches the folder names against released-style keys.
#[test]
fn renamed_files_match_released_keys_with_a_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (frames, audios) = (dir.path().join("frames"), dir.path().join("audios"));
    let local = [
        "exactID0001_30000_40000", // unchanged
        "startOnly01_30000",       // end dropped
        "idOnly00001",             // start and end dropped
        "twoSegments",             // two released segments of this id: ambiguous
        "extraSuffix_10_20_7",     // one suffix more than the key
        "unknownVid1_5_15",        // not released
    ];
    std::fs::create_dir_all(&audios).expect("mkdir");
    for name in local {
        std::fs::create_dir_all(frames.join(name)).expect("mkdir");
        std::fs::write(frames.join(name).join("0001.jpg"), b"x").expect("frame");
        std::fs::write(audios.join(format!("{name}.mp4")), b"").expect("audio");
    }
    let listing = discover_videos(&frames, &audios).expect("listing");
    assert_eq!(listing.videos.len(), local.len());

    let released: HashMap<String, Vec<u64>> = [
        ("exactID0001_30000_40000", vec![5, 4]),
        ("startOnly01_30000_40000", vec![7]),
        ("idOnly00001_0_10000", vec![9, 1]),
        ("twoSegments_0_10000", vec![1]),
        ("twoSegments_20000_30000", vec![2]),
        ("extraSuffix_10_20", vec![3]),
        ("neverDownloaded_1_2", vec![8]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let names: Vec<&str> = listing.videos.iter().map(|v| v.name.as_str()).collect();
    let (remapped, report) = remap_moments(&released, names.iter().copied());

    let kind_of = |name: &str| {
        report
            .matched
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.kind)
    };
    assert_eq!(kind_of("exactID0001_30000_40000"), Some(MatchKind::Exact));
    assert_eq!(kind_of("startOnly01_30000"), Some(MatchKind::KeyLonger(1)));
    assert_eq!(kind_of("idOnly00001"), Some(MatchKind::KeyLonger(2)));
    assert_eq!(
        kind_of("extraSuffix_10_20_7"),
        Some(MatchKind::NameLonger(1))
    );
    assert_eq!(report.matched.len(), 4);
    assert_eq!(report.unmatched, vec!["unknownVid1_5_15".to_string()]);
    assert_eq!(report.ambiguous.len(), 1);
    assert_eq!(report.ambiguous[0].0, "twoSegments");
    assert_eq!(
        report.ambiguous[0].1,
        vec![
            "twoSegments_0_10000".to_string(),
            "twoSegments_20000_30000".to_string()
        ]
    );
    // The released key the ambiguous name could not claim, and the never downloaded one.
    assert_eq!(report.unused_keys, 3);
    assert_eq!(remapped.get("idOnly00001"), Some(&vec![9, 1]));
    assert_eq!(remapped.get("startOnly01_30000"), Some(&vec![7]));
    assert!(!remapped.contains_key("twoSegments"));
    assert!(report.summary().contains("4 matched (1 exact, 3 renamed)"));
}

#[test]
fn the_closest_relation_wins_over_a_looser_one() {
    // "vid_1" equals one key exactly and is the shortened form of another: exact wins.
    let report = match_names(["vid_1"], ["vid_1", "vid_1_2"]);
    assert_eq!(report.matched.len(), 1);
    assert_eq!(report.matched[0].key, "vid_1");
    assert!(report.ambiguous.is_empty());
    // Two local copies of one key are both matched, and the key is reported as shared.
    let report = match_names(["vid", "vid_1"], ["vid_1_2"]);
    assert_eq!(report.matched.len(), 2);
    assert_eq!(report.shared_keys, vec!["vid_1_2".to_string()]);
}

#[test]
fn a_failed_write_keeps_the_os_error_as_its_source() {
    use std::error::Error as _;
    let dir = tempfile::tempdir().expect("tempdir");
    // The moments file's folder is a file, so the folder cannot be made.
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, b"a file").expect("blocker");
    let moments = std::collections::BTreeMap::from([("v".to_string(), vec![1u64])]);
    let err = sound2scene_select::mine::write_moments(&blocker.join("moments.json"), &moments)
        .expect_err("the folder is a file");
    let mut cause = err.source();
    let mut found = None;
    while let Some(e) = cause {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            found = Some(io);
            break;
        }
        cause = e.source();
    }
    let io = found.unwrap_or_else(|| panic!("the chain of {err} reaches no OS error"));
    assert!(err.to_string().contains(&io.to_string()), "{err}");
}
