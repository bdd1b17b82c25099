"""A flame graph as SVG, from the same collapsed stacks the breakdown reads (the main
process's: the request path), so picture and table describe the very same samples. Each
frame is coloured by the part of the request its stack belongs to so far
(bench/breakdown.py), with a legend of the parts' shares of the samples; hovering a frame
shows its name, samples and part. Static: no script, any viewer shows it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from html import escape

from breakdown import REQUEST_PATH, part_of

WIDTH = 1200.0
ROW = 16.0  # px per stack level
TOP = 100.0  # the title and up to four lines of legend
MIN_WIDTH = 0.5  # px: narrower frames are left out, as flamegraph.pl does
COLOURS = {
    "intake": "#8dd3c7",
    "auth and policies": "#fdb462",
    "routing": "#bebada",
    "pricing and usage": "#fccde5",
    "upstream client": "#80b1d3",
    "journal append": "#fb8072",
    "metrics": "#b3de69",
    "access log": "#ffed6f",
    "response assembly": "#bc80bd",
    "server and event loop": "#d9d9d9",
    "other": "#f0f0f0",
}


@dataclass
class _Node:
    samples: int = 0
    children: dict[str, _Node] = field(default_factory=dict)


def render(stacks: Counter[tuple[str, ...]], title: str) -> str:
    root = _Node()
    for frames, count in stacks.items():
        root.samples += count
        node = root
        for frame in frames:
            node = node.children.setdefault(frame, _Node())
            node.samples += count
    depth = _depth(root)
    height = TOP + (depth + 1) * ROW
    shares: Counter[str] = Counter()
    for frames, count in stacks.items():
        shares[part_of(list(frames)).name] += count
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH:.0f}" height="{height:.0f}" '
        f'font-family="Verdana, sans-serif" font-size="11">',
        '<rect width="100%" height="100%" fill="#ffffff"/>',
        f'<text x="{WIDTH / 2:.0f}" y="18" text-anchor="middle" font-size="15">{escape(title)}</text>',
        *_legend(shares, root.samples or 1),
    ]
    all_samples = f"all: {root.samples:,} samples"
    parts.append(_frame(all_samples, "", 0.0, WIDTH, height - ROW, "#e0e0e0"))
    _frames(root, [], 0.0, WIDTH / (root.samples or 1), height - 2 * ROW, root.samples or 1, parts)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _frames(node: _Node, path: list[str], x: float, px_per_sample: float, y: float, total: int, out: list[str]) -> None:
    """Children of `node` left to right (largest first), each above its parent."""
    for name, child in sorted(node.children.items(), key=lambda item: -item[1].samples):
        width = child.samples * px_per_sample
        if width >= MIN_WIDTH:
            stack = [*path, name]
            part = part_of(stack).name
            tip = f"{name}: {child.samples:,} samples ({100 * child.samples / total:.1f} %), {part}"
            out.append(_frame(name, tip, x, width, y, COLOURS[part]))
            _frames(child, stack, x, px_per_sample, y - ROW, total, out)
        x += width


def _frame(name: str, tip: str, x: float, width: float, y: float, colour: str) -> str:
    label = ""
    characters = int((width - 6) / 7)  # about 7 px a character at 11 px
    if characters >= 3:
        text = name if len(name) <= characters else name[: characters - 2] + ".."
        label = f'<text x="{x + 3:.1f}" y="{y + ROW - 4:.1f}">{escape(text)}</text>'
    return (
        f'<g><title>{escape(tip or name)}</title><rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" '
        f'height="{ROW - 1:.0f}" fill="{colour}" rx="2"/>{label}</g>'
    )


def _legend(shares: Counter[str], total: int) -> list[str]:
    items, x = [], 10.0
    y = 40.0
    for part in REQUEST_PATH:
        text = f"{part.name} {100 * shares[part.name] / total:.1f} %"
        step = 24 + 6.5 * len(text)
        if x + step > WIDTH:
            x, y = 10.0, y + 16
        items.append(f'<rect x="{x:.0f}" y="{y - 10:.0f}" width="12" height="12" fill="{COLOURS[part.name]}"/>')
        items.append(f'<text x="{x + 16:.0f}" y="{y:.0f}">{escape(text)}</text>')
        x += step
    return items


def _depth(node: _Node) -> int:
    return 1 + max((_depth(child) for child in node.children.values()), default=0) if node.children else 0
