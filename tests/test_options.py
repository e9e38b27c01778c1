"""The one options structure: defaults, presets, validation, and the schema other layers are generated from."""

import pytest

from engine.errors import OptionsError
from engine.options import PRESETS, FillOptions, get_preset


def test_every_option_has_a_description_and_default():
    rows = FillOptions.describe()
    assert {row["name"] for row in rows} >= {"working_size", "scales", "iterations", "seed", "device", "content"}
    for row in rows:
        assert row["help"].strip(), row["name"]
        assert "default" in row


def test_presets_name_intent_and_paper_is_the_reference_configuration():
    assert set(PRESETS) == {"preview", "default", "paper"}
    paper = get_preset("paper")
    assert (paper.scales, paper.iterations, paper.working_size) == (3, (100, 100, 100), 512)
    assert (paper.texture_weight, paper.content_weight, paper.tv_weight) == (1e-4, 20.0, 1e-4)  # method.md
    # The paper optimises pixels by L-BFGS only; the others copy real pixels, the preview in fewer rounds.
    assert not any(paper.vote_iterations_per_scale()) and paper.pixel_iterations == paper.beside_iterations == 0
    preview, default = get_preset("preview"), get_preset("default")
    assert sum(preview.vote_iterations) < sum(default.vote_iterations)
    assert preview.working_size < default.working_size


@pytest.mark.parametrize("change, words", [
    ({"scales": 0}, "at least 1"),
    ({"working_size": "big"}, "whole number"),
    ({"device": "tpu"}, "one of"),
    ({"texture_layers": ("relu9_9",)}, "one of"),
    ({"iterations": ()}, "at least one value"),
    ({"detail_transfer": 1}, "true or false"),
    ({"colour": 3}, "unknown option"),
    # Non-finite numbers pass every comparison (NaN) or overflow the losses (inf, 1e308): a black hole as a success.
    ({"content_weight": float("nan")}, "'content_weight' must be a finite number"),
    ({"texture_weight": float("inf")}, "'texture_weight' must be a finite number"),
    ({"tv_weight": 1e308}, "'tv_weight' must be at most"),
    ({"context": float("nan")}, "'context' must be a finite number"),
    ({"detail_gain": float("-inf")}, "'detail_gain' must be a finite number"),
    ({"seed": 2**70}, "'seed' must be at most"),
])
def test_bad_options_are_named(change, words):
    with pytest.raises(OptionsError, match=words):
        get_preset("default", **change)


# The names of the functions' own parameters: before they were positional-only, `name=1` met `get_preset`'s `name`
# ("got multiple values for argument"), a Python internal, not an unknown option.
PARAMETER_NAMES = ["name", "self", "cls", "values", "preset", "changes", "overrides"]


@pytest.mark.parametrize("name", PARAMETER_NAMES)
@pytest.mark.parametrize("how", ["get_preset", "replace", "from_dict"])
def test_an_option_named_like_a_parameter_is_just_unknown(name, how):
    make = {"get_preset": lambda: get_preset("default", **{name: 1}),
            "replace": lambda: get_preset("preview").replace(**{name: 1}),
            "from_dict": lambda: FillOptions.from_dict({name: 1}, "preview")}[how]
    with pytest.raises(OptionsError, match=f"^unknown option '{name}'"):
        make()


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(OptionsError, match="preview, default, paper"):
        get_preset("fast")


def test_iterations_follow_a_changed_scale_count():
    counts = get_preset("default").iterations
    assert len(counts) == 3
    assert get_preset("default", scales=2).iterations_per_scale() == counts[-2:]
    assert get_preset("default", scales=4).iterations_per_scale() == (counts[0],) + counts
    assert get_preset("default", iterations=(7,)).iterations_per_scale() == (7, 7, 7)


def test_round_trip_through_a_plain_dict():
    options = get_preset("preview", seed=3)
    assert FillOptions.from_dict(options.to_dict()) == options
    assert FillOptions.from_dict({"seed": 9}, preset="paper") == get_preset("paper", seed=9)


def test_one_parser_reads_every_option_from_text():
    from engine.options import OPTION_TYPES, parse

    assert parse("iterations", "30/15/6") == parse("iterations", "30, 15, 6") == (30, 15, 6)
    assert parse("detail_transfer", "off") is False and parse("augment", "Yes") is True
    assert parse("content_weight", "5") == 5.0 and parse("working-size", "256") == 256
    assert parse("texture_layers", "relu4_1") == ("relu4_1",)
    # Every option's text form round-trips through the parser into a valid FillOptions.
    default = get_preset("default")
    for name, option in OPTION_TYPES.items():
        value = getattr(default, name)
        words = [str(v).lower() if option.kind is bool else str(v) for v in (value if option.many else (value,))]
        assert default.replace(**{name: parse(name, ",".join(words))}) == default
    for name, text, words in [("scales", "two", "whole number"), ("augment", "maybe", "true or false"),
                              ("tv_weight", "x", "a number"), ("scalez", "2", "did you mean 'scales'")]:
        with pytest.raises(OptionsError, match=words):
            parse(name, text)


def test_option_types_come_from_the_annotations_not_their_text():
    from engine.options import OPTION_TYPES

    assert OPTION_TYPES["iterations"] == (int, True) and OPTION_TYPES["texture_layers"] == (str, True)
    assert OPTION_TYPES["content_weight"] == (float, False) and OPTION_TYPES["augment"] == (bool, False)
    assert set(OPTION_TYPES) == {row["name"] for row in FillOptions.describe()}


def test_every_preset_asks_for_work_a_fill_can_use():
    for name in PRESETS:
        get_preset(name).check_work()
    assert get_preset("paper").work() > 30 * get_preset("default").work()  # what the bound is counted in


@pytest.mark.parametrize("change", [
    {"working_size": 2048, "scales": 5, "iterations": (1000,)},  # the probe's: 163 times the paper's work
    {"iterations": (1000,)},  # 1000 L-BFGS iterations on each of 3 scales at 512 px: 10 times
    {"working_size": 2048, "scales": 5, "vote_iterations": (50,)},
])
def test_more_work_than_a_fill_can_use_is_refused_saying_how_much(change):
    options = get_preset("paper", **change)  # each value is within its own range
    with pytest.raises(OptionsError, match=r"ask for \d+ times the synthesis work of the 'paper' preset per crop.*"
                                           r"at most 8 times.*fewer iterations or scales, or a smaller working_size"):
        options.check_work()


def test_a_long_fill_within_the_bound_is_taken():
    get_preset("paper", working_size=1024, iterations=(200,)).check_work()  # 8 times the paper's, just
    get_preset("preview", working_size=64, scales=1, iterations=(1000,)).check_work()  # the tests' slow fill
