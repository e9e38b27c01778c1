"""A real, headless GIMP 3 for the test-suite: a Debian chroot built once with debootstrap and reused afterwards.

Debian 12 has no GIMP 3, so tests that drive the plug-in inside real GIMP use a chroot of a newer Debian release
("trixie": GIMP 3.0 with Python 3.13, "forky": GIMP 3.2 with Python 3.14). The chroot holds only `gimp` and what it
pulls in, deliberately without python3-zmq or python3-msgpack: the tests must prove that the installer's vendored
pyzmq + msgpack wheels (see `ensure_wheels`) are what the plug-in imports.

Everything is cached under $NEURAL_FILL_GIMP_CACHE (default /var/cache/neural-fill):

    gimp-trixie/, gimp-forky/   finished chroots (a stamp file inside marks them complete; anything else is rebuilt)
    gimp-RELEASE.lock           flock so that two pytest processes never build the same chroot at once
    gimp-RELEASE.build.log      output of the last build (debootstrap, apt-get)
    wheels/cp313/, wheels/cp314/  pyzmq and msgpack manylinux x86_64 wheels, downloaded once

Building needs root, debootstrap (installed here with the host's apt-get when missing, as on a fresh Debian) and the
Debian mirror this machine's apt already uses (override with $NEURAL_FILL_DEBIAN_MIRROR); it takes about a minute and
0.7 GB (trixie) or 1 GB (forky). Later runs are offline. Whatever is missing is reported by raising
`ChrootUnavailable`, whose message says why, so that tests can `pytest.skip(str(e))`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CACHE_DIR = Path(os.environ.get("NEURAL_FILL_GIMP_CACHE", "/var/cache/neural-fill"))
DEFAULT_MIRROR = "http://deb.debian.org/debian"
STAMP_NAME = ".neural-fill-chroot.json"
STAMP_FORMAT = 1  # bump when the recipe changes: older chroots are then rebuilt
CHROOT_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
PROXY_VARIABLES = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")
MIN_FREE_BYTES = 2 * 1024**3


@dataclass(frozen=True)
class Release:
    """A Debian release whose `gimp` package is GIMP 3, and how to bootstrap and run it."""

    name: str
    suite: str  # debootstrap suite (the name in the mirror's dists/)
    script: str | None  # debootstrap script path, None for debootstrap's own script for `suite`
    console: str  # GIMP's console binary inside the chroot
    python_version: str  # the chroot's python3, "X.Y"
    gimp_series: str  # "3.0", "3.2"
    apt_config: str = ""  # written to /etc/apt/apt.conf.d/99neural-fill inside the chroot

    @property
    def abi(self) -> str:
        return "cp" + self.python_version.replace(".", "")


RELEASES: dict[str, Release] = {
    "trixie": Release("trixie", "trixie", None, "gimp-console-3.0", "3.13", "3.0"),
    # debootstrap 1.0.128 (Debian 12) has no forky script; sid's works. The mirror's forky Release file can be expired.
    "forky": Release("forky", "forky", "/usr/share/debootstrap/scripts/sid", "gimp-console-3.2", "3.14", "3.2",
                     apt_config='Acquire::Check-Valid-Until "false";\n'),
}


# gimp pulls python3-gi and the typelibs; no python3-zmq/msgpack: tests exercise the vendored wheels. Xvfb, xauth and
# xdotool let a test open the plug-in's dialog on a virtual screen and press its buttons.
PACKAGES = ("gimp", "xvfb", "xauth", "xdotool")


class ChrootUnavailable(Exception):  # noqa: N818 - tests read it as "skip: chroot unavailable"
    """The GIMP chroot (or the wheels) cannot be had on this machine; the message says why. Tests skip on it."""


def _say(message: str) -> None:
    print(f"[gimp_chroot] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------------- mirror


def _mirror_candidates() -> Iterator[str]:
    """Debian archive URLs from the host's apt sources, in file order (deb822 .sources, then one-line .list)."""
    sources_d = Path("/etc/apt/sources.list.d")
    for path in sorted(sources_d.glob("*.sources")) if sources_d.is_dir() else []:
        with contextlib.suppress(OSError):
            for stanza in re.split(r"\n\s*\n", path.read_text(errors="replace")):
                fields: dict[str, str] = {}
                for line in stanza.splitlines():
                    if line.lstrip().startswith("#") or ":" not in line or line[:1].isspace():
                        continue  # comments (e.g. "# http://snapshot.debian.org/...") and continuation lines
                    key, _, value = line.partition(":")
                    fields[key.strip().lower()] = value.strip()
                if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes").lower() == "no":
                    continue
                yield from fields.get("uris", "").split()
    lists = [Path("/etc/apt/sources.list")]
    if sources_d.is_dir():
        lists += sorted(sources_d.glob("*.list"))
    for path in lists:
        with contextlib.suppress(OSError):
            for line in path.read_text(errors="replace").splitlines():
                words = line.split("#", 1)[0].split()
                if words[:1] != ["deb"]:
                    continue
                words = words[1:]
                if words and words[0].startswith("["):  # deb [arch=amd64 signed-by=...] URL suite ...
                    while words and not words[0].endswith("]"):
                        words = words[1:]
                    words = words[1:]
                if words:
                    yield words[0]


def debian_mirror() -> str:
    """The mirror to bootstrap from: $NEURAL_FILL_DEBIAN_MIRROR, else the host's apt sources, else deb.debian.org."""
    override = os.environ.get("NEURAL_FILL_DEBIAN_MIRROR")
    if override:
        return override.rstrip("/")
    for uri in _mirror_candidates():
        uri = uri.rstrip("/")
        if re.match(r"https?://", uri) and "snapshot.debian.org" not in uri and not re.search(r"security|ports", uri):
            return uri
    return DEFAULT_MIRROR


def _check_mirror(mirror: str, suite: str) -> None:
    url = f"{mirror}/dists/{suite}/InRelease"
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            response.read(64)
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise ChrootUnavailable(f"Debian mirror unreachable: {url}: {error} (needed once, to build the GIMP chroot; "
                                "set NEURAL_FILL_DEBIAN_MIRROR to use another mirror)") from error


# ------------------------------------------------------------------------------------------------------ the chroot


def _release(release: str) -> Release:
    try:
        return RELEASES[release]
    except KeyError:
        raise ValueError(f"unknown release {release!r}; known: {', '.join(RELEASES)}") from None


def _read_stamp(root: Path) -> dict | None:
    try:
        stamp = json.loads((root / STAMP_NAME).read_text())
    except (OSError, ValueError):
        return None
    return stamp if isinstance(stamp, dict) else None


def _is_complete(root: Path, release: Release) -> bool:
    stamp = _read_stamp(root)
    return (stamp is not None and stamp.get("format") == STAMP_FORMAT and stamp.get("release") == release.name
            and stamp.get("complete") is True and os.path.lexists(root / "usr/bin" / release.console))


def _require_root() -> None:
    if os.geteuid() != 0:
        raise ChrootUnavailable("the GIMP chroot needs root (debootstrap and chroot(2)); run the GIMP tests as root")


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    try:
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        handle = open(CACHE_DIR / name, "a")  # noqa: SIM115 - held open for the lock's lifetime
    except OSError as error:
        raise ChrootUnavailable(f"cache directory {CACHE_DIR} is not writable: {error} "
                                "(set NEURAL_FILL_GIMP_CACHE to another directory)") from error
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _say(f"waiting for the lock {CACHE_DIR / name} (another process is building or downloading)")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _remove_tree(path: Path) -> None:
    """Delete a (possibly half-built) chroot, refusing if anything is mounted inside it: rmtree would follow mounts."""
    if not path.exists() and not path.is_symlink():
        return
    real = os.path.realpath(path)
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mounts").read_text().splitlines():
            mount_point = line.split()[1].replace("\\040", " ")
            if mount_point == real or mount_point.startswith(real + "/"):
                raise ChrootUnavailable(f"{mount_point} is mounted inside {path}; unmount it, then delete {path}")
    if path.is_symlink() or not path.is_dir():
        path.unlink()
    else:
        shutil.rmtree(path)


def _run_logged(command: list[str], log: Path, what: str, extra_env: dict[str, str] | None = None) -> None:
    env = None if extra_env is None else {**os.environ, **extra_env}
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(command)}\n")
        out.flush()
        done = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env)
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise ChrootUnavailable(f"{what} failed (exit {done.returncode}); full log: {log}\n{tail}")


def _in_chroot(root: Path, *command: str) -> list[str]:
    env = ["HOME=/root", f"PATH={CHROOT_PATH}", "LANG=C.UTF-8", "DEBIAN_FRONTEND=noninteractive"]
    env += [f"{name}={os.environ[name]}" for name in PROXY_VARIABLES if os.environ.get(name)]
    return ["chroot", str(root), "env", "-i", *env, *command]


def _ensure_debootstrap() -> None:
    """Install debootstrap with the host's apt where it is missing, so that README's test command on a fresh Debian or
    Ubuntu needs nothing more; elsewhere (no apt-get, another OS) say what to install. We are root (_require_root)."""
    if shutil.which("debootstrap") is not None:
        return
    if not sys.platform.startswith("linux") or shutil.which("apt-get") is None:
        raise ChrootUnavailable("debootstrap is missing and this machine has no apt-get to install it with "
                                "(the GIMP chroot is built with Debian's debootstrap)")
    with _locked("debootstrap.lock"):  # the trixie and forky builds of parallel pytest runs must not race in dpkg
        if shutil.which("debootstrap") is not None:
            return
        log = CACHE_DIR / "debootstrap-install.log"
        log.write_text("installing debootstrap with the host's apt\n")
        _say(f"debootstrap is missing: installing it with apt-get (log: {log})")
        apt = {"DEBIAN_FRONTEND": "noninteractive"}
        _run_logged(["apt-get", "update", "-qq"], log, "apt-get update (to install debootstrap)", apt)
        _run_logged(["apt-get", "install", "-y", "-qq", "debootstrap"], log, "apt-get install debootstrap", apt)
    if shutil.which("debootstrap") is None:
        raise ChrootUnavailable(f"apt-get installed debootstrap but it is not on PATH ({os.environ.get('PATH')})")


def _build(release: Release, final: Path) -> None:
    started = time.monotonic()
    mirror = debian_mirror()
    _ensure_debootstrap()
    if release.script is not None and not Path(release.script).exists():
        raise ChrootUnavailable(f"debootstrap script {release.script} is missing: apt-get install debootstrap")
    if shutil.disk_usage(CACHE_DIR).free < MIN_FREE_BYTES:
        raise ChrootUnavailable(f"less than {MIN_FREE_BYTES >> 30} GB free in {CACHE_DIR} for the GIMP chroot")
    _check_mirror(mirror, release.suite)

    for stale in CACHE_DIR.glob(f".gimp-{release.name}.*"):  # leftovers of interrupted builds (we hold the lock)
        _say(f"removing leftover {stale}")
        _remove_tree(stale)
    if final.exists() or final.is_symlink():
        _say(f"{final} has no valid completion stamp: deleting it and building afresh")
        aside = CACHE_DIR / f".gimp-{release.name}.old-{os.getpid()}"
        final.rename(aside)
        _remove_tree(aside)

    work = CACHE_DIR / f".gimp-{release.name}.building-{os.getpid()}"
    log = CACHE_DIR / f"gimp-{release.name}.build.log"
    log.write_text(f"building GIMP chroot {release.name} from {mirror}\n")
    try:
        _say(f"building the {release.name} GIMP chroot in {CACHE_DIR} from {mirror} (about a minute; log: {log})")
        command = ["debootstrap", "--variant=minbase", release.suite, str(work), mirror]
        if release.script is not None:
            command.append(release.script)
        step = time.monotonic()
        _run_logged(command, log, f"debootstrap {release.suite}")
        _say(f"debootstrap done in {time.monotonic() - step:.0f} s")

        if release.apt_config:
            (work / "etc/apt/apt.conf.d/99neural-fill").write_text(release.apt_config)
        step = time.monotonic()
        _run_logged(_in_chroot(work, "apt-get", "update"), log, f"apt-get update in the {release.name} chroot")
        _run_logged(_in_chroot(work, "apt-get", "install", "-y", "--no-install-recommends", *PACKAGES), log,
                    f"apt-get install {' '.join(PACKAGES)} in the {release.name} chroot")
        _run_logged(_in_chroot(work, "apt-get", "clean"), log, "apt-get clean")
        _say(f"gimp installed in {time.monotonic() - step:.0f} s")

        if not os.path.lexists(work / "usr/bin" / release.console):
            found = sorted(p.name for p in (work / "usr/bin").glob("gimp-console*"))
            raise ChrootUnavailable(f"{release.console} not found in the {release.name} chroot (found: {found})")
        version = subprocess.run(_in_chroot(work, "dpkg-query", "-W", "-f", "${Version}", "gimp"),
                                 capture_output=True, text=True).stdout.strip()
        python = subprocess.run(_in_chroot(work, "python3", "-c", "import sys; print(sys.version.split()[0])"),
                                capture_output=True, text=True).stdout.strip()
        stamp = {"format": STAMP_FORMAT, "release": release.name, "suite": release.suite, "mirror": mirror,
                 "gimp": version, "python": python, "console": release.console, "packages": list(PACKAGES),
                 "built": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "complete": True}
        (work / STAMP_NAME).write_text(json.dumps(stamp, indent=1) + "\n")
        work.rename(final)  # atomic: the chroot appears complete or not at all
    except BaseException:
        with contextlib.suppress(Exception):
            _remove_tree(work)
        raise
    _say(f"{release.name} GIMP chroot ready: GIMP {version}, Python {python}, "
         f"built in {time.monotonic() - started:.0f} s: {final}")


def ensure_chroot(release: str = "trixie") -> Path:
    """The root of a complete chroot with GIMP 3 for `release` ("trixie" or "forky"), built first if need be.

    A directory without a valid completion stamp (an interrupted or hand-made chroot) is deleted and rebuilt.
    Raises ChrootUnavailable (not root, no debootstrap, mirror unreachable, build failed ...) with the reason.
    """
    spec = _release(release)
    _require_root()
    final = CACHE_DIR / f"gimp-{spec.name}"
    if _is_complete(final, spec) and set(PACKAGES) <= set((_read_stamp(final) or {}).get("packages", [])):
        return final
    with _locked(f"gimp-{spec.name}.lock"):
        if not _is_complete(final, spec):  # another process may have finished it while we waited
            _build(spec, final)
        _add_missing_packages(final, spec)
    return final


def _add_missing_packages(root: Path, release: Release) -> None:
    """A chroot built when PACKAGES was shorter gets the rest installed in place (seconds, not a rebuild)."""
    stamp = _read_stamp(root) or {}
    missing = [name for name in PACKAGES if name not in stamp.get("packages", [])]
    if not missing:
        return
    log = CACHE_DIR / f"gimp-{release.name}.build.log"
    _say(f"adding {' '.join(missing)} to the {release.name} GIMP chroot")
    _run_logged(_in_chroot(root, "apt-get", "update"), log, f"apt-get update in the {release.name} chroot")
    _run_logged(_in_chroot(root, "apt-get", "install", "-y", "--no-install-recommends", *missing), log,
                f"apt-get install {' '.join(missing)} in the {release.name} chroot")
    _run_logged(_in_chroot(root, "apt-get", "clean"), log, "apt-get clean")
    stamp["packages"] = list(PACKAGES)
    (root / STAMP_NAME).write_text(json.dumps(stamp, indent=1) + "\n")


def chroot_info(root: Path) -> dict:
    """The stamp of a complete chroot: release, gimp (package version), python, console, mirror, built."""
    return _read_stamp(Path(root)) or {}


# ---------------------------------------------------------------------------------------------------------- wheels


def ensure_wheels(python_version: str) -> Path:
    """A folder with pyzmq and msgpack wheels for CPython `python_version` ("3.13") on manylinux x86_64.

    Downloaded once with pip into CACHE_DIR/wheels/cpXY (a stamp marks it complete); later calls are offline.
    Raises ChrootUnavailable if the wheels cannot be downloaded.
    """
    if not re.fullmatch(r"3\.\d+", python_version):
        raise ValueError(f"python_version must look like '3.13', not {python_version!r}")
    abi = "cp" + python_version.replace(".", "")
    final = CACHE_DIR / "wheels" / abi
    stamp = final / ".complete"
    if stamp.exists():
        return final
    with _locked("wheels.lock"):
        if stamp.exists():
            return final
        work = final.with_name(f".{abi}.downloading-{os.getpid()}")
        _remove_tree(final)
        _remove_tree(work)
        work.mkdir(parents=True)
        command = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--only-binary=:all:",
                   "--python-version", python_version, "--implementation", "cp", "--abi", abi,
                   "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux2014_x86_64",
                   "--platform", "manylinux_2_17_x86_64", "-d", str(work), "pyzmq", "msgpack"]
        _say(f"downloading pyzmq and msgpack wheels for CPython {python_version} into {final}")
        done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        try:
            if done.returncode != 0:
                tail = "\n".join((done.stdout + done.stderr).splitlines()[-10:])
                raise ChrootUnavailable(f"pip could not download pyzmq/msgpack wheels for CPython {python_version} "
                                        f"(offline, or no such wheels yet):\n{tail}")
            wheels = sorted(p.name for p in work.glob("*.whl"))
            for package in ("pyzmq", "msgpack"):
                if not any(name.startswith(package + "-") for name in wheels):
                    raise ChrootUnavailable(f"no {package} wheel for CPython {python_version} on manylinux x86_64 "
                                            f"(got {wheels})")
            (work / ".complete").write_text("\n".join(wheels) + "\n")
            work.rename(final)
        except BaseException:
            with contextlib.suppress(Exception):
                _remove_tree(work)
            raise
    _say(f"wheels for CPython {python_version}: {', '.join(wheels)}")
    return final


# ------------------------------------------------------------------------------------------------------ running GIMP


def run_gimp(root: Path, profile: str, code: str, timeout: float = 120, release: str = "trixie",
             display: str | None = None) -> subprocess.CompletedProcess:
    """Run Python `code` in the chroot's gimp-console with python-fu-eval (Gimp, Gegl, GLib already imported).

    `profile` is the GIMP profile directory as seen INSIDE the chroot (e.g. "/root/profiles/p1", passed as
    GIMP3_DIRECTORY); the host sees it at root / profile.lstrip("/"). It is created if missing. Output is text;
    python-fu-eval buffers stdout, so print with flush=True or to stderr. A Python exception in `code` makes GIMP exit
    64 with the traceback on stderr. On timeout the whole process group (GIMP and its plug-ins) is killed and
    subprocess.TimeoutExpired is raised. `display` (from virtual_display) lets plug-ins open windows.
    """
    spec = _release(release)
    if not profile.startswith("/"):
        raise ValueError(f"profile must be an absolute path inside the chroot, not {profile!r}")
    root = Path(root)
    (root / profile.lstrip("/")).mkdir(parents=True, exist_ok=True)
    command = ["chroot", str(root), "env", "-i", "HOME=/root", f"PATH={CHROOT_PATH}", "LANG=C.UTF-8",
               f"GIMP3_DIRECTORY={profile}", *([f"DISPLAY={display}"] if display else []), spec.console, "-i",
               "--batch-interpreter=python-fu-eval", "-b", code,
               "--quit"]
    with subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, errors="replace", start_new_session=True) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
            raise subprocess.TimeoutExpired(command, timeout, stdout, stderr) from None
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


# ---------------------------------------------------------------------------------------------- a virtual screen


@contextlib.contextmanager
def virtual_display(root: Path, number: int | None = None) -> Iterator[str]:
    """An Xvfb screen inside the chroot for the length of the block; yields its DISPLAY (":N")."""
    number = number if number is not None else 90 + os.getpid() % 400
    server = subprocess.Popen(["chroot", str(root), "env", "-i", f"PATH={CHROOT_PATH}", "Xvfb", f":{number}",
                               "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while not (Path(root) / f"tmp/.X11-unix/X{number}").exists():
            if server.poll() is not None or time.monotonic() > deadline:
                raise ChrootUnavailable(f"Xvfb :{number} did not start in the chroot")
            time.sleep(0.1)
        yield f":{number}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        server.wait(10)


def press_key_in_window(root: Path, display: str, title: str, key: str, timeout: float = 60) -> bool:
    """Wait for a window named `title` (letters and spaces) on `display`, focus it and press `key` (xdotool
    names: Return, Escape). False if no such window appeared within `timeout`."""
    def xdotool(*arguments: str) -> subprocess.CompletedProcess:
        return subprocess.run(["chroot", str(root), "env", "-i", f"PATH={CHROOT_PATH}", f"DISPLAY={display}",
                               "xdotool", *arguments], capture_output=True, text=True, timeout=30)

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = xdotool("search", "--name", f"^{title}$").stdout.split()  # a regular expression
        if found:
            time.sleep(1.0)  # let GTK finish mapping and focusing its widgets
            return xdotool("windowfocus", "--sync", found[0], "key", key).returncode == 0
        time.sleep(0.3)
    return False


def icon_sandbox_problem(root: Path) -> str | None:
    """Why GTK windows would crash in this chroot, or None. Newer GTK stacks (forky) load SVG icons through glycin,
    which runs its loaders in a bubblewrap sandbox; where the kernel refuses the namespaces bwrap needs (containers),
    the first icon aborts the plug-in's dialog. Real desktops are not affected."""
    if not (Path(root) / "usr/bin/bwrap").exists():
        return None
    probe = subprocess.run(["chroot", str(root), "env", "-i", f"PATH={CHROOT_PATH}", "bwrap", "--unshare-all",
                            "--ro-bind", "/usr", "/usr", "--symlink", "/usr/lib", "/lib", "--symlink", "/usr/lib64",
                            "/lib64", "--dev", "/dev", "/usr/bin/true"], capture_output=True, text=True)
    if probe.returncode == 0:
        return None
    return f"GTK's icon loader sandbox (bwrap) cannot run here: {probe.stderr.strip().splitlines()[-1]}"
