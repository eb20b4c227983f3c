"""The ``/docs`` page: the OpenAPI document rendered server-side as one HTML page (no script, no CDN).

Every operation with its authentication, parameters, request examples and responses (with their codes and
headers); then every error code of the gateway (from the error tree) and every schema. Pure: dict in, str out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

from ..errors import GatewayError

_STYLE = """
body{font:15px/1.5 system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;color:#222}
code,pre{background:#f4f4f4;border-radius:3px;font-size:13px}code{padding:.05rem .3rem}
pre{padding:.6rem .8rem;overflow:auto;margin:.3rem 0}
h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2.5rem}h3{margin:1.2rem 0 .3rem;font-size:1rem}
table{border-collapse:collapse;width:100%;margin:.3rem 0}td,th{border:1px solid #ddd;padding:.25rem .5rem;
text-align:left;vertical-align:top}th{background:#fafafa}td ul{margin:0;padding-left:1.1rem}
.m{font-weight:bold;text-transform:uppercase;color:#fff;background:#2a6;padding:.05rem .4rem;border-radius:3px}
.m.post{background:#26a}.auth{color:#555}.s2{color:#262}.s3{color:#666}.s4{color:#a60}.s5{color:#a22}
"""

_CODE = re.compile(r"`([^`]+)`")


def _text(value: str) -> str:
    """Escaped text in which `backticked` pieces become <code>."""
    return _CODE.sub(lambda m: f"<code>{m.group(1)}</code>", escape(value, quote=False))


def _block(value: str) -> str:
    """A description: lines starting with "- " become a list, anything else a paragraph."""
    items = [line[2:] for line in value.splitlines() if line.startswith("- ")]
    if items and len(items) == len(value.splitlines()):
        return "<ul>" + "".join(f"<li>{_text(item)}</li>" for item in items) + "</ul>"
    return _text(value)


def _pre(value: Any) -> str:
    return f"<pre>{escape(json.dumps(value, indent=2, ensure_ascii=False), quote=False)}</pre>"


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _schema_text(schema: dict[str, Any]) -> str:
    """A schema in a few words of HTML: a link to a component, a type with its constraints, a choice."""
    if "$ref" in schema:
        name = _ref_name(schema["$ref"])
        return f'<a href="#schema-{escape(name)}">{escape(name)}</a>'
    if "allOf" in schema:
        # An error response: the Error component, its codes pinned (they are listed beside it already).
        return " and ".join(_schema_text(part) for part in schema["allOf"] if "$ref" in part)
    if "oneOf" in schema:
        text = " or ".join(_schema_text(part) for part in schema["oneOf"])
    elif schema.get("type") == "object" and "properties" in schema:
        text = "{" + ", ".join(f"<code>{escape(name)}</code>" for name in schema["properties"]) + "}"
    else:
        text = escape(str(schema.get("type", "any")))
        if "format" in schema:
            text += f" ({escape(schema['format'])})"
        if "items" in schema:
            text += " of " + _schema_text(schema["items"])
    facts = []
    if "enum" in schema:
        facts.append("one of " + ", ".join(_code(value) for value in schema["enum"]))
    for key, label in (("minLength", "min length"), ("maxLength", "max length"), ("minimum", "min")):
        if key in schema:
            facts.append(f"{label} {schema[key]}")
    if "pattern" in schema:
        facts.append(f"pattern {_code(schema['pattern'])}")
    if schema.get("nullable"):
        facts.append("or null")
    return text + (f" <small>({'; '.join(facts)})</small>" if facts else "")


def _code(value: Any) -> str:
    return f"<code>{escape(value if isinstance(value, str) else json.dumps(value))}</code>"


def _described(item: dict[str, Any]) -> str:
    """A parameter's or a property's description, and its example."""
    parts = [_text(item["description"])] if item.get("description") else []
    if "example" in item:
        parts.append(f"e.g. {_code(item['example'])}")
    return "<br>".join(parts)


def _table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return "<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + f"</tr>{body}</table>"


def _auth(operation: dict[str, Any], schemes: dict[str, Any]) -> str:
    if not operation.get("security"):
        return "Public: no API key."
    ways = " or ".join(_text(schemes[name].get("description", name)) for req in operation["security"] for name in req)
    return f"API key (when the gateway has keys): {ways}."


def _parameters(operation: dict[str, Any]) -> str:
    rows = [
        (
            f"<code>{escape(p['name'])}</code>",
            escape(p["in"]),
            "yes" if p.get("required") else "no",
            _schema_text(p.get("schema", {})),
            _described(p),
        )
        for p in operation.get("parameters", [])
    ]
    return "<h3>Parameters</h3>" + _table(("name", "in", "required", "schema", "meaning"), rows) if rows else ""


def _request_body(operation: dict[str, Any]) -> str:
    body = operation.get("requestBody")
    if not body:
        return ""
    parts = ["<h3>Request body</h3>"]
    for media, content in body["content"].items():
        parts.append(f"<p><code>{escape(media)}</code>: {_schema_text(content['schema'])}</p>")
        for name, example in content.get("examples", {}).items():
            parts.append(f"<p>Example <i>{escape(name)}</i>: {_text(example.get('summary', ''))}</p>")
            parts.append(_pre(example["value"]))
    return "".join(parts)


def _responses(operation: dict[str, Any]) -> str:
    rows, examples = [], []
    for status, answer in operation["responses"].items():
        bodies = [
            f"<code>{escape(media)}</code>: {_schema_text(content['schema'])}"
            for media, content in answer.get("content", {}).items()
        ]
        headers = ", ".join(f"<code>{escape(name)}</code>" for name in answer.get("headers", {}))
        rows.append(
            (
                f'<b class="s{status[0]}">{escape(status)}</b>',
                _block(answer["description"]),
                headers,
                "<br>".join(bodies) or "none",
            )
        )
        for content in answer.get("content", {}).values():
            if "example" in content:
                examples.append(f"<p>Example {escape(status)}:</p>{_pre(content['example'])}")
    return "<h3>Responses</h3>" + _table(("status", "meaning", "headers", "body"), rows) + "".join(examples)


def _operation(path: str, method: str, operation: dict[str, Any], schemes: dict[str, Any]) -> str:
    anchor = escape(operation.get("operationId", f"{method}-{path}"))
    return (
        f'<h2 id="{anchor}"><span class="m {escape(method)}">{escape(method)}</span> <code>{escape(path)}</code></h2>'
        f"<p><b>{_text(operation.get('summary', ''))}</b>. {_text(operation.get('description', ''))}</p>"
        f'<p class="auth">{_auth(operation, schemes)}</p>'
        + _parameters(operation)
        + _request_body(operation)
        + _responses(operation)
    )


def _errors(catalogue: Sequence[type[GatewayError]]) -> str:
    rows = [
        (
            str(error.status),
            f"<code>{escape(error.code)}</code>",
            escape(error.summary),
            _text(error.meaning),
            "yes" if error.retry_after_header else "",
        )
        for error in catalogue
    ]
    return (
        '<h2 id="errors">Every error code</h2><p>Every error answers '
        '<code>{"error": &lt;summary&gt;, "details": {"code", "message", "request_id", ...}}</code>. '
        "Branch on <code>details.code</code>; quote <code>details.request_id</code> to us.</p>"
        + _table(("status", "code", "error", "meaning", "Retry-After"), rows)
    )


def _schemas(schemas: dict[str, Any]) -> str:
    parts = ['<h2 id="schemas">Schemas</h2>']
    for name, schema in schemas.items():
        required = set(schema.get("required", []))
        rows = [
            (
                f"<code>{escape(prop)}</code>",
                "yes" if prop in required else "no",
                _schema_text(sub),
                _described(sub),
            )
            for prop, sub in schema.get("properties", {}).items()
        ]
        closed = "" if schema.get("additionalProperties", True) else " No other fields."
        parts.append(f'<h3 id="schema-{escape(name)}">{escape(name)}</h3>')
        parts.append(f"<p>{_text(schema.get('description', ''))}{closed}</p>")
        parts.append(_table(("field", "required", "type", "meaning"), rows))
    return "".join(parts)


def render(document: dict[str, Any], catalogue: Sequence[type[GatewayError]]) -> str:
    """The whole page for ``document`` (an OpenAPI 3.0 dict) and the gateway's error classes."""
    info = document["info"]
    schemes = document.get("components", {}).get("securitySchemes", {})
    operations = [
        (path, method, operation) for path, item in document["paths"].items() for method, operation in item.items()
    ]
    index = "".join(
        f'<li><a href="#{escape(op.get("operationId", ""))}"><code>{escape(method.upper())} {escape(path)}</code></a>'
        f" {_text(op.get('summary', ''))}</li>"
        for path, method, op in operations
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(info['title'])} API</title><style>{_STYLE}</style></head><body>"
        f"<h1>{escape(info['title'])} API <small>{escape(info['version'])}</small></h1>"
        f"<p>{_text(info.get('description', ''))}</p>"
        f'<p>Machine-readable: <a href="openapi.json">openapi.json</a> (OpenAPI {escape(document["openapi"])}). '
        'See also <a href="#errors">every error code</a> and <a href="#schemas">the schemas</a>.</p>'
        f"<ul>{index}</ul>"
        + "".join(_operation(path, method, operation, schemes) for path, method, operation in operations)
        + _errors(catalogue)
        + _schemas(document.get("components", {}).get("schemas", {}))
        + "</body></html>"
    )
