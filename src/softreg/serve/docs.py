"""The API reference at /docs, rendered from the OpenAPI schema into plain HTML (no CDN, no script)."""

from __future__ import annotations

import html
import json


def render_docs(schema: dict) -> str:
    """One HTML page listing every path, method, summary, parameter, body schema and status."""
    esc = html.escape
    info = schema.get("info", {})
    parts = [
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>{esc(info.get('title', 'API'))} API</title>",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
        "<link rel=\"stylesheet\" href=\"/static/page.css\"></head><body class=\"docs\"><main>",
        f"<h1>{esc(info.get('title', 'API'))} {esc(info.get('version', ''))}: HTTP API</h1>",
        f"<p>{esc(info.get('description', ''))}</p>",
        "<p>The machine-readable schema is at <a href=\"/openapi.json\">/openapi.json</a>; "
        "the drawing page is at <a href=\"/ui\">/ui</a> (and at / for a browser).</p>",
    ]
    for path, methods in schema.get("paths", {}).items():
        for method, op in methods.items():
            parts.append(f"<section><h2><code>{esc(method.upper())} {esc(path)}</code></h2>")
            if op.get("summary"):
                parts.append(f"<p><strong>{esc(op['summary'])}</strong></p>")
            if op.get("description"):
                parts.append(f"<p>{esc(op['description'])}</p>")
            params = op.get("parameters", [])
            if params:
                parts.append("<ul>" + "".join(
                    f"<li><code>{esc(p['name'])}</code> ({esc(p.get('in', ''))}"
                    f"{', required' if p.get('required') else ''})</li>" for p in params) + "</ul>")
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                parts.append("<p>Body:</p><pre>" + esc(json.dumps(body.get("schema", {}), indent=2)) + "</pre>")
                if "example" in body:
                    parts.append("<p>Example:</p><pre>" + esc(json.dumps(body["example"])) + "</pre>")
            codes = op.get("responses", {})
            parts.append("<p>Responses: " + ", ".join(
                f"<code>{esc(code)}</code> {esc(r.get('description', ''))}" for code, r in codes.items()) + "</p>")
            parts.append("</section>")
    parts.append("<p>Every error is a JSON object <code>{\"error\": \"...\"}</code> naming the problem.</p>")
    parts.append("</main></body></html>")
    return "\n".join(parts)
