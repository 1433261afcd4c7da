"""``epinet-bench perf``: how fast the harness and EpiNet are, on the machine it runs on.

A benchmark, not a timed test. Every comparison runs its sides in one process, interleaved
(A, B, A, B, ...), after one untimed warm-up round, and reports the median of each side
over ``--repeats``. One module per measurement, each a small typed object that renders its
own table rows:

(a) ``harness``: one epoch of Naive through the harness vs a plain PyTorch loop;
(b) ``per_experience``: EpiNet vs reservoir replay, training time of one experience; and
    ``steps``: the same on bare training steps (``EpiNetModel.observe``), by phase;
(c) ``recall``: recall latency against memories of 100 ... 100,000 items;
(d) ``admission``: admission of a batch into a full memory, and EpiNet's after-step bookkeeping;
(e) ``sweep``: wall time and peak RSS of the ``quick.yaml`` sweep with ``--jobs 2``;
(f) ``ray_overhead``: the same sweep on an embedded Ray (``--backend ray --jobs 2``) against (e);
(g) ``tracking_cost``: what ``--log`` costs, per tracker: steady state per experience, fixed per run;
(h) ``online``: the online protocol at batch 10 (Naive, one ``train`` call per mini-experience)
    vs a plain PyTorch loop, time per sample.

With ``--device cuda`` every measurement trains on the GPU (timers wait for its queued work);
``perf.json`` names the device either way.

``command`` takes them in turn and writes ``<out>/perf.json`` and ``<out>/perf.md``.
Timings are only as good as the machine is quiet: other processes on a 2-core machine
inflate and scatter them (the JSON keeps every sample and the load average).
"""

from benchmarks.perf.command import run_perf, write_results

__all__ = ["run_perf", "write_results"]
