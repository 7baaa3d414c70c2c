"""The catalogue of real voices in Debian packages: who speaks in which files.

Each package lays its recordings out differently; this module maps a file tree (the real ``/``,
or a fixture that mirrors its paths) to speakers. A speaker id is ``<source>-<voice>``. Identity
comes from the layout:

- ``asterisk`` (core sounds en/fr/it/ru, Menardi): one named folder ``<lang>_<f|m>_<Name>``
  per professional voice; ``asterisk-fr_armelle`` and ``asterisk-es_co`` are the 8 kHz GSM
  prompt packages, each one voice (Armelle is female; the es-co voice's sex is not documented).
- ``klettres`` and ``ktuberling`` (KDE edu): one language folder is taken to be one speaker, a
  guess; both are KDE translation teams, so the two packages' folders of one language may be the
  same person and share a :func:`split_group`. ktuberling's ``sr@*`` folders repeat ``sr``.
- ``tuxpaint``: stamp descriptions ``<stamp>_desc_<lang>.ogg`` (``_desc.ogg`` is English), one
  volunteer per language (a guess; the package credits one per language).
- ``fillets``: game dialogue ``<level>-<character>-<line>.ogg``; only the two fish, each one
  professional voice per language: ``m`` the small fish (female), ``v`` the big fish (male).
- ``festvox``: festvox-ru's 620 read sentences, one male speaker; it depends on festival, so the
  install script unpacks the .deb under :data:`FESTVOX_DIR` instead of installing it.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

APT_PACKAGES = (
    "asterisk-core-sounds-en-wav",
    "asterisk-core-sounds-fr-wav",
    "asterisk-core-sounds-it-wav",
    "asterisk-core-sounds-ru-wav",
    "asterisk-prompt-it-menardi-wav",
    "asterisk-prompt-fr-armelle",
    "asterisk-prompt-es-co",
    "klettres-data",
    "ktuberling-data",
    "tuxpaint-stamps-default",
    "fillets-ng-data-cs",
    "fillets-ng-data-nl",
)
FESTVOX_DIR = Path("usr/local/share/edgesep/festvox-ru")  # relative to the root
_ASTERISK = Path("usr/share/asterisk/sounds")
_KLETTRES = Path("usr/share/klettres")
_KTUBERLING = Path("usr/share/ktuberling/sounds")
_TUXPAINT = Path("usr/share/tuxpaint/stamps")
_FILLETS = Path("usr/share/games/fillets-ng/sound")
_FESTVOX_WAV = Path("usr/share/festival/voices/russian/msu_ru_nsh_clunits/wav")
_FISH = {"m": "f", "v": "m"}  # fillets character code -> sex
_AUDIO = (".wav", ".ogg", ".opus")


@dataclass(frozen=True)
class Voice:
    """One speaker: its files, source package, language and sex (None where undocumented)."""

    speaker: str
    files: tuple[Path, ...]
    source: str
    language: str
    sex: str | None


def read_clip(path: Path, data: bytes | None = None) -> tuple[np.ndarray, int]:
    """Mono float32 samples and rate of a recording (decoded from ``data``, its bytes, when the
    caller has read them already); ``.gsm`` is raw GSM 6.10 at 8 kHz."""
    source: str | io.BytesIO = str(path) if data is None else io.BytesIO(data)
    if path.suffix == ".gsm":
        x, sr = sf.read(
            source, format="RAW", subtype="GSM610", samplerate=8000, channels=1, dtype="float32"
        )
        return np.asarray(x, dtype=np.float32), int(sr)
    x, sr = sf.read(source, dtype="float32", always_2d=True)
    return np.ascontiguousarray(x.mean(axis=1)), int(sr)


def _asterisk(root: Path) -> list[Voice]:
    base = root / _ASTERISK
    out: list[Voice] = []
    if not base.is_dir():
        return out
    for d in sorted(base.iterdir()):
        m = re.fullmatch(r"([a-z]{2})_[A-Z]{2}_([fm])_\w+", d.name)
        if m and d.is_dir() and not d.is_symlink():
            files = tuple(sorted(d.rglob("*.wav")))
            out.append(Voice(f"asterisk-{d.name}", files, "asterisk", m.group(1), m.group(2)))
    for lang, name, sex in (("fr", "fr_armelle", "f"), ("es", "es_co", None)):
        # prompts in sounds/<lang>/ and in sounds/<category>/<lang>/ (digits, letters, ...)
        gsm = sorted((base / lang).rglob("*.gsm")) if (base / lang).is_dir() else []
        gsm += sorted(base.glob(f"*/{lang}/*.gsm"))
        if gsm:
            out.append(Voice(f"asterisk-{name}", tuple(sorted(set(gsm))), "asterisk", lang, sex))
    return out


def _per_language(
    base: Path, source: str, pattern: str, skip: Callable[[str], bool] = lambda _: False
) -> list[Voice]:
    if not base.is_dir():
        return []
    out = []
    for d in sorted(p for p in base.iterdir() if p.is_dir() and not skip(p.name)):
        files = tuple(sorted(f for f in d.glob(pattern) if f.suffix in _AUDIO))
        if files:
            out.append(Voice(f"{source}-{d.name}", files, source, d.name.split("_")[0], None))
    return out


def _tuxpaint(root: Path) -> list[Voice]:
    by_lang: dict[str, list[Path]] = {}
    base = root / _TUXPAINT
    for f in sorted(base.rglob("*_desc*.ogg")) if base.is_dir() else []:
        m = re.fullmatch(r".+_desc(?:_([A-Za-z]+))?", f.stem)
        if m:
            by_lang.setdefault(m.group(1) or "en", []).append(f)
    return [
        Voice(f"tuxpaint-{k}", tuple(v), "tuxpaint", k, None) for k, v in sorted(by_lang.items())
    ]


def _fillets(root: Path) -> list[Voice]:
    by_voice: dict[tuple[str, str], list[Path]] = {}
    base = root / _FILLETS
    for f in sorted(base.rglob("*.ogg")) if base.is_dir() else []:
        parts = f.stem.split("-")
        if len(parts) >= 3 and parts[-2] in _FISH:
            by_voice.setdefault((f.parent.name, parts[-2]), []).append(f)
    return [
        Voice(f"fillets-{lang}-{ch}", tuple(v), "fillets", lang, _FISH[ch])
        for (lang, ch), v in sorted(by_voice.items())
    ]


def _festvox(root: Path) -> list[Voice]:
    d = root / FESTVOX_DIR / _FESTVOX_WAV
    files = tuple(sorted(d.glob("*.wav"))) if d.is_dir() else ()
    return [Voice("festvox-ru_nsh", files, "festvox", "ru", "m")] if files else []


def find_voices(root: str | Path = "/") -> dict[str, Voice]:
    """Every voice of the catalogue found under ``root``, by speaker id."""
    root = Path(root)
    voices = [
        *_asterisk(root),
        *_per_language(root / _KLETTRES, "klettres", "*/*.ogg"),
        *_per_language(root / _KTUBERLING, "ktuberling", "*", lambda n: "@" in n),
        *_tuxpaint(root),
        *_fillets(root),
        *_festvox(root),
    ]
    return {v.speaker: v for v in voices}


def split_group(speaker: str) -> str:
    """Speakers that may be one person share a group, and groups never cross splits."""
    source, _, voice = speaker.partition("-")
    return f"kde-{voice}" if source in ("klettres", "ktuberling") else speaker
