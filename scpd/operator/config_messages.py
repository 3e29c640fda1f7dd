"""Configuration errors as one line: pydantic's ``ValidationError`` in an operator's words.

Every problem reads ``key.path: problem`` (array elements counted from 0:
``quorum_set.inner_sets[1].threshold``); an unknown key or section comes with
the declared one closest to it (``did you mean``). No message quotes the value
of a key whose name starts with ``seed``, and ``redact_secrets`` hides anything
shaped like a seed wherever an operator may have pasted one.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from scpd.operator.config_sections import ConfigFile

__all__ = ["MAX_ERRORS_SHOWN", "format_key_path", "redact_secrets", "translate"]

# A seed is 'S' and 55 more base32 characters; also catch truncated or
# lower-cased copies. Legitimate values this long and shaped like that do not
# occur in a configuration (public keys start with G).
_SEED_LIKE = re.compile(r"(?<![A-Za-z0-9])[Ss][A-Za-z2-7]{19,}")


_TOML_TYPES: dict[type, str] = {
    str: "a string",
    int: "an integer",
    float: "a float",
    bool: "a boolean",
    list: "an array",
    dict: "a table",
}
_EXPECTED = {
    "int_type": "an integer",
    "float_type": "a number",
    "string_type": "a string",
    "bool_type": "a boolean (true or false)",
    "list_type": "an array",
    "model_type": "a table",
    "model_attributes_type": "a table",
    "dict_type": "a table",
}
_BOUNDS = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}
_SECRET_PREFIX = "seed"
# Errors listed in one message; a file with more is not worth reading further.
MAX_ERRORS_SHOWN = 20


def format_key_path(loc: Sequence[int | str]) -> str:
    """``('quorum_set', 'inner_sets', 1, 'threshold')`` -> ``quorum_set.inner_sets[1].threshold``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def translate(exc: ValidationError) -> str:
    """Every error as ``key.path: problem``, joined in one line.

    A missing key explained by a misspelling beside it (``[quorumset]``
    where ``[quorum_set]`` is required) is said once, at the misspelling,
    with its suggestion.
    """
    errors = exc.errors()
    suggested = {
        (*err["loc"][:-1], suggestion)
        for err in errors
        if err["type"] == "extra_forbidden" and (suggestion := _closest_field(err["loc"])) is not None
    }
    shown = [err for err in errors if not (err["type"] == "missing" and tuple(err["loc"]) in suggested)]
    problems = []
    for err in shown[:MAX_ERRORS_SHOWN]:
        key = format_key_path(err["loc"])
        problems.append(f"{key}: {_describe(err)}" if key else _describe(err))
    more = f" (and {len(shown) - MAX_ERRORS_SHOWN} more)" if len(shown) > MAX_ERRORS_SHOWN else ""
    return "; ".join(problems) + more


def _type_name(value: object) -> str:
    for kind, name in _TOML_TYPES.items():
        if type(value) is kind:
            return name
    return f"a {type(value).__name__}"


def _shown(err: ErrorDetails) -> str:
    """``, got X`` for a public scalar value; nothing for secrets or big values."""
    names = [p for p in err["loc"] if isinstance(p, str)]
    if names and names[-1].startswith(_SECRET_PREFIX):
        return ""
    value = err.get("input")
    if isinstance(value, bool):
        return f", got {str(value).lower()}"
    if isinstance(value, int | float):
        return f", got {value}"
    if isinstance(value, str) and len(value) <= 60:
        return f", got {value!r}"
    return ""


def _describe(err: ErrorDetails) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        return _unknown(err)
    if kind == "missing":
        return "required section is missing" if _is_section(err["loc"]) else "required key is missing"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {_type_name(err.get('input'))}"
    if kind in _BOUNDS:
        bound = next(iter(ctx.values()))
        if isinstance(bound, float) and bound.is_integer():
            bound = int(bound)
        return f"must be {_BOUNDS[kind]} {bound}{_shown(err)}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "finite_number":
        return "must be a finite number (not inf or nan)"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    msg = err["msg"]
    if msg.startswith("Input should be "):
        msg = "must be " + msg.removeprefix("Input should be ")
    return msg + _shown(err)


def _annotation_at(loc: Sequence[int | str]) -> Any:
    """The declared type at ``loc`` (walking models and lists), or None."""
    current: Any = ConfigFile
    for part in loc:
        current = _unwrap_optional(current)
        if isinstance(part, int):
            if typing.get_origin(current) is not list:
                return None
            current = typing.get_args(current)[0]
        else:
            if not (isinstance(current, type) and issubclass(current, BaseModel)):
                return None
            info = current.model_fields.get(part)
            if info is None:
                return None
            current = info.annotation
    return _unwrap_optional(current)


def _unwrap_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _is_section(loc: Sequence[int | str]) -> bool:
    tp = _annotation_at(loc)
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _closest_field(loc: Sequence[int | str]) -> str | None:
    """The declared key closest to the unknown one at ``loc``, if one is close."""
    parent = _annotation_at(loc[:-1])
    if not (isinstance(parent, type) and issubclass(parent, BaseModel)) or not isinstance(loc[-1], str):
        return None
    close = difflib.get_close_matches(loc[-1], list(parent.model_fields), n=1, cutoff=0.6)
    return close[0] if close else None


def _unknown(err: ErrorDetails) -> str:
    """``unknown key`` or ``unknown section``, with a did-you-mean when a declared one is close."""
    close = _closest_field(err["loc"])
    value = err.get("input")
    if isinstance(value, dict) or (isinstance(value, list) and value and all(isinstance(v, dict) for v in value)):
        # A table ([name]) or an array of tables ([[name]]): suggest it written the same way.
        left, right = ("[", "]") if isinstance(value, dict) else ("[[", "]]")
        where = format_key_path([*err["loc"][:-1], close]) if close else ""
        return "unknown section" + (f" (did you mean {left}{where}{right}?)" if close else "")
    return "unknown key" + (f" (did you mean {close!r}?)" if close else "")


def redact_secrets(text: str) -> str:
    """Hide anything shaped like a seed strkey.

    The loader never quotes ``node.seed``, but an operator may paste a seed
    where another value belongs (``seed_env = "S..."``, a file name, a log
    level) and we do quote those; this is the last line of defence.
    """
    return _SEED_LIKE.sub("S<redacted>", text)
