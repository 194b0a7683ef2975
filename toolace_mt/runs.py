"""Run directories: the resolved recipe, resume, refusal of a changed recipe, one writer at a time.

A run directory holds ``recipe.yaml`` (the resolved recipe the run was started with). Starting the same run
again resumes it; starting it with a different recipe is refused with a diff, unless ``restart=True``, which
clears the directory first. `prepare_run_dir` takes an exclusive lock (``fcntl.flock`` on ``.lock`` in the
directory, held until the process ends or `release_run_dir`): a second process writing into the same run
directory is refused with `RunLocked` instead of mixing two runs' outputs. Files are written atomically
(temp file, ``fsync``, rename) so a killed run or a power cut never leaves half a file behind; JSON is
written strictly (no NaN/Infinity; a lone surrogate is escaped, not a UnicodeEncodeError), and credentials
registered with `toolace_mt.llm.redact` never reach a file.
"""
from __future__ import annotations

import difflib
import errno
import json
import os
import platform
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable

import yaml

RECIPE_FILE = "recipe.yaml"


class RecipeChanged(RuntimeError):
    pass


class RunLocked(RuntimeError):
    """Another process holds the run directory's lock."""


class DiskFull(OSError):
    """A write failed for lack of space (ENOSPC/EDQUOT); says which file."""


LOCK_FILE = ".lock"
_HELD: dict[str, Any] = {}  # resolved run dir -> open lock file (flock is per open file, so keep it open)


def _redact(text: str) -> str:
    from toolace_mt.llm.redact import redact_registered

    return redact_registered(text)


def dump_yaml(obj: Any) -> str:
    return yaml.safe_dump(obj, sort_keys=True, default_flow_style=False, allow_unicode=True)


def _umask() -> int:
    mask = os.umask(0)  # chosen: the only portable way to read the umask is to set it and put it back
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str, fsync: bool = True) -> None:
    """Write ``text`` to ``path`` atomically: temp file in the same directory, fsync, rename, fsync the
    directory. ``fsync=False`` for files that are only a cache (a lost entry is recomputed). Disk full is a
    `DiskFull` naming the file; a lone surrogate is written as U+FFFD rather than failing the run."""
    path = Path(path)
    text = _redact(text)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; the file gets the mode a plain open() gives it
        with os.fdopen(fd, "w", encoding="utf-8", errors="replace") as f:
            f.write(text)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
        if fsync:
            _fsync_dir(path.parent)
    except BaseException as e:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT) and not isinstance(e, DiskFull):
            raise DiskFull(e.errno, f"disk full while writing {path}; free space and rerun the same command "
                                    f"(it resumes from the last complete step)") from e
        raise


def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on a directory; the file itself is synced
        pass
    finally:
        os.close(fd)


def dumps_strict(obj: Any, **kw: Any) -> str:
    """`json.dumps` for run files: NaN/Infinity refused (ValueError: they are not JSON); a string that cannot
    be encoded as UTF-8 (a lone surrogate) falls back to ASCII escapes, which stay valid, lossless JSON."""
    kw.setdefault("ensure_ascii", False)
    kw.setdefault("default", str)
    text = json.dumps(obj, allow_nan=False, **kw)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(obj, allow_nan=False, **{**kw, "ensure_ascii": True})
    return text


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, dumps_strict(obj, indent=2) + "\n")


def atomic_write_jsonl(path: str | Path, rows: Iterable[Any]) -> None:
    atomic_write_text(path, "".join(dumps_strict(r) + "\n" for r in rows))


def read_jsonl(path: str | Path) -> list[Any]:
    """Rows of a JSONL file; a bad line is a `ValueError` naming file:line (the CLI prints it, exit 2)."""
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{n}: not valid JSON: {e.msg}") from None
    return out


def lock_run_dir(out: str | Path) -> Path:
    """Create ``out`` and take its exclusive lock for this process (idempotent). `RunLocked` if another
    process holds it. The lock goes with the process (kill -9 included): there is no stale lock to clean."""
    import fcntl

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, f"run directory {out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    key = str(out.resolve())
    if key in _HELD:
        return out
    for k in [k for k in _HELD if not os.path.isdir(k)]:  # run dirs deleted meanwhile (tests): free their fds
        _HELD.pop(k).close()
    f = open(out / LOCK_FILE, "a+")
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip()
        f.close()
        raise RunLocked(f"run directory {out} is in use by another process{f' ({holder})' if holder else ''}; "
                        f"wait for it, or use another --out") from None
    f.seek(0)
    f.truncate()
    f.write(f"pid {os.getpid()} on {platform.node()}\n")
    f.flush()
    _HELD[key] = f
    return out


def release_run_dir(out: str | Path) -> None:
    """Drop this process's lock on ``out`` (no-op when not held)."""
    f = _HELD.pop(str(Path(out).resolve()), None)
    if f is not None:
        f.close()


def release_all_run_dirs() -> None:
    """Drop every run-directory lock this process holds (the CLI does this when a command ends)."""
    while _HELD:
        _HELD.popitem()[1].close()


def prepare_run_dir(out: str | Path, resolved: dict[str, Any], restart: bool = False,
                    ignore_keys: tuple[str, ...] = ()) -> Path:
    """Create or reopen a run directory for `resolved` (a plain dict). Refuse a changed recipe with a diff.

    `ignore_keys` are top-level keys that may differ on a resume (e.g. a progress-bar switch).
    """
    out = Path(out)
    new_text = dump_yaml(resolved)
    rf = out / RECIPE_FILE
    lock_run_dir(out)
    if rf.exists() and not restart:
        try:
            old = yaml.safe_load(rf.read_text()) or {}
        except yaml.YAMLError as e:
            raise RecipeChanged(f"{rf}: not valid YAML ({e}); use --restart to discard the run") from None
        if not isinstance(old, dict):
            raise RecipeChanged(f"{rf}: not a recipe mapping; use --restart to discard the run")
        strip = lambda d: {k: v for k, v in d.items() if k not in ignore_keys}  # noqa: E731
        if strip(old) != strip(resolved):
            diff = "".join(difflib.unified_diff(dump_yaml(strip(old)).splitlines(True),
                                                dump_yaml(strip(resolved)).splitlines(True),
                                                fromfile=f"{rf} (existing run)", tofile="requested recipe"))
            raise RecipeChanged(f"run directory {out} was started with a different recipe; "
                                f"use --restart to discard it, or another --out.\n{diff}")
        return out
    if restart:  # clear everything but the lock we hold
        for child in out.iterdir():
            if child.name == LOCK_FILE:
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    atomic_write_text(rf, new_text)
    return out


def last_complete_checkpoint(root: str | Path) -> str | None:
    """The newest ``checkpoint-N`` under ``root`` that was written completely (a readable
    ``trainer_state.json`` and model weights), else None. A checkpoint cut by a kill while it was being
    saved is skipped, so a rerun resumes from the one before instead of failing on it."""
    root = Path(root)
    if not root.is_dir():
        return None
    weights = ("adapter_model.safetensors", "adapter_model.bin", "model.safetensors", "pytorch_model.bin",
               "model.safetensors.index.json", "pytorch_model.bin.index.json")
    found = []
    for d in root.iterdir():
        name = d.name
        if d.is_dir() and name.startswith("checkpoint-") and name[len("checkpoint-"):].isdigit():
            found.append((int(name[len("checkpoint-"):]), d))
    for _, d in sorted(found, reverse=True):
        try:
            state = json.loads((d / "trainer_state.json").read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(state, dict) or not any((d / w).is_file() and (d / w).stat().st_size > 0 for w in weights):
            continue
        return str(d)
    return None


# the packages whose versions a result depends on (recorded by `machine_info`, pinned in constraints.txt)
RECORDED_PACKAGES = ("torch", "transformers", "trl", "peft", "datasets", "accelerate", "tokenizers", "numpy",
                     "vllm", "ray", "bfcl_eval")


def package_versions() -> dict[str, str]:
    """Installed versions of `RECORDED_PACKAGES` (from package metadata: nothing is imported)."""
    from importlib import metadata

    out = {}
    for name in RECORDED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def machine_info() -> dict[str, Any]:
    """What a result ran on, for reports: the machine and the versions of the packages that decide the numbers."""
    info = {"platform": platform.platform(), "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count()}
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
        info["memory_gb"] = round(kb / 1024 / 1024, 1)
    except OSError:
        pass
    try:
        import torch

        info["torch"] = torch.__version__
        info["cuda"] = torch.cuda.is_available()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
        info["torch_threads"] = torch.get_num_threads()
    except Exception:  # torch missing or broken: the report still says what we know
        pass
    info["packages"] = package_versions()
    return info
