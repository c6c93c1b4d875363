"""Write the demo PubMedQA-style set (data_prep/demo_qa.py) for the demo corpus of a data_prep run.

    python -m train.prepare_demo_qa runs/demo/data runs/demo/qa
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        sys.exit("usage: python -m train.prepare_demo_qa <data_prep out_dir> <qa out dir>")
    from data_prep.demo_qa import generate_demo_pubmedqa

    data_dir, out = Path(args[0]), Path(args[1])
    corpus = data_dir / "cache" / "demo"
    if not corpus.is_dir():
        sys.exit(f"error: {corpus} not found; run `python -m data_prep source=demo out_dir={data_dir}` first")
    paths = generate_demo_pubmedqa(out, corpus)
    for role, p in paths.items():
        print(f"{role}: {p}")


if __name__ == "__main__":
    main()
