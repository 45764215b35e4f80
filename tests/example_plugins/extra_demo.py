"""A third-party 1-D demo: the built-in discretized logistic mixture on the 1-D data, at a learning rate too
low for it to reach the data in its steps (the lecture's point about step sizes). Registered through
``ar_explorer_demos``, it appears in the demo chooser after the built-in demos."""

from app.core import hookimpl
from app.core.toy_demos import DemoSpec

SLOW = DemoSpec("slow-dmol-1d", "1-D: mixture, learning rate 0.001", "dmol", "toy-1d", lr=0.001, steps=50,
                unseen_band=(76, 86))


@hookimpl
def ar_explorer_demos():
    return [SLOW]
