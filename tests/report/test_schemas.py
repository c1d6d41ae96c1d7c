"""The shipped JSON Schemas: valid, one shape per object, one key per idea, and the README's
key tables made from them.

Run ``python tests/report/test_schemas.py`` to rewrite the README tables after a schema
changes.
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from rdptrust.report.schemas import load_schema, schema_files

README = Path(__file__).resolve().parents[2] / "README.md"
SCHEMAS = {schema_id: load_schema(schema_id) for schema_id in schema_files()}
#: A short form the inventory or the lab writes, and the object it is a strict subset of.
SHORT_FORMS = {
    "certificate-summary": "certificate",
    "ntlm-summary": "ntlm",
    "retrieval-summary": "retrieval",
    "tls-summary": "tls",
}
#: Keys that name a moment; each is a timestamp (RFC 3339 UTC with Z).
TIMES = {"not_before", "not_after", "first_seen", "last_seen", "next_update", "server_time"}
_BLOCK = re.compile(r"<!-- schema: (\S+) -->\n(.*?)<!-- /schema -->\n", re.S)


def _document_name(schema_id: str) -> str:
    return schema_id.removeprefix("rdptrust.").split("/")[0]


def _objects(node: Any, where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every object schema with ``properties`` in *node*, with a path to it."""
    if isinstance(node, dict):
        if "properties" in node:
            yield where, node
        for key, value in node.items():
            yield from _objects(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _objects(value, f"{where}/{index}")


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            found.add(ref.removeprefix("#/$defs/"))
        for value in node.values():
            found |= _refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= _refs(value)
    return found


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    """A document's schema as another document embeds it under ``$defs``."""
    return {k: v for k, v in schema.items() if k not in ("$schema", "$id", "title", "$defs")}


def _unwrap(schema: dict[str, Any]) -> dict[str, Any]:
    """The non-null alternative of a nullable schema."""
    options = [o for o in schema.get("anyOf", ()) if o != {"type": "null"}]
    return options[0] if len(options) == 1 and "anyOf" in schema else schema


def _defs(schema: dict[str, Any]) -> dict[str, Any]:
    defs: dict[str, Any] = schema.get("$defs", {})
    return defs


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    node = _unwrap(node)
    ref = node.get("$ref")
    if isinstance(ref, str):
        name = ref.removeprefix("#/$defs/")
        return name, _defs(schema)[name]
    return None, node


def _kind(schema: dict[str, Any], node: dict[str, Any]) -> str:
    """What a property holds, for comparing one key across documents."""
    name, target = _resolve(schema, node)
    if "const" in target:
        return type(target["const"]).__name__.replace("str", "string").replace("int", "integer")
    if "enum" in target:
        return "string" if all(isinstance(v, str | None) for v in target["enum"]) else "enum"
    if "anyOf" in target:
        return "any"
    kind = target.get("type")
    if isinstance(kind, list):
        (kind,) = [k for k in kind if k != "null"]
    if kind == "object":
        family = SHORT_FORMS.get(name or "", name)
        return f"object:{family}" if family else "object"
    if kind == "array":
        return "array of " + _kind(schema, target["items"])
    return str(kind)


@pytest.mark.parametrize("schema_id", sorted(SCHEMAS))
def test_schema_is_valid_and_named_for_its_document(schema_id: str) -> None:
    schema = SCHEMAS[schema_id]
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == schema_id
    assert schema["properties"]["schema"]["const"] == schema_id
    assert schema["title"].startswith(schema_id + ": ")
    assert schema_files()[schema_id] == f"{_document_name(schema_id)}.schema.json"


def test_every_file_is_shipped_under_its_name() -> None:
    names = {e.name for e in resources.files("rdptrust.report.schemas").iterdir()}
    assert {n for n in names if n.endswith(".json")} == set(schema_files().values())


@pytest.mark.parametrize("schema_id", sorted(SCHEMAS))
def test_every_key_is_always_present_and_no_other(schema_id: str) -> None:
    for where, node in _objects(SCHEMAS[schema_id]):
        assert node.get("type") in ("object", ["object", "null"]), where
        assert node["additionalProperties"] is False, where
        assert node["required"] == list(node["properties"]), where


@pytest.mark.parametrize("schema_id", sorted(SCHEMAS))
def test_defs_are_exactly_those_used(schema_id: str) -> None:
    schema = SCHEMAS[schema_id]
    used = _refs({k: v for k, v in schema.items() if k != "$defs"})
    todo = list(used)
    while todo:
        for name in _refs(_defs(schema)[todo.pop()]) - used:
            used.add(name)
            todo.append(name)
    assert set(_defs(schema)) == used


def test_a_shared_object_is_the_same_in_every_file() -> None:
    seen: dict[str, tuple[str, Any]] = {}
    for schema_id, schema in SCHEMAS.items():
        for name, definition in _defs(schema).items():
            first = seen.setdefault(name, (schema_id, definition))
            assert definition == first[1], f"$defs/{name} differs: {first[0]}, {schema_id}"


def test_an_embedded_document_is_that_document() -> None:
    by_name = {_document_name(i): s for i, s in SCHEMAS.items()}
    for schema_id, schema in SCHEMAS.items():
        for name, definition in _defs(schema).items():
            if name in by_name:
                assert definition == _body(by_name[name]), f"{schema_id}: $defs/{name}"


def test_short_forms_are_strict_subsets_with_the_same_key_names() -> None:
    defs: dict[str, Any] = {}
    for schema in SCHEMAS.values():
        defs.update(_defs(schema))
    pairs = [(defs[short], defs[full]) for short, full in SHORT_FORMS.items()]
    host = SCHEMAS["rdptrust.scan-host/2"]["properties"]
    lab = SCHEMAS["rdptrust.lab/1"]["properties"]
    pairs += [
        (_unwrap(host["negotiation"]), defs["negotiation"]),
        (host["protocols"]["additionalProperties"], defs["protocol-support"]),
        (host["tls_versions"]["additionalProperties"], defs["tls-version-support"]),
        (_unwrap(lab["standard_security"]), defs["standard-security"]),
    ]
    for short, full in pairs:
        assert set(short["properties"]) < set(full["properties"]), short["properties"]


def test_one_key_holds_one_kind_of_value_in_every_document() -> None:
    kinds: dict[str, set[str]] = defaultdict(set)
    for schema in SCHEMAS.values():
        for where, node in _objects(schema):
            if where.endswith("$defs/timings"):
                continue  # phase names (connect, x224, tls, total): milliseconds each
            for key, value in node["properties"].items():
                kinds[key].add(_kind(schema, value))
    mixed = {}
    for key, found in kinds.items():
        named = {k for k in found if k.startswith(("object:", "array of object:"))}
        plain = {k.split(":")[0] for k in found}
        if len(plain) > 1 or len(named) > 1:
            mixed[key] = found
    assert not mixed


def test_times_are_timestamps_and_problems_use_code() -> None:
    for schema_id, schema in SCHEMAS.items():
        for where, node in _objects(schema):
            for key, value in node["properties"].items():
                if key in TIMES or key == "at" or key.endswith("_at"):
                    name, _ = _resolve(schema, value)
                    assert name == "timestamp", f"{schema_id}{where}/{key}"
                if key in ("problems", "findings"):
                    assert _resolve(schema, value["items"])[0] == "problem", schema_id
    problem = _defs(SCHEMAS["rdptrust.probe/2"])["problem"]
    assert list(problem["properties"]) == ["code", "severity", "message"]


# -- the README ----------------------------------------------------------------------------


def _type_text(schema: dict[str, Any], node: dict[str, Any]) -> str:
    nullable = node.get("anyOf") is not None and {"type": "null"} in node["anyOf"]
    name, target = _resolve(schema, node)
    kinds = target.get("type")
    if isinstance(kinds, list):
        nullable = nullable or "null" in kinds
        kinds = next((k for k in kinds if k != "null"), None)
    if "enum" in target:
        nullable = nullable or None in target["enum"]
        text = " \\| ".join(f"`{v}`" for v in target["enum"] if v is not None)
    elif "const" in target:
        text = f"`{target['const']}`"
    elif name in SHORT_FORMS or (name and kinds == "object"):
        text = f"{name} object"
    elif name in ("timestamp", "sha256", "sha1", "target"):
        text = name
    elif kinds == "array":
        text = "list of " + _type_text(schema, target["items"])
    elif kinds == "object" and "additionalProperties" in target and "properties" not in target:
        text = "map"
    else:
        text = str(kinds or "value")
    return text + (" or null" if nullable else "")


def _keys_text(schema: dict[str, Any], node: dict[str, Any]) -> str:
    _, target = _resolve(schema, node)
    if target.get("type") == "array" or target.get("type") == ["array", "null"]:
        _, target = _resolve(schema, target["items"])
    if "additionalProperties" in target and isinstance(target["additionalProperties"], dict):
        _, target = _resolve(schema, target["additionalProperties"])
        if "properties" in target:
            return " Each value: " + ", ".join(f"`{k}`" for k in target["properties"]) + "."
        return ""
    if "properties" in target:
        return " Keys: " + ", ".join(f"`{k}`" for k in target["properties"]) + "."
    return ""


def key_table(schema_id: str) -> str:
    """The README table of *schema_id*'s keys, made from its schema."""
    schema = SCHEMAS[schema_id]
    rows = ["| key | value | meaning |", "|---|---|---|"]
    for key, node in schema["properties"].items():
        description = node.get("description") or _resolve(schema, node)[1].get("description", "")
        meaning = (description[:1].upper() + description[1:]).rstrip(".")
        meaning = (meaning + ".") if meaning else ""
        if key != "schema":
            meaning = (meaning + _keys_text(schema, node)).strip()
        meaning = meaning.replace("|", "\\|")
        text = f"| `{key}` | {_type_text(schema, node)} | {meaning} |"
        rows.append(text.replace("| |", "|  |"))
    return "\n".join(rows) + "\n"


def readme_with_tables(text: str) -> str:
    return _BLOCK.sub(
        lambda m: f"<!-- schema: {m[1]} -->\n{key_table(m[1])}<!-- /schema -->\n", text
    )


def test_readme_has_one_key_table_per_document() -> None:
    documented = [m[1] for m in _BLOCK.finditer(README.read_text(encoding="utf-8"))]
    assert sorted(documented) == sorted(SCHEMAS)


def test_readme_key_tables_match_the_schemas() -> None:
    text = README.read_text(encoding="utf-8")
    assert readme_with_tables(text) == text, "run: python tests/report/test_schemas.py"


if __name__ == "__main__":
    README.write_text(readme_with_tables(README.read_text(encoding="utf-8")), encoding="utf-8")
    sys.stdout.write(json.dumps(sorted(SCHEMAS)) + "\n")
