"""Executors: where the shards of a run execute. ``local`` (default) runs in this process; ``ray`` runs each
``--shard i/N`` of a run as one Ray task and joins them with the existing shard merge. This module is the Ray
plumbing (connect, submit and wait, resources per shard); `toolace_mt.generation.distributed` and
`toolace_mt.evaluation.distributed` use it for `generate` and `evaluate`.

Nothing here schedules: Ray places the tasks on nodes with the resources each asks for (``num_gpus`` for an
in-process model, CPU only for a model behind an HTTP endpoint), re-runs a task whose worker died
(``max_retries``), and we only wait on the futures. A retried shard resumes from its last finished
(chunk, stage) file, so a kill changes nothing in the result. Each shard writes its own run directory under
``<out>/shards/``; on a cluster ``<out>`` must be on storage every node mounts at the same path (NFS, a
shared volume), since workers write there and the driver merges from there.

`evaluate` fans out the same way over contiguous chunks of the selected tasks; the joined trajectories are
scored in ``<out>`` exactly as a one-process run scores its own.

`reproduce` fans out over its steps: each phase (the data of every arm; the base model; the arms' fine-tunes;
every arm x evaluation) is one batch of Ray tasks, one task per step, each asking for the resources of its own
sub-recipe (`toolace_mt.app.reproduce_ray`).

Ray is an optional extra (``pip install 'toolace-mt[ray]'``), imported only when this executor is used.
"""
from __future__ import annotations

import os
import threading
from typing import Any, Callable, Optional

from .config import RecipeError

MISSING_RAY = "the ray executor needs Ray, which is not installed: pip install 'toolace-mt[ray]'"
EXECUTORS = ("local", "ray")
MAX_RETRIES = 3  # chosen: a shard whose worker dies (OOM, preemption, node loss) is re-run up to 3 times
# chosen: 5 s: a Ray head on the same network accepts a TCP connection in milliseconds; an address that does not
# (nothing listening, a firewall that drops packets, a name that does not resolve) is refused within this bound
# instead of ray.init retrying for minutes (issue 24: `--address 127.0.0.1:1` never returned)
CONNECT_TIMEOUT_S = 5.0


def import_ray():
    try:
        import ray
    except ImportError:
        raise RecipeError(MISSING_RAY) from None
    return ray


def _bounded(fn: Callable[[], Any], timeout: float) -> Any:
    """``fn()`` in a daemon thread, waited on for `timeout` s (name resolution has no timeout of its own)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # handed to the caller
            box["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise TimeoutError(f"no answer within {timeout:g} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _address_from_environment(address: Optional[str]) -> tuple[Optional[str], str]:
    """(host:port Ray will join for `address` or None for a new local instance, where that came from)."""
    if address and address not in ("auto", "local"):
        return address, "--address"
    if address == "local":
        return None, ""
    env = os.environ.get("RAY_ADDRESS")
    if env and env not in ("auto", "local"):
        return env, "RAY_ADDRESS"
    if address == "auto" or env == "auto":  # the cluster `ray start` on this machine recorded, if any
        try:
            from ray._private.services import get_ray_address_from_environment

            found = get_ray_address_from_environment("auto", None)
        except ImportError:  # chosen: Ray's private helper moved: leave `auto` to ray.init
            return None, ""
        except Exception as e:  # no running cluster: Ray raises ConnectionError
            raise RecipeError(f"--address auto: no running Ray cluster found on this machine ({e}); start one with "
                              "`ray start --head` or give HOST:PORT") from None
        return found, "--address auto"
    return None, ""


def check_address(address: Optional[str], timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Refuse, within `timeout` seconds, a Ray address nothing answers on (``HOST:PORT``, ``ray://HOST:PORT``,
    ``auto``, or ``RAY_ADDRESS`` when no address is given); ray.init itself would retry for many minutes. A
    port that accepts connections but is not a Ray head is left to Ray."""
    target, source = _address_from_environment(address)
    if not target:
        return
    import socket

    rest = target[len("ray://"):] if target.startswith("ray://") else target
    host, sep, port = rest.rpartition(":")
    host = host.strip("[]")  # [::1]:6379
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise RecipeError(f"{source} {target}: expected HOST:PORT, ray://HOST:PORT or auto")

    def probe() -> None:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass

    try:
        _bounded(probe, timeout + 1.0)
    except (OSError, TimeoutError) as e:
        why = e.strerror if isinstance(e, OSError) and e.strerror else str(e) or type(e).__name__
        raise RecipeError(f"{source} {target}: no Ray head answers there ({why}; waited at most {timeout:g} s); "
                          "start one with `ray start --head` or fix the address") from None


def connect(address: Optional[str] = None):
    """The Ray module, initialised: joins `address` (``auto``, ``ray://host:10001``, ``host:6379``) or the
    running session; with neither, Ray starts a local instance on this machine. An address nothing answers on
    is refused within `CONNECT_TIMEOUT_S` (`check_address`)."""
    ray = import_ray()
    if not ray.is_initialized():
        check_address(address)
        kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True}
        if address:
            kw["address"] = address
        ray.init(**kw)
    return ray


def model_gpus(backend: str, extra: dict[str, Any], device: str, gpus_in_cluster: Optional[float] = None) -> float:
    """GPUs one in-process model of `backend` needs, as the backend class says (its ``ray_gpus`` hook; HTTP
    backends and offline stand-ins have none: 0). ``extra.ray_num_gpus`` overrides the figure (e.g. 0.5 to pack
    two small engines on one GPU). A name that is no registered backend (an oracle policy) needs none."""
    from .llm.client import BACKENDS

    if "ray_num_gpus" in extra:
        return float(extra["ray_num_gpus"])
    if backend not in BACKENDS:
        return 0
    hook = getattr(BACKENDS.get(backend), "ray_gpus", None)
    return hook(extra, device, gpus_in_cluster) if hook else 0


def shard_resources(llm: Any, engine: str) -> dict[str, float]:
    """Ray resources one shard asks for: the GPUs of one in-process model (`model_gpus`), else one CPU."""
    if engine != "llm" or llm is None:
        return {"num_cpus": 1, "num_gpus": 0}
    return {"num_cpus": 1, "num_gpus": model_gpus(llm.backend, llm.extra or {}, llm.device)}


def default_shards(llm: Any, engine: str) -> int:
    """Shards when ``--shards`` is not given: what the backend class's ``ray_shards`` hook says (vLLM: its
    ``data_parallel_size``), else 1."""
    if engine != "llm" or llm is None:
        return 1
    from .llm.client import BACKENDS

    hook = getattr(BACKENDS.get(llm.backend), "ray_shards", None) if llm.backend in BACKENDS else None
    return hook(llm.extra or {}) if hook else 1


def run_tasks(ray, fn: Callable, args_list: list[tuple], resources: dict[str, float], desc: str,
              max_retries: int = MAX_RETRIES) -> list[Any]:
    """Submit ``fn(*args)`` for each args as a Ray task, wait with a progress bar, return results in order.
    A task that raised re-raises here (first error wins); a dead worker is Ray's to retry."""
    return run_batch(ray, fn, args_list, [resources] * len(args_list), desc, max_retries=max_retries)


def _unlocking_task(fn: Callable, *args: Any) -> Any:
    """Run one task on a Ray worker, then drop the run-directory locks it took: Ray reuses worker processes, and
    a lock held past its task would block the next writer of that directory (the merge, a rerun)."""
    from .runs import release_all_run_dirs

    try:
        return fn(*args)
    finally:
        release_all_run_dirs()


def run_batch(ray, fn: Callable, args_list: list[tuple], resources_list: list[dict[str, float]], desc: str,
              max_retries: int = MAX_RETRIES, unit: str = "shard") -> list[Any]:
    """`run_tasks` where every task asks for its own resources (one reproduce step needs a GPU, another not)."""
    from tqdm import tqdm

    remote = ray.remote(max_retries=max_retries)(_unlocking_task)
    refs = [remote.options(**res).remote(fn, *a) for a, res in zip(args_list, resources_list)]
    pending = list(refs)
    with tqdm(total=len(refs), desc=desc, unit=unit) as bar:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            ray.get(done)  # surface a failure as soon as it happens
            bar.update(len(done))
    return ray.get(refs)


def cluster_gpus(ray) -> float:
    """GPUs the Ray cluster has now (0 on a CPU-only cluster)."""
    return float(ray.cluster_resources().get("GPU", 0))


def policy_resources(policy: Any, gpus_in_cluster: Optional[float] = None) -> dict[str, float]:
    """Ray resources of one evaluation chunk: the GPUs of the policy's in-process model, else one CPU.

    A model policy runs the backend ``extra.backend`` or, by default, the one named like its kind (see
    `evaluation.policies.client`); kinds without a model (oracle, null, replay) name no backend and need none."""
    ex = policy.extra or {}
    return {"num_cpus": 1, "num_gpus": model_gpus(ex.get("backend", policy.kind), ex, policy.device, gpus_in_cluster)}


def train_resources(gpus_in_cluster: float, devices: int = 1) -> dict[str, float]:
    """Ray resources of one training run: the recipe's `num_devices` GPUs on one node (a run with more than one
    starts ``accelerate launch`` inside its task, one process per GPU; the Trainer uses CUDA when it sees one),
    none on a cluster without GPUs, where training runs on the CPU exactly as a one-process run there would."""
    return {"num_cpus": 1, "num_gpus": devices if gpus_in_cluster > 0 else 0}
