"""An autograd graph, drawn as SVG: the learner's next to the reference's, differences marked.

The grader sends a graph check's view as plain data (grader.sandbox.provenance.graph_view):
nodes [type, kind, label] with kind op | leaf | custom, edges [parent, child] from the checked
output (node 0) towards the leaves, and which nodes differ. This lays each graph out in layers
(the output on top, leaves at the bottom; a node sits one layer below its lowest parent) and
draws it with no script and no external asset, so it works as an <img> and offline.
"""
from __future__ import annotations

from html import escape
from typing import Any

LAYER_HEIGHT = 64
NODE_HEIGHT = 30
GAP = 18
CHAR_WIDTH = 7.2
PANEL_GAP = 40
TOP = 46
FILL = {"op": "#e8f0fe", "leaf": "#e6f4ea", "custom": "#f3e8fd"}
STROKE = {"op": "#4a6fa5", "leaf": "#3c8d50", "custom": "#8a4fb8"}
EXTRA, MISSING = "#c5221f", "#b06000"


def _layers(graph: dict[str, Any]) -> list[list[int]]:
    nodes, edges = graph["nodes"], graph["edges"]
    depth = {0: 0} if nodes else {}
    children: dict[int, list[int]] = {}
    for parent, child in edges:
        children.setdefault(parent, []).append(child)
    for _ in range(len(nodes)):  # longest path from the output, relaxed at most once per node
        changed = False
        for parent, child in edges:
            if parent in depth and depth.get(child, -1) < depth[parent] + 1 <= len(nodes):
                depth[child] = depth[parent] + 1
                changed = True
        if not changed:
            break
    layers: list[list[int]] = []
    for node in range(len(nodes)):
        level = depth.get(node, 0)
        while len(layers) <= level:
            layers.append([])
        layers[level].append(node)
    return layers


def _width(label: str) -> float:
    return max(60.0, len(label) * CHAR_WIDTH + 20)


def _panel(graph: dict[str, Any], marked: set[int], mark_colour: str, x0: float, title: str,
           note: str) -> tuple[list[str], float, float]:
    """SVG elements of one graph at x0; returns them with the panel's width and height."""
    nodes = graph["nodes"]
    out = [f'<text x="{x0:.0f}" y="18" class="title">{escape(title)}</text>']
    if not nodes:
        out.append(f'<text x="{x0:.0f}" y="{TOP + 14}" class="empty">no graph: nothing recorded for autograd</text>')
        return out, 300.0, TOP + 30.0
    layers = _layers(graph)
    width = max(sum(_width(nodes[n][2]) for n in layer) + GAP * (len(layer) - 1) for layer in layers)
    centre: dict[int, tuple[float, float]] = {}
    for level, layer in enumerate(reversed(layers)):  # leaves (the deepest layer) at the bottom
        row = len(layers) - 1 - level
        y = TOP + row * LAYER_HEIGHT
        span = sum(_width(nodes[n][2]) for n in layer) + GAP * (len(layer) - 1)
        x = x0 + (width - span) / 2
        for n in layer:
            w = _width(nodes[n][2])
            centre[n] = (x + w / 2, y + NODE_HEIGHT / 2)
            x += w + GAP
    for parent, child in graph["edges"]:
        (px, py), (cx, cy) = centre[parent], centre[child]
        out.append(f'<line x1="{cx:.1f}" y1="{cy - NODE_HEIGHT / 2:.1f}" x2="{px:.1f}" y2="{py + NODE_HEIGHT / 2:.1f}" '
                   'marker-end="url(#arrow)"/>')
    for n, (type_name, kind, label) in enumerate(nodes):
        cx, cy = centre[n]
        w = _width(label)
        stroke = mark_colour if n in marked else STROKE.get(kind, "#555")
        dash = ' stroke-dasharray="5 3"' if n in marked and mark_colour == MISSING else ""
        heavy = ' stroke-width="2.5"' if n in marked else ""
        tip = f"{type_name}: {label}" if kind == "leaf" else type_name
        out.append(f'<g><title>{escape(tip)}</title><rect x="{cx - w / 2:.1f}" y="{cy - NODE_HEIGHT / 2:.1f}" '
                   f'width="{w:.1f}" height="{NODE_HEIGHT}" rx="6" fill="{FILL.get(kind, "#eee")}" '
                   f'stroke="{stroke}"{heavy}{dash}/><text x="{cx:.1f}" y="{cy + 4:.1f}" '
                   f'text-anchor="middle">{escape(label)}</text></g>')
    height = TOP + len(layers) * LAYER_HEIGHT
    if note:
        out.append(f'<text x="{x0:.0f}" y="{height:.0f}" class="note">{escape(note)}</text>')
        height += 10
    return out, width, height


def graph_svg(view: dict[str, Any], *, name: str) -> str:
    """The view of one graph check as an SVG document."""
    learner = view.get("learner") or {"nodes": [], "edges": []}
    extra = set(view.get("extra") or [])
    note = f"{len(extra)} node{'s' if len(extra) != 1 else ''} not in the reference" if extra else ""
    parts, width, height = _panel(learner, extra, EXTRA, 10, "Yours", note)
    reference = view.get("reference")
    if reference is not None:
        missing = set(view.get("missing") or [])
        note = f"{len(missing)} node{'s' if len(missing) != 1 else ''} missing from yours" if missing else ""
        more, w2, h2 = _panel(reference, missing, MISSING, 10 + width + PANEL_GAP, "Reference", note)
        parts += more
        width, height = width + PANEL_GAP + w2, max(height, h2)
    width, height = width + 20, height + 16
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="{escape(graph_summary(view, name=name))}">'
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#666"/></marker></defs>'
        '<style>text{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;fill:#202124}'
        '.title{font:600 13px system-ui,sans-serif}.note{font:12px system-ui,sans-serif;fill:#5f6368}'
        '.empty{font:italic 12px system-ui,sans-serif;fill:#5f6368}line{stroke:#888;stroke-width:1.3}</style>'
        + "".join(parts) + "</svg>")


def graph_summary(view: dict[str, Any], *, name: str) -> str:
    """A text alternative: what the learner's graph holds and how it differs."""
    learner = view.get("learner") or {"nodes": []}
    types = [n[0] for n in learner["nodes"] if n[1] != "leaf"]
    leaves = [n[2] for n in learner["nodes"] if n[1] == "leaf"]
    if not learner["nodes"]:
        text = f"{name}: yours is empty, nothing was recorded for autograd."
    else:
        text = (f"{name}: yours has {len(types)} operation{'s' if len(types) != 1 else ''} "
                f"({', '.join(types[:8])}{', …' if len(types) > 8 else ''}) from {', '.join(leaves[:6]) or 'no leaves'}.")
    if view.get("extra"):
        text += f" {len(view['extra'])} of its nodes are not in the reference."
    if view.get("missing"):
        text += f" {len(view['missing'])} of the reference's nodes are missing."
    return text
