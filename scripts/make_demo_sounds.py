"""Synthesize the short demo sounds shipped in assets/sounds (16 kHz mono, 16-bit WAV).

Deterministic: rerunning writes byte-identical files. Needs numpy only.
    python3 scripts/make_demo_sounds.py
"""
import wave
from pathlib import Path

import numpy as np

RATE = 16_000
OUT = Path(__file__).resolve().parent.parent / "assets" / "sounds"


def write(name: str, x: np.ndarray) -> None:
    x = np.clip(x / max(1e-9, np.abs(x).max()) * 0.8, -1.0, 1.0)
    pcm = (x * 32767).astype("<i2")
    with wave.open(str(OUT / name), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())


def bell(seconds: float = 3.0) -> np.ndarray:
    """Inharmonic decaying partials, struck twice a second."""
    t = np.arange(int(seconds * RATE)) / RATE
    tau = t % 1.0
    partials = [(1.0, 1.0), (2.76, 0.6), (5.40, 0.4), (8.93, 0.25)]
    return sum(a * np.exp(-3.0 * tau * f) * np.sin(2 * np.pi * 523.0 * f * tau) for f, a in partials)


def engine(seconds: float = 3.0) -> np.ndarray:
    """A low buzz with amplitude modulation (a motor idling)."""
    rng = np.random.default_rng(7)
    t = np.arange(int(seconds * RATE)) / RATE
    buzz = np.sign(np.sin(2 * np.pi * 55.0 * t)) * 0.6 + np.sin(2 * np.pi * 110.0 * t)
    rumble = np.convolve(rng.standard_normal(t.size), np.ones(64) / 64, mode="same")
    return (buzz + 2.0 * rumble) * (0.7 + 0.3 * np.sin(2 * np.pi * 6.0 * t))


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    write("bell.wav", bell())
    write("engine.wav", engine())
    print("wrote", *sorted(p.name for p in OUT.glob("*.wav")))
