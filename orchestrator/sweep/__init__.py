"""Backtest sweeps: many backtest configs run in isolated, recycled worker processes.

Why a package of its own rather than ``multiprocessing.Pool`` around ``BacktestNode``: a pool
loses everything when one worker dies, hides which run killed it, keeps workers alive until
their memory has crept up, and keeps results in the parent's memory until the very end. Here
each idea is one small module:

- ``keypath``: addressing a value inside a config by a dotted path (``strategies.0.config.x``);
- ``plan``: the runs of a sweep (grid and explicit list) and their stable ids;
- ``spec``: reading a sweep TOML file and validating every run before anything starts;
- ``store``: the durable SQLite results store (one row per run, committed as each run ends);
- ``fingerprint``, ``resume``: the data each stored run read, and what ``--resume`` keeps;
- ``lock``: one sweep at a time per results directory;
- ``messages``, ``worker``, ``parentdeath``: the worker child process and what crosses its pipe;
- ``pool``: starting, recycling and replacing worker processes;
- ``scheduler``: the parent's loop (dispatch, crashes, retries, signals, progress counts);
- ``progress``, ``report``, ``heatmap``: what the person running the sweep sees;
- ``stdout``, ``config_faults``: shared with ``backtest``: an output that may be closed, and
  failures that are config mistakes.

Imports stay lazy here: ``orchestrator --help`` must not pay for the node or SQLite.
"""
