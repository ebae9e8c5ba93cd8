"""Speech Commands v2 (FedScale's ``google_speech``) read from FedScale's on-disk layout, plus a
synthetic stand-in in that layout.

FedScale (SymbioticLab/FedScale: fedscale/dataloaders/speech.py, transforms_wav.py,
fedscale/cloud/fllibs.py, benchmark/dataset/speech_commands/README.md) keeps it in its
client-mapped layout (see ``client_mapping``) with one-second 16 kHz WAV clips under
``<data_dir>/train/`` and ``<data_dir>/test/``, a sample_path relative to its split's folder,
and the class taken from label_name's position in its list of 35 words, ``CLASSES``.

A clip becomes FedScale's evaluation features (``LoadAudio``, ``FixAudioLength``,
``ToMelSpectrogram(n_mels=32)``, which call librosa 0.7.2's ``melspectrogram`` and
``power_to_db(ref=np.max)``), computed here with torch and no librosa: the clip padded with
zeros or cut to one second; a centred, reflect-padded STFT with a 2048-point periodic Hann
window and hop 512 (32 frames); its power through 32 Slaney mel filters (area-normalised,
0 to 8 kHz); decibels relative to the clip's maximum, floored 80 dB below it. That is the
1 x 32 x 32 input FedScale's speech models take. The decibels in [-80, 0] are then mapped
linearly onto [-1, 1]: the models here have no batch norm to absorb that scale. FedScale's
training-time augmentation (amplitude, speed, stretch, shift, background noise) is left out,
so training is deterministic. Clips are decoded when a batch needs them, never held decoded.
"""
from __future__ import annotations

import functools
import wave
from os import PathLike
from pathlib import Path

import numpy as np
import torch

from fedscale.dataloaders.client_mapping import MappedLayout, write_mapped_fixture
from fedscale.dataloaders.dataset import DataError

CLASSES = ("up", "two", "sheila", "zero", "yes", "five", "one", "happy", "marvin", "no", "go", "seven", "eight",
           "tree", "stop", "down", "forward", "learn", "house", "three", "six", "backward", "dog", "cat", "wow",
           "left", "off", "on", "four", "visual", "nine", "bird", "right", "follow", "bed")
SAMPLE_RATE = 16_000
N_FFT = 2048
HOP_LENGTH = 512
N_MELS = 32
FRAMES = 1 + SAMPLE_RATE // HOP_LENGTH
TOP_DB = 80.0
_AMIN = 1e-10
_PCM_SCALE = 32768.0
_MEL_HZ = 200.0 / 3
_MEL_BREAK_HZ = 1000.0
_MEL_BREAK = _MEL_BREAK_HZ / _MEL_HZ
_MEL_LOG_STEP = np.log(6.4) / 27.0
_FIXTURE_WORDS = 6
_FIXTURE_SECONDS = (0.8, 1.1)


def read_wav(path: Path) -> np.ndarray:
    """The first second of the 16 kHz mono 16-bit PCM WAV at ``path`` as float32 in [-1, 1), padded
    with zeros to one second; a one-line DataError naming ``path`` for anything else."""
    try:
        with wave.open(str(path), "rb") as clip:
            channels, width, rate = clip.getnchannels(), clip.getsampwidth(), clip.getframerate()
            frames = clip.getnframes()
            if (channels, width, rate) != (1, 2, SAMPLE_RATE):
                raise DataError.at(path, f"a 16 kHz mono 16-bit PCM WAV, got {rate} Hz, {channels} channel(s), "
                                         f"{8 * width}-bit")
            pcm = clip.readframes(SAMPLE_RATE)
    except FileNotFoundError:
        raise DataError.at(path, "a WAV file, but it does not exist") from None
    except (wave.Error, EOFError, OSError) as error:
        problem = str(error) or "truncated"
        raise DataError.at(path, f"a WAV file that Python's wave module can read ({problem})") from None
    if len(pcm) < 2 * min(frames, SAMPLE_RATE):
        raise DataError.at(path, f"{min(frames, SAMPLE_RATE)} audio frames as its header says, got {len(pcm) // 2} "
                                 "(truncated)")
    clip_samples = np.zeros(SAMPLE_RATE, dtype=np.float32)
    clip_samples[:len(pcm) // 2] = np.frombuffer(pcm, dtype="<i2", count=len(pcm) // 2) / np.float32(_PCM_SCALE)
    return clip_samples


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa's default): linear below 1 kHz, logarithmic above."""
    logarithmic = _MEL_BREAK + np.log(np.maximum(hz, _MEL_BREAK_HZ) / _MEL_BREAK_HZ) / _MEL_LOG_STEP
    return np.where(hz >= _MEL_BREAK_HZ, logarithmic, hz / _MEL_HZ)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    return np.where(mel >= _MEL_BREAK, _MEL_BREAK_HZ * np.exp(_MEL_LOG_STEP * (mel - _MEL_BREAK)), mel * _MEL_HZ)


def mel_filters(sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """``n_mels`` x (n_fft // 2 + 1) triangular filters evenly spaced in Slaney mel from 0 Hz to
    Nyquist, each scaled to unit area (librosa 0.7.2's ``filters.mel`` with ``norm=1``)."""
    fft_hz = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    edges = _mel_to_hz(np.linspace(0.0, _hz_to_mel(np.array(sample_rate / 2)), n_mels + 2))
    ramps = edges[:, None] - fft_hz[None, :]
    widths = np.diff(edges)[:, None]
    rising, falling = -ramps[:-2] / widths[:-1], ramps[2:] / widths[1:]
    triangles = np.maximum(0.0, np.minimum(rising, falling))
    return (triangles * (2.0 / (edges[2:] - edges[:-2]))[:, None]).astype(np.float32)


@functools.cache
def _transform() -> tuple[torch.Tensor, torch.Tensor]:
    """The mel filters and the STFT window, built on first use: a torch operation at import would
    start torch's thread pool in the job's template process, and a child forked after that can hang."""
    return torch.from_numpy(mel_filters()), torch.hann_window(N_FFT, periodic=True)


def log_mel(clips: torch.Tensor) -> torch.Tensor:
    """N x 16000 float32 clips as N x 1 x 32 x 32 features (see the module's docstring)."""
    filters, window = _transform()
    spectrum = torch.stft(clips, N_FFT, HOP_LENGTH, window=window, center=True, pad_mode="reflect",
                          return_complex=True)
    decibels = 10.0 * torch.log10(torch.clamp_min(filters @ spectrum.abs().square(), _AMIN))
    relative = decibels - decibels.amax(dim=(1, 2), keepdim=True)
    return (torch.clamp_min(relative, -TOP_DB) / (TOP_DB / 2) + 1.0).unsqueeze(1)


GOOGLE_SPEECH = MappedLayout("Speech Commands", (1, N_MELS, FRAMES), read_wav, log_mel, class_names=CLASSES)


def write_wav(path: Path, clip: np.ndarray) -> None:
    """Write float ``clip`` (in [-1, 1]) as a 16 kHz mono 16-bit PCM WAV."""
    pcm = np.clip(np.round(clip * _PCM_SCALE), -_PCM_SCALE, _PCM_SCALE - 1).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(pcm.tobytes())


def write_google_speech_fixture(root: str | PathLike[str], num_clients: int, samples_per_client: int,
                                seed: int) -> str:
    """Write a small synthetic data set in FedScale's Speech Commands layout under ``root``; return ``root``.

    It stands in for the real download in tests and demos. The classes are FedScale's first 6
    words, each a fixed pair of tones (their pitches spread over 250 Hz to 3 kHz); a sample is
    its class's tones at a random loudness under a fade in and out, with white noise, lasting
    0.8 to 1.1 s (so the loader both pads and cuts). A clip is named as FedScale's are
    (``<word>_<speaker>_nohash_<k>.wav``; the speaker is the client). Clients are spread as
    ``client_mapping.write_mapped_fixture`` says. Deterministic in ``seed``.
    """
    if num_clients < 1:
        raise ValueError(f"need num_clients >= 1, got {num_clients}")
    rng = np.random.default_rng(seed)
    pitches = np.geomspace(250.0, 3000.0, 2 * _FIXTURE_WORDS).reshape(2, _FIXTURE_WORDS).T

    def write_sample(path: Path, label: int) -> None:
        length = int(rng.uniform(*_FIXTURE_SECONDS) * SAMPLE_RATE)
        seconds = np.arange(length) / SAMPLE_RATE
        tones = np.sin(2 * np.pi * pitches[label][:, None] * seconds).sum(axis=0) / 2
        fade = np.sin(np.pi * np.arange(length) / length)
        write_wav(path, rng.uniform(0.2, 0.6) * fade * tones + rng.normal(0.0, 0.02, size=length))

    return write_mapped_fixture(root, GOOGLE_SPEECH, [f"{client:08x}" for client in range(num_clients)],
                                samples_per_client, CLASSES[:_FIXTURE_WORDS], rng,
                                lambda client_id, _, k, label: f"{CLASSES[label]}_{client_id}_nohash_{k}.wav",
                                write_sample)
