"""`neural-fill options`: every fill option with its default and description, and every preset."""

from __future__ import annotations

import argparse
import json
import textwrap

from engine.options import PRESETS, get_preset

from .errors import EXIT_OK, PROG
from .flags import DEFAULT_PRESET, format_value, limits_text, option_rows


def add_command(commands: argparse._SubParsersAction) -> None:
    options = commands.add_parser("options", help="list every fill option and preset")
    options.add_argument("--json", action="store_true",
                         help="one JSON object: each option's type, limits and description, each preset's values")
    options.set_defaults(run=command_options)


def command_options(args: argparse.Namespace) -> int:
    if args.json:
        print(json.dumps(options_json()))
        return EXIT_OK
    print(options_table())
    print()
    print(presets_table())
    return EXIT_OK


def options_json() -> dict:
    """Each option (type, limits, description, and its value in the default preset), each preset's values."""
    defaults = get_preset(DEFAULT_PRESET).to_dict()
    rows = [{**row, "default": defaults[name]} for name, row in option_rows().items()]
    return {"options": [{key: list(v) if isinstance(v, tuple) else v for key, v in row.items()} for row in rows],
            "presets": {name: {"description": description, "values": options.to_dict()}
                        for name, (description, options) in PRESETS.items()}}


def options_table(width: int = 100) -> str:
    """Every option with its value in the default preset and its description."""
    defaults = get_preset(DEFAULT_PRESET).to_dict()
    lines = [f"Options (`{PROG} fill --NAME VALUE` or `--set NAME=VALUE`; values of the '{DEFAULT_PRESET}' preset):",
             ""]
    name_width = max(len(name) for name in defaults) + 2
    value_width = max(len(format_value(v)) for v in defaults.values()) + 2
    indent = " " * (2 + name_width + value_width)
    for name, row in option_rows().items():
        head = f"  {name:<{name_width}}{format_value(defaults[name]):<{value_width}}"
        text = f"{row['help']} {limits_text(row)}".strip()
        lines.append(textwrap.fill(text, width=width, initial_indent=head, subsequent_indent=indent))
    return "\n".join(lines)


def presets_table() -> str:
    """Each preset: its description and the values in which it differs from the default preset."""
    base = get_preset(DEFAULT_PRESET).to_dict()
    name_width = max(len(name) for name in PRESETS) + 2
    lines = [f"Presets (`{PROG} fill --preset NAME`):", ""]
    for name, (description, options) in PRESETS.items():
        lines.append(f"  {name:<{name_width}}{description}")
        changes = [f"{key}={format_value(v)}" for key, v in options.to_dict().items() if v != base[key]]
        if changes:
            lines.append(f"  {'':<{name_width}}{' '.join(changes)}")
    return "\n".join(lines)
