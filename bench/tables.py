"""The one table format every benchmark prints (``make bench`` reads them side by side)."""

from __future__ import annotations


def table(title: str, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """A titled Markdown table, columns padded to their widest cell."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(r: tuple[str, ...]) -> str:
        cells = (str(c).ljust(w) for c, w in zip(r, widths, strict=True))
        return "| " + " | ".join(cells) + " |"

    out = [f"\n{title}", line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out.extend(line(r) for r in rows)
    return "\n".join(out)
