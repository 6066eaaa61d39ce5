"""Which part of a record is the trace: the text-path language
(``"messages[-1].content"``), the last assistant turn of a chat, and the cut
to the ``<think>`` part.

Example:
    >>> TextSpec("messages[-1].content").path
    ('messages', -1, 'content')
    >>> TextSpec(think="auto").cut_thinking(pa.array([b"<think>Hmm.</think>Answer."])).to_pylist()
    [b'Hmm.']
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional, Union

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._texts import utf8

THINK_MODES = ("auto", "keep")


PathPart = Union[str, int]
_PATH_TOKEN = re.compile(r"\.?([A-Za-z_][\w-]*)|\[(-?\d+)\]")


@dataclass(frozen=True)
class TextSpec:
    """Which part of a record is the trace.

    ``field`` is a top-level column (``"text"``, ``"reasoning_content"``) or a
    path into nested JSON such as ``"messages[-1].content"``. If the value it
    reaches is a chat ``messages`` list, the content of the last assistant
    turn is used. With ``think="auto"`` (default) a trace holding ``<think>``
    or ``</think>`` is cut to the thinking part: after the first ``<think>``
    (if any) up to the next ``</think>`` (or the end); ``think="keep"`` uses
    the text as it is.

    Example:
        >>> spec = TextSpec("messages")
        >>> spec.from_object({"messages": [{"role": "user", "content": "Q"},
        ...                                {"role": "assistant", "content": "A"}]})
        b'A'
        >>> TextSpec("a[0].b").path
        ('a', 0, 'b')
    """

    field: str = "text"
    think: str = "auto"

    def __post_init__(self) -> None:
        if self.think not in THINK_MODES:
            raise ValueError(f"think must be one of {list(THINK_MODES)}, got {self.think!r}")
        _parse_path(self.field)

    @property
    def path(self) -> tuple[PathPart, ...]:
        return _parse_path(self.field)

    @property
    def column(self) -> str:
        """The top-level field the text lives in."""
        return str(self.path[0])

    @property
    def is_plain_column(self) -> bool:
        return len(self.path) == 1

    def from_object(self, obj: Any) -> bytes:
        """The text of one parsed JSON record, as UTF-8 bytes; raises ``ValueError`` with the reason."""
        value: Any = obj
        walked = ""
        for part in self.path:
            value, walked = _step_into(value, part, walked)
        value = _last_assistant_turn(value, walked)
        if not isinstance(value, str):
            raise ValueError(f"field {walked!r} is {json_type(value)}, expected a string")
        return utf8(value)  # lines are decoded with surrogateescape: this gives their bytes back

    def cut_thinking(self, texts: pa.Array, tagged: Optional[np.ndarray] = None) -> pa.Array:
        """Apply the ``think`` mode to an Arrow binary array of texts.
        ``tagged`` says which texts hold a think tag, where that is known."""
        if self.think == "keep" or len(texts) == 0:
            return texts
        tagged = think_tagged(texts) if tagged is None else tagged
        if not tagged.any():
            return texts
        tagged = pa.array(tagged)
        inside = pc.extract_regex(texts.filter(tagged), r"(?s)^(?:.*?<think>)?(?P<t>.*?)(?:</think>|\z)")
        return pc.replace_with_mask(texts, tagged, inside.field("t"))


def think_tagged(texts: pa.Array) -> np.ndarray:
    """Which texts hold ``<think>`` or ``</think>`` (both end in "think>")."""
    found = pc.fill_null(pc.match_substring(texts, "think>"), False)
    return np.asarray(found.to_numpy(zero_copy_only=False), bool)


def _parse_path(spec: str) -> tuple[PathPart, ...]:
    parts: list[PathPart] = []
    pos = 0
    for match in _PATH_TOKEN.finditer(spec):
        if match.start() != pos or (match.group(0).startswith(".") and not parts):
            break
        parts.append(match.group(1) if match.group(1) else int(match.group(2)))
        pos = match.end()
    if pos != len(spec) or not parts or not isinstance(parts[0], str):
        raise ValueError(f"bad text field {spec!r}; use a name or a path like 'messages[-1].content'")
    return tuple(parts)


def _step_into(value: Any, part: PathPart, walked: str) -> tuple[Any, str]:
    here = f"{walked}[{part}]" if isinstance(part, int) else (f"{walked}.{part}" if walked else part)
    if isinstance(part, int):
        if not isinstance(value, list):
            raise ValueError(f"field {walked!r} is {json_type(value)}, expected a list")
        if not -len(value) <= part < len(value):
            raise ValueError(f"field {here!r} is missing (list has {len(value)} items)")
        return value[part], here
    if not isinstance(value, dict):
        raise ValueError(f"field {walked!r} is {json_type(value)}, expected an object")
    if part not in value:
        raise ValueError(f"missing field {here!r}")
    return value[part], here


def _last_assistant_turn(value: Any, walked: str) -> Any:
    if not (isinstance(value, list) and value and all(isinstance(m, dict) and "role" in m for m in value)):
        return value
    for message in reversed(value):
        if message["role"] == "assistant":
            if "content" not in message:
                raise ValueError(f"last assistant turn in {walked!r} has no 'content'")
            return message["content"]
    raise ValueError(f"no assistant turn in {walked!r}")


def json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)

