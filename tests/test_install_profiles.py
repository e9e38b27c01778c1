"""GIMP 3 profile discovery, GIMP's Python detection and wheel vendoring, on fake directory trees."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from gimp_plugin.profiles import (
    DEFAULT_FALLBACK_VERSIONS,
    FALLBACK_VERSIONS,
    PythonTarget,
    fallback_versions,
    find_installs,
    find_profiles,
    platform_tags,
    python_for,
)
from gimp_plugin.vendoring import (
    REQUIREMENTS,
    STAMP_NAME,
    VendoringError,
    pip_command,
    system_python_has_packages,
    vendor,
    vendor_dir_name,
)
from tests.support import gimp_chroot

MANYLINUX_X86 = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
DEBIAN_INTERP = """python=/usr/bin/python3
python3=/usr/bin/python3
/usr/bin/python=/usr/bin/python3
/usr/bin/python3=/usr/bin/python3
:Python:E::py::python3:
"""


def mkdirs(*paths: Path) -> None:
    for path in paths:
        path.mkdir(parents=True, exist_ok=True)


def python_lib(lib: Path, version: str) -> Path:
    """A lib/pythonX.Y that looks like a real standard library."""
    std = lib / f"python{version}"
    std.mkdir(parents=True, exist_ok=True)
    (std / "os.py").write_text("")
    return std


def answering(version: str, calls: list | None = None):
    """A subprocess.run stand-in that prints `version` and records the commands it got."""
    def run(command, **kwargs):
        if calls is not None:
            calls.append(command)
        return subprocess.CompletedProcess(command, 0, stdout=version + "\n", stderr="")
    return run


def never_called(command, **kwargs):
    raise AssertionError(f"unexpected command {command}")


# --- find_profiles ------------------------------------------------------------------------------------------------

@pytest.fixture
def linux_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    config = home / ".config" / "GIMP"
    mkdirs(config / "3.0", config / "3.2", config / "2.10", config / "3.10", config / "3.x", config / "backup-3.0",
           home / ".var/app/org.gimp.GIMP/config/GIMP/3.0",
           home / "snap/gimp/current/.config/GIMP/3.0")
    (config / "3.4").write_text("a file, not a profile")
    return home


def test_linux_profiles_native_flatpak_snap(linux_home: Path):
    found = find_profiles(linux_home, {}, "Linux")
    assert found == [
        (linux_home / ".config/GIMP/3.0", "native"),
        (linux_home / ".config/GIMP/3.2", "native"),
        (linux_home / ".config/GIMP/3.10", "native"),  # numeric order, not text order
        (linux_home / ".var/app/org.gimp.GIMP/config/GIMP/3.0", "flatpak"),
        (linux_home / "snap/gimp/current/.config/GIMP/3.0", "snap"),
    ]


def test_xdg_config_home_replaces_dot_config(linux_home: Path, tmp_path: Path):
    xdg = tmp_path / "xdg"
    mkdirs(xdg / "GIMP" / "3.2")
    found = find_profiles(linux_home, {"XDG_CONFIG_HOME": str(xdg)}, "Linux")
    assert (xdg / "GIMP/3.2", "native") in found
    assert all(kind != "native" or profile.parent == xdg / "GIMP" for profile, kind in found)
    relative = find_profiles(linux_home, {"XDG_CONFIG_HOME": "relative/dir"}, "Linux")  # ignored, per the spec
    assert (linux_home / ".config/GIMP/3.0", "native") in relative


def test_no_profiles_in_empty_home(tmp_path: Path):
    assert find_profiles(tmp_path, {}, "Linux") == []
    assert find_profiles(tmp_path, {}, "Darwin") == []
    assert find_profiles(tmp_path, {"APPDATA": str(tmp_path / "missing")}, "Windows") == []


def test_windows_profiles_under_appdata(tmp_path: Path):
    appdata = tmp_path / "Users/me/AppData/Roaming"
    mkdirs(appdata / "GIMP/3.0", appdata / "GIMP/2.10", tmp_path / "home/.config/GIMP/3.0")
    found = find_profiles(tmp_path / "home", {"AppData": str(appdata)}, "Windows")  # Windows names ignore case
    assert found == [(appdata / "GIMP/3.0", "windows")]


def test_macos_profiles_under_application_support(tmp_path: Path):
    support = tmp_path / "Library/Application Support/GIMP"
    mkdirs(support / "3.0", support / "3.2", support / "2.10")
    assert find_profiles(tmp_path, {}, "Darwin") == [(support / "3.0", "macos"), (support / "3.2", "macos")]


def test_gimp3_directory_is_given_once(linux_home: Path, tmp_path: Path):
    elsewhere = tmp_path / "portable-profile"
    elsewhere.mkdir()
    found = find_profiles(linux_home, {"GIMP3_DIRECTORY": str(elsewhere)}, "Linux")
    assert found[-1] == (elsewhere, "given")
    same = find_profiles(linux_home, {"GIMP3_DIRECTORY": str(linux_home / ".config/GIMP/3.0")}, "Linux")
    assert [kind for profile, kind in same if profile == linux_home / ".config/GIMP/3.0"] == ["native"]


# --- python_for -----------------------------------------------------------------------------------------------------

def fake_interp(root: Path, text: str = DEBIAN_INTERP, lib: str = "usr/lib/x86_64-linux-gnu") -> None:
    interpreters = root / lib / "gimp/3.0/interpreters"
    mkdirs(interpreters, root / "usr/bin")
    (interpreters / "pygimp.interp").write_text(text)
    (root / "usr/bin/python3").write_text("#!fake\n")


def test_native_python_from_pygimp_interp(tmp_path: Path):
    root = tmp_path / "root"
    fake_interp(root)
    calls: list = []
    target = python_for("native", Path("/h/.config/GIMP/3.0"), {}, "Linux", "x86_64", root, answering("3.13", calls))
    assert target == PythonTarget("3.13", MANYLINUX_X86, root / "usr/bin/python3")
    assert target.abi == "cp313"
    assert calls == [[str(root / "usr/bin/python3"), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"]]


def test_native_interp_bound_by_extension_and_other_layouts(tmp_path: Path):
    root = tmp_path / "root"
    text = "py3=/opt/py/bin/python3.14\n:Python:E::py::py3:\n"
    fake_interp(root, text, lib="usr/lib64")  # Fedora keeps GIMP under /usr/lib64
    (root / "opt/py/bin").mkdir(parents=True)
    (root / "opt/py/bin/python3.14").write_text("")
    target = python_for("native", Path("3.2"), {}, "Linux", "aarch64", root, answering("3.14"))
    assert target.system_python == root / "opt/py/bin/python3.14"
    assert target.platforms[0] == "manylinux_2_28_aarch64"


def test_native_unknown_without_interp_or_answer(tmp_path: Path):
    root = tmp_path / "root"
    assert python_for("native", Path("3.0"), {}, "Linux", "x86_64", root, never_called) is None
    fake_interp(root, "python=/usr/bin/python3\n")
    (root / "usr/bin/python3").unlink()  # named but not installed
    assert python_for("native", Path("3.0"), {}, "Linux", "x86_64", root, never_called) is None
    (root / "usr/bin/python3").write_text("")

    def broken(command, **kwargs):
        return subprocess.CompletedProcess(command, 1, stdout="", stderr="boom")

    assert python_for("native", Path("3.0"), {}, "Linux", "x86_64", root, broken) is None
    assert python_for("native", Path("3.0"), {}, "Linux", "x86_64", root, answering("Python 3.13")) is None


def test_windows_python_from_bundled_lib(tmp_path: Path):
    local = tmp_path / "AppData/Local"
    program_files = tmp_path / "Program Files"
    python_lib(local / "Programs/GIMP 3/lib", "3.12")
    (local / "Programs/GIMP 3/lib/python3.11").mkdir()  # leftover of an older install: no standard library
    env = {"LOCALAPPDATA": str(local), "ProgramFiles": str(program_files)}
    target = python_for("windows", Path("3.0"), env, "Windows", "AMD64", Path("/"), never_called)
    assert target == PythonTarget("3.12", ("win_amd64",))
    assert python_for("windows", Path("3.0"), env, "Windows", "ARM64").platforms == ("win_arm64",)


def test_windows_program_files_and_profile_hint(tmp_path: Path):
    program_files = tmp_path / "Program Files"
    python_lib(program_files / "GIMP 3/lib", "3.12")
    python_lib(program_files / "GIMP 3.2/lib", "3.14")
    env = {"ProgramFiles": str(program_files)}
    assert python_for("windows", Path("GIMP/3.0"), env, "Windows", "AMD64").version == "3.12"
    assert python_for("windows", Path("GIMP/3.2"), env, "Windows", "AMD64").version == "3.14"
    assert python_for("windows", Path("GIMP/3.0"), {}, "Windows", "AMD64") is None


def test_macos_python_inside_the_app(tmp_path: Path):
    root = tmp_path / "root"
    python_lib(root / "Applications/GIMP.app/Contents/Resources/lib", "3.10")
    target = python_for("macos", Path("3.0"), {}, "Darwin", "arm64", root, never_called)
    assert target == PythonTarget("3.10", ("macosx_11_0_arm64", "macosx_10_15_universal2"))

    framework_root = tmp_path / "other"
    versions = framework_root / "Applications/GIMP-3.2.app/Contents/Frameworks/Python.framework/Versions"
    (python_lib(versions / "3.13/lib", "3.13") / "lib-dynload").mkdir()
    target = python_for("macos", Path("3.2"), {}, "Darwin", "x86_64", framework_root)
    assert target.version == "3.13" and target.platforms[0] == "macosx_11_0_x86_64"


def test_flatpak_python_from_runtime(tmp_path: Path):
    root = tmp_path / "root"
    flatpak = root / "var/lib/flatpak"
    app = flatpak / "app/org.gimp.GIMP/current/active"
    app.mkdir(parents=True)
    (app / "metadata").write_text("[Application]\nname=org.gimp.GIMP\nruntime=org.gnome.Platform/x86_64/48\n")
    profile = Path("/h/.var/app/org.gimp.GIMP/config/GIMP/3.0")
    assert python_for("flatpak", profile, {"HOME": str(tmp_path / "h")}, "Linux", "x86_64", root) is None
    python_lib(flatpak / "runtime/org.gnome.Platform/x86_64/48/active/files/lib", "3.12")
    target = python_for("flatpak", profile, {"HOME": str(tmp_path / "h")}, "Linux", "x86_64", root, never_called)
    assert target == PythonTarget("3.12", MANYLINUX_X86)


def test_snap_python_and_given_profile(tmp_path: Path):
    root = tmp_path / "root"
    assert python_for("snap", Path("3.0"), {}, "Linux", "x86_64", root) is None
    python_lib(root / "snap/gimp/current/usr/lib", "3.12")
    assert python_for("snap", Path("3.0"), {}, "Linux", "x86_64", root).version == "3.12"
    fake_interp(root)
    given = python_for("given", Path("/anywhere"), {}, "Linux", "x86_64", root, answering("3.13"))
    assert given.version == "3.13"  # a profile elsewhere is used by the natively installed GIMP
    assert python_for("native", Path("3.0"), {}, "Linux", "riscv64", root, answering("3.13")) is None


def test_find_installs_combines_both(linux_home: Path, tmp_path: Path):
    root = tmp_path / "root"
    fake_interp(root)
    installs = find_installs(linux_home, {"HOME": str(linux_home)}, "Linux", "x86_64", root, answering("3.13"))
    by_kind = {install.kind: install for install in installs}
    assert by_kind["native"].python.version == "3.13"
    assert by_kind["flatpak"].python is None and by_kind["snap"].python is None
    assert len(installs) == 5


def test_fallback_versions():
    assert fallback_versions(Path("x/GIMP/3.0")) == FALLBACK_VERSIONS["3.0"] == ("3.12", "3.13")
    assert fallback_versions(Path("x/GIMP/3.2")) == ("3.13", "3.14")
    assert fallback_versions(Path("x/GIMP/3.4")) == DEFAULT_FALLBACK_VERSIONS


def test_platform_tags():
    assert platform_tags("Linux", "x86_64") == MANYLINUX_X86
    assert platform_tags("Linux", "aarch64") == (
        "manylinux_2_28_aarch64", "manylinux_2_17_aarch64", "manylinux2014_aarch64")
    assert platform_tags("Windows", "AMD64") == ("win_amd64",)
    assert platform_tags("Windows", "ARM64") == ("win_arm64",)
    assert "macosx_10_15_universal2" in platform_tags("Darwin", "arm64")  # pyzmq ships only universal2 for macOS
    with pytest.raises(ValueError):
        platform_tags("Linux", "riscv64")


# --- pip command ------------------------------------------------------------------------------------------------------

def option_values(command: list[str], option: str) -> list[str]:
    return [command[i + 1] for i, part in enumerate(command) if part == option]


@pytest.mark.parametrize(
    ("version", "platforms", "abi"),
    [("3.12", ("win_amd64",), "cp312"), ("3.13", MANYLINUX_X86, "cp313"),
     ("3.14", platform_tags("Darwin", "arm64"), "cp314")],
)
def test_pip_command_targets_gimps_python(version, platforms, abi, tmp_path: Path):
    command = pip_command("/venv/bin/python", tmp_path / "out", version, platforms)
    assert command[:4] == ["/venv/bin/python", "-m", "pip", "install"]
    assert option_values(command, "--python-version") == [version]
    assert option_values(command, "--abi") == [abi]
    assert option_values(command, "--platform") == list(platforms)
    assert option_values(command, "--implementation") == ["cp"]
    assert option_values(command, "--target") == [str(tmp_path / "out")]
    assert "--only-binary=:all:" in command and "--no-index" not in command
    assert command[-len(REQUIREMENTS):] == list(REQUIREMENTS)


def test_pip_command_from_local_wheels(tmp_path: Path):
    command = pip_command(Path("/py"), tmp_path / "out", "3.13", MANYLINUX_X86, wheels_from=tmp_path / "wheels")
    assert "--no-index" in command
    assert option_values(command, "--find-links") == [str(tmp_path / "wheels")]


# --- vendor() -------------------------------------------------------------------------------------------------------

class FakePip:
    """Stands in for subprocess.run: creates the packages in --target, or fails like pip would."""

    def __init__(self, fail: bool = False, packages: tuple[str, ...] = ("zmq", "msgpack")):
        self.fail, self.packages, self.commands = fail, packages, []

    def __call__(self, command, **kwargs):
        self.commands.append(command)
        target = Path(option_values(command, "--target")[0])
        for name in self.packages:
            (target / name).mkdir(parents=True, exist_ok=True)
            (target / name / "__init__.py").write_text("")
        if self.fail:
            return subprocess.CompletedProcess(command, 1, stdout="", stderr="ERROR: No matching distribution")
        return subprocess.CompletedProcess(command, 0, stdout="", stderr="")


TARGET_313 = PythonTarget("3.13", MANYLINUX_X86)


def test_vendor_installs_then_skips(tmp_path: Path):
    pip = FakePip()
    message = vendor(tmp_path / "plugin", TARGET_313, python="/py", run=pip)
    final = tmp_path / "plugin/vendor" / vendor_dir_name("3.13")
    assert message.startswith("vendored pyzmq+msgpack for Python 3.13 (manylinux_2_28_x86_64")
    assert (final / "zmq").is_dir() and (final / STAMP_NAME).is_file()
    assert sorted(p.name for p in final.parent.iterdir()) == ["py3.13"]  # no .tmp or .old left behind
    assert vendor(tmp_path / "plugin", TARGET_313, python="/py", run=pip).startswith("already vendored")
    assert len(pip.commands) == 1


def test_vendor_redoes_a_folder_made_for_other_platforms(tmp_path: Path):
    pip = FakePip()
    vendor(tmp_path, PythonTarget("3.13", ("manylinux2014_x86_64",)), run=pip)
    (tmp_path / "vendor/py3.13/stale.txt").write_text("")
    assert vendor(tmp_path, TARGET_313, run=pip).startswith("vendored")
    assert len(pip.commands) == 2
    assert not (tmp_path / "vendor/py3.13/stale.txt").exists()
    assert sorted(p.name for p in (tmp_path / "vendor").iterdir()) == ["py3.13"]


def test_failed_pip_leaves_nothing(tmp_path: Path):
    with pytest.raises(VendoringError, match="No matching distribution"):
        vendor(tmp_path, TARGET_313, run=FakePip(fail=True))
    assert list((tmp_path / "vendor").iterdir()) == []
    with pytest.raises(VendoringError, match="msgpack"):
        vendor(tmp_path, TARGET_313, run=FakePip(packages=("zmq",)))
    assert list((tmp_path / "vendor").iterdir()) == []


def test_failed_update_keeps_the_working_copy(tmp_path: Path):
    vendor(tmp_path, PythonTarget("3.13", ("manylinux2014_x86_64",)), run=FakePip())
    with pytest.raises(VendoringError):
        vendor(tmp_path, TARGET_313, run=FakePip(fail=True))
    assert (tmp_path / "vendor/py3.13/zmq").is_dir()


def test_vendor_when_pip_cannot_start(tmp_path: Path):
    def missing(command, **kwargs):
        raise FileNotFoundError(command[0])

    with pytest.raises(VendoringError, match="could not run pip"):
        vendor(tmp_path, TARGET_313, run=missing)
    assert list((tmp_path / "vendor").iterdir()) == []


def test_dry_run_changes_nothing(tmp_path: Path):
    message = vendor(tmp_path / "plugin", TARGET_313, run=never_called, dry_run=True)
    assert message.startswith("would vendor pyzmq+msgpack for Python 3.13")
    assert not (tmp_path / "plugin").exists()


def test_vendor_leaves_out_pip_settings_that_fight_target(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("PIP_USER", "1")
    monkeypatch.setenv("PIP_INDEX_URL", "https://mirror.example/simple")
    seen = {}

    def pip(command, **kwargs):
        seen.update(kwargs["env"])
        return FakePip()(command)

    vendor(tmp_path, TARGET_313, run=pip)
    assert "PIP_USER" not in seen and seen["PIP_INDEX_URL"] == "https://mirror.example/simple"


def test_system_python_has_packages():
    def exits(code):
        return lambda command, **kwargs: subprocess.CompletedProcess(command, code, "", "")

    assert system_python_has_packages(Path("/usr/bin/python3"), run=exits(0))
    assert not system_python_has_packages(Path("/usr/bin/python3"), run=exits(1))
    assert not system_python_has_packages(Path("/nonexistent/python3"))
    assert system_python_has_packages(Path(sys.executable))  # the test venv has pyzmq and msgpack


# --- real pip, from a local folder of wheels only --------------------------------------------------------------------

@pytest.mark.slow
def test_vendor_for_real_from_local_wheels(tmp_path: Path):
    """Vendoring from a folder of pyzmq/msgpack wheels for this Python (pip offline): $NEURAL_FILL_WHEELHOUSE, or the
    GIMP tests' wheel cache, downloaded once for this Python on x86-64 Linux."""
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if "NEURAL_FILL_WHEELHOUSE" in os.environ:
        wheelhouse = Path(os.environ["NEURAL_FILL_WHEELHOUSE"])
    elif sys.platform == "linux" and platform.machine() == "x86_64":  # the cache holds manylinux x86-64 wheels
        try:
            wheelhouse = gimp_chroot.ensure_wheels(version)
        except gimp_chroot.ChrootUnavailable as why:
            pytest.skip(str(why))
    else:
        pytest.skip("no local pyzmq/msgpack wheels for this Python: set NEURAL_FILL_WHEELHOUSE")
    tag = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    pyzmq = [*wheelhouse.glob(f"pyzmq-*-{tag}-{tag}-*.whl"), *wheelhouse.glob("pyzmq-*-abi3-*.whl")]
    if sys.platform != "linux" or not pyzmq or not list(wheelhouse.glob(f"msgpack-*-{tag}-*.whl")):
        pytest.skip(f"no pyzmq/msgpack wheels for this Python in {wheelhouse}")
    target = PythonTarget(version, platform_tags("Linux", platform.machine()))
    message = vendor(tmp_path, target, run=subprocess.run, wheels_from=wheelhouse)
    assert message.startswith("vendored"), message
    folder = tmp_path / "vendor" / vendor_dir_name(version)
    # -I -S: no site-packages, so the imports can only come from the vendored folder.
    probe = (f"import sys; sys.path.insert(0, {str(folder)!r}); import zmq, msgpack; "
             "assert msgpack.unpackb(msgpack.packb([1, 'a'])) == [1, 'a']; print(zmq.__file__, zmq.zmq_version())")
    result = subprocess.run([sys.executable, "-I", "-S", "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(str(folder))
    assert vendor(tmp_path, target, run=subprocess.run, wheels_from=wheelhouse).startswith("already")
