"""Designated approvers and notification channels, as part of the policy.

A policy may name who holds each level and where to tell them::

    channels:
      finance-lark: {format: feishu}        # generic | feishu | lark | dingtalk | wecom | slack
    approvers:
      manager:
        - {id: lin.wei, name: Lin Wei, channel: finance-lark}
      director:
        - {id: ana.ruiz, channel: finance-lark}

``language`` (``en_US`` or ``zh_Hans``; ``en``, ``zh``, ``zh-CN`` are read as those) is the language of the
page an approval link opens: on an approver, else on the approver's channel, else the policy's top-level
``language``, else English. The link carries it (``approval.links``), so the endpoint, which does not know
the policy, shows the page in the approver's language::

    language: zh_Hans
    channels:
      finance-lark: {format: feishu, language: zh_Hans}
    approvers:
      manager:
        - {id: lin.wei, channel: finance-lark}
        - {id: ana.ruiz, channel: finance-lark, language: en_US}

The policy says *who* and *which channel*; where a channel posts (its webhook URL) and how it signs (its
secret) are deployment secrets and come from the ``notification_secrets`` tool parameter, never from the
policy (``approval.webhook_formats``).

A policy may also map Dify user ids to person ids (``dify_users``), for the provider setting
``approval_actor: dify_user`` (the actor is the Dify user who runs the workflow)::

    dify_users:
      9f1c2a4e-...: lin.wei

When the policy names approvers, who they are is the policy's word (``Authority``): an actor's level is the
level the policy gives that person, and a person it does not name cannot claim, approve or reject.

``select_approvers`` picks the approvers for a required level: those who hold exactly that level, or, when
nobody eligible holds it, the nearest higher level that has someone. The requester is never selected
(separation of duties, compared on ``approval.confusables.person_keys``, the same folding that refuses
self-approval in the state machine).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from approval.confusables import person_keys
from approval.levels import APPROVER_LEVELS, level_rank
from untrusted import quote

CHANNEL_FORMATS: tuple[str, ...] = ("generic", "feishu", "lark", "dingtalk", "wecom", "slack")
MAX_APPROVERS_PER_LEVEL = 50
MAX_CHANNELS = 50
MAX_PERSON_ID_CHARS = 200
MAX_NAME_CHARS = 200
MAX_DIFY_USERS = 10_000
CHANNEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$")
_APPROVER_KEYS = frozenset({"id", "name", "channel", "language"})
_CHANNEL_KEYS = frozenset({"format", "description", "language"})
# The languages of the decision page (approval.decision_page), and how else a policy may spell them.
LANGUAGES: tuple[str, ...] = ("en_US", "zh_Hans")
_LANGUAGE_ALIASES = {
    "en": "en_US", "en-us": "en_US", "en_us": "en_US", "english": "en_US",
    "zh": "zh_Hans", "zh-hans": "zh_Hans", "zh_hans": "zh_Hans", "zh-cn": "zh_Hans", "zh_cn": "zh_Hans",
    "zh-hans-cn": "zh_Hans", "chinese": "zh_Hans",
}


class ApproversError(ValueError):
    """An invalid approvers or channels section; the message names the entry and the field."""


def parse_language(value: Any, where: str) -> str:
    """A ``language`` setting as one of LANGUAGES; "" when it is not set."""
    if value is None or value == "":
        return ""
    found = _LANGUAGE_ALIASES.get(value.strip().lower()) if isinstance(value, str) else None
    if found is None:
        raise ApproversError(
            f"{where}: 'language' must be one of {', '.join(LANGUAGES)} (the language of the approval page), got {quote(value)}"
        )
    return found


@dataclass(frozen=True)
class Channel:
    id: str
    format: str
    description: str = ""
    language: str = ""  # one of LANGUAGES, or "" (not set)

    def canonical(self) -> dict[str, Any]:
        out = {"format": self.format, "description": self.description}
        if self.language:  # only when set, so a policy without languages hashes as it always did
            out["language"] = self.language
        return out


@dataclass(frozen=True)
class Approver:
    id: str
    level: str
    name: str = ""
    channel: str = ""
    # The language of the approver's approval page: theirs, else their channel's, else the policy's ("" = English).
    language: str = ""

    def canonical(self) -> dict[str, Any]:
        out = {"id": self.id, "name": self.name, "channel": self.channel}
        if self.language:  # only when set, so a policy without languages hashes as it always did
            out["language"] = self.language
        return out

    def to_output(self) -> dict[str, Any]:
        """The approver as a workflow variable: empty fields are left out, never null."""
        out: dict[str, Any] = {"id": self.id, "level": self.level}
        if self.name:
            out["name"] = self.name
        if self.channel:
            out["channel"] = self.channel
        return out


def parse_channels(raw: Any) -> dict[str, Channel]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ApproversError("policy: 'channels' must be a mapping of channel id to {format: ...}")
    if len(raw) > MAX_CHANNELS:
        raise ApproversError(f"policy: 'channels': at most {MAX_CHANNELS} channels, got {len(raw)}")
    channels: dict[str, Channel] = {}
    for channel_id, spec in raw.items():
        if not isinstance(channel_id, str) or not CHANNEL_ID.match(channel_id):
            raise ApproversError(
                f"policy: 'channels': {quote(channel_id)} is not a channel id (letters, digits, - _ . :, at most 64)"
            )
        where = f"channel {quote(channel_id)}"
        spec = _entry(
            where, spec, "format", _CHANNEL_KEYS, "'format'",
            "format, description, language (the webhook URL and secret go in the notification_secrets parameter, not in the policy)",
        )
        fmt = spec.get("format")
        if not isinstance(fmt, str) or fmt.strip().lower() not in CHANNEL_FORMATS:
            raise ApproversError(f"{where}: 'format' must be one of {', '.join(CHANNEL_FORMATS)}, got {quote(fmt)}")
        description = spec.get("description", "")
        if not isinstance(description, str) or len(description) > 500:
            raise ApproversError(f"{where}: 'description' must be text of at most 500 characters")
        channels[channel_id] = Channel(channel_id, fmt.strip().lower(), description, parse_language(spec.get("language"), where))
    return channels


def _entry(where: str, entry: Any, shorthand: str, allowed: Collection[str], shape: str, allowed_text: str) -> Mapping[str, Any]:
    """A policy entry as a mapping: a bare string stands for {shorthand: it}; unknown fields are refused."""
    if isinstance(entry, str):
        entry = {shorthand: entry}
    if not isinstance(entry, Mapping):
        raise ApproversError(f"{where}: must be a mapping with {shape}")
    unknown = sorted(str(key) for key in entry if key not in allowed)
    if unknown:
        raise ApproversError(f"{where}: unknown field(s) {', '.join(quote(key, 40) for key in unknown[:10])}; allowed: {allowed_text}")
    return entry


def parse_approvers(raw: Any, channels: Mapping[str, Channel], language: str = "") -> dict[str, tuple[Approver, ...]]:
    """``language``: the policy's top-level language, for approvers whose entry and channel set none."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ApproversError(
            f"policy: 'approvers' must be a mapping of level ({', '.join(APPROVER_LEVELS)}) to a list of approvers"
        )
    result: dict[str, tuple[Approver, ...]] = {}
    seen: dict[str, tuple[str, str]] = {}  # person key -> (id, level), across every level
    for level, entries in raw.items():
        name = _approver_level(level)
        result[name] = _approvers_at(name, entries, channels, language, seen)
    return {level: result[level] for level in APPROVER_LEVELS if level in result}


def _approver_level(level: Any) -> str:
    if not isinstance(level, str) or level.strip().lower() not in APPROVER_LEVELS:
        raise ApproversError(
            f"policy: 'approvers': {quote(level)} is not a level; use {', '.join(APPROVER_LEVELS)}"
        )
    return level.strip().lower()


def _approvers_at(level: str, entries: Any, channels: Mapping[str, Channel], language: str,
                  seen: dict[str, tuple[str, str]]) -> tuple[Approver, ...]:
    where_level = f"approvers {level!r}"
    if isinstance(entries, str) or not isinstance(entries, list) or not entries:
        raise ApproversError(f"{where_level}: must be a non-empty list of {{id, name, channel}}")
    if len(entries) > MAX_APPROVERS_PER_LEVEL:
        raise ApproversError(f"{where_level}: at most {MAX_APPROVERS_PER_LEVEL} approvers, got {len(entries)}")
    approvers: list[Approver] = []
    for index, entry in enumerate(entries, start=1):
        approvers.append(_approver(where_level, index, level, entry, channels, language, seen))
    return tuple(approvers)


def _approver(where_level: str, index: int, level: str, raw: Any, channels: Mapping[str, Channel], language: str,
              seen: dict[str, tuple[str, str]]) -> Approver:
    """One entry of a level's list; records the person in ``seen`` (a person holds one level)."""
    entry = _entry(f"{where_level} #{index}", raw, "id", _APPROVER_KEYS,
                   "'id' (and optional 'name', 'channel', 'language')", "id, name, channel, language")
    person = _person_id(f"{where_level} #{index}", entry.get("id"))
    where = f"{where_level} {quote(person)}"
    name = entry.get("name", "")
    if name is None:
        name = ""
    if not isinstance(name, str) or len(name) > MAX_NAME_CHARS or (name and not name.isprintable()):
        raise ApproversError(f"{where}: 'name' must be text of at most {MAX_NAME_CHARS} printable characters")
    channel = _approver_channel(where, entry.get("channel", "") or "", channels)
    _hold_one_level(where, person, level, seen)
    spoken = parse_language(entry.get("language"), where) or (channels[channel].language if channel else "") or language
    return Approver(id=person, level=level, name=name.strip(), channel=channel, language=spoken)


def _person_id(where: str, person: Any) -> str:
    if (
        not isinstance(person, str)
        or not person.strip()
        or len(person.strip()) > MAX_PERSON_ID_CHARS
        or not person.strip().isprintable()
    ):
        raise ApproversError(f"{where}: 'id' must be a person id of 1 to {MAX_PERSON_ID_CHARS} printable characters, got {quote(person)}")
    return person.strip()


def _approver_channel(where: str, channel: Any, channels: Mapping[str, Channel]) -> str:
    if not isinstance(channel, str):
        raise ApproversError(f"{where}: 'channel' must be a channel id, got {quote(channel)}")
    channel = channel.strip()
    if channel and channel not in channels:
        known = ", ".join(sorted(channels)) or "none are defined"
        raise ApproversError(f"{where}: channel {quote(channel)} is not defined under 'channels' ({known})")
    return channel


def _hold_one_level(where: str, person: str, level: str, seen: dict[str, tuple[str, str]]) -> None:
    """Refuse a person already named (ids compared by their folded forms), else record them."""
    for key in person_keys(person):
        if key in seen:
            other, other_level = seen[key]
            raise ApproversError(
                f"{where}: the same person as {quote(other)} ({other_level}); a person holds one level "
                "(ids are compared ignoring case, spacing, invisible characters and look-alikes)"
            )
    for key in person_keys(person):
        seen[key] = (person, level)


def parse_dify_users(raw: Any) -> dict[str, str]:
    """``dify_users``: Dify user id -> person id (as the policy's approvers and requesters are named)."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ApproversError("policy: 'dify_users' must be a mapping of Dify user id to person id")
    if len(raw) > MAX_DIFY_USERS:
        raise ApproversError(f"policy: 'dify_users': at most {MAX_DIFY_USERS} entries, got {len(raw)}")
    users: dict[str, str] = {}
    for user, person in raw.items():
        for what, value in (("Dify user id", user), ("person id", person)):
            if (
                not isinstance(value, str)
                or not value.strip()
                or len(value.strip()) > MAX_PERSON_ID_CHARS
                or not value.strip().isprintable()
            ):
                raise ApproversError(
                    f"policy: 'dify_users': {quote(value)} is not a {what} (1 to {MAX_PERSON_ID_CHARS} printable characters)"
                )
        users[user.strip()] = person.strip()
    return users


@dataclass(frozen=True)
class Authority:
    """Who the administrator's policy says may decide, and at which level (``approvers``, non-empty)."""

    approvers: Mapping[str, tuple[Approver, ...]]

    @functools.cached_property
    def _by_key(self) -> dict[str, Approver]:
        # parse_approvers refuses two approvers sharing a folded form, so each key names one person.
        return {key: person for people in self.approvers.values() for person in people for key in person_keys(person.id)}

    def person(self, actor_id: str) -> Approver | None:
        """The approver the policy names that ``actor_id`` is (look-alikes folded), or None."""
        if not actor_id:
            return None
        return next((self._by_key[key] for key in sorted(person_keys(actor_id)) if key in self._by_key), None)

    def level_of(self, actor_id: str) -> str | None:
        """The level the policy gives ``actor_id``; None for a person it does not name."""
        person = self.person(actor_id)
        return None if person is None else person.level


def authority_of(approvers: Mapping[str, tuple[Approver, ...]]) -> Authority | None:
    """The policy's word on identities, or None when it names no approver (levels are then the caller's)."""
    return Authority(approvers) if any(approvers.values()) else None


def same_person(a: str, b: str) -> bool:
    """Whether two person ids name the same person (a shared folded form, see approval.confusables)."""
    return bool(a) and bool(b) and not person_keys(a).isdisjoint(person_keys(b))


def select_approvers(
    approvers: Mapping[str, tuple[Approver, ...]], required_level: str, requester_id: str
) -> list[Approver]:
    """The approvers of the lowest level at or above ``required_level`` that has anyone eligible; never the
    requester. Empty when the policy names nobody who may decide."""
    start = level_rank(required_level)
    for level in APPROVER_LEVELS[start:]:
        eligible = [person for person in approvers.get(level, ()) if not same_person(person.id, requester_id)]
        if eligible:
            return eligible
    return []


__all__ = [
    "CHANNEL_FORMATS",
    "LANGUAGES",
    "Approver",
    "ApproversError",
    "Authority",
    "Channel",
    "authority_of",
    "parse_approvers",
    "parse_channels",
    "parse_dify_users",
    "parse_language",
    "same_person",
    "select_approvers",
]
