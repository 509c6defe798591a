"""Benchmarks for backchannel-aware barge-in.

Run ``python -m bench <subcommand> ...``:

* ``text FILE.tsv [--json] [--errors]``: score transcript-level strategies
  (our classifier and the baselines) on a labelled TSV (``bench.text``).
* ``stt``, ``audio``, ``cost``: speech-to-text, end-to-end audio and cost
  benchmarks (``bench.stt``, ``bench.audio``, ``bench.cost``), imported lazily.

Only the standard library is used here; the ``ours`` strategy imports
``pipecat_softack`` on demand.
"""
