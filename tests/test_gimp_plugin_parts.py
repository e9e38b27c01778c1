"""The plug-in's GIMP-free parts, on the host: rectangles and formats, settings, reaching (and starting) a real
daemon, and the installer's copy of the plug-in. tests/test_gimp_plugin.py drives the whole in a real GIMP."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WIRE = REPO / "daemon" / "service"  # the wire modules install.py copies beside the plug-in
PLUGIN = REPO / "gimp_plugin" / "neural_fill"
sys.path.insert(0, str(PLUGIN))  # as GIMP does: the plug-in's modules import each other as top-level modules

from gimp_plugin import plugin_install  # noqa: E402
from tests.support.daemon_helpers import free_port, start_daemon  # noqa: E402

import daemon_connection  # noqa: E402
import fill_region  # noqa: E402
import plugin_settings  # noqa: E402
from fill_region import Rect, context_rect, hole_mask, pixel_format, source_mask, sub_rows, transparent  # noqa: E402

# ------------------------------------------------------------------------------------------ fill_region


def test_the_context_grows_the_selection_and_stays_inside_the_layer():
    assert context_rect(Rect(100, 100, 40, 20), 1000, 800) == Rect(36, 36, 168, 148)  # automatic: 64 px
    assert context_rect(Rect(100, 100, 400, 20), 1000, 800) == Rect(0, 0, 700, 320)  # half of 400 = 200 px
    assert context_rect(Rect(0, 0, 30, 30), 50, 40, margin=10) == Rect(0, 0, 40, 40)
    assert context_rect(Rect(5, 5, 10, 10), 100, 100, margin=500) == Rect(0, 0, 100, 100)


@pytest.mark.parametrize(("precision", "grey", "babl", "sample"), [
    ("u8-non-linear", False, "R'G'B'A u8", "u8"),
    ("u8-perceptual", True, "Y'A u8", "u8"),
    ("u8-linear", False, "R'G'B'A u16", "u16"),  # 8-bit linear -> 8-bit perceptual would band
    ("u16-linear", False, "R'G'B'A u16", "u16"),
    ("u32-non-linear", True, "Y'A float", "f32"),
    ("half-linear", False, "R'G'B'A float", "f32"),
    ("float-linear", False, "R'G'B'A float", "f32"),
    ("double-perceptual", False, "R'G'B'A float", "f32"),
])
def test_every_precision_travels_without_losing_depth(precision, grey, babl, sample):
    form = pixel_format(precision, grey)
    assert (form.babl, form.sample, form.channels) == (babl, sample, 2 if grey else 4)


def test_an_unknown_precision_is_refused_by_name():
    with pytest.raises(ValueError, match="u12-linear"):
        pixel_format("u12-linear", False)


def test_every_touched_pixel_of_the_selection_is_hole():
    assert hole_mask(bytes([0, 1, 127, 255, 0])) == bytes([0, 255, 255, 255, 0])


def test_an_empty_layer_reads_as_transparent_in_every_format():
    for precision, grey in (("u8-non-linear", False), ("u16-linear", True), ("float-linear", False)):
        form = pixel_format(precision, grey)
        empty = bytes(form.bytes_per_pixel * 3)
        assert transparent(empty, form)
        one_opaque = bytearray(empty)
        one_opaque[-1] = 1  # the last pixel's alpha, its highest byte
        assert not transparent(bytes(one_opaque), form), precision
        colour_only = bytearray(empty)
        colour_only[0] = 200  # colour without alpha is still transparent
        assert transparent(bytes(colour_only), form)


def test_the_sample_channel_becomes_the_source_mask_or_its_opposite():
    channel = bytes([0, 100, 128, 255])
    assert source_mask(channel, inside=True) == bytes([0, 0, 255, 255])  # copy only from where it is set
    assert source_mask(channel, inside=False) == bytes([255, 255, 0, 0])  # never from there


def test_sub_rows_cuts_a_rectangle_out_of_a_buffer():
    outer = Rect(10, 20, 4, 3)
    data = bytes(range(4 * 3 * 2))  # 2 bytes a pixel
    assert sub_rows(data, outer, Rect(11, 21, 2, 2), 2) == bytes([10, 11, 12, 13, 18, 19, 20, 21])
    with pytest.raises(ValueError, match="not inside"):
        sub_rows(data, outer, Rect(9, 20, 2, 2), 2)


def test_the_dialog_offers_exactly_the_engines_presets():
    from engine.options import PRESETS

    text = (PLUGIN / "neural_fill.py").read_text()
    start = text.index("PRESETS = {")
    offered = {line.split('"')[1] for line in text[start:text.index("}", start)].splitlines()[1:] if '"' in line}
    assert offered == set(PRESETS)


def test_the_plugin_imports_nothing_beyond_the_standard_library_zmq_msgpack_and_gi():
    allowed = set(sys.stdlib_module_names) | {"gi", "zmq", "msgpack", "fill_region", "plugin_settings",
                                              "daemon_connection", "wire", "neural_fill_wire", "daemon"}
    wire = [WIRE / name for name in plugin_install.WIRE_SOURCES]
    for path in [*PLUGIN.glob("*.py"), *wire]:
        for line in path.read_text().splitlines():
            words = line.split()
            if len(words) >= 2 and words[0] in ("import", "from") and not words[1].startswith("."):
                assert words[1].split(".")[0] in allowed, f"{path.name}: {line.strip()}"


# ------------------------------------------------------------------------------------------- settings


def test_settings_default_when_missing_and_errors_name_the_file(tmp_path):
    assert plugin_settings.load_settings(tmp_path) == plugin_settings.Settings()
    (tmp_path / "neural_fill.json").write_text("{not json")
    with pytest.raises(plugin_settings.SettingsError, match="neural_fill.json"):
        plugin_settings.load_settings(tmp_path)


def test_installed_settings_are_what_the_plugin_reads(tmp_path):
    written = plugin_install.PluginSettings("tcp://127.0.0.1:6000", False, ["nf", "daemon"], timeout=12)
    target = plugin_install.install_code(tmp_path / "profile", written, WIRE, say=lambda _: None)
    read = plugin_settings.load_settings(target)
    assert (read.endpoint, read.curve, read.daemon_command, read.timeout) == (
        "tcp://127.0.0.1:6000", False, ("nf", "daemon"), 12.0)


# ------------------------------------------------------------------------------------- the installed copy


def test_install_copies_the_plugin_and_the_one_protocol_and_uninstall_removes_only_its_own(tmp_path):
    profile = tmp_path / "GIMP" / "3.0"
    settings = plugin_install.PluginSettings("tcp://127.0.0.1:5557", False, [])
    target = plugin_install.install_code(profile, settings, WIRE, say=lambda _: None)
    assert os.access(target / "neural_fill.py", os.X_OK)
    for name in ("protocol.py", "link.py"):
        assert (target / "neural_fill_wire" / name).read_bytes() == (WIRE / name).read_bytes()
    (target / "old_module.py").write_text("# from an older version\n")
    plugin_install.install_code(profile, settings, WIRE, say=lambda _: None)  # again: idempotent
    assert not (target / "old_module.py").exists()
    assert {p.name for p in target.glob("*.py")} == {p.name for p in PLUGIN.glob("*.py")} - {"__init__.py"}

    other = tmp_path / "GIMP" / "3.2"
    (other / "plug-ins" / "neural_fill").mkdir(parents=True)  # someone else's plug-in of the same name
    assert not plugin_install.uninstall(other, say=lambda _: None)
    assert (other / "plug-ins" / "neural_fill").exists()
    assert plugin_install.uninstall(profile, say=lambda _: None)
    assert not target.exists()


def test_install_py_dry_run_changes_nothing_and_real_run_and_uninstall_round_trip(tmp_path):
    profile = tmp_path / "profile"
    common = [sys.executable, str(REPO / "install.py"), "--skip-env", "--gimp-profile", str(profile),
              "--gimp-python", f"{sys.version_info[0]}.{sys.version_info[1]}", "--no-autostart"]
    wheels = tmp_path / "no-wheels"  # an empty wheel folder: vendoring must fail cleanly, offline
    wheels.mkdir()
    typo = subprocess.run([*common, "--dry-run"], capture_output=True, text=True, timeout=120)
    assert typo.returncode == 1 and "no such GIMP profile folder" in typo.stderr and "--create" in typo.stderr
    common.append("--create")  # a profile folder that does not exist is made only when asked
    dry = subprocess.run([*common, "--dry-run"], capture_output=True, text=True, timeout=120)
    assert dry.returncode == 0, dry.stderr
    assert "would install" in dry.stdout and "would vendor" in dry.stdout
    assert f"GIMP 3 profile {profile.resolve()} (given with --gimp-profile)" in dry.stdout
    assert not [line for line in dry.stdout.splitlines() if line.startswith("+ ")]  # nothing said as done
    assert not profile.exists()

    failed = subprocess.run([*common, "--wheels-from", str(wheels)], capture_output=True, text=True, timeout=300)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    said = failed.stderr.strip().splitlines()
    assert len(said) == 1 and said[0].startswith("install.py: the plug-in was not installed"), failed.stderr
    assert "pyzmq" in said[0]
    assert not profile.exists()  # all or nothing: no half plug-in, not even the folders it made

    stand_in_wheels(wheels)
    done = subprocess.run([*common, "--wheels-from", str(wheels)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (profile / "plug-ins" / "neural_fill" / "vendor" / f"py{sys.version_info[0]}.{sys.version_info[1]}" / "zmq"
            ).is_dir()
    removed = subprocess.run([sys.executable, str(REPO / "install.py"), "--uninstall", "--gimp-profile",
                              str(profile)], capture_output=True, text=True, timeout=120)
    assert removed.returncode == 0, removed.stderr
    assert not profile.exists()  # the profile and plug-ins folders it made, empty again, are gone too


def test_a_failed_update_keeps_the_working_plugin_and_uninstall_keeps_folders_it_did_not_make(tmp_path):
    profile = tmp_path / "profile"
    (profile / "plug-ins" / "someone_elses").mkdir(parents=True)  # GIMP made these, with another plug-in
    wheels = stand_in_wheels(tmp_path / "wheels")
    common = [sys.executable, str(REPO / "install.py"), "--skip-env", "--gimp-profile", str(profile),
              "--no-autostart"]
    done = subprocess.run([*common, "--gimp-python", "3.12", "--wheels-from", str(wheels)], capture_output=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    target = profile / "plug-ins" / "neural_fill"
    before = {path.relative_to(target): path.read_bytes() for path in target.rglob("*") if path.is_file()}
    # A GIMP with another Python needs other wheels, and none are to be had: the update fails.
    (tmp_path / "no-wheels").mkdir()
    failed = subprocess.run([*common, "--gimp-python", "3.99", "--endpoint", "tcp://127.0.0.1:1", "--wheels-from",
                             str(tmp_path / "no-wheels")], capture_output=True, text=True, timeout=300)
    assert failed.returncode == 1 and "was not installed" in failed.stderr
    after = {path.relative_to(target): path.read_bytes() for path in target.rglob("*") if path.is_file()}
    assert after == before  # the plug-in that worked is there, settings and all
    assert sorted(p.name for p in (profile / "plug-ins").iterdir()) == ["neural_fill", "someone_elses"]

    (profile / "plug-ins" / "someone_elses").rmdir()
    subprocess.run([sys.executable, str(REPO / "install.py"), "--uninstall", "--gimp-profile", str(profile)],
                   capture_output=True, timeout=120, check=True)
    assert (profile / "plug-ins").is_dir() and not any((profile / "plug-ins").iterdir())  # GIMP's, kept


def stand_in_wheels(folder: Path) -> Path:
    """Pure-Python stand-ins for the pyzmq and msgpack wheels (a `zmq` and a `msgpack` package that do nothing),
    for tests about installing, not about the packages: pip installs them offline for any GIMP Python."""
    import zipfile

    folder.mkdir(parents=True, exist_ok=True)
    for project, package in (("pyzmq", "zmq"), ("msgpack", "msgpack")):
        info = f"{project}-99.0.dist-info"
        files = {f"{package}/__init__.py": "# a stand-in for tests\n",
                 f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {project}\nVersion: 99.0\n",
                 f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
        files[f"{info}/RECORD"] = "".join(f"{name},,\n" for name in [*files, f"{info}/RECORD"])
        with zipfile.ZipFile(folder / f"{project}-99.0-py3-none-any.whl", "w") as wheel:
            for name, text in files.items():
                wheel.writestr(name, text)
    return folder


# ------------------------------------------------------------------------------ reaching a real daemon


def test_with_no_daemon_and_no_command_the_error_says_how_to_start_one(tmp_path):
    settings = plugin_settings.Settings(endpoint=f"ipc://{tmp_path / 'none.sock'}", timeout=5)
    started = time.monotonic()
    with pytest.raises(daemon_connection.link.DaemonUnavailable, match="neural-fill daemon --bind"):
        daemon_connection.connect(settings, settings.endpoint)
    assert time.monotonic() - started < daemon_connection.HELLO_SECONDS + 2


def test_a_command_that_cannot_start_is_reported(tmp_path):
    settings = plugin_settings.Settings(endpoint=f"ipc://{tmp_path / 'none.sock'}",
                                        daemon_command=(str(tmp_path / "no-such-program"), "daemon"))
    with pytest.raises(daemon_connection.link.DaemonUnavailable, match="could not be started"):
        daemon_connection.connect(settings, settings.endpoint)


def test_the_started_daemons_log_is_the_users_own_and_a_link_in_its_place_is_not_followed(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    log = daemon_connection.log_path()
    assert log == tmp_path / "state" / "neural-fill" / "daemon.log"
    daemon_connection.start_daemon((sys.executable, "-c", "print('loaded')")).wait(30)
    assert log.read_text().strip() == "loaded"
    assert stat.S_IMODE(log.stat().st_mode) == 0o600 and stat.S_IMODE(log.parent.stat().st_mode) == 0o700
    victim = tmp_path / "victim.txt"  # what another user's link would point at
    victim.write_text("precious\n")
    log.unlink()
    log.symlink_to(victim)
    with pytest.raises(daemon_connection.link.DaemonUnavailable, match="could not be started"):
        daemon_connection.start_daemon((sys.executable, "-c", "print('loaded')"))
    assert victim.read_text() == "precious\n"


def test_a_daemon_that_dies_while_starting_is_reported_with_its_last_words(tmp_path):
    settings = plugin_settings.Settings(endpoint=f"ipc://{tmp_path / 'none.sock'}",
                                        daemon_command=(sys.executable, "-c", "raise SystemExit('no weights here')"))
    with pytest.raises(daemon_connection.link.DaemonUnavailable, match="stopped while starting.*no weights here"):
        daemon_connection.connect(settings, settings.endpoint)


@pytest.mark.weights
@pytest.mark.slow
def test_the_plugin_starts_the_configured_daemon_when_none_answers_and_it_outlives_the_plugin(tmp_path):
    endpoint = f"ipc://{tmp_path / 'started.sock'}"
    pid_file = tmp_path / "daemon.pid"
    start = (f"import os, sys; open({str(pid_file)!r}, 'w').write(str(os.getpid())); sys.path.insert(0, "
             f"{str(REPO)!r}); from daemon.cli import main; sys.exit(main(['daemon', '--bind', {endpoint!r}]))")
    settings = plugin_settings.Settings(endpoint=endpoint, daemon_command=(sys.executable, "-c", start))
    waited = []
    try:
        connection = daemon_connection.connect(settings, endpoint, waiting=waited.append)
        connection.close()
        assert waited, "the plug-in should report that it waits for the daemon"
        pid = int(pid_file.read_text())
        assert os.getsid(pid) == pid  # its own session: closing GIMP does not take it down
        again = daemon_connection.connect(settings, endpoint)  # answers at once now: no second daemon
        reply = again.call({"op": "status"}, "status")
        again.close()
        assert reply.header["queued"] == 0
    finally:
        if pid_file.exists():
            os.kill(int(pid_file.read_text()), signal.SIGTERM)


def test_the_json_the_installer_writes_is_valid_for_any_command():
    text = plugin_install.PluginSettings("ipc:///tmp/x", True, ["C:\\GIMP 3\\neural-fill.exe", "daemon"]).to_json()
    assert json.loads(text)["daemon_command"] == ["C:\\GIMP 3\\neural-fill.exe", "daemon"]
    assert fill_region.MIN_AUTO_MARGIN >= 32  # the engine's own smallest context


# ------------------------------------------------------------------------------------ CURVE and systemd


def test_install_py_curve_gives_the_plugin_keys_it_can_reach_a_curve_daemon_with(tmp_path):
    config, profile = tmp_path / "config", tmp_path / "profile"
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    done = subprocess.run([sys.executable, str(REPO / "install.py"), "--skip-env", "--gimp-profile", str(profile),
                           "--create", "--gimp-python", f"{sys.version_info[0]}.{sys.version_info[1]}", "--curve",
                           "--endpoint", endpoint, "--no-autostart", "--wheels-from",
                           str(stand_in_wheels(tmp_path / "wheels"))],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NEURAL_FILL_CONFIG_DIR": str(config)})
    assert done.returncode == 0, done.stdout + done.stderr
    target = profile / "plug-ins" / "neural_fill"
    assert (target / "keys" / "client.key_secret").stat().st_mode & 0o777 == 0o600, done.stdout + done.stderr
    assert (target / "keys").stat().st_mode & 0o777 == 0o700
    settings = plugin_settings.load_settings(target)
    assert settings.curve and settings.endpoint == endpoint

    daemon, thread = start_daemon(endpoint, curve=True, keys_dir=config / "keys")
    try:
        connection = daemon_connection.connect(settings, endpoint)
        assert connection.call({"op": "status"}, "status").header["queued"] == 0
        connection.close()
        stranger = plugin_settings.Settings(endpoint=endpoint, timeout=2, curve=True, keys_dir=tmp_path / "nothing")
        with pytest.raises(daemon_connection.link.DaemonUnavailable, match="run install.py again"):
            daemon_connection.connect(stranger, endpoint)
    finally:
        daemon.stop()
        thread.join(10)


def test_the_systemd_unit_runs_this_checkouts_daemon_and_uninstall_removes_only_ours(tmp_path):
    from daemon.service import unit as service_unit

    unit = service_unit.render_unit(["/opt/my nf/.venv/bin/neural-fill", "daemon", "--bind", "tcp://127.0.0.1:1"])
    assert "ExecStart='/opt/my nf/.venv/bin/neural-fill' daemon --bind tcp://127.0.0.1:1\n" in unit
    assert unit.count("ExecStart=") == 1 and service_unit.MARKER in unit

    home = tmp_path / "home"
    env = {**os.environ, "HOME": str(home), "PATH": "/nonexistent"}  # no systemctl: the unit file is still written
    run = [sys.executable, str(REPO / "install.py"), "--skip-env", "--no-gimp"]
    done = subprocess.run([*run, "--systemd"], capture_output=True, text=True, timeout=120, env=env)
    path = service_unit.user_unit_path(home)
    assert done.returncode == 0 and service_unit.is_ours(path), done.stdout + done.stderr
    assert str(REPO / ".venv") in path.read_text() and "systemctl --user enable" in done.stdout
    done = subprocess.run([*run, "--uninstall"], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0 and not path.exists(), done.stdout + done.stderr
    path.write_text("[Service]\nExecStart=/usr/bin/someone-elses\n")  # not ours: left alone
    subprocess.run([*run, "--uninstall"], capture_output=True, text=True, timeout=120, env=env)
    assert path.exists()
