"""Where GIMP 3 keeps its profiles and which Python it runs plug-ins with.

Standard library only: install.py uses it before anything is installed. Every function takes the home directory,
environment, system and root as arguments so tests can point it at fake trees.
"""

from __future__ import annotations

import configparser
import re
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

PROFILE_NAME = re.compile(r"3\.\d+")
PYTHON_LIB_NAME = re.compile(r"python(3\.\d+)")  # "python3.13t" (free-threaded) is deliberately not matched
VERSION_SNIPPET = "import sys; print('%d.%d' % sys.version_info[:2])"
FLATPAK_ID = "org.gimp.GIMP"

# What to vendor for when GIMP's Python cannot be found (the plug-in picks the folder matching its running Python,
# so a wrong extra guess costs only disk space, about 5 MB each):
# - GIMP 3.0: Windows installer and Flatpak (freedesktop 24.08 runtime) and Snap (core24) run 3.12;
#   Debian trixie, Ubuntu 25.04 and Fedora 42 run their system 3.13.
# - GIMP 3.2: Flatpak (freedesktop 25.08 runtime) and recent distros run 3.13; the 3.2 installers bundle 3.14.
FALLBACK_VERSIONS: dict[str, tuple[str, ...]] = {"3.0": ("3.12", "3.13"), "3.2": ("3.13", "3.14")}
DEFAULT_FALLBACK_VERSIONS = ("3.12", "3.13", "3.14")  # a profile name we do not know (newer GIMP, GIMP3_DIRECTORY)

# pip --platform tags, most specific first. Checked on PyPI (pyzmq 27.3.0, msgpack 1.2.4) with
# `pip download --only-binary=:all: --platform ...` for cp312, cp313 and cp314. pyzmq ships one cp312-abi3 wheel
# per platform for 3.12 and later (macOS: only macosx_10_15_universal2); msgpack ships one wheel per version.
LINUX_TAGS = ("manylinux_2_28_{arch}", "manylinux_2_17_{arch}", "manylinux2014_{arch}")
MACOS_TAGS = {
    "arm64": ("macosx_11_0_arm64", "macosx_10_15_universal2"),
    "x86_64": ("macosx_11_0_x86_64", "macosx_10_15_x86_64", "macosx_10_15_universal2", "macosx_10_13_x86_64"),
}
WINDOWS_TAGS = {"amd64": ("win_amd64",), "x86_64": ("win_amd64",), "arm64": ("win_arm64",), "aarch64": ("win_arm64",)}
LINUX_ARCHES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}

Runner = Callable[..., "subprocess.CompletedProcess[str]"]


@dataclass(frozen=True)
class PythonTarget:
    version: str  # "3.13"
    platforms: tuple[str, ...]  # pip --platform tags, most specific first
    system_python: Path | None = None  # a real interpreter to test imports with (native Linux only)

    @property
    def abi(self) -> str:
        return "cp" + self.version.replace(".", "")


@dataclass(frozen=True)
class GimpInstall:
    profile: Path
    kind: str  # "native" | "flatpak" | "snap" | "windows" | "macos" | "given"
    python: PythonTarget | None  # None = unknown: vendor for fallback_versions(profile)


def platform_tags(system: str, machine: str) -> tuple[str, ...]:
    """pip --platform tags for GIMP's Python on this system (system and machine as the platform module says)."""
    arch = machine.lower()
    if system == "Linux" and arch in LINUX_ARCHES:
        return tuple(tag.format(arch=LINUX_ARCHES[arch]) for tag in LINUX_TAGS)
    if system == "Windows" and arch in WINDOWS_TAGS:
        return WINDOWS_TAGS[arch]
    if system == "Darwin" and arch in ("arm64", "aarch64", "x86_64"):
        return MACOS_TAGS["x86_64" if arch == "x86_64" else "arm64"]
    raise ValueError(f"no pyzmq wheels known for {system} {machine}")


def fallback_versions(profile: Path) -> tuple[str, ...]:
    """Python versions to vendor for when GIMP's own could not be found; the profile name (3.0, 3.2) is the hint."""
    return FALLBACK_VERSIONS.get(profile.name, DEFAULT_FALLBACK_VERSIONS)


def find_profiles(home: Path, env: Mapping[str, str], system: str) -> list[tuple[Path, str]]:
    """Existing GIMP 3 profile directories with their kind, in a stable order (2.10 profiles are left out)."""
    if system == "Windows":
        appdata = _env(env, "APPDATA")
        bases = [(Path(appdata) if appdata else home / "AppData" / "Roaming", "windows")]
    elif system == "Darwin":
        bases = [(home / "Library" / "Application Support", "macos")]
    else:
        xdg = env.get("XDG_CONFIG_HOME", "")
        # The XDG spec says to ignore a relative XDG_CONFIG_HOME, and so does GLib.
        bases = [
            (Path(xdg) if xdg and Path(xdg).is_absolute() else home / ".config", "native"),
            (home / ".var" / "app" / FLATPAK_ID / "config", "flatpak"),
            (home / "snap" / "gimp" / "current" / ".config", "snap"),
        ]
    found: list[tuple[Path, str]] = []
    for base, kind in bases:
        gimp_dir = base / "GIMP"
        if not gimp_dir.is_dir():
            continue
        names = [p.name for p in gimp_dir.iterdir() if p.is_dir() and PROFILE_NAME.fullmatch(p.name)]
        found += [(gimp_dir / name, kind) for name in sorted(names, key=_version_key)]
    given = _env(env, "GIMP3_DIRECTORY")  # GIMP's own override of the profile location
    if given and Path(given).is_dir():
        found.append((Path(given), "given"))
    kinds = {}  # one entry per directory, the first kind wins (GIMP3_DIRECTORY may point at a usual place)
    for profile, kind in found:
        kinds.setdefault(profile.resolve(), (profile, kind))
    return list(kinds.values())


def python_for(kind: str, profile: Path, env: Mapping[str, str], system: str, machine: str, root: Path = Path("/"),
               run: Runner = subprocess.run) -> PythonTarget | None:
    """Best guess of the Python this GIMP runs plug-ins with; None when it cannot be found."""
    if kind == "given":  # a profile somewhere else: the GIMP using it is whatever is installed the usual way
        kind = {"Linux": "native", "Windows": "windows", "Darwin": "macos"}.get(system, kind)
    try:
        tags = platform_tags(system, machine)
    except ValueError:
        return None
    if kind == "native":
        interpreter = _interp_python(root)
        version = _ask_version(interpreter, run) if interpreter else None
        return PythonTarget(version, tags, interpreter) if version else None
    if kind == "windows":
        lib_dirs = [install / "lib" for install in _windows_gimp_dirs(env)]
    elif kind == "macos":
        lib_dirs = _macos_lib_dirs(root, env)
    elif kind == "flatpak":
        lib_dirs = _flatpak_lib_dirs(root, env)
    elif kind == "snap":
        lib_dirs = [root / "snap" / "gimp" / "current" / "usr" / "lib"]
    else:
        return None
    version = _pick_version(_python_versions_in(lib_dirs), profile)
    return PythonTarget(version, tags) if version else None


def find_installs(home: Path, env: Mapping[str, str], system: str, machine: str, root: Path = Path("/"),
                  run: Runner = subprocess.run) -> list[GimpInstall]:
    """find_profiles plus python_for for each: everything install.py needs to know per profile."""
    return [
        GimpInstall(profile, kind, python_for(kind, profile, env, system, machine, root, run))
        for profile, kind in find_profiles(home, env, system)
    ]


# --- native Linux: the interpreter named in GIMP's pygimp.interp -------------------------------------------------

def _interp_files(root: Path) -> list[Path]:
    patterns = ["usr/lib/*/gimp/3.0/interpreters/*.interp", "usr/lib/gimp/3.0/interpreters/*.interp",
                "usr/lib64/gimp/3.0/interpreters/*.interp", "usr/local/lib/*/gimp/3.0/interpreters/*.interp",
                "usr/local/lib/gimp/3.0/interpreters/*.interp"]
    return [path for pattern in patterns for path in sorted(root.glob(pattern))]


def _interp_python(root: Path) -> Path | None:
    """The Python that GIMP's .interp file runs .py plug-ins with, re-rooted under root; None if none exists."""
    for interp in _interp_files(root):
        for candidate in _interp_candidates(interp.read_text(errors="replace")):
            path = root / candidate.lstrip("/")
            if candidate.startswith("/") and path.is_file():
                return path
    return None


def _interp_candidates(text: str) -> list[str]:
    """Interpreter paths from an .interp file, the one the .py extension is bound to first.

    Lines are `name=/path` (program name to interpreter) and binfmt-style `:Python:E::py::python3:`
    (`:name:type:offset:magic:mask:interpreter:flags`, type E binds a file extension)."""
    names: dict[str, str] = {}
    py_interpreter = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith(":"):
            fields = line.split(":")
            if len(fields) >= 7 and fields[2] == "E" and fields[4] == "py":
                py_interpreter = fields[6]
        elif "=" in line and not line.startswith("#"):
            name, _, path = line.partition("=")
            names[name.strip()] = path.strip()
    preferred = [names.get(py_interpreter, py_interpreter)] if py_interpreter else []
    preferred += [names[n] for n in ("python3", "python") if n in names]
    return _unique(preferred + list(names.values()))


def _ask_version(python: Path, run: Runner) -> str | None:
    try:
        result = run([str(python), "-c", VERSION_SNIPPET], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    version = (result.stdout or "").strip()
    return version if result.returncode == 0 and re.fullmatch(r"3\.\d+", version) else None


# --- bundled Pythons: a lib/python3.X directory inside the GIMP installation -------------------------------------

def _windows_gimp_dirs(env: Mapping[str, str]) -> list[Path]:
    bases = [Path(_env(env, "LOCALAPPDATA")) / "Programs"] if _env(env, "LOCALAPPDATA") else []
    bases += [Path(_env(env, name)) for name in ("ProgramFiles", "ProgramW6432") if _env(env, name)]
    return _unique([install for base in bases for install in sorted(base.glob("GIMP 3*")) if install.is_dir()])


def _macos_lib_dirs(root: Path, env: Mapping[str, str]) -> list[Path]:
    apps = sorted((root / "Applications").glob("GIMP*.app"))
    if env.get("HOME"):
        apps += sorted((Path(env["HOME"]) / "Applications").glob("GIMP*.app"))
    lib_dirs = []
    for app in apps:
        lib_dirs.append(app / "Contents" / "Resources" / "lib")
        lib_dirs += sorted(p / "lib" for p in app.glob("Contents/Frameworks/Python.framework/Versions/3.*"))
    return lib_dirs


def _flatpak_lib_dirs(root: Path, env: Mapping[str, str]) -> list[Path]:
    """The app's own lib and its runtime's lib (the runtime's files are its /usr), user installation first."""
    installations = []
    if env.get("XDG_DATA_HOME"):
        installations.append(Path(env["XDG_DATA_HOME"]) / "flatpak")
    elif env.get("HOME"):
        installations.append(Path(env["HOME"]) / ".local" / "share" / "flatpak")
    installations.append(root / "var" / "lib" / "flatpak")
    lib_dirs = []
    for installation in installations:
        app = installation / "app" / FLATPAK_ID / "current" / "active"
        if not app.is_dir():
            continue
        lib_dirs.append(app / "files" / "lib")
        runtime = _flatpak_runtime(app / "metadata")  # e.g. "org.gnome.Platform/x86_64/48"
        if runtime:
            lib_dirs += [inst / "runtime" / runtime / "active" / "files" / "lib" for inst in installations]
    return lib_dirs


def _flatpak_runtime(metadata: Path) -> str | None:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(metadata.read_text(errors="replace"))
    except (OSError, configparser.Error):
        return None
    runtime = parser.get("Application", "runtime", fallback="")
    return runtime if runtime.count("/") == 2 else None


def _python_versions_in(lib_dirs: list[Path]) -> list[str]:
    """Versions X.Y of the lib/python3.X directories that hold a real standard library, not just leftovers."""
    versions = []
    for lib in lib_dirs:
        if not lib.is_dir():
            continue
        for candidate in lib.iterdir():
            match = PYTHON_LIB_NAME.fullmatch(candidate.name)
            if match and ((candidate / "os.py").is_file() or (candidate / "lib-dynload").is_dir()):
                versions.append(match.group(1))
    return _unique(versions)


def _pick_version(versions: list[str], profile: Path) -> str | None:
    """Several GIMPs installed: prefer a Python this profile's GIMP version ships with, then the newest."""
    if not versions:
        return None
    likely = [v for v in versions if v in fallback_versions(profile)]
    return max(likely or versions, key=_version_key)


# --- small helpers ---------------------------------------------------------------------------------------------

def _env(env: Mapping[str, str], name: str) -> str:
    """Environment lookup ignoring case, as Windows does."""
    if name in env:
        return env[name]
    return next((value for key, value in env.items() if key.lower() == name.lower()), "")


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def _unique(items):
    return list(dict.fromkeys(items))
