"""Shared fixtures: small synthetic photos, a random-weights VGG for tests about logic, the real one for the rest;
and the one place where tests are gated.

- `weights`: the test needs the real VGG-19 weights (install.py fetches them): skipped without them, and left out
  of the quick loop.
- `slow`: left out of the quick loop, `pytest -m "not slow"`: every `weights` test (real networks, real daemons),
  a real GIMP, training. README's test command runs everything.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config, items):
    from engine.weights import vgg19_path

    missing = None if vgg19_path().exists() else pytest.mark.skip(
        reason="real VGG-19 weights not fetched: run `neural-fill fetch-weights`")
    for item in items:
        if item.get_closest_marker("weights"):
            item.add_marker(pytest.mark.slow)
            if missing is not None:
                item.add_marker(missing)


@pytest.fixture(scope="session", autouse=True)
def private_user_dirs(tmp_path_factory):
    """The keys, the default ipc:// socket's folder and the plug-in's log in folders of the test run's own, never
    the user's (subprocesses inherit them). The keys are made now: a client started beside a daemon that is still
    loading must find them."""
    from daemon.service.endpoints import RUNTIME_ENV
    from daemon.service.keys import CONFIG_DIR_ENV, ensure_keys

    root = tmp_path_factory.mktemp("user")
    names = {CONFIG_DIR_ENV: "config", RUNTIME_ENV: "runtime", "XDG_STATE_HOME": "state"}
    with pytest.MonkeyPatch.context() as patch:
        for variable, name in names.items():
            (root / name).mkdir(mode=0o700)
            patch.setenv(variable, str(root / name))
        ensure_keys()
        yield root


@pytest.fixture(scope="session")
def random_vgg_model():
    import torch

    from engine.vgg import VGGFeatures

    torch.manual_seed(0)
    return VGGFeatures(None)


@pytest.fixture
def random_vgg(monkeypatch, random_vgg_model):
    """Replace the real VGG-19 with random weights: for tests about crops, masks and plumbing, not the method."""
    import engine.pipeline

    monkeypatch.setattr(engine.pipeline, "load_vgg", lambda device: random_vgg_model)
    return random_vgg_model
