"""``epinet-bench diagnose``: EpiNet's memory, losses and recall recorded during one run.

* ``probe``    the Avalanche plugin that records (composition, salience, loss split, recall,
               and the measurements around each end-of-experience re-encoding);
* ``run``      the diagnosed run on the validation split, its tables and summary;
* ``figures``  its figure.

Results committed from it, and what they show: results/diagnostics/README.md.
"""
