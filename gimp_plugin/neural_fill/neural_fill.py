#!/usr/bin/env python3
"""Filters > Neural Fill...: fill the selection of the active layer with the Neural Fill daemon.

The plug-in reads the layer only around the selection (its bounds plus context), sends it with the selection to
the daemon over ZeroMQ, follows the job on GIMP's progress bar, and writes the fill inside one undo group: into a
new layer "Neural Fill" above the active one (default) or into the layer itself. Nothing is written before the
fill has arrived, so an error or a cancel (the progress bar's stop button ends this process) leaves the image as
it was. GIMP stays responsive throughout: the plug-in is its own process.

Standard library, pyzmq and msgpack only: install.py vendors the last two for GIMP's Python when it lacks them.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Wheels matched to this Python by install.py (vendor/py3.13 for Python 3.13...): first, as they are known to fit.
VENDOR = HERE / "vendor" / f"py{sys.version_info[0]}.{sys.version_info[1]}"
if VENDOR.is_dir():
    sys.path.insert(0, str(VENDOR))

import gi  # noqa: E402 - after the vendor path

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, GLib, GObject  # noqa: E402

from fill_region import Rect, context_rect, hole_mask, pixel_format, source_mask, sub_rows, transparent  # noqa: E402
from plugin_settings import SettingsError, load_settings  # noqa: E402

PROCEDURE = "plug-in-neural-fill"
LAYER_NAME = "Neural Fill"
# The engine's presets (engine/options.py PRESETS; tests/test_gimp_plugin_parts.py checks that they agree).
PRESETS = {
    "preview": ("Preview", "A quick look: a few seconds on a CPU"),
    "default": ("Default", "The best quality per second"),
    "paper": ("Paper", "The reference configuration of Yang et al. (slow, for comparison)"),
}
OUTPUTS = {
    "new-layer": ("New layer", "A new layer 'Neural Fill' above the active one, holding only the fill"),
    "in-place": ("Into the layer", "Write the fill into the active layer itself"),
}
SAMPLE_FROM = {
    "around": ("All around the selection", "Copy from any pixel around the selection"),
    "channel": ("Only the sample channel", "Copy only from where the sample channel (a saved selection) is set"),
    "not-channel": ("Never the sample channel", "Never copy from where the sample channel is set (another person, "
                    "a sign)"),
}
MAX_SEED = 2**31 - 1


class PluginError(Exception):
    """Something the user can act on; its message is shown as is, and the image is left unchanged."""


# ------------------------------------------------------------------------------------------------ registration

class NeuralFill(Gimp.PlugIn):
    def do_query_procedures(self):
        return [PROCEDURE]

    def do_set_i18n(self, name):
        return False

    def do_create_procedure(self, name):
        procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, run, None)
        procedure.set_image_types("RGB*, GRAY*")
        procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
        procedure.set_menu_label("Neural _Fill...")
        procedure.add_menu_path("<Image>/Filters")
        procedure.set_documentation(
            "Fill the selection with texture and structure from the rest of the layer",
            "Removes what is selected (a passer-by, a sign, a scratch) by multi-scale neural patch synthesis "
            "(Yang et al., CVPR 2017), run by the Neural Fill daemon. The fill goes to a new layer above the "
            "active one, or into the layer itself; pixels outside the selection never change.",
            name)
        procedure.set_attribution("Neural Fill", "Neural Fill", "2026")
        flags = GObject.ParamFlags.READWRITE
        procedure.add_choice_argument("preset", "_Preset", "Speed against quality", choice(PRESETS), "default", flags)
        procedure.add_choice_argument("output", "Output _to", "Where the fill goes", choice(OUTPUTS), "new-layer",
                                      flags)
        procedure.add_choice_argument("sample-from", "_Sample from", "Where the fill may copy from",
                                      choice(SAMPLE_FROM), "around", flags)
        procedure.add_channel_argument("sample-channel", "Sample _channel",
                                       "A saved selection (Select > Save to Channel) that Sample from uses", True,
                                       flags)
        procedure.add_boolean_argument("sample-merged", "Sample _merged",
                                       "Read the visible image around the selection, not the active layer alone "
                                       "(always, when the layer is empty under the selection: healing on a layer "
                                       "of its own)", False, flags)
        procedure.add_int_argument("context-margin", "Context _margin",
                                   "Pixels around the selection the fill learns from (0: automatic, half the "
                                   "selection's size and at least 64)", 0, 16384, 0, flags)
        procedure.add_int_argument("seed", "Ran_dom seed", "Random seed: the same seed and image give the same fill",
                                   0, MAX_SEED, 0, flags)
        procedure.add_string_argument("endpoint", "Daemon _endpoint",
                                      "Where the Neural Fill daemon listens (empty: the installed setting)", "",
                                      flags)
        return procedure


def choice(entries: dict[str, tuple[str, str]]) -> Gimp.Choice:
    made = Gimp.Choice.new()
    for index, (nick, (label, help_text)) in enumerate(entries.items()):
        made.add(nick, index, label, help_text)
    return made


# --------------------------------------------------------------------------------------------------- running

def run(procedure, run_mode, image, drawables, config, data):
    if run_mode == Gimp.RunMode.INTERACTIVE and not show_dialog(procedure, config):
        return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
    try:
        fill_selection(image, drawables, config)
    except PluginError as error:
        return failure(procedure, str(error))
    except Exception as error:  # anything else still reaches the user as a message, never a silent failure
        return failure(procedure, f"Neural Fill failed: {type(error).__name__}: {error}")
    return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())


def failure(procedure, message: str):
    return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR,
                                       GLib.Error.new_literal(Gimp.PlugIn.error_quark(), message, 0))


def show_dialog(procedure, config) -> bool:
    gi.require_version("GimpUi", "3.0")
    from gi.repository import GimpUi

    GimpUi.init("neural_fill")
    dialog = GimpUi.ProcedureDialog.new(procedure, config, "Neural Fill")
    dialog.fill(None)
    accepted = dialog.run()
    dialog.destroy()
    return accepted


def fill_selection(image, drawables, config) -> None:
    layer = the_layer(image, drawables)
    output = config.get_property("output")
    if output == "in-place" and layer.get_lock_content():
        raise PluginError(f"The pixels of layer '{layer.get_name()}' are locked: unlock them, or fill into a "
                          "new layer")
    if Gimp.Selection.is_empty(image):
        raise PluginError("Nothing is selected: select what to remove (a passer-by, a sign, a scratch), then run "
                          "Filters > Neural Fill again")
    touches, x, y, width, height = layer.mask_intersect()
    if not touches or width <= 0 or height <= 0:
        raise PluginError(f"The selection lies outside layer '{layer.get_name()}': select an area on this layer, "
                          "or make the layer under the selection the active one")
    selection = Rect(x, y, width, height)
    region = context_rect(selection, layer.get_width(), layer.get_height(), config.get_property("context-margin"))
    form = pixel_format(image.get_precision().value_nick, image.get_base_type() == Gimp.ImageBaseType.GRAY)
    _, offset_x, offset_y = layer.get_offsets()

    pixels = layer.get_buffer().get(gegl_rect(region), 1.0, form.babl, Gegl.AbyssPolicy.CLAMP)
    # The selection lives in image coordinates; read it at the layer's place.
    chosen = image.get_selection().get_buffer().get(gegl_rect(region.moved(offset_x, offset_y)), 1.0, "Y u8",
                                                    Gegl.AbyssPolicy.NONE)
    mask = hole_mask(chosen)
    if 255 not in mask:
        raise PluginError("The selection is too faint to fill: every selected pixel is below 1/255")
    if 0 not in mask:
        raise PluginError("The selection covers everything around it: Neural Fill learns from the pixels outside "
                          "the selection, so leave some of the layer unselected (or raise the context margin)")

    inside = Rect(selection.x - region.x, selection.y - region.y, selection.width, selection.height)
    whole = Rect(0, 0, region.width, region.height)
    if config.get_property("sample-merged") or transparent(sub_rows(pixels, whole, inside, form.bytes_per_pixel),
                                                           form):
        pixels = visible_pixels(image, region.moved(offset_x, offset_y), form.babl)
    source = sample_area(image, config, region.moved(offset_x, offset_y))
    filled = fill_on_daemon(config, region, form, pixels, mask, source)
    patch = sub_rows(filled, whole, inside, form.bytes_per_pixel)
    write_fill(image, layer, output, selection, form.babl, patch, offset_x, offset_y)


def visible_pixels(image, region: Rect, babl: str) -> bytes:
    """What the image shows over `region` (image coordinates), all visible layers merged, in `babl`."""
    copy = image.duplicate()
    try:
        merged = copy.merge_visible_layers(Gimp.MergeType.CLIP_TO_IMAGE)
        return merged.get_buffer().get(gegl_rect(region), 1.0, babl, Gegl.AbyssPolicy.CLAMP)
    finally:
        copy.delete()


def sample_area(image, config, region: Rect) -> bytes | None:
    """Where the fill may copy from, read from the sample channel over `region` (image coordinates); None: all
    around the selection."""
    how = config.get_property("sample-from")
    if how == "around":
        return None
    channel = config.get_property("sample-channel")
    if channel is None:
        raise PluginError("Sample from needs a sample channel: save a selection of the area (Select > Save to "
                          "Channel) and choose it as the sample channel")
    marked = channel.get_buffer().get(gegl_rect(region), 1.0, "Y u8", Gegl.AbyssPolicy.NONE)
    return source_mask(marked, inside=how == "channel")


def the_layer(image, drawables):
    if image.get_base_type() == Gimp.ImageBaseType.INDEXED:
        raise PluginError("Neural Fill works on RGB and grayscale images: convert this indexed image with "
                          "Image > Mode > RGB first")
    if len(drawables) != 1:
        raise PluginError(f"{len(drawables)} layers are selected: select just the one layer to fill")
    layer = drawables[0]
    if not isinstance(layer, Gimp.Layer) or isinstance(layer, Gimp.LayerMask):
        raise PluginError("Neural Fill fills a layer, not a mask or channel: select the layer itself")
    if layer.is_group():
        raise PluginError(f"'{layer.get_name()}' is a layer group: select a layer inside it")
    return layer


def gegl_rect(rect: Rect) -> Gegl.Rectangle:
    return Gegl.Rectangle.new(rect.x, rect.y, rect.width, rect.height)


# ---------------------------------------------------------------------------------------------------- daemon

def fill_on_daemon(config, region: Rect, form, pixels: bytes, mask: bytes, source: bytes | None) -> bytes:
    try:
        from daemon_connection import connect, link, protocol
    except ImportError as error:  # pyzmq or msgpack missing or not built for this Python
        raise PluginError(f"Neural Fill cannot talk to its daemon from GIMP's Python "
                          f"{sys.version_info[0]}.{sys.version_info[1]} ({error}): run install.py again so that "
                          "it vendors pyzmq and msgpack for this GIMP") from None
    try:
        settings = load_settings(HERE)
    except SettingsError as error:
        raise PluginError(str(error)) from None
    endpoint = config.get_property("endpoint") or settings.endpoint
    Gimp.progress_init("Neural Fill")
    try:
        connection = connect(settings, endpoint, waiting=lambda text: (Gimp.progress_set_text(text),
                                                                        Gimp.progress_pulse()))
    except link.DaemonUnavailable as error:
        raise PluginError(sentence(str(error))) from None
    try:
        job_id = uuid.uuid4().hex[:16]
        Gimp.progress_set_text("Neural Fill: waiting for the daemon")
        if source is not None and "source" not in connection.call({"op": "hello"}, "hello").header.get("features",
                                                                                                    ()):
            raise PluginError("The Neural Fill daemon is too old for Sample from: stop it, and the plug-in starts "
                              "the new one")
        connection.upload(job_id, protocol.fill_request(
            job_id, region.width, region.height, form.channels, form.sample, pixels, mask,
            preset=config.get_property("preset"), options={"seed": config.get_property("seed")}, source=source))
        result = connection.follow(job_id, on_progress=show_progress)
    except link.DaemonUnavailable as error:
        raise PluginError(f"The Neural Fill daemon stopped answering: {error}") from None
    except link.DaemonError as error:
        raise PluginError(f"The Neural Fill daemon could not fill this selection: {error.message}") from None
    except link.JobCancelled:
        raise PluginError("The fill was cancelled on the daemon") from None
    finally:
        connection.close()
    header = result.header
    if (header.get("width"), header.get("height"), header.get("channels"), header.get("sample")) != (
            region.width, region.height, form.channels, form.sample):
        raise PluginError("The Neural Fill daemon sent back pixels of another size or format: is it the same "
                          "version as this plug-in? Run install.py again")
    Gimp.progress_update(1.0)
    return bytes(result.blobs[0])


def sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def show_progress(header: dict) -> None:
    stage = header.get("stage")
    if stage:
        Gimp.progress_set_text(f"Neural Fill: {stage}")
    fraction = header.get("fraction")
    if isinstance(fraction, (int, float)):
        Gimp.progress_update(min(1.0, max(0.0, float(fraction))))


# ----------------------------------------------------------------------------------------------------- write

def write_fill(image, layer, output: str, selection: Rect, babl: str, patch: bytes, offset_x: int,
               offset_y: int) -> None:
    """One undo group, always closed. The shadow buffer is merged through the selection by GIMP itself, so
    pixels outside the selection never change and a feathered edge blends as drawn."""
    image.undo_group_start()
    try:
        if output == "in-place":
            target, where = layer, selection
        else:
            target = new_fill_layer(image, layer, selection, offset_x, offset_y)
            where = Rect(0, 0, selection.width, selection.height)
        shadow = target.get_shadow_buffer()
        shadow.set(gegl_rect(where), babl, patch)
        shadow.flush()
        target.merge_shadow(True)
        target.update(where.x, where.y, where.width, where.height)
    finally:
        image.undo_group_end()
    Gimp.displays_flush()


def new_fill_layer(image, layer, selection: Rect, offset_x: int, offset_y: int):
    kind = Gimp.ImageType.GRAYA_IMAGE if image.get_base_type() == Gimp.ImageBaseType.GRAY else \
        Gimp.ImageType.RGBA_IMAGE
    fill_layer = Gimp.Layer.new(image, LAYER_NAME, selection.width, selection.height, kind, 100.0,
                                Gimp.LayerMode.NORMAL)
    image.insert_layer(fill_layer, layer.get_parent(), image.get_item_position(layer))
    fill_layer.set_offsets(offset_x + selection.x, offset_y + selection.y)
    fill_layer.fill(Gimp.FillType.TRANSPARENT)
    return fill_layer


if __name__ == "__main__":
    Gimp.main(NeuralFill.__gtype__, sys.argv)
