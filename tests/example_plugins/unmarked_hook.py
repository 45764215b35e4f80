"""A plugin whose hook function lacks ``@hookimpl``: pluggy never sees it, so it provides nothing."""

from app.core.model import ModelSpec
from example_plugins.misspelt_hook import Never

SPEC = ModelSpec(name="unmarked", title="Unmarked", description="Never provided.", build=Never)


def ar_explorer_models():
    return [SPEC]
