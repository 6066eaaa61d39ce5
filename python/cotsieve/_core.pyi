"""Type stubs for the native engine (``csrc/bindings.cpp``)."""

from collections.abc import Sequence
from typing import Any, ClassVar, Union

import numpy as np
import numpy.typing as npt

class _NativeEnum:
    name: str
    value: int
    __members__: ClassVar[dict[str, Any]]
    def __init__(self, value: int) -> None: ...
    def __int__(self) -> int: ...
    def __index__(self) -> int: ...
    def __hash__(self) -> int: ...
    def __eq__(self, other: object) -> bool: ...

class Engine(_NativeEnum):
    AUTO: ClassVar[Engine]
    DFA: ClassVar[Engine]
    PREFILTER: ClassVar[Engine]

class Anchor(_NativeEnum):
    ANY: ClassVar[Anchor]
    LINE_START: ClassVar[Anchor]
    SENTENCE_START: ClassVar[Anchor]

class StepMode(_NativeEnum):
    PARAGRAPH: ClassVar[StepMode]
    LINE: ClassVar[StepMode]
    SENTENCE: ClassVar[StepMode]
    MARKER: ClassVar[StepMode]

class LineStatus(_NativeEnum):
    PARSED: ClassVar[LineStatus]
    BLANK: ClassVar[LineStatus]
    NEEDS_FULL_PARSER: ClassVar[LineStatus]

class MetricShape(_NativeEnum):
    PER_TEXT: ClassVar[MetricShape]
    PER_CATEGORY: ClassVar[MetricShape]
    PER_LABEL_PAIR: ClassVar[MetricShape]

class MetricType(_NativeEnum):
    INT64: ClassVar[MetricType]
    FLOAT64: ClassVar[MetricType]

class MetricField:
    @property
    def name(self) -> str: ...
    @property
    def shape(self) -> MetricShape: ...
    @property
    def type(self) -> MetricType: ...

METRIC_FIELDS: tuple[MetricField, ...]

class PatternSpec:
    def __init__(
        self,
        text: bytes,
        category: int,
        case_sensitive: bool = False,
        boundary_start: bool = True,
        boundary_end: bool = True,
        anchor: Anchor = ...,
    ) -> None: ...
    @property
    def text(self) -> bytes: ...
    @property
    def category(self) -> int: ...
    @property
    def case_sensitive(self) -> bool: ...
    @property
    def boundary_start(self) -> bool: ...
    @property
    def boundary_end(self) -> bool: ...
    @property
    def anchor(self) -> Anchor: ...

class TextBatch:
    @staticmethod
    def from_sequence(items: Sequence[Union[str, bytes, bytearray]]) -> TextBatch: ...
    @staticmethod
    def from_arrow_chunks(chunks: list[tuple[np.ndarray, np.ndarray]]) -> TextBatch: ...
    def __len__(self) -> int: ...
    @property
    def total_bytes(self) -> int: ...

class Scanner:
    def __init__(self, patterns: Sequence[PatternSpec], engine: Engine = ...) -> None: ...
    @property
    def engine(self) -> Engine: ...
    @property
    def pattern_count(self) -> int: ...
    @property
    def state_count(self) -> int: ...
    def count(self, batch: TextBatch, threads: int = 0, lanes: int = 0) -> npt.NDArray[np.uint32]: ...
    def matches(self, batch: TextBatch, threads: int = 0) -> dict[str, np.ndarray]: ...

class Analyzer:
    def __init__(
        self, markers: Scanner, n_categories: int, branch_category: int, hesitate_category: int, mode: StepMode
    ) -> None: ...
    def analyze(self, batch: TextBatch, threads: int = 0) -> list[np.ndarray]: ...
    def segment(self, batch: TextBatch, threads: int = 0) -> dict[str, np.ndarray]: ...

def line_offsets(block: Any) -> npt.NDArray[np.int64]: ...
def extract_jsonl(
    block: Any, offsets: npt.NDArray[np.int64], keys: Sequence[str], max_int_digits: int = 0
) -> dict[str, Any]: ...
def prefilter_available() -> bool: ...
def simd_level() -> str: ...
