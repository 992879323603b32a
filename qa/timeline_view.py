"""The timeline drawn for people: date labels in words, the time axis laid out as SVG coordinates, and each event
as the page lists it (its sentence with every date marked, a link to it in the source viewer).

The axis is a dot plot: one dot per event at its date, dots of the same year stacked, a line under an event
that spans years (a range or a decade). The page draws it from this layout with no script.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from qa.dates import DateMention
from qa.links import event_url
from qa.service import QAService
from qa.timeline import TimelineEvent, TimelineFilter

MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
               "November", "December")
WIDTH = 640  # viewBox units; the SVG scales to the page's width
MARGIN = 32  # half a year label at a phone's type size, so the edges do not cut the first and last
DOT_RADIUS = 5
DOT_STEP = 12  # vertical distance between stacked dots
AXIS_ROOM = 34  # below the axis: tick labels
TOP_ROOM = 10


def date_in_words(precision: str, value: str, qualifier: str | None = None) -> str:
    """'28 March 2024', 'March 2024', 'early 2000s', 'the 1990s', '1950–1953', 'mid-to-late 2000s', 'late 1990' for a value such as
    2024-03-28, 2024-03, 2000s, 1950/1953 or 1990; ValueError or IndexError for a day or month that is not one."""
    if precision == "day":
        year, month, day = value.split("-")
        return f"{int(day)} {MONTH_NAMES[int(month) - 1]} {year}"
    if precision == "month":
        year, month = value.split("-")
        return f"{MONTH_NAMES[int(month) - 1]} {year}"
    if precision == "decade":
        return f"{qualifier} {value}" if qualifier else f"the {value}"
    if precision == "range":  # a qualified range is parts of one decade: "mid-to-late 2000s"
        if qualifier and re.match(r"\d{4}/", value):
            return f"{qualifier} {int(value[:4]) // 10 * 10}s"
        return value.replace("/", "–")
    return f"{qualifier} {value}" if qualifier else value


def date_label(date: DateMention) -> str:
    return date_in_words(date.precision, date.value, date.qualifier)


def machine_date(date: DateMention) -> str | None:
    """A value for <time datetime> where HTML has one (a day, a month, a year)."""
    return date.value if date.precision in ("day", "month", "year") else None


@dataclass(frozen=True)
class Dot:
    event_id: str
    x: float
    y: float
    label: str  # for the dot's <title>
    span_x2: float | None = None  # the end of an event that spans years


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class AxisLayout:
    width: int
    height: int
    axis_y: float
    first_year: int
    last_year: int
    ticks: list[Tick]
    dots: list[Dot]


def layout_axis(events: list[TimelineEvent]) -> AxisLayout | None:
    """Coordinates for the events' dot plot; None when there is nothing to draw."""
    if not events:
        return None
    first = min(math.floor(e.date.position) for e in events)
    last = max(int(e.date.latest[:4]) for e in events)
    step = 10 if (last // 10 + 1) * 10 - first // 10 * 10 <= 100 else 50  # years between ticks
    first_year = first // step * step
    last_year = max(first_year + step, (last // step + 1) * step)  # a tick at each end: the axis ends on one
    scale = (WIDTH - 2 * MARGIN) / (last_year - first_year)

    def x_of(year: float) -> float:
        return round(MARGIN + (year - first_year) * scale, 1)

    stacks: dict[int, int] = {}
    placed = []
    for event in events:
        year = math.floor(event.date.position)
        level = stacks.get(year, 0)
        stacks[year] = level + 1
        placed.append((event, year, level))
    tallest = max(stacks.values())
    axis_y = TOP_ROOM + tallest * DOT_STEP + DOT_RADIUS
    dots = []
    for event, year, level in placed:
        spans = event.date.precision in ("range", "decade")
        end = int(event.date.latest[:4]) + 1
        dots.append(Dot(event.id, x_of(year + 0.5), round(axis_y - DOT_STEP * (level + 0.5) - 2, 1),
                        f"{date_label(event.date)}: {event.sentence[:120]}", x_of(end) if spans else None))
    ticks = [Tick(x_of(year), str(year)) for year in range(first_year, last_year + 1, step)]
    return AxisLayout(WIDTH, int(axis_y + AXIS_ROOM), axis_y, first_year, last_year, ticks, dots)


@dataclass
class EventView:
    id: str
    label: str  # the date the event is placed by, in words
    datetime: str | None
    also: str  # the other dates the sentence states, in words ("" for none)
    parts: list[tuple[str, bool]]  # the sentence in pieces, True for a date it states: every date is marked
    title: str
    href: str  # the sentence in the source viewer, its first date highlighted


def event_view(event: TimelineEvent) -> EventView:
    parts, at = [], event.sentence_start
    for date in (event.date, *event.other_dates):  # in reading order, none overlapping (qa.dates.find_dates)
        parts += [(event.document_text(at, date.start), False), (event.document_text(date.start, date.end), True)]
        at = date.end
    parts.append((event.document_text(at, event.sentence_end), False))
    label = date_label(event.date)
    also = " · ".join(dict.fromkeys(w for w in map(date_label, event.other_dates) if w != label))
    return EventView(event.id, label, machine_date(event.date), also, [p for p in parts if p[0]], event.title,
                     event_url(event))


@dataclass
class TimelinePage:
    events: list[EventView]
    axis: AxisLayout | None
    total: int  # events before filtering
    chosen: TimelineFilter
    articles: list[tuple[str, str]]  # (doc_id, title) for the article filter


def timeline_page(service: QAService, doc_id: str | None, first_year: str | None, last_year: str | None) -> TimelinePage:
    """The timeline, filtered; TimelineFilterError when a filter is not acceptable."""
    selection = service.select_timeline(doc_id, first_year, last_year)
    return TimelinePage([event_view(e) for e in selection.events], layout_axis(selection.events), selection.total,
                        selection.chosen, [(d.doc_id, d.title) for d in selection.documents])
