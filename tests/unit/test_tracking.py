import numpy as np
import pytest

from dlbook import tracking

pytest.importorskip("tensorboard")
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2  # noqa: E402
from tensorboard.summary.writer.event_file_writer import EventFileWriter  # noqa: E402


def _scalar_event(tag, step, value, tf2=True, first=True):
    if tf2:
        v = summary_pb2.Summary.Value(tag=tag, tensor=tensor_pb2.TensorProto(dtype=1, float_val=[value]))
        if first:  # TF2 writers attach the plugin name to a tag's first value only
            v.metadata.plugin_data.plugin_name = "scalars"
    else:
        v = summary_pb2.Summary.Value(tag=tag, simple_value=value)
    return event_pb2.Event(step=step, wall_time=1.0, summary=summary_pb2.Summary(value=[v]))


def _write(folder, events):
    """An event file written by TensorBoard's own writer (it needs no TensorFlow)."""
    folder.mkdir(parents=True, exist_ok=True)
    writer = EventFileWriter(str(folder), filename_suffix=f".{len(list(folder.iterdir()))}")
    for event in events:
        writer.add_event(event)
    writer.close()


def test_read_scalars_reads_both_encodings_per_run(tmp_path):
    _write(tmp_path / "train", [_scalar_event("epoch_loss", s, 1.0 / (s + 1), first=(s == 0)) for s in range(3)])
    _write(tmp_path / "validation", [_scalar_event("epoch_loss", s, 2.0 - s, tf2=False) for s in (1, 0)])
    scalars = tracking.read_scalars(tmp_path)
    steps, values = scalars["train"]["epoch_loss"]
    assert steps.tolist() == [0, 1, 2]
    np.testing.assert_allclose(values, [1.0, 0.5, 1 / 3], rtol=1e-6)
    steps, values = scalars["validation"]["epoch_loss"]
    assert steps.tolist() == [0, 1] and values.tolist() == [2.0, 1.0]


def test_list_tags_names_each_kind(tmp_path):
    hist = summary_pb2.Summary.Value(tag="dense/kernel/histogram", tensor=tensor_pb2.TensorProto(dtype=1))
    hist.metadata.plugin_data.plugin_name = "histograms"
    _write(tmp_path / "train", [
        _scalar_event("epoch_loss", 0, 1.0),
        event_pb2.Event(step=0, summary=summary_pb2.Summary(value=[hist])),
    ])
    assert tracking.list_tags(tmp_path) == {"train": {"epoch_loss": "scalars", "dense/kernel/histogram": "histograms"}}
    # histograms are not scalars
    assert list(tracking.read_scalars(tmp_path)["train"]) == ["epoch_loss"]


def test_scalar_tensors_of_other_dtypes_are_read(tmp_path):
    values = [tensor_pb2.TensorProto(dtype=2, tensor_content=np.array([2.5]).tobytes()),  # float64, packed
              tensor_pb2.TensorProto(dtype=9, int64_val=[7]),
              tensor_pb2.TensorProto(dtype=19, half_val=np.array([1.5], np.float16).view(np.uint16).tolist())]
    events = []
    for step, tensor in enumerate(values):
        v = summary_pb2.Summary.Value(tag="x", tensor=tensor)
        v.metadata.plugin_data.plugin_name = "scalars"
        events.append(event_pb2.Event(step=step, wall_time=1.0, summary=summary_pb2.Summary(value=[v])))
    _write(tmp_path / "run", events)
    assert tracking.read_scalars(tmp_path)["run"]["x"][1].tolist() == [2.5, 7.0, 1.5]


def test_event_files_groups_by_run(tmp_path):
    _write(tmp_path / "train", [_scalar_event("a", 0, 1.0)])
    _write(tmp_path, [_scalar_event("b", 0, 1.0)])
    runs = tracking.event_files(tmp_path)
    assert sorted(runs) == [".", "train"]


def test_trace_entry_op_type():
    e = tracking.TraceEntry("tf_Compute", "StatefulPartitionedCall/dense/MatMul:_MklMatMul", 1.0, 2)
    assert e.op_type == "_MklMatMul"
    assert tracking.TraceEntry("python", "Profiled batch", 1.0, 1).op_type == "Profiled batch"


def test_read_trace_without_a_trace_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="xplane"):
        tracking.read_trace(tmp_path)


def test_keras_callback_round_trip(tmp_path):
    """The one-line callback writes what read_scalars, list_tags and read_trace read."""
    pytest.importorskip("tensorflow")
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("writing summaries needs the TensorFlow backend")
    model = keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(2), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.random.rand(32, 3).astype("float32"), np.random.rand(32, 1).astype("float32")
    (tmp_path / "stale.txt").parent.mkdir(exist_ok=True)
    cb = tracking.tensorboard_callback(tmp_path / "run", profile_batches=(2, 3))
    model.fit(x, y, batch_size=8, epochs=2, validation_split=0.25, verbose=0, callbacks=[cb])
    scalars = tracking.read_scalars(tmp_path / "run")
    assert scalars["train"]["epoch_loss"][0].tolist() == [0, 1]
    assert "epoch_loss" in scalars["validation"]
    assert "histograms" in tracking.list_tags(tmp_path / "run")["train"].values()
    entries = tracking.read_trace(tmp_path / "run")
    assert any(e.line == "tf_Compute" and "MatMul" in e.op_type for e in entries)
    # fresh=True clears the old run
    tracking.tensorboard_callback(tmp_path / "run")
    assert not any((tmp_path / "run").iterdir())
