"""Shared test set-up: tiny tensors run fastest on one thread (no oversubscription on 2-core boxes)."""
from __future__ import annotations

import os
import signal

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def stop_after(monkeypatch):
    """``stop_after(k, signum, times)``: deliver ``signum`` (``times`` times) to this process right
    after frame k-1 of a video job (stylevid video, video dream, zoom) is saved."""
    from stylevid.pipelines import video as V

    def arm(k: int, signum: int = signal.SIGINT, times: int = 1):
        save = V.WorkFolder.save

        def saving(self, t, image):
            result = save(self, t, image)
            if t == k - 1:
                for _ in range(times):
                    os.kill(os.getpid(), signum)
            return result

        monkeypatch.setattr(V.WorkFolder, "save", saving)
    return arm
