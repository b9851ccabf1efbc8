"""The numpy core of pytest-rnn: private, may change at any time.

Trees, tolerances and comparison, input validation, the perturbation engine,
chunk schedules and message text. Nothing here imports Keras or a backend:
every module imports only the standard library, numpy and
:mod:`pytest_rnn._config`, so each rule can be tested on numpy arrays alone.
"""
