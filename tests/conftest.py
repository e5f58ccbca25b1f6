"""Shared pytest settings: slow and cuda tests are skipped unless asked for."""
import os

import pytest
import torch


def pytest_collection_modifyitems(config, items):
    run_slow = os.environ.get("MOL_EDU_SLOW") == "1"
    for item in items:
        if "slow" in item.keywords and not run_slow:
            item.add_marker(pytest.mark.skip(reason="slow test: run with `make test-slow` (MOL_EDU_SLOW=1)"))
        if "cuda" in item.keywords and not torch.cuda.is_available():
            item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU"))
