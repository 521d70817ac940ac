"""The pipelines are composed, not an inheritance lattice: every public pipeline class of ``sdrt.runtime``
has at most 3 ancestors (``object`` and itself not counted), and every function it carries was written in
the class that holds it (no method borrowed from another pipeline by assignment)."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

import sdrt.runtime

MAX_ANCESTORS = 3


def public_pipeline_classes() -> list[type]:
    from sdrt.runtime.pipelines.base import DiffusionPipeline

    classes = [getattr(sdrt.runtime, name) for name in sdrt.runtime.__all__]
    return [c for c in classes if isinstance(c, type) and issubclass(c, DiffusionPipeline)]


def _functions(value: Any) -> list[Any]:
    """The plain functions behind a class attribute (methods, static/class methods, properties)."""
    if isinstance(value, staticmethod | classmethod):
        value = value.__func__
    if isinstance(value, property):
        return [f for f in (value.fget, value.fset, value.fdel) if f is not None]
    return [value] if inspect.isfunction(value) else []


def test_there_are_public_pipelines() -> None:
    assert len(public_pipeline_classes()) >= 10


@pytest.mark.parametrize("cls", public_pipeline_classes(), ids=lambda c: c.__name__)
def test_at_most_three_ancestors(cls: type) -> None:
    ancestors = [k.__name__ for k in cls.__mro__[1:-1]]
    assert len(cls.__mro__) - 2 <= MAX_ANCESTORS, (
        f"{cls.__name__} has {len(ancestors)} ancestors: {ancestors}"
    )


@pytest.mark.parametrize("cls", public_pipeline_classes(), ids=lambda c: c.__name__)
def test_no_method_borrowed_across_branches(cls: type) -> None:
    """Each function in each class of the MRO was defined in that class's body, in its module (a function
    assigned from another pipeline class would carry that class's qualified name or module)."""
    for klass in cls.__mro__[:-1]:
        for name, value in vars(klass).items():
            for function in _functions(value):
                owner = function.__qualname__.rsplit(".", 1)[0]
                assert (function.__module__, owner) == (klass.__module__, klass.__qualname__), (
                    f"{cls.__name__}: {klass.__name__}.{name} is {function.__module__}.{function.__qualname__}, "
                    "borrowed from another class"
                )


def test_the_check_sees_a_borrowed_method() -> None:
    from sdrt.runtime.pipelines.text_to_image import StableDiffusionPipeline

    class Borrower:
        call = StableDiffusionPipeline.__call__

    function = _functions(vars(Borrower)["call"])[0]
    assert function.__qualname__.rsplit(".", 1)[0] != Borrower.__qualname__
