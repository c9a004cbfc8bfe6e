"""Cost estimates: the bundled list prices, cached tokens at the cached price, unknown models never cost 0."""

import pytest

from gateway.errors import ConfigurationError, FieldError
from gateway.models import Usage
from gateway.spend.pricing import PriceTable


@pytest.mark.parametrize(
    ("model", "input_price", "output_price"),
    [("deepseek-v3.2", 0.07, 0.42), ("gpt-4.1", 2.0, 8.0), ("claude-sonnet-4.5", 3.0, 15.0)],
)
def test_list_prices_are_the_ones_in_the_table(model: str, input_price: float, output_price: float) -> None:
    cost = PriceTable.bundled().cost(model, Usage(prompt_tokens=1_000_000, completion_tokens=1_000_000))
    assert cost is not None
    assert cost.input_usd == pytest.approx(input_price)
    assert cost.output_usd == pytest.approx(output_price)


def test_gemini_flash_output_price_is_the_gateway_list_price() -> None:
    cost = PriceTable.bundled().cost("gemini-2.5-flash", Usage(completion_tokens=1_000_000))
    assert cost is not None and cost.output_usd == pytest.approx(2.50)


def test_cached_prompt_tokens_are_billed_at_the_cached_price_and_not_twice() -> None:
    usage = Usage(prompt_tokens=1000, completion_tokens=100, cached_prompt_tokens=800)
    cost = PriceTable.bundled().cost("gpt-4.1", usage)
    assert cost is not None
    assert cost.uncached_prompt_tokens == 200
    assert cost.input_usd == pytest.approx(200 * 2.0 / 1e6)
    assert cost.cached_input_usd == pytest.approx(800 * 0.5 / 1e6)
    assert cost.total_usd == pytest.approx((200 * 2.0 + 800 * 0.5 + 100 * 8.0) / 1e6)


def test_aliases_and_dated_model_names_resolve() -> None:
    table = PriceTable.bundled()
    for name in ("gpt-4.1-2025-04-14", "GPT-4.1", "openai/gpt-4.1", "claude-sonnet-4-5"):
        assert table.resolve(name) is not None, name


def test_unknown_model_has_no_cost_rather_than_zero() -> None:
    assert PriceTable.bundled().cost("mystery-model", Usage(prompt_tokens=10, completion_tokens=10)) is None


def test_user_overrides_extend_and_replace_prices() -> None:
    table = PriceTable.bundled().with_overrides('{"my-model": {"input": 1, "output": 2}, "gpt-4.1": {"input": 3, "output": 4}}')
    mine = table.cost("my-model", Usage(prompt_tokens=1_000_000, completion_tokens=1_000_000))
    assert mine is not None and mine.total_usd == pytest.approx(3.0)
    gpt = table.cost("gpt-4.1", Usage(prompt_tokens=1_000_000))
    assert gpt is not None and gpt.input_usd == pytest.approx(3.0)
    yaml_table = PriceTable.bundled().with_overrides("my-model:\n  input: 0.5\n  output: 1.5\n  aliases: [mine]\n")
    assert yaml_table.resolve("mine") is not None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{not json", "not valid YAML or JSON"),
        ("[1, 2]", "must map model names"),
        ('{"m": {"input": 1}}', "missing 'output'"),
        ('{"m": {"input": -1, "output": 1}}', "non-negative"),
        ('{"m": {"input": 1, "output": 1, "outptu": 2}}', "unknown keys"),
    ],
)
def test_bad_price_overrides_say_what_is_wrong(text: str, expected: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        PriceTable.bundled().with_overrides(text)
    assert expected in str(caught.value)
    assert caught.value.field == "price_overrides"


def test_no_price_source_names_a_draft_document() -> None:
    """`source` reaches users in every cost breakdown: it says where a price comes from, nothing else."""
    table = PriceTable.bundled()
    for model in table.models:
        price = table.resolve(model)
        assert price is not None and price.source and "seed" not in price.source.lower()


def test_a_bad_override_is_a_field_error_with_its_parts() -> None:
    from gateway.errors import FieldError

    with pytest.raises(FieldError) as caught:
        PriceTable.bundled().with_overrides('{"m": {"input": -1, "output": 1}}')
    assert caught.value.field == "price_overrides" and caught.value.problem.startswith("entry for model 'm'")
    assert str(caught.value) == f"price_overrides {caught.value.problem}"


BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (BILLION_LAUGHS, "YAML alias"),
        ("[" * 10_000 + "]" * 10_000, "nested too deeply"),
        ('{"a":' * 10_000 + "1" + "}" * 10_000, "nested too deeply"),
        ("a:\n" + "".join(" " * i + "b:\n" for i in range(1, 400)), "nested too deeply"),
        ('{"m": {"input": 1e999, "output": 1}}', "not finite"),
        ("m: {input: .nan, output: 1}", "not finite"),
        ("m: {input: " + "9" * 5000 + ", output: 1}", "thousands of digits"),
        ('{"m": {"input": ' + "9" * 5000 + ', "output": 1}}', "thousands of digits"),
        ('{"m": {"input": 1e300, "output": 1}}', "at most"),
        ('{"\\ud800": {"input": 1, "output": 2}}', "lone surrogate"),
        ('{"m\\u0007": {"input": 1, "output": 2}}', "control characters"),
        ("x" * 2_000_000, "too large"),
    ],
)
def test_hostile_price_overrides_are_refused_clearly(text: str, expected: str) -> None:
    with pytest.raises(FieldError) as caught:
        PriceTable.bundled().with_overrides(text)
    assert caught.value.field == "price_overrides" and expected in caught.value.problem
    assert len(str(caught.value)) < 500


def test_a_huge_unknown_key_is_quoted_short() -> None:
    with pytest.raises(FieldError) as caught:
        PriceTable.bundled().with_overrides('{"m": {"input": 1, "output": 1, "' + "\\u0007" * 10_000 + '": 1}}')
    assert "unknown keys" in caught.value.problem and len(str(caught.value)) < 300 and "\x07" not in str(caught.value)
