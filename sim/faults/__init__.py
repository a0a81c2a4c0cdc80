"""Faults as data: crash, partition, isolate, degrade, churn, Byzantine behaviours, clock skew.

- :mod:`sim.faults.spec`: the ``[[faults]]`` models and their checks;
- :mod:`sim.faults.injector`: schedules faults on a simulation;
- :mod:`sim.faults.byzantine`: Byzantine behaviours and honest nodes' block checks;
- :mod:`sim.faults.sync`: catch-up of rejoining nodes (block sync, its cost);
- :mod:`sim.faults.recovery`: detection and recovery times from the result tables.
"""
