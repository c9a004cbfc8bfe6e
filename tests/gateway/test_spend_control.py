"""Spend control units: <think> splitting across chunks, the adaptive pacer in virtual time, budget
policies and stores, the reply cache."""

import threading

import pytest

from gateway.call.pacing import AdaptivePacer, parse_reset
from gateway.errors import FieldError
from gateway.models import ChatRequest, Usage
from gateway.spend.budget import (
    BudgetPolicy,
    Charge,
    Hold,
    InProcessBudgetStore,
    Refusal,
    parse_budgets,
    period_window,
    worst_case_prompt_tokens,
)
from gateway.spend.cache import LRUReplyCache, cache_key, use_cache
from gateway.spend.pricing import PriceTable
from gateway.wire.reasoning import ThinkSplitter, split_content

# ----------------------------------------------------------------------------- reasoning

REPLY = "<think>step one\nstep two</think>\n\nThe answer is 42."


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 8, 9, 100])
def test_a_think_block_split_anywhere_never_leaks_a_partial_tag(size: int) -> None:
    splitter = ThinkSplitter()
    answer, reasoning = [], []
    for start in range(0, len(REPLY), size):
        a, r = splitter.feed(REPLY[start : start + size])
        assert "<" not in a and ">" not in a
        answer.append(a)
        reasoning.append(r)
    a, r = splitter.close()
    assert "".join(answer) + a == "The answer is 42."
    assert "".join(reasoning) + r == "step one\nstep two"


def test_only_a_leading_think_block_is_reasoning() -> None:
    assert split_content("Use <think> tags like this") == ("Use <think> tags like this", "")
    assert split_content("  <think>x</think>y") == ("y", "x")
    assert split_content("<think>unfinished") == ("", "unfinished")
    assert split_content("<thi") == ("<thi", "")


def test_reasoning_tokens_are_priced_at_the_reasoning_price_and_counted_once() -> None:
    table = PriceTable.bundled().with_overrides('{"r1": {"input": 1, "output": 2, "reasoning_output": 4}}')
    usage = Usage.from_openai({"prompt_tokens": 10, "completion_tokens": 100, "completion_tokens_details": {"reasoning_tokens": 60}})
    assert usage is not None and usage.reasoning_tokens == 60
    cost = table.cost("r1", usage)
    assert cost is not None
    assert cost.reasoning_usd == pytest.approx(60 * 4 / 1e6) and cost.output_usd == pytest.approx(40 * 2 / 1e6)
    assert cost.total_usd == pytest.approx((10 * 1 + 40 * 2 + 60 * 4) / 1e6)
    plain = table.cost("deepseek-v3.2", usage)  # no reasoning price: reasoning billed as output
    assert plain is not None and plain.total_usd == pytest.approx((10 * 0.07 + 100 * 0.42) / 1e6)


def test_reasoning_reported_apart_from_completion_is_added_to_it() -> None:
    usage = Usage.from_openai({"prompt_tokens": 1, "completion_tokens": 5, "completion_tokens_details": {"reasoning_tokens": 20}})
    assert usage is not None and usage.completion_tokens == 25


# ----------------------------------------------------------------------------- adaptive pacing


@pytest.mark.parametrize(("text", "seconds"), [("1s", 1.0), ("6m0s", 360.0), ("250ms", 0.25), ("1h2m3.5s", 3723.5), ("0.5", 0.5)])
def test_reset_durations_are_read_in_every_form_gateways_send(text: str, seconds: float) -> None:
    assert parse_reset(text) == pytest.approx(seconds)


def test_unreadable_resets_are_ignored() -> None:
    assert parse_reset("soon") is None and parse_reset("-1") is None and parse_reset("1x") is None


class FixedWindowGateway:
    """The simulator's enforcement in virtual time: `limit` per fixed window of one second, with headers."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.counts: dict[int, int] = {}
        self.rejected = 0

    def answer(self, t: float) -> tuple[dict[str, str], bool]:
        window = int(t)
        used = self.counts.get(window, 0)
        reset = f"{int(((window + 1) - t) * 1000) + 1}ms"
        if used >= self.limit:
            self.rejected += 1
            return {"x-ratelimit-limit-requests": str(self.limit), "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": reset}, True
        self.counts[window] = used + 1
        left = str(self.limit - used - 1)
        return {"x-ratelimit-limit-requests": str(self.limit), "x-ratelimit-remaining-requests": left, "x-ratelimit-reset-requests": reset}, False


@pytest.mark.parametrize(("limit", "workers", "latency"), [(5, 10, 0.05), (10, 32, 0.02), (5, 3, 0.3), (50, 64, 0.1)])
def test_the_pacer_learns_a_per_second_budget_from_headers_without_running_into_it(limit: int, workers: int, latency: float) -> None:
    """A minute of virtual time: workers acquire, the request reaches the gateway half a latency later,
    the answer comes back after the other half. At most one 429, at least 80 % of the budget used."""
    now = [0.0]
    pacer = AdaptivePacer(clock=lambda: now[0], sleep=lambda s: None)
    gateway = FixedWindowGateway(limit)
    events: list[tuple[float, int, str, int]] = [(0.0, w, "acquire", 0) for w in range(workers)]  # (time, worker, kind, number)
    served = 0
    while events:
        events.sort()
        t, worker, kind, number = events.pop(0)
        if t >= 60:
            continue
        now[0] = t
        if kind == "acquire":
            if pacer.mode == "window" and t < pacer.reset_at and pacer._remaining - (pacer._seq - pacer._base) <= 0:
                events.append((pacer.reset_at, worker, "acquire", 0))  # what acquire() would sleep
                continue
            if pacer.mode == "probing" and pacer._probe is not None and t - pacer._probe_at < 5:
                events.append((t + 0.01, worker, "acquire", 0))
                continue
            number = pacer.acquire(None)
            headers, rejected = gateway.answer(t + latency / 2)
            served += not rejected
            events.append((t + latency, worker, f"answer:{int(rejected)}:{headers['x-ratelimit-remaining-requests']}:"
                           f"{headers['x-ratelimit-reset-requests']}", number))
        else:
            _, rejected, remaining, reset = kind.split(":")
            headers = {"x-ratelimit-limit-requests": str(limit), "x-ratelimit-remaining-requests": remaining,
                       "x-ratelimit-reset-requests": f"{max(0, int(reset[:-2]) - int(latency / 2 * 1000))}ms"}
            pacer.observe(headers, number, rejected=rejected == "1")
            events.append((t, worker, "acquire", 0))
    assert gateway.rejected <= 1
    assert served >= 0.8 * limit * 60


def test_a_gateway_without_headers_is_not_paced_after_its_first_answer() -> None:
    pacer = AdaptivePacer(clock=lambda: 0.0, sleep=lambda s: (_ for _ in ()).throw(AssertionError("waited")))
    first = pacer.acquire(None)
    pacer.observe({}, first)
    assert pacer.mode == "free"
    for _ in range(100):
        pacer.acquire(None)


def test_the_first_wave_waits_for_the_first_answer() -> None:
    now = [0.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 3:  # the probe's answer arrives while the second caller waits
            pacer.observe({"x-ratelimit-remaining-requests": "1", "x-ratelimit-reset-requests": "1s"}, 1)
        now[0] += seconds

    pacer = AdaptivePacer(clock=lambda: now[0], sleep=sleep)
    assert pacer.acquire(None) == 1
    assert pacer.acquire(None) == 2 and len(waits) == 3  # held until the gateway said its budget
    start = now[0]
    pacer.acquire(None)  # budget of the window spent: waits for its reset, then probes again
    assert now[0] >= start + 0.9


# ----------------------------------------------------------------------------- budgets


def test_budgets_parse_from_yaml_or_json_and_refuse_what_they_cannot_mean() -> None:
    policy = parse_budgets("plugin: {day: 5}\nuser: {hour: 0.1}\ncall: 0.05\nbatch: 1", field_name="budgets", admin=True)
    assert policy is not None and set(policy.limits) == {("plugin", "day", 5.0), ("user", "hour", 0.1)}
    assert policy.call == 0.05 and policy.batch == 1 and policy.unpriced is None
    assert parse_budgets('{"app": {"month": 20}}', field_name="budgets", admin=True).limits == (("app", "month", 20.0),)  # type: ignore[union-attr]
    for bad, words in [
        ("plugin: {week: 5}", "hour, day or month"),
        ("team: {day: 5}", "unknown keys"),
        ("call: -1", "from 0"),
        ("call: yes", "number of USD"),
        ("unpriced: {input: 1}", "unpriced"),
        ("[1, 2]", "must map"),
    ]:
        with pytest.raises(FieldError, match=words):
            parse_budgets(bad, field_name="budgets", admin=True)
    with pytest.raises(FieldError, match="administrator"):
        parse_budgets("downgrade: true", field_name="budgets", admin=False)


def test_a_workflow_only_tightens() -> None:
    admin = BudgetPolicy(limits=(("plugin", "day", 5.0),), call=0.05, downgrade=True)
    mine = BudgetPolicy(limits=(("plugin", "day", 50.0), ("user", "hour", 0.1)), call=1.0)
    merged = admin.tightened(mine)
    assert dict(((s, p), v) for s, p, v in merged.limits) == {("plugin", "day"): 5.0, ("user", "hour"): 0.1}
    assert merged.call == 0.05 and merged.downgrade


def test_the_worst_case_prompt_bound_is_never_below_a_tokenizers_count() -> None:
    from gateway.spend.tokens import estimate_prompt_tokens

    for text in ["hello " * 100, "中文字符" * 50, "🙂" * 30, "a"]:
        messages = [{"role": "user", "content": text}]
        assert worst_case_prompt_tokens(messages) >= estimate_prompt_tokens(messages).tokens


def test_calendar_periods_end_at_the_next_utc_boundary() -> None:
    from datetime import UTC, datetime

    t = datetime(2026, 12, 31, 23, 30, tzinfo=UTC).timestamp()
    assert period_window("hour", t) == ("2026123123", datetime(2027, 1, 1, tzinfo=UTC).timestamp())
    assert period_window("month", t)[1] == datetime(2027, 1, 1, tzinfo=UTC).timestamp()


def test_parallel_reservations_never_pass_the_limit_together() -> None:
    store = InProcessBudgetStore()
    charge = Charge("k", 1000, 0, "plugin/day")
    granted: list[Hold] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(50):
            result = store.reserve([charge], 7)
            if isinstance(result, Hold):
                with lock:
                    granted.append(result)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(granted) == 1000 // 7 and store.spent("k") <= 1000
    for hold in granted:
        store.settle(hold, 3)  # the real cost was lower: the difference comes back
    assert store.spent("k") == 3 * len(granted)
    assert isinstance(store.reserve([charge], 1000), Refusal)


# ----------------------------------------------------------------------------- cache


def test_the_cache_key_covers_what_changes_the_answer_and_the_gateway_key() -> None:
    base = ChatRequest.from_prompt("hi", model="m", temperature=0)
    assert cache_key("ns", base) == cache_key("ns", ChatRequest.from_prompt("hi", model="m", temperature=0))
    for other in [
        ChatRequest.from_prompt("hi", model="m2", temperature=0),
        ChatRequest.from_prompt("hi", model="m", temperature=0, seed=1),
        ChatRequest.from_prompt("hi", model="m", temperature=0, max_tokens=5),
        ChatRequest.from_prompt("hi", model="m", temperature=0, system_prompt="s"),
    ]:
        assert cache_key("ns", other) != cache_key("ns", base)
    assert cache_key("other-key", base) != cache_key("ns", base)


def test_auto_caches_only_temperature_zero_and_never_a_stream() -> None:
    zero = ChatRequest.from_prompt("hi", model="m", temperature=0)
    assert use_cache("auto", zero, streaming=False)
    assert not use_cache("auto", zero, streaming=True)
    assert not use_cache("auto", ChatRequest.from_prompt("hi", model="m"), streaming=False)
    assert use_cache("on", ChatRequest.from_prompt("hi", model="m", temperature=1), streaming=True)
    assert not use_cache("off", zero, streaming=False)


def test_the_lru_is_bounded_in_entries_bytes_and_time() -> None:
    now = [0.0]
    cache = LRUReplyCache(max_entries=3, max_bytes=10_000, clock=lambda: now[0])
    for n in range(5):
        cache.put(f"k{n}", {"text": str(n)}, ttl=10)
    assert len(cache) == 3 and cache.get("k0") is None and cache.get("k4") == {"text": "4"}
    cache.put("big", {"text": "x" * 20_000}, ttl=10)
    assert cache.get("big") is None
    now[0] = 11
    assert cache.get("k4") is None
