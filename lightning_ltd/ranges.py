"""The declared types of settings: ranges and forms as pydantic declarations, in one place.

``PositiveInt = Annotated[int, Range(ge=1)]`` in a constructor's signature is the whole rule for
that argument: pydantic checks it (the method in ``ltd/`` through ``validate_call``, the rest
through ``checks.schema``), and the same declaration gives the words of its error and its docs.
Nothing here imports Lightning or Hydra.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field
from pydantic.fields import FieldInfo


def Range(
    ge: float | None = None, gt: float | None = None, le: float | None = None, lt: float | None = None
) -> FieldInfo:
    """A finite number's range, as pydantic declares it (``Annotated[float, Range(ge=0, lt=1)]``)."""
    return Field(ge=ge, gt=gt, le=le, lt=lt, allow_inf_nan=False)


def Form(pattern: str, form: str) -> FieldInfo:
    """A string of a given form (``Annotated[str, Form(r"\\d+", "N")]``); ``form`` is what the user reads."""
    return Field(pattern=f"^(?:{pattern})$", description=f"a string of the form {form}")


def _whole(value: object) -> object:
    """A whole float as the integer it is (YAML and Python write a million as ``1e6``)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


Whole = Annotated[int, BeforeValidator(_whole)]
"""An integer, written as one or as a whole float; never a boolean or a string (strict)."""

PositiveInt = Annotated[Whole, Range(ge=1)]
Count = Annotated[Whole, Range(ge=0)]
PositiveFloat = Annotated[float, Range(gt=0)]
NonNegativeFloat = Annotated[float, Range(ge=0)]
Fraction = Annotated[float, Range(ge=0, lt=1)]
"""A probability that may be 0 but not 1 (dropout, momentum): ``[0, 1)``."""
OpenFraction = Annotated[float, Range(gt=0, lt=1)]
"""A probability that is neither 0 nor 1 (the masking rate): ``(0, 1)``."""
WholePercent = Annotated[
    float, Field(gt=0, lt=1, multiple_of=0.01, allow_inf_nan=False, description="a whole percent: 0.01 to 0.99")
]
"""A share in whole percents (DeepSpeed's percentile difficulties), as a fraction: ``0.05``."""
Seed = Annotated[Whole, Range(ge=0, le=2**32 - 1)]
"""What ``seed_everything`` accepts (numpy's seed range): the run's, the data's and the model's."""
HoldOut = Annotated[Whole, Range(ge=2)]
"""``val_every``: every n-th item is held out, so at least every second one trains."""
