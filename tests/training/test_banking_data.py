"""The shared banking dialogues (tests/banking_data.py) are valid dialogues."""
from __future__ import annotations

from banking_data import banking_dialogue, write_banking_dataset  # noqa: F401
from toolace_mt.schema import check_dialogue  # noqa: F401


def test_banking_dialogues_are_valid(tmp_path):
    p = write_banking_dataset(tmp_path / "ds", n=4)
    from toolace_mt.io import load_dataset_dialogues

    ds = load_dataset_dialogues(p)
    assert len(ds) == 4 and ds[3].meta["tool_updates"][0]["tools"][0]["function"]["name"] == "list_payees"
