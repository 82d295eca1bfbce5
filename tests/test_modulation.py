"""The drug and mood-stabiliser state (:mod:`pruneplast.modulation`), against the Methods' formula
written out in plain Python."""

from __future__ import annotations

import pytest
import torch

from pruneplast.modulation import PROTECTION_SHIFT, Modulation, as_param, effective_gain


def _capped(gain: float, p: float) -> float:
    """Methods section 9, one replica at a time: the gain after the mood stabiliser's cap."""
    if p == 0:
        return gain
    return min(gain, max(1.05, 1.05 + (1 - p) * (gain - 1.05)))


@pytest.mark.parametrize("gain", [0.5, 1.0, 1.05, 1.25, 1.6, 3.0])
def test_effective_gain_is_the_methods_cap(gain):
    ps = [0.0, 0.1, 0.5, 0.9, 1.0]
    got = effective_gain(torch.full((len(ps),), gain), torch.tensor(ps))
    assert got.tolist() == pytest.approx([_capped(gain, p) for p in ps], abs=1e-6)


def test_full_protection_caps_a_high_gain_at_1_05_and_leaves_a_low_one():
    got = effective_gain(torch.tensor([1.6, 0.85, 1.6]), torch.tensor([1.0, 1.0, 0.0]))
    assert got.tolist() == pytest.approx([1.05, 0.85, 1.6])
    assert PROTECTION_SHIFT == 0.15


def test_neutral_is_no_drug():
    m = Modulation.neutral(3)
    assert m.gain.tolist() == [1.0] * 3 and m.damping.tolist() == [1.0] * 3
    assert m.tanh.dtype == torch.bool and not m.tanh.any() and m.protection.tolist() == [0.0] * 3
    assert list(m.state()) == list(Modulation.FIELDS)


def test_set_for_some_replicas_leaves_the_others():
    m = Modulation.neutral(4)
    m.set(gain=1.6, index=[1, 3])
    m.set(damping=[0.7, 0.9], activation=["tanh", "relu"], index=[0, 2])
    m.set(protection=0.5)
    assert m.gain.tolist() == pytest.approx([1.0, 1.6, 1.0, 1.6])
    assert m.damping.tolist() == pytest.approx([0.7, 1.0, 0.9, 1.0])
    assert m.tanh.tolist() == [True, False, False, False]
    assert m.protection.tolist() == [0.5] * 4


def test_select_concat_and_clone_move_the_four_values_together_and_copy_them():
    m = Modulation.neutral(3)
    m.set(gain=[1.1, 1.2, 1.3], protection=[0.0, 0.5, 1.0], activation=["relu", "tanh", "relu"])
    part = m.select(torch.tensor([2, 1]))
    assert part.gain.tolist() == pytest.approx([1.3, 1.2]) and part.protection.tolist() == [1.0, 0.5]
    assert part.tanh.tolist() == [False, True]
    part.set(gain=2.0)  # a copy: the original keeps its values
    assert m.gain.tolist() == pytest.approx([1.1, 1.2, 1.3])
    both = Modulation.concat([m, part])
    assert both.gain.tolist() == pytest.approx([1.1, 1.2, 1.3, 2.0, 2.0]) and len(both.tanh) == 5
    copy = m.clone()
    copy.set(damping=0.5)
    assert m.damping.tolist() == [1.0] * 3 and copy.damping.tolist() == [0.5] * 3


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"gain": 0.0}, "gain"),
        ({"gain": 10.5}, "gain"),
        ({"damping": -1.0}, "damping"),
        ({"protection": 1.5}, "protection"),
        ({"protection": [0.5, float("nan")]}, "protection"),
        ({"activation": "sigmoid"}, "activation"),
    ],
)
def test_an_out_of_range_value_names_its_parameter_and_changes_nothing(kwargs, name):
    m = Modulation.neutral(2)
    with pytest.raises(ValueError, match=name):
        m.set(**kwargs)
    assert m.gain.tolist() == [1.0, 1.0] and m.protection.tolist() == [0.0, 0.0] and not m.tanh.any()


def test_as_param_gives_float32_scalars_or_vectors():
    s = as_param("gain", 1.25, 0.0, 10.0, "cpu", lo_open=True)
    assert s.dtype == torch.float32 and s.dim() == 0 and float(s) == 1.25
    v = as_param("gain", torch.tensor([1.0, 2.0], dtype=torch.float64), 0.0, 10.0, "cpu")
    assert v.dtype == torch.float32 and v.tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match="gain"):
        as_param("gain", 0.0, 0.0, 10.0, "cpu", lo_open=True)
