import math
import time

import pytest
import torch

from epinet import LogicalClock, WallClock, decayed_salience, make_clock


def test_decay_is_r0_times_exp_minus_alpha_age():
    r0 = torch.tensor([2.0, 3.0])
    tau = torch.tensor([4.0, 1.0], dtype=torch.float64)
    out = decayed_salience(r0, tau, now=5.0, alpha=0.5)
    torch.testing.assert_close(out, torch.tensor([2.0 * math.exp(-0.5), 3.0 * math.exp(-2.0)]))
    assert out.dtype == torch.float32


def test_alpha_zero_turns_decay_off():
    r0 = torch.tensor([0.3, 7.0])
    tau = torch.tensor([0.0, 1e6], dtype=torch.float64)
    assert torch.equal(decayed_salience(r0, tau, now=2e6, alpha=0.0), r0)


def test_wall_clock_ages_are_resolved_to_the_second():
    # float32 timestamps cannot tell 10 s apart near time.time() (the notebook's Δτ = 0 bug).
    now = time.time()
    tau = torch.tensor([now - 10.0], dtype=torch.float64)
    out = decayed_salience(torch.tensor([1.0]), tau, now=now, alpha=0.1)
    torch.testing.assert_close(out, torch.tensor([math.exp(-1.0)]))


def test_logical_clock_counts_ticks_and_round_trips():
    clock = LogicalClock()
    for _ in range(3):
        clock.tick()
    assert float(clock.now()) == 3.0
    restored = LogicalClock()
    restored.load_state_dict(clock.state_dict())
    assert float(restored.now()) == 3.0


def test_wall_clock_reads_time_and_still_counts_ticks():
    clock = WallClock()
    before = time.time()
    clock.tick()
    assert before <= clock.now() <= time.time()
    assert int(clock.ticks) == 1


def test_unknown_clock_is_rejected():
    with pytest.raises(ValueError, match="unknown clock 'sundial'; known: logical, wall"):
        make_clock("sundial")
