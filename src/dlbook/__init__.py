"""dlbook: the helper package of the book "Deep Learning, Worked".

A map of the package. Importing ``dlbook`` never imports TensorFlow or Keras;
each helper imports the backend it needs lazily, and the lesson modules that
define Keras layers import Keras when they are imported (after
``dlbook.setup()``).

Plumbing, used by every chapter or by the tooling around them:

* :mod:`~dlbook.devices`: the Keras backend and the device (GPU visible,
  compute capability, datasheet peak FLOP/s), quiet start-up; imports no
  other dlbook module.
* :mod:`~dlbook.profiles`: the run profiles ``smoke``, ``cpu``, ``gpu`` and the seed.
* :mod:`~dlbook.runtime`: a chapter's start-up, :func:`setup` (banner, seeds,
  style, the mixed-precision policy).
* :mod:`~dlbook.data`: the dataset registry (mirror, cache, verified downloads).
* :mod:`~dlbook.plots`: the book's figure style, and every figure helper
  (curves, galleries of images, the confusion matrix), none of which can reach
  a reader without a title and axis labels.
* :mod:`~dlbook.report`: glued numbers, tables and source code on the page.
* :mod:`~dlbook.records`: the figures measured outside the site build
  (``results/recorded_runs.csv``, one per row), looked up and shown; the book's root.
* :mod:`~dlbook.progress`: plain progress lines with the time left, where a
  reader waits (unpacking, decoding, custom training loops);
  :class:`~dlbook.training.EpochLog` is its ``fit`` callback.
* :mod:`~dlbook.estimates`: a run's time on a Colab T4, from FLOPs (chapters 4, 5 and 8).
* :mod:`~dlbook.token_ids`: token ids cached as ``.npz`` files (chapter 9).
* :mod:`~dlbook.bench`: ``python -m dlbook.bench``, chapters 8 and 9's runs outside a notebook.

Lesson code, taught (and often shown with ``show_source``) by a chapter and
imported by later ones:

* :mod:`~dlbook.metrics`: confusion matrix, precision, recall, F1 (chapter 3).
* :mod:`~dlbook.vision`: augmentation layers and a small ResNet (chapter 4).
* :mod:`~dlbook.mnist_judge`: the MNIST classifier that scores generated digits (chapter 5).
* :mod:`~dlbook.generative`: binarised MNIST, latent grids and paths (chapter 6).
* :mod:`~dlbook.attention`: multi-head self-attention by hand and as a layer (chapter 7).
* :mod:`~dlbook.charlm`, :mod:`~dlbook.gpt`: the character data and the GPT (chapter 8).
* :mod:`~dlbook.training`: ``EpochLog`` (every chapter that fits for long) and
  putting a compiled model back to its start (chapters 8 and 9).
* :mod:`~dlbook.encoder`: the pretrained text encoder and its fine-tuning (chapter 9).
* :mod:`~dlbook.workers`, :mod:`~dlbook.tracking`: worker processes and
  TensorBoard logs (chapter 10).
* :mod:`~dlbook.serve`, :mod:`~dlbook.loadtest`: the prediction service and
  its load test (chapter 11).
"""

from __future__ import annotations

from .profiles import PROFILES, Profile, ProfileError, current_profile
from .devices import quiet_environment
from .runtime import setup

try:  # one source of the version: pyproject.toml, through the installed metadata
    from importlib.metadata import PackageNotFoundError, version as _version

    __version__ = _version("dlbook")
except PackageNotFoundError:  # pragma: no cover - run from a source tree, not installed
    __version__ = "0+unknown"

# Quiet TensorFlow's native logging before any chapter imports it.
quiet_environment()

__all__ = [
    "PROFILES",
    "Profile",
    "ProfileError",
    "current_profile",
    "setup",
    "__version__",
]
