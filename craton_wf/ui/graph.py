"""A workflow's steps drawn as an SVG graph, server-side.

Steps go in columns by depth (the longest chain of ``depends_on`` before
them), in workflow order within a column; an edge runs from each dependency
to the step that waits for it. A plain sequence is one row. Each step may be
coloured by a state (``state_of``: the job page passes each step's most
telling state over its hosts) and carries a count line (``note_of``).

Every name is escaped; the drawing uses classes (``console.css``), not inline
styles, so the console's Content-Security-Policy holds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup, escape

from craton_wf.domain.graph import step_dependencies
from craton_wf.ui.render import state_class

NODE_W, NODE_H = 170, 48
GAP_X, GAP_Y = 60, 22
PAD = 10


def step_depths(steps: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Each step's column: 0 for a root, else one more than its deepest dependency."""
    dependencies = step_dependencies(steps)
    depths: dict[str, int] = {}

    def depth(name: str) -> int:
        if name not in depths:
            depths[name] = 1 + max((depth(dep) for dep in dependencies.get(name, [])), default=-1)
        return depths[name]

    for step in steps:
        depth(step["name"])
    return depths


def _label(text: str, limit: int = 22) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def workflow_svg(
    steps: Sequence[dict[str, Any]],
    state_of: Mapping[str, str] | None = None,
    note_of: Mapping[str, str] | None = None,
    link_of: Mapping[str, str] | None = None,
) -> Markup:
    """The steps' graph as an inline ``<svg>`` element."""
    depths = step_depths(steps)
    columns: dict[int, list[str]] = {}
    for step in steps:
        columns.setdefault(depths[step["name"]], []).append(step["name"])
    position: dict[str, tuple[int, int]] = {}
    for column, names in columns.items():
        for row, name in enumerate(names):
            position[name] = (
                PAD + column * (NODE_W + GAP_X),
                PAD + row * (NODE_H + GAP_Y),
            )
    width = PAD * 2 + (max(columns, default=0) + 1) * (NODE_W + GAP_X) - GAP_X
    height = PAD * 2 + max((len(n) for n in columns.values()), default=1) * (NODE_H + GAP_Y) - GAP_Y
    parts = [
        f'<svg class="graph" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="workflow graph">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
        'class="arrowhead"/></marker></defs>',
    ]
    dependencies = step_dependencies(steps)
    for step in steps:
        x2, y2 = position[step["name"]]
        for dep in dependencies.get(step["name"], []):
            x1, y1 = position[dep]
            sx, sy, ex, ey = x1 + NODE_W, y1 + NODE_H // 2, x2, y2 + NODE_H // 2
            middle = (sx + ex) // 2
            parts.append(
                f'<path class="edge" d="M {sx} {sy} C {middle} {sy}, {middle} {ey}, {ex - 2} {ey}" '
                'marker-end="url(#arrow)"/>'
            )
    for step in steps:
        name = step["name"]
        x, y = position[name]
        state = (state_of or {}).get(name)
        classes = "node " + (state_class(state) if state else "plain")
        if step.get("once"):
            classes += " once"
        if step.get("required") is False:
            classes += " optional"
        task = step.get("task_name") or step.get("task") or ""
        note = (note_of or {}).get(name) or (state or "")
        tooltip = f"{name}: task {task}" + (f" — {state}" if state else "")
        node = (
            f'<g class="{classes}" data-step="{escape(name)}"><title>{escape(tooltip)}</title>'
            f'<rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="6"/>'
            f'<text x="{x + 10}" y="{y + 19}" class="name">{escape(_label(name))}</text>'
            f'<text x="{x + 10}" y="{y + 37}" class="note">{escape(_label(str(note), 26))}</text>'
            "</g>"
        )
        link = (link_of or {}).get(name)
        if link:
            node = f'<a href="{escape(link)}">{node}</a>'
        parts.append(node)
    parts.append("</svg>")
    return Markup("".join(parts))
