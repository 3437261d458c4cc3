"""Builders of hostile import files too large to keep in the repository (the corpus test calls them).

Run as a script to write them into a folder: `python -m tests.bad_inputs.build_large DIR`.
"""
from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

MEGABYTE = 1 << 20


def zip_bomb(path: Path, megabytes: int = 260) -> Path:
    """An Inspect .eval whose one sample member inflates to `megabytes` of spaces (about 1 MB on disk)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("header.json", json.dumps({"version": 2, "status": "success",
                                                    "eval": {"task": "bomb", "model": "m"}}))
        with archive.open("samples/1_epoch_1.json", "w", force_zip64=True) as member:
            chunk = b" " * MEGABYTE
            for _ in range(megabytes):
                member.write(chunk)
    return path


def endless_line(path: Path, megabytes: int = 65) -> Path:
    """A chat JSONL file whose first line is longer than a line may be (a stand-in for /dev/zero)."""
    with open(path, "wb") as out:
        out.write(b'{"messages": [{"role": "user", "content": "')
        chunk = b"x" * MEGABYTE
        for _ in range(megabytes):
            out.write(chunk)
    return path


BUILDERS = {"zip-bomb.eval": zip_bomb, "endless-line.jsonl": endless_line}

if __name__ == "__main__":
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    for name, build in BUILDERS.items():
        print(build(folder / name))
