"""Redaction costs the same whatever the process has seen, and catches the key in every encoding."""

import base64
import hashlib
import time
import urllib.parse

import pytest

from gateway.errors import KNOWN_SECRETS, MAX_KNOWN_SECRETS, REDACTED, Redactor, redact_known_secrets, register_secret

KEY = "sk-live-9f8e7d6c5b4a3210ZYXW"
# An ordinary gateway error, a few hundred characters of words of every length.
MESSAGE = (
    "gateway returned HTTP 401: the API key was rejected (Incorrect API key provided: sk-ab****YXW. "
    "You can find your API key at https://platform.example.com/account/api-keys). Check the api_key credential. "
) * 4


@pytest.fixture(autouse=True)
def _fresh_known_secrets() -> None:
    KNOWN_SECRETS.clear()


def _best_time(redact: object, text: str, runs: int = 30) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        redact(text)  # type: ignore[operator]
        best = min(best, time.perf_counter() - started)
    return best


def test_redaction_time_does_not_depend_on_the_keys_seen_before() -> None:
    register_secret(KEY)
    baseline = _best_time(redact_known_secrets, MESSAGE)
    # Many keys, each as long as a key may be, then one of 2 MiB (as a hostile author would paste).
    for n in range(500):
        register_secret(f"sk-{n:04d}-" + "x7Qz" * 126)
    register_secret("A" * (2 << 20))
    register_secret(KEY)
    after = _best_time(redact_known_secrets, MESSAGE)
    assert len(KNOWN_SECRETS) <= MAX_KNOWN_SECRETS
    # Generous: the same work either way, only noise apart (the old matcher was thousands of times slower).
    assert after < baseline * 5 + 0.002, (baseline, after)
    assert KEY not in redact_known_secrets(f"key {KEY} rejected")


def test_a_client_redactor_costs_the_same_for_a_long_key() -> None:
    short = Redactor([KEY])
    long = Redactor(["L" * 512])
    huge = Redactor(["H" * (2 << 20)])  # not a valid key, but a Redactor must stay bounded whatever it is given
    base = _best_time(short, MESSAGE)
    assert _best_time(long, MESSAGE) < base * 5 + 0.002
    assert _best_time(huge, MESSAGE) < base * 5 + 0.002


def test_redaction_is_linear_in_the_message() -> None:
    redact = Redactor([KEY])
    small = _best_time(redact, MESSAGE * 10, runs=15)
    large = _best_time(redact, MESSAGE * 100, runs=15)
    assert large < small * 40, (small, large)  # 10x the text, about 10x the time; never 100x


def test_the_process_wide_list_is_bounded_and_keeps_the_most_recent_keys() -> None:
    keys = [hashlib.sha256(str(n).encode()).hexdigest()[:24] for n in range(MAX_KNOWN_SECRETS * 3)]
    for key in keys:
        register_secret(key)
    register_secret(KEY)
    assert len(KNOWN_SECRETS) == MAX_KNOWN_SECRETS
    assert KEY not in redact_known_secrets(KEY)
    assert keys[-1] not in redact_known_secrets(keys[-1])
    assert keys[0] in redact_known_secrets(keys[0])  # long forgotten


def test_the_key_is_redacted_in_its_encodings() -> None:
    secret = "s3cr3t/KEY+with=odd&chars!"
    redact = Redactor([secret])
    encodings = [
        secret,
        base64.b64encode(secret.encode()).decode(),
        base64.urlsafe_b64encode(secret.encode()).decode(),
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote(secret, safe="").lower(),
    ]
    for user in ("u", "us", "user", "a-longer-user"):  # every alignment of the key in base64("user:key")
        encodings.append(base64.b64encode(f"{user}:{secret}".encode()).decode())
        encodings.append(f"Authorization: Basic {base64.b64encode(f'{user}:{secret}'.encode()).decode()}")
    for text in encodings:
        out = redact(f"the gateway said: {text} was refused")
        assert REDACTED in out, text
        assert secret[:8] not in out and text not in out


def test_partial_echoes_and_ordinary_text() -> None:
    redact = Redactor([KEY])
    assert KEY[:12] not in redact(f"key {KEY[:12]}**** is invalid")
    assert KEY[-10:] not in redact(f"key ****{KEY[-10:]} is invalid")
    plain = "model 'gpt-4.1' does not exist; see https://api.holysheep.ai/v1/models (code 404)"
    assert redact(plain) == plain
    assert redact("Bearer abc.def") == f"Bearer {REDACTED}"


def test_a_short_key_is_still_redacted_whole() -> None:
    redact = Redactor(["k-12"])
    assert redact("key k-12 refused") == f"key {REDACTED} refused"
