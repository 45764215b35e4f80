"""The work behind the Inspect view (Qt-free): one pixel's conditional and receptive field, summarised."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from app.core.scoring import Conditional, conditional_at, receptive_field
from app.core.session import LoadedModel, Session
from app.ui.rendering import FieldSummary, summarize_field
from app.ui.score_jobs import condition_for


@dataclass
class PixelInspection:
    """Everything the Inspect view shows about one pixel of one image."""

    checkpoint: str
    values: np.ndarray  # (C, H, W): the image inspected
    position: tuple[int, int, int]
    conditional: Conditional
    field: np.ndarray  # (H, W): |d params / d x| summed over channels; exactly 0 where it cannot see
    rank: np.ndarray  # (H, W): the step at which each position is generated
    summary: FieldSummary

    @property
    def blind_spot(self) -> bool:
        return self.summary.blind > 0


def inspect_pixel(session: Session, loaded: LoadedModel, values: np.ndarray, position: tuple[int, int, int],
                  label: int | None = None) -> PixelInspection:
    """p(x_i | x_<i) and the receptive field of pixel ``position`` ``(c, row, col)`` of ``values``."""
    model = loaded.model
    cond = condition_for(session, loaded, values, label)
    x = torch.as_tensor(values.astype(np.float32))
    conditional = conditional_at(model, x, position, cond)
    field = receptive_field(model, x, position, cond).sum(axis=0)
    rank = model.resolve_ordering(None).rank
    summary = summarize_field(field, rank, position[1:])
    return PixelInspection(loaded.name, values, position, conditional, field, np.asarray(rank), summary)


def summary_text(inspection: PixelInspection, where: str) -> str:
    """The receptive field in words, with the numbers a lecture can quote."""
    s = inspection.summary
    if s.before == 0:
        text = f"Pixel {where} is the first in the ordering: its conditional sees no pixel, only the model's prior."
    elif s.hidden == 0:
        text = f"The conditional of pixel {where} sees all {s.before} pixels before it in the ordering."
    else:
        text = f"The conditional of pixel {where} sees {s.seen} of the {s.before} pixels before it. "
        if s.blind:
            r, c = s.nearest_blind
            text += (f"Blind spot: {s.blind} earlier pixels (red) are hidden from it although it sees pixels "
                     f"beyond them; the nearest at row {r}, col {c}, {s.nearest_blind_distance:.1f} pixels away. ")
        else:
            text += "No blind spot: "
        if s.out_of_reach:
            text += f"{s.out_of_reach} (violet) lie beyond the reach of its layers."
    if s.seen_after:
        text += (f" Warning: it also depends on {s.seen_after} pixels after it in the ordering, which breaks "
                 "the autoregressive property.")
    return text.strip()


__all__ = ["PixelInspection", "inspect_pixel", "summary_text"]
