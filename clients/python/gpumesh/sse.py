"""A server-sent events parser (the parts gpumesh uses: event, id, data, comments)."""

from typing import Iterable, Iterator, NamedTuple, Optional


class ServerSentEvent(NamedTuple):
    event: str
    id: Optional[str]
    data: str


def parse_events(lines: Iterable[bytes]) -> Iterator[ServerSentEvent]:
    """Events from the lines of a ``text/event-stream`` body; comments and ``retry:`` are skipped.

    A message with an ``id:`` and no data (the stream's opening resume point) is yielded with
    event ``""`` so a reader can remember the id.
    """
    event, event_id, data = "", None, []
    for raw in lines:
        line = raw.decode("utf-8").rstrip("\r\n")
        if line == "":
            if data or event_id is not None:
                yield ServerSentEvent(event or ("message" if data else ""), event_id, "\n".join(data))
            event, event_id, data = "", None, []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "event":
            event = value
        elif name == "id":
            event_id = value
        elif name == "data":
            data.append(value)
    if data:
        yield ServerSentEvent(event or "message", event_id, "\n".join(data))
