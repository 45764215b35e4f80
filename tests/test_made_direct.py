"""MADE's direct connections: only the weights the ordering allows are parameters, and an output never sees
its own input or a later one through them."""

from __future__ import annotations

import torch

from app.core.registry import get_registry


def _made(**hparams):
    spec = get_registry().model("made")
    torch.manual_seed(0)
    return spec.create(spec.make_config((1, 4, 4), 2, {"hidden": [8], "direct": True, **hparams}, tiny=True))


def test_the_direct_map_holds_one_weight_per_earlier_dimension():
    model = _made()
    d = 16
    assert model.direct_weight.numel() == d * (d - 1) // 2
    assert "direct_weight" in model.state_dict() and "direct_rows" not in model.state_dict()


def test_through_the_direct_map_an_output_sees_only_earlier_inputs():
    model = _made()
    with torch.no_grad():
        for layer in model.layers:  # the hidden path silenced: only the direct map remains
            layer.weight.zero_()
            layer.bias.zero_()
        model.direct_weight.normal_()
    x = torch.zeros(1, 1, 4, 4, requires_grad=True)
    out = model._direct(x.reshape(1, -1))
    rank = torch.tensor(model.ordering.rank.copy()).reshape(-1)
    for i in range(16):
        (grad,) = torch.autograd.grad(out[0, i], x, retain_graph=True)
        seen = grad.reshape(-1) != 0
        assert not (seen & (rank >= rank[i])).any(), f"output {i} sees itself or a later input"
        assert seen.sum() == rank[i]  # and every earlier one
