"""Fisher scores: an embedding space for an autoregressive model (Yan, Ho & Abbeel, 2019).

An autoregressive model has no latent space, but every image ``x`` has a Fisher score, the gradient of its
log-likelihood with respect to the parameters, ``grad_theta log p_theta(x)``: how the model would change to make
``x`` more likely. Images that look alike to the model have similar scores. Here, one module per step:

- :mod:`~app.core.fisher.scores`: per-example scores with ``torch.func`` (``vmap`` of ``grad``; a loop where
  that is faster or unsupported), over all parameters or some layers;
- :mod:`~app.core.fisher.normalisation`: each parameter's gradient divided by its root mean square over
  training images (per tensor, per channel, or per parameter: the diagonal of the empirical Fisher);
- :mod:`~app.core.fisher.projection`: a very sparse random projection to thousands of numbers;
- :mod:`~app.core.fisher.activations`: the paper's baseline, mean hidden activations;
- :mod:`~app.core.fisher.embedder` and :mod:`~app.core.fisher.components`: embeddings, standardised and
  reduced to principal components;
- :mod:`~app.core.fisher.decoder`: a small decoder per space back to images;
- :mod:`~app.core.fisher.build` and :mod:`~app.core.fisher.space`: making, storing and loading a checkpoint's
  Fisher space (``NAME.fisher-decoder.safetensors`` + ``.json``, tied to the SHA-256 of its weights);
- :mod:`~app.core.fisher.interpolation`, :mod:`~app.core.fisher.measure`, :mod:`~app.core.fisher.pairs`:
  strips between two images, judged by the model's NLL of their interior points, over seeded pairs of
  different digits; :mod:`~app.core.fisher.figure`: the strips as a PNG.
"""

from __future__ import annotations

from app.core.fisher.activations import activation_features
from app.core.fisher.build import build_space_steps
from app.core.fisher.components import Coordinates
from app.core.fisher.decoder import DecoderTraining, EmbeddingDecoder, reconstruction_nats, train_decoder_steps
from app.core.fisher.embedder import SPACES, Embedder
from app.core.fisher.errors import FisherError
from app.core.fisher.figure import ROW_TITLES, interpolation_figure
from app.core.fisher.interpolation import ROWS, Interpolation, embed_pair, interpolate, nearest_references
from app.core.fisher.measure import INK_THRESHOLD, RowFigure, interior_nll, quantise
from app.core.fisher.normalisation import NORMALISATIONS, ScoreScaling, mean_square_steps
from app.core.fisher.pairs import Labels, different_class_pairs, random_sample, read_labels
from app.core.fisher.progress import EmbedProgress, final_event
from app.core.fisher.projection import SparseProjection
from app.core.fisher.scores import (
    ALL_LAYERS,
    _gradients_loop,
    _gradients_vmap,
    num_parameters,
    per_example_gradients,
    selected_parameters,
    trainable_parameters,
)
from app.core.fisher.settings import FisherSettings
from app.core.fisher.space import (
    DECODER_SUFFIX,
    FORMAT,
    EmbeddingSpace,
    FisherSpace,
    find_space,
    load_space_for,
    space_path,
    weights_sha256,
)

__all__ = [
    "ALL_LAYERS",
    "DECODER_SUFFIX",
    "FORMAT",
    "INK_THRESHOLD",
    "NORMALISATIONS",
    "ROWS",
    "ROW_TITLES",
    "SPACES",
    "Coordinates",
    "DecoderTraining",
    "EmbedProgress",
    "Embedder",
    "EmbeddingDecoder",
    "EmbeddingSpace",
    "FisherError",
    "FisherSettings",
    "FisherSpace",
    "Interpolation",
    "Labels",
    "RowFigure",
    "ScoreScaling",
    "SparseProjection",
    "_gradients_loop",
    "_gradients_vmap",
    "activation_features",
    "build_space_steps",
    "different_class_pairs",
    "embed_pair",
    "final_event",
    "find_space",
    "interior_nll",
    "interpolate",
    "interpolation_figure",
    "load_space_for",
    "mean_square_steps",
    "nearest_references",
    "num_parameters",
    "per_example_gradients",
    "quantise",
    "random_sample",
    "read_labels",
    "reconstruction_nats",
    "selected_parameters",
    "space_path",
    "train_decoder_steps",
    "trainable_parameters",
    "weights_sha256",
]
