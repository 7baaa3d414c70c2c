"""Copy the bundled demo example out of the unseen-real-speaker test set: the June + Carlo
mixture (the two CC-BY / CC-BY-SA voices, src/edgesep/zoo/examples/README.md) whose SI-SNRi with
the bundled model is closest to the model's median over the whole test set: a typical case.

Usage: python scripts/make_demo_example.py [EVAL_DIR] [TEST_DIR]
EVAL_DIR holds per_file.csv of `edgesep evaluate` on TEST_DIR (scripts/bundle_model.py writes
out/eval/convtasnet-tiny-8k/voices-test). The quality fixture's mixtures are left out. The choice
and its figures are recorded in src/edgesep/zoo/examples/two_speakers_8k.json.
"""

from __future__ import annotations

import csv
import json
import shutil
import statistics
import sys
from pathlib import Path

from edgesep.zoo import DEFAULT_MODEL, weights_sha256

VOICES = ("asterisk-fr_CA_f_June", "asterisk-it_IT_m_Carlo")
EXAMPLES = Path("src/edgesep/zoo/examples")
FIXTURE = Path("tests/fixtures/bundled-quality/mix")


def main(eval_dir: Path, test_dir: Path) -> None:
    with open(eval_dir / "per_file.csv") as f:
        scores = {r["id"]: float(r["si_snri"]) for r in csv.DictReader(f) if r["system"] == "model"}
    median = statistics.median(scores.values())
    taken = {p.stem for p in FIXTURE.glob("*.wav")}
    pairs = {k: v for k, v in scores.items() if all(x in k for x in VOICES) and k not in taken}
    if not pairs:
        sys.exit(f"{eval_dir}: no June + Carlo mixture scored")
    chosen = min(pairs, key=lambda k: abs(pairs[k] - median))
    for sub, suffix in (("mix", ""), ("s1", "_s1"), ("s2", "_s2")):
        shutil.copyfile(test_dir / sub / f"{chosen}.wav", EXAMPLES / f"two_speakers_8k{suffix}.wav")
    record = {
        "mixture": chosen,
        "test_set": str(test_dir),
        "model": DEFAULT_MODEL,
        "model_weights_sha256": weights_sha256(DEFAULT_MODEL),
        "si_snri_db": round(pairs[chosen], 3),
        "test_median_si_snri_db": round(median, 3),
    }
    (EXAMPLES / "two_speakers_8k.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"example {chosen}: SI-SNRi {pairs[chosen]:.2f} dB; test median {median:.2f} dB")


if __name__ == "__main__":
    args = sys.argv[1:]
    main(
        Path(args[0] if args else "out/eval/convtasnet-tiny-8k/voices-test"),
        Path(args[1] if len(args) > 1 else "data/mix8k/voices-test"),
    )
