//! Tolerant matching of local video names against the keys of an existing moments file.
//!
//! The released VGGSound keys are `YOUTUBEID_START_END`; downloaded copies are often named
//! `YOUTUBEID_START` or just `YOUTUBEID` (or carry more numeric suffixes than the keys). A name
//! matches a key when they are equal, or when one is the other followed by one or two numeric
//! suffixes (`_` and digits, optionally with a decimal point). The most exact relation wins:
//! equality, then a name lacking one suffix, lacking two, having one extra, having two extra.
//! When more than one key is equally close (e.g. `YOUTUBEID` and two released segments of
//! that video) the name is *ambiguous* and is reported, never guessed.
//!
//! YouTube ids may themselves contain `_`; an id ending in `_` and digits could be taken for
//! a suffix, but only against a local name equal to its shorter part.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

/// How a local name relates to the key it matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchKind {
    /// The same string.
    Exact,
    /// The key is the name plus numeric suffixes (`YOUTUBEID_START` for `YOUTUBEID_START_END`);
    /// the number is how many.
    KeyLonger(u8),
    /// The name is the key plus numeric suffixes; the number is how many.
    NameLonger(u8),
}

/// One matched name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameMatch {
    /// The local name.
    pub name: String,
    /// The key of the moments file.
    pub key: String,
    /// How they relate.
    pub kind: MatchKind,
}

/// The outcome of matching local names against keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchReport {
    /// Names with exactly one closest key.
    pub matched: Vec<NameMatch>,
    /// Names with no key.
    pub unmatched: Vec<String>,
    /// Names with several equally close keys, and those keys (sorted).
    pub ambiguous: Vec<(String, Vec<String>)>,
    /// Keys that two or more names matched (each such name is still in `matched`).
    pub shared_keys: Vec<String>,
    /// Keys no name matched.
    pub unused_keys: usize,
}

impl MatchReport {
    /// A one-line summary: counts of matched (exact / renamed), unmatched and ambiguous names.
    pub fn summary(&self) -> String {
        let exact = self
            .matched
            .iter()
            .filter(|m| m.kind == MatchKind::Exact)
            .count();
        format!(
            "{} matched ({} exact, {} renamed), {} unmatched, {} ambiguous, {} keys unused",
            self.matched.len(),
            exact,
            self.matched.len() - exact,
            self.unmatched.len(),
            self.ambiguous.len(),
            self.unused_keys
        )
    }
}

/// `s` without its last numeric suffix (`abc_30` → `abc`), if it has one.
pub fn strip_numeric_suffix(s: &str) -> Option<&str> {
    let (head, tail) = s.rsplit_once('_')?;
    let numeric = !head.is_empty()
        && tail.bytes().any(|b| b.is_ascii_digit())
        && tail.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && tail.bytes().filter(|&b| b == b'.').count() <= 1;
    numeric.then_some(head)
}

/// Matches every name of `names` against `keys` (see the [module docs](self)).
pub fn match_names<'n, 'k>(
    names: impl IntoIterator<Item = &'n str>,
    keys: impl IntoIterator<Item = &'k str>,
) -> MatchReport {
    // Every key by itself and by its forms with one and two suffixes removed.
    let keys: Vec<&str> = keys.into_iter().collect();
    let mut exact: HashMap<&str, &str> = HashMap::new();
    let mut shortened: [HashMap<&str, Vec<&str>>; 2] = [HashMap::new(), HashMap::new()];
    for &key in &keys {
        exact.insert(key, key);
        let mut form = key;
        for level in &mut shortened {
            match strip_numeric_suffix(form) {
                Some(shorter) => {
                    level.entry(shorter).or_default().push(key);
                    form = shorter;
                }
                None => break,
            }
        }
    }
    let mut report = MatchReport::default();
    let mut uses: BTreeMap<&str, usize> = BTreeMap::new();
    for name in names {
        let mut found: Option<(MatchKind, Vec<&str>)> =
            exact.get(name).map(|&k| (MatchKind::Exact, vec![k]));
        for (level, map) in shortened.iter().enumerate() {
            if found.is_none() {
                found = map
                    .get(name)
                    .map(|ks| (MatchKind::KeyLonger(level as u8 + 1), ks.clone()));
            }
        }
        let mut form = name;
        for extra in 1..=2u8 {
            if found.is_some() {
                break;
            }
            let Some(shorter) = strip_numeric_suffix(form) else {
                break;
            };
            found = exact
                .get(shorter)
                .map(|&k| (MatchKind::NameLonger(extra), vec![k]));
            form = shorter;
        }
        match found {
            None => report.unmatched.push(name.to_string()),
            Some((kind, mut candidates)) => {
                candidates.sort_unstable();
                candidates.dedup();
                if let [key] = candidates[..] {
                    *uses.entry(key).or_default() += 1;
                    report.matched.push(NameMatch {
                        name: name.to_string(),
                        key: key.to_string(),
                        kind,
                    });
                } else {
                    report.ambiguous.push((
                        name.to_string(),
                        candidates.iter().map(|k| (*k).to_string()).collect(),
                    ));
                }
            }
        }
    }
    report.shared_keys = uses
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| (*k).to_string())
        .collect();
    report.unused_keys = keys.iter().filter(|k| !uses.contains_key(*k)).count();
    report
}

/// Re-keys a moments file to local names: each matched name gets its key's frames. Returns
/// the new moments (by name) and the report.
pub fn remap_moments<'a>(
    moments: &HashMap<String, Vec<u64>>,
    names: impl IntoIterator<Item = &'a str>,
) -> (BTreeMap<String, Vec<u64>>, MatchReport) {
    let report = match_names(names, moments.keys().map(String::as_str));
    let remapped = report
        .matched
        .iter()
        .filter_map(|m| moments.get(&m.key).map(|f| (m.name.clone(), f.clone())))
        .collect();
    (remapped, report)
}
