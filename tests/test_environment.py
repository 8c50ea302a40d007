"""The install is the CPU build of torch 2.13.0 (a bare `torch` would pull a multi-GB CUDA build)."""

import os

import pytest


@pytest.mark.skipif(os.environ.get("CI") != "true", reason="checked on CI's clean install")
def test_torch_is_the_pinned_cpu_build():
    import torch

    assert torch.__version__ == "2.13.0+cpu"
    assert not torch.cuda.is_available()
