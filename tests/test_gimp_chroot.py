"""The GIMP chroot fixture's own logic, without building anything: how it gets debootstrap, or says why it cannot."""

from __future__ import annotations

import pytest

from tests.support import gimp_chroot


@pytest.fixture
def machine(monkeypatch, tmp_path):
    """A machine whose programs are `installed` (names), and the commands the fixture ran on it."""
    state = {"installed": set(), "ran": []}

    def run_logged(command, log, what, extra_env=None):
        state["ran"].append((command, extra_env))
        if command[:2] == ["apt-get", "install"]:
            state["installed"].add("debootstrap")

    monkeypatch.setattr(gimp_chroot, "CACHE_DIR", tmp_path)
    monkeypatch.setattr(gimp_chroot.shutil, "which", lambda name: f"/usr/bin/{name}" if name in state["installed"]
                        else None)
    monkeypatch.setattr(gimp_chroot, "_run_logged", run_logged)
    return state


def test_a_missing_debootstrap_is_installed_with_apt_get_as_ci_did(machine):
    machine["installed"].add("apt-get")
    gimp_chroot._ensure_debootstrap()
    apt = {"DEBIAN_FRONTEND": "noninteractive"}
    assert machine["ran"] == [(["apt-get", "update", "-qq"], apt),
                              (["apt-get", "install", "-y", "-qq", "debootstrap"], apt)]


def test_a_present_debootstrap_is_left_alone(machine):
    machine["installed"] |= {"apt-get", "debootstrap"}
    gimp_chroot._ensure_debootstrap()
    assert machine["ran"] == []


def test_without_apt_get_the_tests_skip_saying_why(machine):
    with pytest.raises(gimp_chroot.ChrootUnavailable, match="debootstrap is missing and this machine has no apt-get"):
        gimp_chroot._ensure_debootstrap()
    assert machine["ran"] == []
