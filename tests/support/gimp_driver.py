"""Runs inside a real GIMP (gimp-console --batch-interpreter=python-fu-eval), not under pytest.

tests/test_gimp_plugin.py writes CASE_DIR/case.json and CASE_DIR/input.raw, prepends `CASE_DIR = "..."` to this
file's text and hands it to GIMP as batch code. It builds the image the case describes, makes the selection, calls
plug-in-neural-fill non-interactively as a script would, and dumps what the test asserts on: result.json (status,
error, layers with names, offsets and sizes) and raw pixels (the photo layer after, the new layer, the composite,
the selection). `Gimp`, `Gegl` and `GLib` are already imported by the batch interpreter.
"""

import json
import os

from gi.repository import Gegl, Gimp  # noqa: F811 - already there in GIMP; named for readers and linters

CASE_DIR = globals().get("CASE_DIR", "")
with open(os.path.join(CASE_DIR, "case.json")) as source:
    case = json.load(source)
Gegl.init(None)

PRECISIONS = {"u8": Gimp.Precision.U8_NON_LINEAR, "u16": Gimp.Precision.U16_NON_LINEAR,
              "float": Gimp.Precision.FLOAT_LINEAR}
BASES = {"rgb": Gimp.ImageBaseType.RGB, "gray": Gimp.ImageBaseType.GRAY, "indexed": Gimp.ImageBaseType.INDEXED}
LAYER_TYPES = {("rgb", False): Gimp.ImageType.RGB_IMAGE, ("rgb", True): Gimp.ImageType.RGBA_IMAGE,
               ("gray", False): Gimp.ImageType.GRAY_IMAGE, ("gray", True): Gimp.ImageType.GRAYA_IMAGE,
               ("indexed", False): Gimp.ImageType.INDEXED_IMAGE}


def dump(drawable, name, babl):
    rect = Gegl.Rectangle.new(0, 0, drawable.get_width(), drawable.get_height())
    with open(os.path.join(CASE_DIR, name + ".raw"), "wb") as out:
        out.write(drawable.get_buffer().get(rect, 1.0, babl, Gegl.AbyssPolicy.NONE))


def describe(image):
    layers = []
    for layer in image.get_layers():
        _, x, y = layer.get_offsets()
        layers.append({"name": layer.get_name(), "x": x, "y": y, "width": layer.get_width(),
                       "height": layer.get_height(), "has_alpha": layer.has_alpha()})
    return layers


base, spec = case["base"], case["layer"]
if base == "indexed":
    image = Gimp.Image.new(case["width"], case["height"], BASES[base])
else:
    image = Gimp.Image.new_with_precision(case["width"], case["height"], BASES[base], PRECISIONS[case["precision"]])
photo = Gimp.Layer.new(image, "photo", spec["width"], spec["height"], LAYER_TYPES[(base, spec["alpha"])], 100.0,
                       Gimp.LayerMode.NORMAL)
image.insert_layer(photo, None, 0)
photo.set_offsets(spec["x"], spec["y"])
if base != "indexed":
    with open(os.path.join(CASE_DIR, "input.raw"), "rb") as source:
        photo.get_buffer().set(Gegl.Rectangle.new(0, 0, spec["width"], spec["height"]), case["format"],
                               source.read())
    photo.get_buffer().flush()

channels = {}  # saved selections, named; an argument "channel:NAME" is that channel
for saved in case.get("channels", []):
    image.select_rectangle(Gimp.ChannelOps.REPLACE, *saved["rect"])
    channels[saved["name"]] = Gimp.Selection.save(image)
    channels[saved["name"]].set_name(saved["name"])
if channels:
    Gimp.Selection.none(image)

for shape in case.get("selection", []):
    operation = Gimp.ChannelOps.ADD
    if shape["shape"] == "rect":
        image.select_rectangle(operation, shape["x"], shape["y"], shape["w"], shape["h"])
    else:
        image.select_ellipse(operation, shape["x"], shape["y"], shape["w"], shape["h"])
if case.get("feather"):
    Gimp.Selection.feather(image, case["feather"])
if case.get("selection"):
    dump(image.get_selection(), "selection", "Y float")

drawables = [photo]
if case.get("heal_layer"):  # an empty layer above the photo, the active one: healing kept apart from the photo
    heal = Gimp.Layer.new(image, "heal", case["width"], case["height"], LAYER_TYPES[(base, True)], 100.0,
                          Gimp.LayerMode.NORMAL)
    image.insert_layer(heal, None, 0)
    heal.fill(Gimp.FillType.TRANSPARENT)
    drawables = [heal]
if case.get("second_layer"):
    other = Gimp.Layer.new(image, "other", 16, 16, LAYER_TYPES[(base, True)], 100.0, Gimp.LayerMode.NORMAL)
    image.insert_layer(other, None, 0)
    drawables = [photo, other]

if base != "indexed":
    dump(photo, "before", case["format"])  # as GIMP holds it (a float layer is linear: the input was converted)

procedure = Gimp.get_pdb().lookup_procedure("plug-in-neural-fill")
config = procedure.create_config()
config.set_property("run-mode", Gimp.RunMode.INTERACTIVE if case.get("interactive") else
                    Gimp.RunMode.NONINTERACTIVE)
config.set_property("image", image)
config.set_core_object_array("drawables", drawables)
for name, value in case.get("arguments", {}).items():
    is_channel = isinstance(value, str) and value.startswith("channel:")
    config.set_property(name, channels[value[len("channel:"):]] if is_channel else value)
values = procedure.run(config)
status = values.index(0)
result = {"success": status == Gimp.PDBStatusType.SUCCESS, "cancelled": status == Gimp.PDBStatusType.CANCEL,
          "error": Gimp.get_pdb().get_last_error() if status != Gimp.PDBStatusType.SUCCESS else "",
          "layers": describe(image)}

if base != "indexed":
    dump(photo, "photo", case["format"])
    for layer in image.get_layers():
        if layer.get_name() == "Neural Fill":
            dump(layer, "fill_layer", case["format_alpha"])
        if layer.get_name() == "heal":
            dump(layer, "heal_layer", case["format_alpha"])
    copy = image.duplicate()
    merged = copy.merge_visible_layers(Gimp.MergeType.CLIP_TO_IMAGE)
    _, merged_x, merged_y = merged.get_offsets()
    result["merged"] = {"x": merged_x, "y": merged_y, "width": merged.get_width(), "height": merged.get_height()}
    dump(merged, "composite", case["format_alpha"])
    copy.delete()

with open(os.path.join(CASE_DIR, "result.json"), "w") as out:
    json.dump(result, out)
image.delete()
