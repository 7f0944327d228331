"""Charts of a PowerPoint slide from their data: the series and categories a chart part stores with it.

Read straight from the chart XML (``c:ser`` with its ``c:tx`` name, ``c:cat``/``c:xVal`` categories and
``c:val``/``c:yVal`` values, each a cache of ``c:pt`` points), so every chart type reads the same way, including
those python-pptx's object API does not model (3-D area, surface, bubble...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["ChartData", "read_chart"]

_C = "http://schemas.openxmlformats.org/drawingml/2006/chart"
_A = "http://schemas.openxmlformats.org/drawingml/2006/main"
_CT, _AT = "{" + _C + "}", "{" + _A + "}"


@dataclass(frozen=True, slots=True)
class ChartData:
    """One chart as a table: ``header`` = [category label, series names...], one row per category."""

    title: str
    chart_type: str
    header: list[str]
    rows: list[list[str]]
    series: list[tuple[str, list[float | None]]]
    categories: list[str]

    def description(self) -> str:
        """The chart in sentences: what it plots, and each series' highest and lowest category."""
        name = f'"{self.title}"' if self.title else "without a title"
        lines = [f"{self.chart_type} chart {name}: {len(self.series)} series over {len(self.categories)} categories "
                 f"({', '.join(self.categories[:12])}{', ...' if len(self.categories) > 12 else ''})."]
        for series_name, values in self.series:
            points = [(c, v) for c, v in zip(self.categories, values, strict=False) if v is not None]
            if not points:
                continue
            high = max(points, key=lambda p: p[1])
            low = min(points, key=lambda p: p[1])
            listed = "; ".join(f"{c}: {_num(v)}" for c, v in points[:24])
            lines.append(f"{series_name}: {listed}. The highest {series_name} is {_num(high[1])} in {high[0]}; "
                         f"the lowest is {_num(low[1])} in {low[0]}.")
        return "\n".join(lines)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"


def _is_date_format(code: str) -> bool:
    """An Excel number format that shows a date (``m/d/yyyy``, ``mmm-yy``, ``yyyy-mm-dd``), quoted text aside."""
    import re

    bare = re.sub(r'"[^"]*"|\\.|\[[^]]*\]', "", code).lower()
    return any(c in bare for c in "dy") or "mmm" in bare


def _serial_date(label: str) -> str:
    """An Excel date serial (``37261``) as an ISO date (``2002-01-05``); the label itself if it is none."""
    import datetime as dt

    value = _float(label)
    if value is None or not 0 < value < 2_958_466:
        return label
    return (dt.date(1899, 12, 30) + dt.timedelta(days=int(value))).isoformat()


def _cell(value: float | None) -> str:
    return "" if value is None else _num(value)


def _points(node: Any) -> dict[int, str]:
    """``c:pt`` values of a reference or literal cache by index (the first level of a multi-level category)."""
    out: dict[int, str] = {}
    for pt in node.iterfind(f".//{_CT}pt"):
        v = pt.find(f"{_CT}v")
        try:
            idx = int(pt.get("idx", "0"))
        except ValueError:
            continue
        if v is not None and v.text is not None and idx not in out:
            out[idx] = v.text.strip()
    return out


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None


def read_chart(chart_space: Any) -> ChartData | None:
    """The data of a ``c:chartSpace`` element, or None when it holds no series."""
    title = " ".join(t.text or "" for t in chart_space.iterfind(f"./{_CT}chart/{_CT}title//{_AT}t"))
    plot_area = chart_space.find(f"./{_CT}chart/{_CT}plotArea")
    if plot_area is None:
        return None
    kinds: list[str] = []
    raw: list[tuple[str, dict[int, str]]] = []
    categories: dict[int, str] = {}
    count = 0
    for plot in plot_area:
        tag = str(plot.tag).rsplit("}", 1)[-1]
        if not tag.endswith("Chart"):
            continue
        kinds.append(tag[: -len("Chart")])
        for ser in plot.iterfind(f"{_CT}ser"):
            name_node = ser.find(f"{_CT}tx")
            name = ""
            if name_node is not None:
                name = " ".join(_points(name_node).values()) or " ".join(
                    t.text or "" for t in name_node.iterfind(f".//{_AT}t"))
                if not name:
                    v = name_node.find(f"{_CT}v")
                    name = (v.text or "") if v is not None else ""
            cat = ser.find(f"{_CT}cat")
            if cat is None:
                cat = ser.find(f"{_CT}xVal")
            if cat is not None:
                fmt = cat.find(f".//{_CT}formatCode")
                as_dates = fmt is not None and _is_date_format(fmt.text or "")
                for idx, label in _points(cat).items():
                    categories.setdefault(idx, _serial_date(label) if as_dates else label)
            val = ser.find(f"{_CT}val")
            if val is None:
                val = ser.find(f"{_CT}yVal")
            values = _points(val) if val is not None else {}
            count = max(count, max(values, default=-1) + 1)
            raw.append((name.strip() or f"Series {len(raw) + 1}", values))
    if not raw:
        return None
    count = max(count, max(categories, default=-1) + 1)
    labels = [categories.get(i, str(i + 1)) for i in range(count)]
    numeric: list[tuple[str, list[float | None]]] = [
        (name, [_float(values.get(i)) for i in range(count)]) for name, values in raw
    ]
    rows = [[label, *(_cell(v[i]) for _, v in numeric)] for i, label in enumerate(labels)]
    kind = " and ".join(dict.fromkeys(k.replace("3D", " 3-D") for k in kinds)) or "a"
    return ChartData(title=title.strip(), chart_type=kind, header=["Category", *(n for n, _ in numeric)], rows=rows,
                     series=numeric, categories=labels)
