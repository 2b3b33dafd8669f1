"""The bottom layer, below ``theory``: what every layer shares and none owns.

- :mod:`common.errors`: the project's exception types (what the command line reports as
  one line; anything else is a bug and keeps its traceback);
- :mod:`common.files`: the one atomic file writer;
- :mod:`common.results`: the result protocol every result type follows
  (``params``, ``conf_int(alpha=0.05)``, ``summary()``, ``to_dict()``, ``plot(ax=None)``);
- :mod:`common.plotting`: the ``ax=None`` convention in one helper.

It imports nothing from the project and nothing heavy at import time.
"""
