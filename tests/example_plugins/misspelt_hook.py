"""A plugin whose hook name is misspelt (``ar_explorer_model``, no s): pluggy registers it, and nothing ever
calls it, so the model it means to provide never appears."""

from app.core import hookimpl
from app.core.likelihoods import Bernoulli
from app.core.model import ARModel, ModelSpec


class Never(ARModel):
    def __init__(self, config):
        super().__init__(config, Bernoulli())

    def forward(self, x, cond=None, ordering=None):
        return x.new_zeros(x.shape)


SPEC = ModelSpec(name="misspelt", title="Misspelt", description="Never provided.", build=Never)


@hookimpl
def ar_explorer_model():
    return [SPEC]
