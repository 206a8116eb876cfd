"""Fixtures shared by the model tests."""
from __future__ import annotations

import pytest

from tests.models.segmentation.tiny_pipeline import write_tiny_pipeline_weights


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    """A weights folder of tiny pipeline networks (every file the pipeline loads), once per module."""
    return write_tiny_pipeline_weights(tmp_path_factory.mktemp("weights"))
