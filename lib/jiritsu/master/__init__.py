"""The master layer: market phase, capital rebalancing, weekly profit saving and snapshots.

- :mod:`jiritsu.master.phase` classifies the index symbol's trend into one of five phases;
- :mod:`jiritsu.master.rebalance` moves capital between the sub-accounts to the phase's shares;
- :mod:`jiritsu.master.profit` sweeps a share of each bot's profit to the main FUND wallet;
- :mod:`jiritsu.master.snapshot` records ``portfolio_history`` for the dashboard;
- :mod:`jiritsu.master.transfers` is the one way they move money: write-ahead ``transfers``
  rows, crash settlement by transfer id, and the lock that serialises master runs.

Importing this package is cheap; the heavy libraries load inside the functions that use them.
"""
