"""The speaker table of docs/DATA.md, from the card of the many-voice corpus.

    python benchmarks/voices_table.py [data/voices8k]

Copies the card to benchmarks/results/voices8k-card.json and rewrites the table between the
``voices-table`` markers of docs/DATA.md.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "DATA.md"
RESULT = ROOT / "benchmarks" / "results" / "voices8k-card.json"
BEGIN, END = "<!-- voices-table: begin -->", "<!-- voices-table: end -->"


def table(card: dict) -> str:
    rows = [
        "| speaker | split | source | language | sex | median F0 (Hz) | minutes | clips dropped |",
        "| --- | --- | --- | --- | --- | ---: | ---: | ---: |",
    ]
    order = {"test": 0, "valid": 1, "train": 2}
    for name, s in sorted(card["speakers"].items(), key=lambda kv: (order[kv[1]["split"]], kv[0])):
        dropped = s["dropped"]["clipped"] + s["dropped"]["empty"] + s["dropped"]["unreadable"]
        rows.append(
            f"| {name} | {s['split']} | {s['source']} | {s['language']} | {s['sex'] or '?'} | "
            f"{s['median_f0_hz']:.0f} | {s['minutes']:.1f} | {dropped} |"
        )
    minutes = {
        split: sum(s["minutes"] for s in card["speakers"].values() if s["split"] == split)
        for split in ("train", "valid", "test")
    }
    summary = ", ".join(
        f"{split} {len(card['speakers_per_split'][split])} speakers / {m / 60:.2f} h"
        for split, m in minutes.items()
    )
    return f"{summary} (content hash `{card['content_hash'][:12]}`).\n\n" + "\n".join(rows)


def main() -> None:
    corpus = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "data" / "voices8k")
    card = json.loads((corpus / "card.json").read_text())
    RESULT.write_text(json.dumps(card, indent=2) + "\n")
    doc = DOC.read_text()
    new = f"{BEGIN}\n{table(card)}\n{END}"
    if BEGIN in doc:
        doc = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: new, doc, flags=re.S)
    else:
        doc += f"\n{new}\n"
    DOC.write_text(doc)
    print(f"wrote {RESULT} and the table of {DOC}")


if __name__ == "__main__":
    main()
