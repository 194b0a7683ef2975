"""Where tests find the official ACEBench English data: $TOOLACE_ACEBENCH_DIR, else ../shared/data/acebench
beside the repository (tests that need it skip with the reason when neither holds it)."""
from __future__ import annotations

import os
from pathlib import Path

DATA = Path(os.environ.get("TOOLACE_ACEBENCH_DIR")
            or Path(__file__).resolve().parents[2].parent / "shared" / "data" / "acebench")
HAVE = (DATA / "data_all" / "data_en").is_dir()
SKIP_REASON = f"official ACEBench items not found at {DATA} (set TOOLACE_ACEBENCH_DIR)"
