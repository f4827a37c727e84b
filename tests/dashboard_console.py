"""The Grafana dashboard's panels as a Prometheus console page, for a screenshot in tests.

Grafana cannot be installed where the tests run (no image registry, and no package index
carries it), but Debian's Prometheus serves console templates and ships the classic UI's
graph library. This turns ``deploy/grafana/dashboards/factorial.json`` into such a page:
its rows and panels in the same order, each panel a graph of the panel's own PromQL, with
Grafana's variables replaced by values that fit a short test run.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

#: Grafana's variables, as the test's Prometheus (1 s scrapes, a run of a minute or two) needs.
VARIABLES = {
    "$__rate_interval": "10s",
    "$__range": "10m",
    "$agent": ".*",
}

_HEAD = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<link rel="stylesheet" href="/classic/static/rickshaw/rickshaw.min.css">
<link rel="stylesheet" href="/classic/static/bootstrap4/css/bootstrap.min.css">
<link rel="stylesheet" href="/classic/static/css/prom_console.css">
<script src="/classic/static/d3/d3.min.js"></script>
<script src="/classic/static/rickshaw/rickshaw.min.js"></script>
<script src="/classic/static/jquery/jquery.min.js"></script>
<script>var PATH_PREFIX = "";</script>
<script src="/classic/static/js/prom_console.js"></script>
<style>body {{ font-size: 13px; }} h5 {{ font-size: 14px; margin: 8px 0 2px; }}
h4 {{ margin-top: 10px; border-bottom: 1px solid #ddd; }}</style>
</head><body><div class="container-fluid"><h3>{title}</h3>
"""


def expressions(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression of the dashboard's panels, variables replaced."""
    return [
        substitute(target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]


def substitute(expr: str) -> str:
    """``expr`` with Grafana's variables replaced by :data:`VARIABLES`."""
    for name, value in sorted(VARIABLES.items(), key=lambda item: -len(item[0])):
        expr = expr.replace(name, value)
    return expr


def legend(target: dict[str, Any]) -> str:
    """A target's Grafana legend (``{{agent}}``) in the console's syntax (``[[agent]]``)."""
    fmt = target.get("legendFormat")
    if not fmt or fmt == "__auto":
        return str(target.get("refId", ""))
    name = re.sub(r"\{\{\s*(\w+)\s*\}\}", r"[[\1]]", fmt)
    # The console library drops the text after the last label: move it to the front.
    head, sep, tail = name.rpartition("]]")
    return f"{tail.strip()}: {head}{sep}" if sep and tail.strip() else name


def console_page(dashboard_path: Path, duration_s: int, width: int = 420) -> str:
    """The console page of the dashboard at ``dashboard_path``, graphing ``duration_s``."""
    dashboard = json.loads(dashboard_path.read_text())
    title = html.escape(dashboard.get("title", "Dashboard"))
    parts = [_HEAD.format(title=title)]
    scripts = []
    open_row = False
    for index, panel in enumerate(dashboard["panels"]):
        if panel.get("type") == "row":
            if open_row:
                parts.append("</div>")
            parts.append(f'<h4>{html.escape(panel.get("title", ""))}</h4><div class="row">')
            open_row = True
            continue
        if not open_row:
            parts.append('<div class="row">')
            open_row = True
        targets = panel.get("targets", [])
        parts.append(
            f'<div class="col-4"><h5>{html.escape(panel.get("title", ""))}</h5>'
            f'<div id="panel{index}"></div></div>'
        )
        params = {
            "expr": [substitute(t["expr"]) for t in targets],
            "name": [legend(t) for t in targets],
            "duration": duration_s,
            "width": width,
            "height": 130,
        }
        scripts.append(
            f'new PromConsole.Graph(Object.assign({{node: document.getElementById("panel{index}")}}'
            f", {json.dumps(params)}));"
        )
    if open_row:
        parts.append("</div>")
    parts.append("</div><script>\n" + "\n".join(scripts) + "\n</script></body></html>\n")
    page = "".join(parts)
    # Prometheus runs console pages through Go's templates: the page must not contain "{{".
    assert "{{" not in page, "a Go template action in the generated console page"
    return page
