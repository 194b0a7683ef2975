"""`toolace-mt data bfcl --version v3`: the paper-era BFCL v3 files from the package index.

BFCL's v3 data (single-turn and multi-turn ``BFCL_v3_*.json``, their possible answers, the multi-turn function
docs) and the multi-turn env classes of the same release are unpacked from the bfcl-eval wheel pinned in
`official` (``pip download --no-deps bfcl-eval==2025.8.6.2``: the index is reachable wherever the project
installs), after checking the wheel's sha256. ``manifest.json`` records the release, the wheel's sha256 and
every unpacked file's sha256; a later call with a matching manifest does nothing.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Optional

from ...config import RecipeError
from . import official

MEMBERS = ("bfcl_eval/data/", "bfcl_eval/eval_checker/multi_turn_eval/func_source_code/")
SKIP = ("bfcl_eval/data/unused_datasets/",)  # chosen: not part of any scored category


def _sha256(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _download(tmp: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "-q", "-d", str(tmp),
           f"bfcl-eval=={official.V3_RELEASE}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    wheel = tmp / official.V3_WHEEL
    if proc.returncode != 0 or not wheel.is_file():
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RecipeError(f"pip download bfcl-eval=={official.V3_RELEASE} failed: {last} (offline? pass --wheel "
                          "PATH to a downloaded wheel)")
    return wheel


def fetch_v3(dest: Optional[Path] = None, wheel: Optional[Path] = None, force: bool = False) -> dict[str, Any]:
    dest = Path(dest) if dest else official.v3_dir()
    man_path = dest / "manifest.json"
    if man_path.is_file() and not force:
        man = json.loads(man_path.read_text())
        if man.get("wheel_sha256") == official.V3_WHEEL_SHA256 and all(
                (dest / f).is_file() and _sha256(dest / f) == h for f, h in man.get("files", {}).items()):
            return {"status": "up to date", "files": len(man["files"]), "release": man["release"]}
    with tempfile.TemporaryDirectory() as tmp:
        whl = Path(wheel) if wheel else _download(Path(tmp))
        if not whl.is_file():
            raise RecipeError(f"--wheel: {whl} is not a file")
        got = _sha256(whl)
        if got != official.V3_WHEEL_SHA256:
            raise RecipeError(f"{whl}: sha256 {got} is not bfcl-eval {official.V3_RELEASE}'s "
                              f"{official.V3_WHEEL_SHA256}")
        files: dict[str, str] = {}
        with zipfile.ZipFile(whl) as z:
            for info in z.infolist():
                name = info.filename
                if info.is_dir() or not name.startswith(MEMBERS) or name.startswith(SKIP) or "__pycache__" in name:
                    continue
                rel = Path("data" if name.startswith(MEMBERS[0]) else "func_source_code") / \
                    Path(name).relative_to(MEMBERS[0] if name.startswith(MEMBERS[0]) else MEMBERS[1])
                out = dest / rel
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(z.read(info))
                files[rel.as_posix()] = _sha256(out)
    man = {"release": official.V3_RELEASE, "wheel": official.V3_WHEEL, "wheel_sha256": official.V3_WHEEL_SHA256,
           "files": dict(sorted(files.items()))}
    man_path.write_text(json.dumps(man, indent=1) + "\n")
    return {"status": "fetched", "files": len(files), "release": official.V3_RELEASE, "dest": str(dest)}
