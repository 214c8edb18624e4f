"""Every command-line test writes its outputs (figures, checkpoints, tokenizers) to its own folder."""

import pytest


@pytest.fixture(autouse=True)
def output_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYGRAD_LLM_OUT", str(tmp_path / "outputs"))
