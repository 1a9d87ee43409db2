//! The eight sound-source classes: [`SoundClass`], their looks ([`Shape`], colour, base size)
//! and their characteristic frequency bands.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::SynthError;

/// Outline drawn for a class, inside a square of half-side `radius` pixels around the centre.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Shape {
    /// Filled disc.
    Circle,
    /// Filled triangle pointing up.
    Triangle,
    /// Filled axis-aligned square (side 1.7 × radius).
    Square,
    /// Filled diamond (a square rotated by 45°).
    Diamond,
    /// Filled ellipse, wider than tall (height 0.6 × width).
    Ellipse,
    /// Annulus (inner radius 0.55 × radius).
    Ring,
    /// Plus sign (arm width 0.6 × radius).
    Cross,
    /// Irregular, lobed blob.
    Blob,
}

/// A sound-source class: a distinct synthesized timbre paired with a distinct look.
///
/// | class   | sound (16 kHz)                                             | look             |
/// |---------|------------------------------------------------------------|------------------|
/// | bell    | inharmonic partials (1, 2.76, 5.40, 8.93 × f0 ≈ 500–750 Hz) struck every ≈ 1 s, decaying | yellow circle |
/// | siren   | tone with 2 harmonics, slow FM wail 650–1650 Hz (0.25–0.5 Hz) | red triangle  |
/// | engine  | 45–80 Hz sawtooth buzz, low-passed at ≈ 400 Hz, 8–14 Hz amplitude chug | near-black square |
/// | bird    | phrases of 40–90 ms chirps sweeping within 3.2–7 kHz         | orange small diamond |
/// | dog     | 120–220 ms barks: sawtooth + noise through formants (≈ 0.5–0.8 and 1.2–1.8 kHz) | brown ellipse |
/// | drum    | low thumps (pitch falling ≈ 160 → 55 Hz) with a noise click, steady tempo | purple ring |
/// | whistle | pure 2.0–2.6 kHz tone with 5–7 Hz vibrato, in breaths of 0.8–2 s | cyan cross |
/// | cow     | 1.2–2 s moans, f0 95–140 Hz with 12 harmonics under a moving formant | magenta blob |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SoundClass {
    /// Church-bell-like strikes; yellow circle.
    Bell,
    /// Wailing siren; red triangle.
    Siren,
    /// Idling engine; near-black square.
    Engine,
    /// Chirping bird; small orange diamond.
    Bird,
    /// Barking dog; brown ellipse.
    Dog,
    /// Bass drum; purple ring.
    Drum,
    /// Human whistle; cyan cross.
    Whistle,
    /// Mooing cow; magenta blob.
    Cow,
}

impl SoundClass {
    /// All classes, in index order.
    pub const ALL: [SoundClass; 8] = [
        SoundClass::Bell,
        SoundClass::Siren,
        SoundClass::Engine,
        SoundClass::Bird,
        SoundClass::Dog,
        SoundClass::Drum,
        SoundClass::Whistle,
        SoundClass::Cow,
    ];

    /// Lower-case name (`"bell"`, `"siren"`, …), accepted back by [`FromStr`].
    pub fn name(self) -> &'static str {
        match self {
            SoundClass::Bell => "bell",
            SoundClass::Siren => "siren",
            SoundClass::Engine => "engine",
            SoundClass::Bird => "bird",
            SoundClass::Dog => "dog",
            SoundClass::Drum => "drum",
            SoundClass::Whistle => "whistle",
            SoundClass::Cow => "cow",
        }
    }

    /// Position in [`SoundClass::ALL`] (0–7), usable as a label.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The class's flat RGB colour. Every pair of class colours is at least 100 apart
    /// (Euclidean RGB distance) and every background pixel is more than
    /// [`crate::COLOR_TOLERANCE`] away from every class colour.
    pub fn color(self) -> [u8; 3] {
        match self {
            SoundClass::Bell => [255, 235, 0],
            SoundClass::Siren => [220, 20, 20],
            SoundClass::Engine => [30, 30, 30],
            SoundClass::Bird => [255, 120, 0],
            SoundClass::Dog => [130, 70, 20],
            SoundClass::Drum => [120, 0, 190],
            SoundClass::Whistle => [0, 230, 230],
            SoundClass::Cow => [240, 0, 200],
        }
    }

    /// The class's outline.
    pub fn shape(self) -> Shape {
        match self {
            SoundClass::Bell => Shape::Circle,
            SoundClass::Siren => Shape::Triangle,
            SoundClass::Engine => Shape::Square,
            SoundClass::Bird => Shape::Diamond,
            SoundClass::Dog => Shape::Ellipse,
            SoundClass::Drum => Shape::Ring,
            SoundClass::Whistle => Shape::Cross,
            SoundClass::Cow => Shape::Blob,
        }
    }

    /// Radius at 0 dB as a fraction of the image side. The drawn radius in pixels is
    /// `base_radius_fraction() × image_size × 10^(gain_db / 40)` (see [`crate::radius_px`]).
    ///
    /// Over the default gain range (−12 to +6 dB) a source covers about 1–40 % of the frame,
    /// as a sounding object does in a typical VGGSound frame. The first version of the world
    /// drew them at under a third of that area, where self-supervised image encoders saw only
    /// the background (docs/results.md).
    pub fn base_radius_fraction(self) -> f32 {
        match self {
            SoundClass::Bird => 0.15,
            SoundClass::Engine | SoundClass::Bell => 0.2,
            _ => 0.24,
        }
    }

    /// The frequency band in Hz `(low, high)` that holds the class's strongest spectral lines
    /// (for band-energy checks such as "a mix contains both sources").
    pub fn band_hz(self) -> (f32, f32) {
        match self {
            SoundClass::Bell => (480.0, 800.0),
            SoundClass::Siren => (650.0, 1700.0),
            SoundClass::Engine => (40.0, 300.0),
            SoundClass::Bird => (3000.0, 7200.0),
            SoundClass::Dog => (450.0, 1900.0),
            SoundClass::Drum => (40.0, 200.0),
            SoundClass::Whistle => (1900.0, 2700.0),
            SoundClass::Cow => (90.0, 800.0),
        }
    }
}

impl fmt::Display for SoundClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SoundClass {
    type Err = SynthError;

    /// Parses a class name, case-insensitively, surrounding whitespace ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        SoundClass::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| SynthError::UnknownName {
                kind: "sound class",
                name: s.to_string(),
                expected: SoundClass::ALL.map(SoundClass::name).join(", "),
            })
    }
}
