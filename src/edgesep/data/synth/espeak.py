"""In-process speech synthesis with eSpeak NG, bundled by the ``espeakng-loader`` wheel.

The wheel ships ``libespeak-ng`` and its data but no Python API; the existing wrappers either
call the ``espeak-ng`` program (not installed here) or only phonemise text, so this module binds
the handful of C functions needed with ctypes. The C library keeps one synthesiser per process, so
:class:`ESpeak` initialises it once and serialises calls.

The output of a call is not a function of its arguments alone: the synthesiser carries state from
one utterance to the next (pitch-flutter and waveform phase) and draws breath and Klatt noise
from its own generator. ``seed`` fixes the generator; the same sequence of calls in a fresh
process then gives the same samples, which is how :mod:`edgesep.data.synth.speech` makes corpora
reproducible.

References: eSpeak NG ``speak_lib.h`` (espeak_Initialize, espeak_SetVoiceByName,
espeak_SetParameter, espeak_Synth, espeak_TextToPhonemes).
"""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path

import numpy as np

from edgesep.errors import EdgesepError

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_IPA = 0x02  # espeakPHONEMES_IPA
_PARAM = {"rate": 1, "volume": 2, "pitch": 3, "range": 4}
_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class ESpeakError(EdgesepError, RuntimeError):
    pass


class ESpeak:
    """The process's eSpeak NG synthesiser (22.05 kHz int16 output converted to float32)."""

    _lock = threading.Lock()
    _instance: ESpeak | None = None

    def __new__(cls) -> ESpeak:
        with cls._lock:
            if cls._instance is None:
                inst = super().__new__(cls)
                inst._init()
                cls._instance = inst
            return cls._instance

    def _init(self) -> None:
        try:
            import espeakng_loader
        except ImportError:
            raise ESpeakError(
                "espeakng-loader is not installed: pip install 'edgesep[data]'"
            ) from None
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        data_dir = Path(espeakng_loader.get_data_path())
        self.data_dir = data_dir
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, str(data_dir.parent).encode(), _INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            raise ESpeakError(f"espeak_Initialize failed with data at {data_dir}")
        self.sample_rate = int(rate)
        self._chunks: list[np.ndarray] = []

        def on_audio(wav: ctypes._Pointer[ctypes.c_short], n: int, _events: int) -> int:
            if n > 0:
                self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            return 0

        self._callback = _CALLBACK(on_audio)  # keep a reference: C holds only the pointer
        lib.espeak_SetSynthCallback(self._callback)
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        # espeak_ng_SetRandSeed is newer than the rest of the API: seeding is skipped without it
        self._set_seed = getattr(lib, "espeak_ng_SetRandSeed", None)
        if self._set_seed is not None:
            self._set_seed.argtypes = [ctypes.c_long]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        lib.espeak_TextToPhonemes.argtypes = [
            ctypes.POINTER(ctypes.c_char_p),
            ctypes.c_int,
            ctypes.c_int,
        ]
        self._variants = frozenset(self.variants())
        self._lib = lib

    def languages(self) -> list[str]:
        """Languages with a pronunciation dictionary in the bundled data."""
        return sorted(p.name[: -len("_dict")] for p in self.data_dir.glob("*_dict"))

    def variants(self) -> list[str]:
        """Voice variants (timbres) such as m1..m7, f1..f5, klatt."""
        return sorted(p.name for p in (self.data_dir / "voices" / "!v").iterdir() if p.is_file())

    def phonemes(self, text: str, language: str = "en") -> str:
        """``text`` in IPA as eSpeak NG's dictionary and rules read it, clause by clause."""
        with self._lock:
            if self._lib.espeak_SetVoiceByName(language.encode()) != 0:
                raise ESpeakError(f"eSpeak NG has no voice {language!r}")
            buf = ctypes.c_char_p(text.encode("utf-8"))
            out = []
            while buf.value:
                ipa = self._lib.espeak_TextToPhonemes(ctypes.byref(buf), _CHARS_UTF8, _IPA)
                if ipa:
                    out.append(ipa.decode("utf-8").strip())
            return " ".join(p for p in out if p)

    def synth(
        self,
        text: str,
        language: str = "en",
        variant: str | None = None,
        pitch: int = 50,
        pitch_range: int = 50,
        rate: int = 175,
        seed: int | None = None,
    ) -> np.ndarray:
        """Speak ``text``; returns float32 mono samples at :attr:`sample_rate`.

        ``pitch`` and ``pitch_range`` are 0..100, ``rate`` is words per minute (80..450).
        ``seed`` reseeds the synthesiser's noise generator first (see the module notes).
        Raises :class:`ESpeakError` for an unknown language or variant.
        """
        voice = f"{language}+{variant}" if variant else language
        # eSpeak NG silently falls back to the plain language for an unknown variant
        if variant and variant not in self._variants:
            raise ESpeakError(f"eSpeak NG has no voice variant {variant!r} (voice {voice!r})")
        with self._lock:
            if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise ESpeakError(f"eSpeak NG has no voice {voice!r}")
            if seed is not None and self._set_seed is not None:
                self._set_seed(int(seed) & 0x7FFFFFFF)
            for name, value in (("pitch", pitch), ("range", pitch_range), ("rate", rate)):
                self._lib.espeak_SetParameter(_PARAM[name], int(value), 0)
            self._chunks = []
            buf = text.encode("utf-8") + b"\0"
            err = self._lib.espeak_Synth(
                buf, len(buf), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
            )
            if err != 0:
                raise ESpeakError(f"espeak_Synth failed ({err}) for voice {voice!r}")
            self._lib.espeak_Synchronize()
            chunks, self._chunks = self._chunks, []
        if not chunks:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(chunks).astype(np.float32) / 32768.0
