"""Flags shared by the commands: every fill option generated from `engine.options.FillOptions` (an option added
there appears here, and in `neural-fill options`, with no change to this file), the preset, --set, and how a
client speaks to a daemon."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from daemon.files import JPEG_QUALITY
from engine.options import OPTION_TYPES, PRESETS, FillOptions, check_name, get_preset, parse

from .errors import PROG, CliError

DEFAULT_PRESET = "default"


def add_preset_flags(parser: argparse.ArgumentParser, set_help: str) -> None:
    parser.add_argument("--preset", choices=list(PRESETS), default=DEFAULT_PRESET,
                        help=f"starting values for every option (default: {DEFAULT_PRESET}; see `{PROG} options`)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", dest="settings", help=set_help)


def add_quality_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quality", type=whole_number("a JPEG quality", 1, 100), metavar="1-100",
                        help="JPEG output: encode the whole photo anew at this quality (default: a JPEG source keeps "
                             "its own blocks and tables, and only the 8x8 blocks the hole touches are re-encoded; "
                             f"{JPEG_QUALITY} for any other source)")


def whole_number(what: str, low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number from `low` (to `high`), with a message naming `what` it is."""
    span = f"from {low}" + ("" if high is None else f" to {high}")

    def parse_number(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}: a whole number {span}")
        return value

    return parse_number


def add_security_flags(parser: argparse.ArgumentParser, prefix: str) -> None:
    """How a client speaks to a daemon: as the daemon was started."""
    parser.add_argument("--curve", action="store_true",
                        help=f"{prefix}CURVE on an ipc:// socket too (always on for tcp://; keys in the config dir)")
    parser.add_argument("--insecure-loopback", action="store_true",
                        help=f"{prefix}plain tcp://127.0.0.1, to a daemon started with --insecure-loopback")


def option_rows() -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in FillOptions.describe()}


def flag_for(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_option_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("fill options", f"Each overrides the preset's value; `{PROG} options` "
                                                      "lists the values of every preset.")
    defaults = get_preset(DEFAULT_PRESET)
    for row in option_rows().values():
        dest = f"option_{row['name']}"
        default = format_value(getattr(defaults, row["name"]))
        help_text = f"{row['help']} {limits_text(row)} (default preset: {default})".replace("%", "%%")
        if OPTION_TYPES[row["name"]].kind is bool:
            group.add_argument(flag_for(row["name"]), dest=dest, action=argparse.BooleanOptionalAction,
                               default=None, help=help_text)
        else:
            group.add_argument(flag_for(row["name"]), dest=dest, metavar=metavar_for(row["name"]), help=help_text)


def format_value(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(format_value(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format(value, "g")
    return str(value)


def metavar_for(name: str) -> str:
    option = OPTION_TYPES[name]
    one = {float: "X", int: "N", str: "NAME"}[option.kind]
    return f"{one}[,{one}...]" if option.many else one


def limits_text(row: dict[str, Any]) -> str:
    if "choices" in row:
        return f"[{'|'.join(row['choices'])}]"
    if "min" in row and "max" in row:
        return f"[{row['min']}..{row['max']}]"
    if "min" in row:
        return f"[>={row['min']}]"
    return ""


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for name in OPTION_TYPES:
        given = getattr(args, f"option_{name}", None)
        if given is not None:
            overrides[name] = given if isinstance(given, bool) else parse(name, given)
    for setting in args.settings:
        name, equals, value = setting.partition("=")
        if not equals:
            raise CliError(f"--set needs NAME=VALUE, not {setting!r}")
        overrides[check_name(name)] = parse(name, value)
    return overrides


def options_from_args(args: argparse.Namespace, on_daemon: bool = False) -> FillOptions:
    """The preset with the flags' and --set's values. on_daemon: the fill runs on a daemon, which computes on its
    own device (the one it was started with), so a device asked for here is an error, not a silent CPU fill."""
    overrides = overrides_from_args(args)
    if on_daemon and "device" in overrides:
        raise CliError(f"--device {overrides['device']}: a daemon computes on the device it was started with "
                       f"(`{PROG} daemon --device {overrides['device']}`); leave --device out with --daemon")
    return get_preset(args.preset, **overrides)
