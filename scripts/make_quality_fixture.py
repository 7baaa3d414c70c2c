"""The bundled models' quality fixture: a few real test mixtures, and each model's score on them.

Usage: python scripts/make_quality_fixture.py [--mixtures-from data/mix8k/voices-test]
Without --mixtures-from it only re-measures the committed mixtures (after a model is re-bundled).
Writes tests/fixtures/bundled-quality/{mix,s1,s2}/*.wav and expected.json, which
tests/test_zoo_bundled.py checks every bundled speech model against (within 0.1 dB).

The mixtures pair the two CC-BY / CC-BY-SA asterisk voices of the unseen-real test split (June
Wallack, Carlo Flora; see src/edgesep/zoo/examples/README.md), first 3 s of each.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import soundfile as sf
import torch

from edgesep.evaluate import evaluate
from edgesep.models.artifact import read_card
from edgesep.zoo import ZOO_DIR, bundled_names

FIXTURE = Path("tests/fixtures/bundled-quality")
VOICES = ("asterisk-fr_CA_f_June", "asterisk-it_IT_m_Carlo")
N_MIXTURES, SECONDS = 4, 3.0


def copy_mixtures(test_dir: Path) -> None:
    names = sorted(
        p.name for p in (test_dir / "mix").glob("*.wav") if all(v in p.name for v in VOICES)
    )
    # the bundled example is one of these pairs; keep the fixture apart from it
    chosen = [n for n in names if "June_0011" not in n][:N_MIXTURES]
    for sub in ("mix", "s1", "s2"):
        (FIXTURE / sub).mkdir(parents=True, exist_ok=True)
        for name in chosen:
            audio, sr = sf.read(test_dir / sub / name, dtype="int16")
            sf.write(FIXTURE / sub / name, audio[: int(SECONDS * sr)], sr, subtype="PCM_16")


def speech_models() -> list[str]:
    return [n for n in bundled_names() if read_card(ZOO_DIR / n).get("n_src") == 2]


def measure(name: str) -> dict[str, object]:
    """One model's mean SI-SNRi / SDRi on the fixture: the figures the test reproduces."""
    torch.set_num_threads(1)
    summary = evaluate(name, FIXTURE, references=False, progress=False).summary
    model = summary["systems"]["model"]
    return {
        "si_snri": round(float(model["si_snri"]["mean"]), 3),
        "sdri": round(float(model["sdri"]["mean"]), 3),
        "weights_sha256": read_card(ZOO_DIR / name)["weights_sha256"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mixtures-from", type=Path)
    args = parser.parse_args()
    if args.mixtures_from:
        copy_mixtures(args.mixtures_from)
    expected = {"n_mixtures": len(list((FIXTURE / "mix").glob("*.wav"))), "models": {}}
    for name in speech_models():
        expected["models"][name] = measure(name)  # type: ignore[index]
        print(name, expected["models"][name])  # type: ignore[index]
    (FIXTURE / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")


if __name__ == "__main__":
    main()
