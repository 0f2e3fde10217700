"""CIFAR-10 from the Keras cache only: a small fake in the real on-disk format, never the network."""

import io
import os
import pickle
import tarfile

import numpy as np
import pytest

from grader.training import cifar10

PER_BATCH = 4


def fake_batch(index):
    """Return a pickled batch whose image i has red, green and blue planes 10*index + i, +100, +200."""
    base = 10 * index + np.arange(PER_BATCH, dtype=np.uint8)
    planes = [np.repeat((base + offset)[:, None], 1024, axis=1) for offset in (0, 100, 200)]
    data = np.concatenate(planes, axis=1).astype(np.uint8)  # (N, 3072), channel-major like CIFAR
    return pickle.dumps({b"batch_label": b"fake", b"data": data, b"labels": [index % 10] * PER_BATCH})


BATCHES = {name: fake_batch(i) for i, name in enumerate(cifar10.TRAIN_BATCHES + (cifar10.TEST_BATCH,))}


def write_folder(folder):
    folder.mkdir(parents=True)
    for name, blob in BATCHES.items():
        (folder / name).write_bytes(blob)


def write_archive(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as archive:
        for name, blob in BATCHES.items():
            info = tarfile.TarInfo(f"{cifar10.BATCH_DIR}/{name}")
            info.size = len(blob)
            archive.addfile(info, io.BytesIO(blob))


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setattr(cifar10.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    return tmp_path / "keras_home"


def check_fake(data):
    (x_train, y_train), (x_test, y_test) = data
    assert x_train.shape == (5 * PER_BATCH, 32, 32, 3) and x_train.dtype == np.uint8
    assert y_train.shape == (5 * PER_BATCH, 1) and x_test.shape == (PER_BATCH, 32, 32, 3)
    assert y_test.shape == (PER_BATCH, 1)
    # Channels last: image 1 of data_batch_2 is red 11, green 111, blue 211 everywhere.
    assert (x_train[PER_BATCH + 1] == [11, 111, 211]).all()
    assert y_train[:, 0].tolist() == [i // PER_BATCH for i in range(5 * PER_BATCH)]
    assert (x_test[0] == [50, 150, 250]).all()


@pytest.mark.parametrize(
    "layout, relative",
    [
        ("folder", "datasets/cifar-10-batches-py-target/cifar-10-batches-py"),
        ("folder", "datasets/cifar-10-batches-py"),
        ("archive", "datasets/cifar-10-batches-py-target_archive"),
        ("archive", "datasets/cifar-10-batches-py.tar.gz"),
        ("archive", "datasets/cifar-10-python.tar.gz"),
    ],
)
def test_loads_every_cache_layout(keras_home, layout, relative):
    (write_folder if layout == "folder" else write_archive)(keras_home / relative)
    assert cifar10.find_cifar10() == keras_home / relative
    check_fake(cifar10.load_cifar10())


def test_missing_cache_says_where_it_looked(keras_home):
    with pytest.raises(cifar10.CifarNotCachedError) as error:
        cifar10.load_cifar10()
    message = str(error.value)
    assert "never downloads" in message
    assert os.path.join(str(keras_home), "datasets", "cifar-10-batches-py-target_archive") in message
    assert not (keras_home / "datasets").exists()  # nothing was created, nothing downloaded


def test_incomplete_folder_is_not_used(keras_home):
    folder = keras_home / "datasets" / cifar10.BATCH_DIR
    write_folder(folder)
    (folder / "data_batch_3").unlink()
    with pytest.raises(cifar10.CifarNotCachedError):
        cifar10.find_cifar10()


def test_pickles_with_code_are_refused(keras_home):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo owned",))

    folder = keras_home / "datasets" / cifar10.BATCH_DIR
    write_folder(folder)
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}))
    with pytest.raises(pickle.UnpicklingError, match="Refusing to load"):
        cifar10.load_cifar10()


def test_wrong_batch_shape_is_reported(keras_home):
    folder = keras_home / "datasets" / cifar10.BATCH_DIR
    write_folder(folder)
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(ValueError, match=r"expected data \(N, 3072\) and N labels. Received: data \(2, 10\), 2 labels"):
        cifar10.load_cifar10()


def test_keras_loader_is_used_when_its_archive_is_verified(monkeypatch):
    import keras

    monkeypatch.setattr(cifar10, "keras_archive_is_cached", lambda: True)
    monkeypatch.setattr(keras.datasets.cifar10, "load_data", lambda: "loaded by keras")
    assert cifar10.load_cifar10() == "loaded by keras"


def test_keras_archive_counts_only_with_kerass_own_hash(tmp_path, monkeypatch):
    import hashlib

    from keras.src.backend import config

    monkeypatch.setattr(config, "_KERAS_DIR", str(tmp_path))
    assert not cifar10.keras_archive_is_cached()
    archive = tmp_path / "datasets" / cifar10.KERAS_ARCHIVE
    archive.parent.mkdir()
    archive.write_bytes(b"not the real archive")
    assert not cifar10.keras_archive_is_cached()  # load_data would try to download again
    monkeypatch.setattr(cifar10, "KERAS_SHA256", hashlib.sha256(b"not the real archive").hexdigest())
    assert cifar10.keras_archive_is_cached()
