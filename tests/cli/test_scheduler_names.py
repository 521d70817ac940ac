"""--scheduler names: aliases and class names of the schedulers a pipeline's loop can drive; the schedulers with a
loop of their own (RePaint, score SDE VE, Karras VE, consistency models) are refused with the reason."""

from __future__ import annotations

import pytest

from sdrt.cli.options import scheduler_class_name
from sdrt.runtime.errors import InputError


def test_aliases_and_class_names():
    assert scheduler_class_name("tcd") == "TCDScheduler"
    assert scheduler_class_name("tcdscheduler") == "TCDScheduler"
    assert scheduler_class_name("DPM++") == "DPMSolverMultistepScheduler"


@pytest.mark.parametrize(
    "name", ["RePaintScheduler", "ScoreSdeVeScheduler", "karrasvescheduler", "CMStochasticIterativeScheduler"]
)
def test_own_loop_schedulers_refused_with_the_reason(name):
    with pytest.raises(InputError, match="loop of its own") as error:
        scheduler_class_name(name)
    choices = str(error.value).split("choose one of")[1]
    assert "TCDScheduler" in choices and "RePaintScheduler" not in choices
