"""TensorBoard logs for training chapters, and reading them back without TensorBoard.

Writing: one line gives ``fit`` a callback that logs scalars (loss, metrics),
weight histograms and, optionally, a profiler trace of a few steps::

    model.fit(..., callbacks=[tensorboard_callback("logs/ch10/baseline")])

In Colab the reader then opens the logs with ``%load_ext tensorboard`` and
``%tensorboard --logdir logs``. A static web page cannot run TensorBoard, so
chapters read the same event files back with :func:`read_scalars` and plot
them with matplotlib; :func:`list_tags` says what else was logged and
:func:`read_trace` sums the profiler's trace by operation.

Reading event files uses TensorBoard's own ``EventAccumulator`` (the
``tensorboard`` package, not TensorFlow). :func:`read_trace` needs TensorFlow:
the trace's protocol buffer (``xplane_pb2``) ships only inside TensorFlow, at
``tensorflow.tsl.profiler.protobuf``, which is not a public module path.
Writing needs the Keras backend's summary writer: TensorFlow with
``tensorboard`` installed.
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
import numpy as np

EVENTS_GLOB = "events.out.tfevents.*"


def tensorboard_callback(
    log_dir: str | Path,
    *,
    histograms: bool = True,
    profile_batches: tuple[int, int] | None = None,
    fresh: bool = True,
):
    """A ``keras.callbacks.TensorBoard`` that logs what a training chapter shows.

    Args:
        log_dir: folder of this run's logs (``train/`` and ``validation/``
            are written inside it).
        histograms: log a histogram of every weight once per epoch.
        profile_batches: ``(first, last)`` training batches (counted from 1
            over the whole run) to record with the profiler, or None for no
            trace. Profiling is available on the TensorFlow backend (and on
            JAX with Python 3.12 or newer).
        fresh: delete earlier logs in ``log_dir`` first, so a re-run does not
            mix its events with the previous run's.
    """
    import keras

    log_dir = Path(log_dir)
    if fresh and log_dir.exists():
        shutil.rmtree(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    return keras.callbacks.TensorBoard(
        log_dir=str(log_dir),
        histogram_freq=1 if histograms else 0,
        write_graph=False,
        profile_batch=tuple(profile_batches) if profile_batches else 0,
    )


# ---------------------------------------------------------------------------
# Event files, read with TensorBoard's own EventAccumulator


def event_files(log_dir: str | Path) -> dict[str, list[Path]]:
    """Event files under ``log_dir`` by run: the run is the folder holding the file,
    relative to ``log_dir`` (``"train"``, ``"validation"``; ``"."`` for the top)."""
    log_dir = Path(log_dir)
    runs: dict[str, list[Path]] = defaultdict(list)
    for path in sorted(log_dir.rglob(EVENTS_GLOB)):
        runs[path.parent.relative_to(log_dir).as_posix()].append(path)
    return dict(runs)


def _accumulators(log_dir: str | Path):
    """Yield (run, loaded EventAccumulator) for every run folder under ``log_dir``,
    keeping every event (TensorBoard's default keeps a sample of them)."""
    try:
        from tensorboard.backend.event_processing import event_accumulator as ea
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(
            "reading TensorBoard event files needs the tensorboard package: pip install tensorboard"
        ) from exc
    keep_all = {ea.SCALARS: 0, ea.TENSORS: 0, ea.HISTOGRAMS: 1, ea.IMAGES: 1, ea.AUDIO: 1,
                ea.COMPRESSED_HISTOGRAMS: 1}
    for run in event_files(log_dir):
        accumulator = ea.EventAccumulator(str(Path(log_dir) / run), size_guidance=keep_all)
        yield run, accumulator.Reload()


def list_tags(log_dir: str | Path) -> dict[str, dict[str, str]]:
    """What was logged: ``{run: {tag: kind}}``, the kind being TensorBoard's
    plugin name (``"scalars"``, ``"histograms"``, ...) or ``"simple_value"``
    (a TF1 scalar)."""
    tags: dict[str, dict[str, str]] = {}
    for run, acc in _accumulators(log_dir):
        found = acc.Tags()
        kinds = {tag: "simple_value" for tag in found.get("scalars", [])}
        kinds.update({tag: "histograms" for tag in found.get("histograms", [])})
        for tag in found.get("tensors", []):
            kinds[tag] = acc.SummaryMetadata(tag).plugin_data.plugin_name
        tags[run] = kinds
    return tags


def read_scalars(log_dir: str | Path) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Every scalar series under ``log_dir``: ``{run: {tag: (steps, values)}}``.

    Reads both encodings TensorBoard knows: the TF1 ``simple_value`` field and
    the TF2 scalar tensors of the ``scalars`` plugin. Steps are sorted; a step
    logged twice keeps its last value.
    """
    from tensorboard.util import tensor_util

    out: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for run, acc in _accumulators(log_dir):
        series: dict[str, dict[int, float]] = defaultdict(dict)
        found = acc.Tags()
        for tag in found.get("scalars", []):
            for event in acc.Scalars(tag):
                series[tag][event.step] = float(event.value)
        for tag in found.get("tensors", []):
            if acc.SummaryMetadata(tag).plugin_data.plugin_name != "scalars":
                continue
            for event in acc.Tensors(tag):
                series[tag][event.step] = float(np.asarray(tensor_util.make_ndarray(event.tensor_proto)).reshape(()))
        out[run] = {}
        for tag, points in series.items():
            steps = np.array(sorted(points), dtype=np.int64)
            out[run][tag] = (steps, np.array([points[s] for s in steps], dtype=np.float64))
    return out


# ---------------------------------------------------------------------------
# Profiler traces


@dataclass(frozen=True)
class TraceEntry:
    """Total time of one named event on one kind of trace line.

    Attributes:
        line: the trace line's kind, its name without the thread suffix
            (``"tf_Compute"``, ``"tf_data_iterator_get_next"``, ``"python"``).
        name: the event's name; TensorFlow operations read ``"scope/op:OpType"``.
        ms: summed duration in milliseconds over the traced steps.
        count: how many times the event occurred.
    """

    line: str
    name: str
    ms: float
    count: int

    @property
    def op_type(self) -> str:
        """The operation type after the last ``:`` (``"MatMul"``), or the name."""
        return self.name.rsplit(":", 1)[-1]


def trace_files(log_dir: str | Path) -> list[Path]:
    """Profiler traces (``*.xplane.pb``) under ``log_dir``, oldest first."""
    return sorted(Path(log_dir).rglob("*.xplane.pb"), key=lambda p: p.stat().st_mtime)


def read_trace(path_or_dir: str | Path, plane: str = "/host:CPU") -> list[TraceEntry]:
    """Sum a profiler trace by event: one :class:`TraceEntry` per (line kind, name),
    longest first.

    Args:
        path_or_dir: a ``.xplane.pb`` file, or a log folder (its newest trace).
        plane: the device plane to read (the host CPU by default; a GPU's
            plane is ``"/device:GPU:0"``).
    """
    path = Path(path_or_dir)
    if path.is_dir():
        found = trace_files(path)
        if not found:
            raise FileNotFoundError(f"no profiler trace (*.xplane.pb) under {path}")
        path = found[-1]
    try:
        from tensorflow.tsl.profiler.protobuf import xplane_pb2
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("reading a profiler trace needs TensorFlow") from exc
    space = xplane_pb2.XSpace.FromString(path.read_bytes())
    totals: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0])
    for xplane in space.planes:
        if xplane.name != plane:
            continue
        names = {k: v.name for k, v in xplane.event_metadata.items()}
        for line in xplane.lines:
            kind = line.name.split("/", 1)[0]
            for event in line.events:
                entry = totals[(kind, names.get(event.metadata_id, "?"))]
                entry[0] += event.duration_ps / 1e9
                entry[1] += 1
    entries = [TraceEntry(k[0], k[1], v[0], int(v[1])) for k, v in totals.items()]
    return sorted(entries, key=lambda e: -e.ms)
