"""The strategy kernel in one namespace: the bot step, the order-book twin, the driver, compiled.

The kernel lives in four modules, each with one job:

- :mod:`jiritsu.strategy.step`: what a bot does at a step (``manage``, ``decide``; the ``S_*``
  state and ``O_*`` order records), called by the live tick and by the backtest alike;
- :mod:`jiritsu.strategy.book`: the paper exchange's order book and account as arrays
  (``B_*``, ``A_*``, the ``F_*`` fill log), the backtest's twin of the paper exchange;
- :mod:`jiritsu.strategy.driver`: ``simulate``, one bot over 1-minute bars stepped as the trade
  loop steps it (the ``ACT_*`` action log);
- :mod:`jiritsu.strategy.jit`: ``compiled()``, their numba versions.

The library imports from those modules; this one gathers their names for a script, a notebook
or a test that wants the whole kernel as ``K``.
"""

from __future__ import annotations

from jiritsu.strategy.book import *  # noqa: F403
from jiritsu.strategy.driver import *  # noqa: F403
from jiritsu.strategy.jit import JIT_ORDER as _JIT_ORDER  # noqa: F401
from jiritsu.strategy.jit import compiled  # noqa: F401
from jiritsu.strategy.step import *  # noqa: F403
