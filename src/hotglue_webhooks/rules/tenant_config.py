"""Check a HotGlue tenant config against a JSON Schema, describing problems without values.

The tenant config (``GET /tenant/{env_id}/{tenant}/config``, REFERENCE §4) holds the
customer's credentials, so a problem names the field and what is wrong with it, never
the value: jsonschema's own messages quote the instance and are not used.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from jsonschema.validators import validator_for

NO_CONFIG = "HotGlue has no tenant config for this tenant"

_JSON_TYPES = (
    (bool, "boolean"),
    (int, "integer"),
    (float, "number"),
    (str, "string"),
    (list, "array"),
    (Mapping, "object"),
)


def config_problems(config: Mapping[str, Any] | None, schema: Mapping[str, Any]) -> list[str]:
    """Return what is wrong with ``config`` under ``schema``, sorted; empty when valid.

    Each problem reads like ``apiCredentials.password: empty``. ``config`` None means
    HotGlue answered "no config" for the tenant, which is invalid. The schema must be
    valid (``RulesConfig`` checks it at load time).
    """
    if config is None:
        return [NO_CONFIG]
    validator = validator_for(schema)(schema)
    problems: set[str] = set()
    for error in validator.iter_errors(config):
        problems.update(
            _describe(error.validator, error.validator_value, error.instance, error.absolute_path)
        )
    return sorted(problems)


def _describe(keyword: Any, expected: Any, instance: Any, path: Iterable[Any]) -> list[str]:
    where = _path(path)
    if keyword == "required" and isinstance(instance, Mapping):
        return [f"{_join(where, name)}: missing" for name in expected if name not in instance]
    if keyword == "minLength" and expected == 1:
        return [f"{where or '(whole config)'}: empty"]
    if keyword == "type":
        wanted = " or ".join(expected) if isinstance(expected, list) else str(expected)
        return [f"{where or '(whole config)'}: {_json_type(instance)}, expected {wanted}"]
    if keyword in ("pattern", "format", "enum", "const"):
        return [f"{where or '(whole config)'}: not an allowed value ({keyword})"]
    return [f"{where or '(whole config)'}: fails {keyword}"]


def _path(path: Iterable[Any]) -> str:
    text = ""
    for part in path:
        text = f"{text}[{part}]" if isinstance(part, int) else _join(text, str(part))
    return text


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    for python_type, name in _JSON_TYPES:
        if isinstance(value, python_type):
            return name
    return type(value).__name__
