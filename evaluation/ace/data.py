"""Where the official ACEBench English data comes from, and `toolace-mt data acebench` to fetch it.

Resolution order for the ``official`` source of the ace suite: the recipe's ``tasks`` path, then the environment
variable ``TOOLACE_ACEBENCH_DIR``, then ``data/acebench`` under the working directory (the default destination of
`toolace-mt data acebench`). Nothing outside the repository is looked at. When none holds the data,
`DataUnavailable` (a `RecipeError`) says so and how to get it; `toolace-mt reproduce` turns that into a step
recorded as not run.

The download takes the English data files of the public repository chenchen0103/ACEBench (MIT licence), and the
source files its agent categories and agent evaluation need (`SOURCE_FILES`; imported at run time by
`official_agent.py`, never copied into the project), at a pinned commit and checks each file's sha256 before it is kept; the base URL can be changed (``--base-url`` or
``TOOLACE_ACEBENCH_URL``) for a mirror.
"""
from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional

from ...config import RecipeError

ENV_DIR = "TOOLACE_ACEBENCH_DIR"
ENV_URL = "TOOLACE_ACEBENCH_URL"
DEFAULT_DEST = Path("data") / "acebench"  # chosen: inside the repository checkout, git-ignored
REPO = "chenchen0103/ACEBench"
COMMIT = "56dd66cf6439b0d9655ee1b353e4cd745c6f664e"  # chosen: the commit our checker was measured against
DEFAULT_BASE_URL = f"https://raw.githubusercontent.com/{REPO}/{COMMIT}/"
TIMEOUT_S = 60  # chosen: one file is at most ~1 MB

# sha256 of every English data file at COMMIT (path relative to the repository root)
FILES = {
    "data_all/data_en/data_agent_multi_step.json": "c04b7561a2a5b31b3c4fd3067807ab4e0a7907f5a72cd5ec987da3469eac1fe9",
    "data_all/data_en/data_agent_multi_turn.json": "0380631f379510fad4aab885b9679cfe99e66cf3a01e92f570f9180141f637d0",
    "data_all/data_en/data_normal_atom_bool.json": "59695e59c0d92cd22ec418bfd6f936d0d44a8d6e1fc16e6cb033b12213c57b0b",
    "data_all/data_en/data_normal_atom_enum.json": "a2e870f8ba23687ba182a2bb0bdba0a7e02c21b67f3ebc5cc07a71fc2007d31b",
    "data_all/data_en/data_normal_atom_list.json": "2e6c7c35e18379c886c17ae2f52d62637e92a388a1f810025c57206698c3e7ff",
    "data_all/data_en/data_normal_atom_number.json": "eba9d748fcd08f142abf053fe2eecc573c98232f218ff412eb9ea5350abca422",
    "data_all/data_en/data_normal_atom_object_deep.json": "2df8cd21fcf7388ee4fa0d98f0587292ba4c14b7c8bde059b3dca18ad885d1ec",
    "data_all/data_en/data_normal_atom_object_short.json": "eef597c5400e17e1c23a7548505e48139a3648d6e5bd5feabbc9b12fcf7a1a76",
    "data_all/data_en/data_normal_multi_turn_user_adjust.json": "b05dd0fe2afb02270ecbdfddfc7a8b1606339c234d5098749742e79bc51ea8cc",
    "data_all/data_en/data_normal_multi_turn_user_switch.json": "3ed94d09401c53a99c23edc8b60ebfda8d4ae486f9bea19f87b6000a66588cf0",
    "data_all/data_en/data_normal_preference.json": "61413bbfb5f94b3ad74f348d9f33c8c10b531dfcf6e5429caa3f1a91fa64252d",
    "data_all/data_en/data_normal_similar_api.json": "f3ae38a6b56ab27c47bd929f16468598636ff76ecc095ff60c41c8b5a9ee843f",
    "data_all/data_en/data_normal_single_turn_parallel_function.json":
        "7b9b9200cf5224e93f20bf14f076bead8e75d451a7dd6956d346fb1200412235",
    "data_all/data_en/data_normal_single_turn_single_function.json":
        "45278849617f4b3e290db1da13929ba0a43fc4cb3332b461560a519e32af82f2",
    "data_all/data_en/data_special_error_param.json": "3ce0f322934d8a8a96eb8bae945949f61c53b74505ba0d65c4850f98e8ba3bae",
    "data_all/data_en/data_special_incomplete.json": "186f593f8f2be7e709c5878f57d23f401c51e326ffcadcd62f9c5c08c8e34f3b",
    "data_all/data_en/data_special_irrelevant.json": "20bb62a9c48b1daf852870096f5d70d53a09a07b8f90a7c09815c6d934e8f41e",
    "data_all/data_en/possible_answer/data_agent_multi_step.json":
        "5081e9b5be93d8f9a52b91ee013250f1ae64a10d3edbe2d1225bb0beb99b160e",
    "data_all/data_en/possible_answer/data_agent_multi_turn.json":
        "ad077af54920d614438c28b3c7483d556b1a732d0dd0973c867e497c7c0a828b",
    "data_all/data_en/possible_answer/data_normal_atom_bool.json":
        "16c5c8d009d37a0dd5e398838c62857ad2ebae1eb0c0ee1a52eed39a654df86e",
    "data_all/data_en/possible_answer/data_normal_atom_enum.json":
        "01fe289a43c49b4118f063c9acc7422bc3193771fed2c1f2fbee009e44cc21ed",
    "data_all/data_en/possible_answer/data_normal_atom_list.json":
        "e71b36d87d6f3b5129026e511acb12d560d4f6ed18009fa38b82980e8a0c5f51",
    "data_all/data_en/possible_answer/data_normal_atom_number.json":
        "7b4b580781f54d7c2a308bf125753a852895b7069b75c0397d2f2131398bf5ea",
    "data_all/data_en/possible_answer/data_normal_atom_object_deep.json":
        "bf681a1cd84fb286562f3ba57ce9d28946a7cdcf8661b2aad125d69d4beecab7",
    "data_all/data_en/possible_answer/data_normal_atom_object_short.json":
        "cbe2efb23ae18454f28cdb3e5aaf223e30c2249b73d0722956f588124970e184",
    "data_all/data_en/possible_answer/data_normal_multi_turn_user_adjust.json":
        "a570117cde521c5d1c16adc2d461b8845c969a3334192bd357dec13cf6657889",
    "data_all/data_en/possible_answer/data_normal_multi_turn_user_switch.json":
        "ca0c10778a899fecd3b9767dae7d188d9924a0dbb191e2e6bc0b5808b8baa37e",
    "data_all/data_en/possible_answer/data_normal_preference.json":
        "ed9da0b58446812e8be562fb0594989bd759c249c1cdcd722a9dee5e89ee6644",
    "data_all/data_en/possible_answer/data_normal_similar_api.json":
        "0976f8fd3f11b9d5ba3783dc746158aeea3fdb1b34a46b07f3c4c731375a8543",
    "data_all/data_en/possible_answer/data_normal_single_turn_parallel_function.json":
        "fac555edad6f61927093504f10bdaef3cf54fbd587affcf3ce52b9f4ec0d3aa0",
    "data_all/data_en/possible_answer/data_normal_single_turn_single_function.json":
        "e541ad06ecaf49310105209222b9788711cc15d684174276f56224e584b8589d",
    "data_all/data_en/possible_answer/data_special_error_param.json":
        "5e4c8b8ca768d65372fac1e54c16ef90bf6c8869b8163a00a4afcc47867249b8",
    "data_all/data_en/possible_answer/data_special_incomplete.json":
        "2995a33b6c539bc29fe38a326a58d7989c6cf1b1bdaa22ff76c8d318b92f5f6d",
    "data_all/data_en/possible_answer/data_special_irrelevant.json":
        "cd3f1d66e554869e8870677acc07df78c6ebf8bbba6e600cbb825072181566b8",
}
# sha256 of the ACEBench source files the official agent categories import at run time, at the same COMMIT: the
# scenario classes (phone platform, travel) with their execution helper for multi-turn and multi-step, the
# official evaluation (eval_main.agent_eval / agent_eval_process, model_eval.checker.agent_checker) and the
# modules those import; `apimodel_inference.py` is read (never imported) for its SAVED_CLASS table
SOURCE_FILES = {
    "category.py": "5d1dfe4ce68fc6e80c41be0772ab5d981280aacc421d1b77ffb8a5705eb9c870",
    "eval_main.py": "30d87f1fa262e671d13ae0e14fc424ad6e9fd0bf0c489bdee49c47c92b1ef402",
    "model_eval/checker.py": "9b023482f4c94674cbcad1f4a2e4321c63ef67b9ed87f20d90272672901a5ac2",
    "model_eval/evaluation_helper.py": "ba1d143459abd82e03b08038be8be408a3094a376ace0cba2d6f5629304d5170",
    "model_eval/utils.py": "3ea5ebabf5643b6649311f45ce1c76c3340340fd1e11435d1d5227fb2c46ddb0",
    "model_inference/apimodel_inference.py": "437b0b083b8e93b34a82cb8a280b2ff7d366b9b705e46a1375da2d943905b9c1",
    "model_inference/multi_step/multi_step_utils.py": "d44d40f424f9770010a7f8bc3e82f7e1e550991a2faf4db76ae054195d31d475",
    "model_inference/multi_step/scenariosen/phone_platform/base_api.py": "0e982dde305642edc5751b1b8d6f1ee9c303dff0c59e897709fe20e693785280",
    "model_inference/multi_step/scenariosen/phone_platform/food_services.py": "14eb0b835907bb4068b5dd31da06d68ff3be1bec8a4b4e0ce313f5e736e095ae",
    "model_inference/multi_step/scenariosen/phone_platform/message.py": "6c25d00ccd5cae25572a510a4dfbd833c62576b486ff43c588e2015cce35c6c6",
    "model_inference/multi_step/scenariosen/phone_platform/reminder.py": "ceaa1209799fc585843130ef0718406857b6f916557be137728840d53abe7aa1",
    "model_inference/multi_step/scenariosen/travel.py": "f9dacd97e579bf0447556c1843c3cf38d5612ab8eb05424d1cc2c33681d4d57e",
    "model_inference/multi_turn/__init__.py": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "model_inference/multi_turn/multi_turn_utils.py": "d043a9f862d7cad80ec7fb8b7ad50345a9f2736fedd09ee66fddb3f40742a815",
    "model_inference/multi_turn/scenariosen/phone_platform/base_api.py": "0e982dde305642edc5751b1b8d6f1ee9c303dff0c59e897709fe20e693785280",
    "model_inference/multi_turn/scenariosen/phone_platform/food_services.py": "14eb0b835907bb4068b5dd31da06d68ff3be1bec8a4b4e0ce313f5e736e095ae",
    "model_inference/multi_turn/scenariosen/phone_platform/message.py": "6c25d00ccd5cae25572a510a4dfbd833c62576b486ff43c588e2015cce35c6c6",
    "model_inference/multi_turn/scenariosen/phone_platform/reminder.py": "ceaa1209799fc585843130ef0718406857b6f916557be137728840d53abe7aa1",
    "model_inference/multi_turn/scenariosen/travel.py": "f9dacd97e579bf0447556c1843c3cf38d5612ab8eb05424d1cc2c33681d4d57e",
    "model_inference/prompt_en.py": "d479f487f7e1e77090eb65321f774b13e42efba11cd29717db0973953985a013",
    "model_inference/prompt_zh.py": "e824a7fc3010287e33a9adee0d055c659ec7e10b02287a6d6b8e04be73cd16c9",
    "model_inference/utils.py": "f490583893fa207609927de59864d70c59c2fca03164ce488963cd6c3e127dd8",
}
HOW = (f"get it with `toolace-mt data acebench` (writes {DEFAULT_DEST}/), or point the recipe's `tasks` or "
       f"{ENV_DIR} at a copy in the official layout")


class DataUnavailable(RecipeError):
    """The data an evaluation needs is not on this machine (a reproduce run records the step as not run)."""


class DownloadError(RecipeError):
    """A file could not be fetched, or its checksum did not match."""


def has_data(path: Path, language: str = "en") -> bool:
    from .official import resolve_dir

    try:
        resolve_dir(path, language)
        return True
    except RecipeError:
        return False


def official_dir(tasks: Optional[str], language: str = "en") -> Path:
    """The directory the official source reads: ``tasks`` > $TOOLACE_ACEBENCH_DIR > data/acebench."""
    if tasks:
        where, cand = "the recipe's tasks", Path(tasks)
    elif os.environ.get(ENV_DIR):
        where, cand = ENV_DIR, Path(os.environ[ENV_DIR])
    else:
        where, cand = "the default", DEFAULT_DEST
    if not has_data(cand, language):
        raise DataUnavailable(f"no official ACEBench data at {cand} ({where}); {HOW}")
    return cand


def source_missing(path: Path) -> Optional[str]:
    """None when the ACEBench source files (`SOURCE_FILES`) are under `path` with their pinned checksums, else
    the one-line reason."""
    for rel, want in SOURCE_FILES.items():
        f = Path(path) / rel
        if not f.is_file():
            return f"the ACEBench source ({rel}, ...) is not at {path}; {HOW}"
        if _sha256(f.read_bytes()) != want:
            return f"{f}: not the pinned commit's file (sha256 differs); {HOW}"
    return None


def _sha256(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def download(dest: Path = DEFAULT_DEST, base_url: Optional[str] = None, force: bool = False) -> dict:
    """Fetch every file in `FILES` under `dest` (checked by sha256; a file already there with the right
    checksum is kept). Returns a manifest, also written to ``dest/SOURCE.json``."""
    base = (base_url or os.environ.get(ENV_URL) or DEFAULT_BASE_URL).rstrip("/") + "/"
    dest = Path(dest)
    fetched, kept = 0, 0
    for rel, want in {**FILES, **SOURCE_FILES}.items():
        target = dest / rel
        if not force and target.is_file() and _sha256(target.read_bytes()) == want:
            kept += 1
            continue
        url = base + rel
        try:
            with urllib.request.urlopen(url, timeout=TIMEOUT_S) as r:  # noqa: S310 - https or a local mirror
                body = r.read()
        except (urllib.error.URLError, OSError, ValueError) as e:
            reason = getattr(e, "reason", None) or e
            raise DownloadError(
                f"cannot fetch the ACEBench data from {base} ({reason}). Offline or behind a proxy: pass "
                f"--base-url with a mirror of {REPO} at commit {COMMIT[:12]} (an http(s) or file:// URL), or set "
                f"${ENV_DIR} to a copy in the official layout, or place the {len(FILES)} files by hand under "
                f"{dest}/ ({rel}, ...; the next run checks their sha256)") from None
        got = _sha256(body)
        if got != want:
            raise DownloadError(f"{url}: sha256 {got} does not match the pinned {want}")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(target.suffix + ".part")
        tmp.write_bytes(body)
        tmp.replace(target)
        fetched += 1
    manifest = {"repository": REPO, "commit": COMMIT, "base_url": base, "files": len(FILES) + len(SOURCE_FILES),
                "source_files": len(SOURCE_FILES),
                "fetched": fetched, "already_present": kept, "licence": "MIT (the ACEBench repository's)"}
    (dest / "SOURCE.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
