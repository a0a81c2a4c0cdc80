"""The figures shared by notebooks and ``hcsim report``/``hcsim run``.

Every function takes tidy tables (never a Simulation), draws on a given
``Axes`` (or a new one) and returns it, so notebooks can compose them. One
module per subject: ``run`` (one run), ``sweeps`` (many runs, validation),
``faults``, ``capacity`` (load over time, capacity searches).
"""

from sim.plots.capacity import (
    capacity_search,
    latency_by_period,
    latency_quantile_by_period,
)
from sim.plots.common import save_figure
from sim.plots.faults import (
    FAULT_ACTION_COLORS,
    down_intervals,
    fault_markers,
    node_downtime,
    recovery_times,
    table_heatmap,
    throughput_by_group,
)
from sim.plots.run import (
    cpu_by_node,
    latency_cdf,
    messages_by_node,
    network_map,
    node_roles,
    overview_figure,
    throughput_over_time,
)
from sim.plots.sweeps import (
    first_crossing,
    metric_vs_parameter,
    scaling_exponent,
    scaling_figure,
    validation_chart,
)

__all__ = [
    "FAULT_ACTION_COLORS",
    "capacity_search",
    "cpu_by_node",
    "down_intervals",
    "fault_markers",
    "first_crossing",
    "latency_by_period",
    "latency_cdf",
    "latency_quantile_by_period",
    "messages_by_node",
    "metric_vs_parameter",
    "network_map",
    "node_downtime",
    "node_roles",
    "overview_figure",
    "recovery_times",
    "save_figure",
    "scaling_exponent",
    "scaling_figure",
    "table_heatmap",
    "throughput_by_group",
    "throughput_over_time",
    "validation_chart",
]
