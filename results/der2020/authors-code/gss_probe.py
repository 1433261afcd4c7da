"""Runs the DER authors' 2020 code for GSS unchanged and logs what its buffer does.

Mammoth at tag ``neurips2020`` (a ``git archive`` of it, with ``utils/main.py``'s ``lecun_fix()``
call removed: no network here) in ``MAMMOTH``; this wraps two methods of its ``utils.gss_buffer.Buffer``
to count, per task: the steps at which the minibatch gate (score c < 1 with a full buffer) opened,
the samples that entered the buffer, and the task each buffer slot's sample came from.
Usage: ``python gss_probe.py --model gss --dataset perm-mnist --buffer_size 200 --load_best_args --seed 0``
"""

import collections
import os
import sys

import numpy as np

MAMMOTH = os.environ.get("MAMMOTH", "/tmp/mammoth")
STEPS_PER_TASK = 469  # ceil(60000 / 128): perm-mnist minibatches per task at batch 128
sys.path.insert(0, MAMMOTH)
os.chdir(MAMMOTH)  # Mammoth puts its working directory on sys.path

import utils.gss_buffer as gss_buffer  # noqa: E402

state = dict(
    calls=0,
    gate_calls=0,
    gate=collections.Counter(),
    full_calls=collections.Counter(),
    entered=collections.Counter(),
    origin=None,
)
original_add, original_reservoir = gss_buffer.Buffer.add_data, gss_buffer.Buffer.functional_reservoir


def functional_reservoir(self, x, y, batch_c, bigX=None, bigY=None, indices=None):  # noqa: N803 (Mammoth's names)
    task = state["calls"] // STEPS_PER_TASK
    if self.num_seen_examples >= self.buffer_size and batch_c < 1:
        state["gate_calls"] += 1  # the gate is open: this sample gets its own score
    idx, score = original_reservoir(self, x, y, batch_c, bigX, bigY, indices)
    if idx >= 0:
        state["entered"][task] += 1
        state["origin"][idx] = task
    return idx, score


def add_data(self, examples, labels=None):
    task = state["calls"] // STEPS_PER_TASK
    if state["origin"] is None:
        state["origin"] = np.full(self.buffer_size, -1)
    if self.num_seen_examples >= self.buffer_size:
        state["full_calls"][task] += 1
    before = state["gate_calls"]
    original_add(self, examples, labels)
    if state["gate_calls"] > before:
        state["gate"][task] += 1
    state["calls"] += 1
    if state["calls"] % STEPS_PER_TASK == 0:
        origin = dict(sorted(collections.Counter(state["origin"].tolist()).items()))
        print(
            f"\nPROBE task {task + 1}: gate open at {state['gate'][task]} of {state['full_calls'][task]} steps"
            f" with a full buffer; samples entered this task {state['entered'][task]};"
            f" buffer slots by task of origin {origin}",
            flush=True,
        )


gss_buffer.Buffer.functional_reservoir, gss_buffer.Buffer.add_data = functional_reservoir, add_data
sys.argv = ["main.py", *sys.argv[1:]]
from utils.main import main  # noqa: E402

main()
