"""The scenario schema: what a user writes in ``experiments/*.toml``.

Every table is a pydantic model that rejects unknown keys; every quantity
carries its unit in its name. :func:`load_scenario` reads a TOML file, applies
``--set dotted.key=value`` overrides and validates everything before anything
runs, raising one :class:`~sim.errors.ScenarioError` that lists every problem.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    SerializeAsAny,
    ValidationError,
    field_validator,
    model_validator,
)

from sim.consensus.base import ProtocolParams, get_protocol, protocol_names
from sim.errors import ScenarioError
from sim.faults.spec import FAULT_KINDS, FaultSpec, check_faults
from sim.network.topology import TOPOLOGIES
from sim.schema import StrictModel
from sim.workload.settings import WorkloadKeys, workload_problems
from sim.workload.types import TX_TYPES

__all__ = [
    "MetricsConfig",
    "NetworkConfig",
    "NodeConfig",
    "Scenario",
    "SweepConfig",
    "WorkloadConfig",
    "apply_overrides",
    "load_scenario",
    "parse_scenario",
    "sweep_point_raw",
]


class NetworkConfig(StrictModel):
    """``[network]``: how many nodes, where they are, how links behave."""

    nodes: int = Field(16, ge=1, le=100_000, description="number of nodes")
    topology: str = Field("regional", description="topology builder (hcsim list topologies)")
    cities: list[str] | None = Field(
        None, description="cities of city_rtt_ms.csv used by regional/scale_free; None = all 10"
    )
    latency_s: float = Field(0.025, ge=0, description="one-way delay for full_mesh, scale for random_geometric")
    # Same availability-zone pair RTT is 0.6 to 2.9 ms (IBM Cloud, shared/reference).
    intra_city_delay_s: float = Field(0.001, ge=0, description="one-way delay inside one city")
    degree: int = Field(4, ge=1, description="target peer degree for scale_free and random_geometric")
    jitter_s: float = Field(0.0, ge=0, description="extra delay per message, uniform on [0, jitter_s]")
    # US ONC recommended minimum for a hospital: 100 Mbps (shared/reference).
    bandwidth_bps: float = Field(100e6, gt=0, description="uplink bandwidth of every node, bits/s")
    loss_rate: float = Field(0.0, ge=0, lt=1, description="probability a message is lost")
    mode: Literal["message", "phase", "auto"] = Field(
        "message",
        description="message: every message is an event; phase: all-to-all phases and gossip computed "
        "with numpy by protocols that support it; auto: phase from phase_mode_min_nodes up",
    )
    phase_mode_min_nodes: int = Field(64, ge=1, description="with mode = auto, use phase mode from this many nodes")

    @field_validator("topology")
    @classmethod
    def _known_topology(cls, value: str) -> str:
        if value not in TOPOLOGIES:
            raise ValueError(f"unknown topology {value!r}{_did_you_mean(value, TOPOLOGIES)}; known: {', '.join(sorted(TOPOLOGIES))}")
        return value


class NodeConfig(StrictModel):
    """``[node]``: CPU and mempool of every node.

    CPU costs default to measurements on one vCPU with OpenSSL 3 (shared/reference):
    Ed25519 sign 23 us, verify 69 us, SHA-256 about 1.8 GB/s.
    """

    cores: int = Field(1, ge=1, le=256, description="CPU cores serving verification and execution")
    sign_s: float = Field(23e-6, ge=0, description="CPU time to sign one message, seconds")
    verify_s: float = Field(69e-6, ge=0, description="CPU time to verify one signature, seconds")
    hash_rate_bps: float = Field(1.8e9 * 8, gt=0, description="SHA-256 throughput, bits/s")
    execute_scale: float = Field(1.0, ge=0, description="multiplier on every transaction type's execute_s")
    cpu_time: Literal["fixed", "exponential"] = Field(
        "fixed", description="service-time law: fixed costs, or exponential with that mean"
    )
    mempool_capacity_tx: int = Field(100_000, ge=1, description="mempool bound; arrivals beyond it are rejected")


class WorkloadConfig(WorkloadKeys):
    """``[workload]``: what clients submit, how often and where.

    The healthcare keys (population, roles, clients, arrival shapes) are inherited
    from :class:`sim.workload.settings.WorkloadKeys`.
    """

    rate_tps: float = Field(200.0, ge=0, description="total arrival rate over all origins, transactions/s")
    arrival: Literal["poisson", "diurnal", "bursty", "trace"] = Field(
        "poisson", description="arrival process: poisson, diurnal (hourly multipliers), bursty (2-state MMPP), trace (CSV)"
    )
    mix: dict[str, float] = Field(default_factory=lambda: {"claim": 1.0}, description="type -> weight")
    origins: Literal["all"] | list[int] = Field("all", description='"all" nodes, or a list of node ids')

    @field_validator("mix")
    @classmethod
    def _known_types(cls, mix: dict[str, float]) -> dict[str, float]:
        for name, weight in mix.items():
            if name not in TX_TYPES:
                raise ValueError(f"unknown transaction type {name!r}{_did_you_mean(name, TX_TYPES)}; known: {', '.join(sorted(TX_TYPES))}")
            if weight < 0:
                raise ValueError(f"weight of {name!r} is {weight}; weights must be >= 0")
            if TX_TYPES[name].generated and weight > 0:
                raise ValueError(f"{name!r} is sent by the system in reaction to other transactions; it cannot be in the mix")
        if not mix or sum(mix.values()) <= 0:
            raise ValueError("mix needs at least one type with a positive weight")
        return mix

    @model_validator(mode="after")
    def _trace_given(self) -> WorkloadConfig:
        if (self.arrival == "trace") != (self.trace is not None):
            raise ValueError("arrival = 'trace' and a trace file go together: set both or neither")
        return self


class MetricsConfig(StrictModel):
    """``[metrics]``: what is recorded."""

    enabled: bool = Field(True, description="record per-transaction and per-block tables")
    throughput_bin_s: float = Field(1.0, gt=0, description="bin width of the throughput-over-time series")
    stall_after_s: float = Field(
        5.0, gt=0, description="a run is 'stalled' if load was offered but nothing committed in its last stall_after_s seconds"
    )


class SweepConfig(StrictModel):
    """``[sweep]``: run the scenario at every point of a grid, each point ``replications`` times.

    Keys are dotted scenario keys (``"network.nodes"``; unquoted TOML dotted keys, which
    TOML nests as tables, are flattened back). A point sets one value of every ``grid``
    key (the cartesian product, first key slowest) and one row of the ``zip`` lists
    (all of equal length, varied together). Seeds come from replications, so ``seed``
    cannot be swept.
    """

    grid: dict[str, list[Any]] = Field(default_factory=dict, description="dotted key -> values (cartesian product)")
    zip: dict[str, list[Any]] = Field(default_factory=dict, description="dotted key -> values, varied together")
    replications: int = Field(1, ge=1, le=10_000, description="runs per point, seeds derived from the root seed")

    @field_validator("grid", "zip", mode="before")
    @classmethod
    def _flatten(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            return value
        flat: dict[str, Any] = {}

        def walk(prefix: str, table: Mapping[str, Any]) -> None:
            for key, item in table.items():
                dotted = f"{prefix}.{key}" if prefix else str(key)
                if isinstance(item, Mapping):
                    walk(dotted, item)
                else:
                    flat[dotted] = item

        walk("", value)
        return flat

    @model_validator(mode="after")
    def _consistent(self) -> SweepConfig:
        problems = [f"{k}: needs at least one value" for k, v in {**self.grid, **self.zip}.items() if not v]
        problems += [f"{k}: the seed comes from replications; it cannot be swept" for k in {**self.grid, **self.zip} if k == "seed"]
        problems += [f"{k}: in both grid and zip" for k in self.grid if k in self.zip]
        lengths = {k: len(v) for k, v in self.zip.items()}
        if len(set(lengths.values())) > 1:
            problems.append(f"zip lists must have equal lengths, got {lengths}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def points(self) -> list[dict[str, Any]]:
        """Every point as ``{dotted key: value}``: grid product (first key slowest) x zip rows."""
        import itertools

        rows = [dict(zip(self.zip, values)) for values in zip(*self.zip.values())] or [{}]
        return [
            {**dict(zip(self.grid, combo)), **row}
            for combo in itertools.product(*self.grid.values())
            for row in rows
        ]


class Scenario(StrictModel):
    """One experiment: everything needed to run it, with units in every name."""

    name: str = Field(..., pattern=r"^[A-Za-z0-9_.-]+$", description="names the results folder")
    description: str = ""
    duration_s: float = Field(60.0, gt=0, description="simulated time, seconds")
    warmup_s: float = Field(0.0, ge=0, description="start of the measured window, seconds")
    seed: int = Field(1, ge=0, description="root seed of every random stream")
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    node: NodeConfig = Field(default_factory=NodeConfig)
    protocol: SerializeAsAny[ProtocolParams] = Field(default_factory=lambda: {"name": "raft"})  # type: ignore[arg-type]
    workload: WorkloadConfig = Field(default_factory=WorkloadConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    faults: list[FaultSpec] = Field(default_factory=list, description="[[faults]] entries (hcsim list faults)")
    strict_faults: bool = Field(
        False, description="reject faults that exceed what the protocol tolerates (crashed, cut off or Byzantine at once)"
    )
    sweep: SweepConfig | None = Field(None, description="grid and replications for hcsim sweep; ignored by hcsim run")

    @field_validator("protocol", mode="before")
    @classmethod
    def _protocol_params(cls, value: Any) -> Any:
        if type(value) is ProtocolParams:  # the default: becomes the named protocol's own Params
            value = value.model_dump()
        if isinstance(value, Mapping):
            name = value.get("name", "raft")
            try:
                protocol = get_protocol(name)
            except KeyError:
                raise ValueError(
                    f"unknown protocol {name!r}{_did_you_mean(str(name), protocol_names())}; known: {', '.join(protocol_names())}"
                ) from None
            return protocol.Params.model_validate(dict(value))
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> Scenario:
        problems: list[str] = []
        if self.warmup_s >= self.duration_s:
            problems.append(f"warmup_s = {self.warmup_s} must be less than duration_s = {self.duration_s}")
        n = self.network.nodes
        if isinstance(self.workload.origins, list):
            bad = [i for i in self.workload.origins if not 0 <= i < n]
            if bad:
                problems.append(f"workload.origins has node ids {bad} outside 0..{n - 1}")
            if not self.workload.origins:
                problems.append("workload.origins is an empty list; give node ids or \"all\"")
        problems += workload_problems(self.workload, n)
        if self.network.cities is not None:
            from sim.network.topology import load_city_rtt_ms

            known = load_city_rtt_ms()[0]
            unknown = [c for c in self.network.cities if c not in known]
            if unknown:
                problems.append(f"network.cities has unknown cities {unknown}; known: {', '.join(known)}")
        problems += [f"protocol: {p}" for p in get_protocol(self.protocol.name).check(self.protocol, n)]
        if not problems:
            problems += check_faults(self)
        if problems:
            raise ValueError("\n".join(problems))  # parse_scenario lists them one per line
        return self

    def resolved(self) -> dict[str, Any]:
        """Every setting with defaults filled in, as plain JSON-able data."""
        return self.model_dump(mode="json")


# --------------------------------------------------------------------- loading


def _did_you_mean(word: str, candidates: Sequence[str] | Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _parse_value(text: str) -> Any:
    """A ``--set`` value as TOML (numbers, booleans, lists, quoted strings), else a bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str] | Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of ``raw`` with dotted-key overrides applied.

    Args:
        raw: the scenario as parsed from TOML.
        overrides: ``["network.nodes=32", ...]`` strings, or a mapping of dotted keys to values.

    Raises:
        ScenarioError: for an override without ``=`` or one that descends into a non-table.
    """
    import copy

    result = copy.deepcopy(raw)
    items: list[tuple[str, Any]]
    if isinstance(overrides, Mapping):
        items = list(overrides.items())
    else:
        items = []
        for text in overrides:
            key, sep, value = text.partition("=")
            if not sep or not key.strip():
                raise ScenarioError([f"override {text!r} must look like dotted.key=value"], "<--set>")
            items.append((key.strip(), _parse_value(value.strip())))
    for key, value in items:
        parts = key.split(".")
        table = result
        for depth, part in enumerate(parts[:-1]):
            nxt = table.setdefault(part, {})
            if not isinstance(nxt, dict):
                where = ".".join(parts[: depth + 1])
                raise ScenarioError([f"override {key}: {where} is a value, not a table"], "<--set>")
            table = nxt
        table[parts[-1]] = value
    return result


def _model_at(loc: Sequence[Any], raw: Mapping[str, Any]) -> type[StrictModel] | None:
    """The model class that owns the field at ``loc`` (for 'did you mean' hints)."""
    model: Any = Scenario
    data: Any = raw
    loc = list(loc)
    if len(loc) >= 3 and loc[0] == "faults" and isinstance(loc[1], int):
        # faults.<index>.<kind>.<key>: the model is the one of that kind
        return FAULT_KINDS.get(str(loc[2])) if len(loc) == 3 else None
    for part in loc:
        if model is Scenario and part == "protocol":
            name = data.get("protocol", {}).get("name", "raft") if isinstance(data, Mapping) else "raft"
            try:
                model = get_protocol(name).Params
            except KeyError:
                return None
        elif isinstance(model, type) and issubclass(model, StrictModel) and part in model.model_fields:
            annotation = model.model_fields[part].annotation
            model = annotation if isinstance(annotation, type) and issubclass(annotation, StrictModel) else None
        else:
            return None
        data = data.get(part, {}) if isinstance(data, Mapping) else {}
        if model is None:
            return None
    return model


def _dotted(loc: Sequence[Any]) -> str:
    """A location as users write it: ``faults[0] (crash).at_s`` rather than ``faults.0.crash.at_s``."""
    parts = [str(p) for p in loc]
    if len(parts) >= 2 and parts[0] == "faults" and isinstance(loc[1], int):
        head = f"faults[{loc[1]}]" + (f" ({parts[2]})" if len(parts) >= 3 else "")
        return ".".join([head, *parts[3:]])
    return ".".join(parts)


def _describe(error: Mapping[str, Any], raw: Mapping[str, Any]) -> str:
    loc = [str(p) for p in error["loc"]]
    field = _dotted(error["loc"]) or "<scenario>"
    kind = error["type"]
    if kind == "extra_forbidden":
        owner = _model_at(error["loc"][:-1], raw)
        allowed = sorted(owner.model_fields) if owner else []
        hint = _did_you_mean(loc[-1], allowed)
        where = _dotted(error["loc"][:-1]) or "the top level"
        return f"{field}: unknown key{hint}; allowed in {where}: {', '.join(allowed)}"
    if kind == "missing":
        return f"{field}: required, but missing"
    if kind in {"union_tag_invalid", "union_tag_not_found"} and loc and loc[0] == "faults":
        tag = (error.get("ctx") or {}).get("tag")
        known = ", ".join(FAULT_KINDS)
        if kind == "union_tag_not_found":
            return f"{field}.kind: required, but missing; one of {known} (hcsim list faults)"
        return f"{field}.kind = {tag!r}: unknown fault kind{_did_you_mean(str(tag), FAULT_KINDS)}; known: {known}"
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind in {"value_error", "assertion_error"}:
        return f"{field}: {message}" if loc else message
    return f"{field} = {error.get('input')!r}: {message}"


def parse_scenario(raw: Mapping[str, Any], source: str = "<scenario>") -> Scenario:
    """Validate a scenario given as a mapping; raise :class:`ScenarioError` listing every problem.

    With a ``[sweep]`` table, every point's scenario (see :func:`sweep_point_raw`) is
    validated too, so a typo'd grid key or a bad grid value fails here, before anything runs.
    """
    try:
        scenario = Scenario.model_validate(dict(raw))
    except ValidationError as exc:
        raise ScenarioError([line for e in exc.errors() for line in _describe(e, raw).split("\n")], source) from None
    if scenario.sweep is not None:
        points = scenario.sweep.points()
        failing: dict[str, list[str]] = {}  # problem -> points that have it
        for point in points:
            point_raw = sweep_point_raw(raw, point)
            try:
                Scenario.model_validate(point_raw)
            except ValidationError as exc:
                where = "{" + ", ".join(f"{k}={v!r}" for k, v in point.items()) + "}"
                for e in exc.errors():
                    failing.setdefault(_describe(e, point_raw), []).append(where)
        if failing:
            raise ScenarioError(
                [
                    f"sweep, {'every point' if len(at) == len(points) else 'point ' + at[0] + (f' and {len(at) - 1} more' if len(at) > 1 else '')}: {problem}"
                    for problem, at in failing.items()
                ],
                source,
            )
    return scenario


def sweep_point_raw(raw: Mapping[str, Any], point: Mapping[str, Any]) -> dict[str, Any]:
    """One sweep point's scenario as written: ``raw`` without ``[sweep]``, point keys set.

    Built from the scenario as written (not with defaults filled in), so a point that
    switches ``protocol.name`` gets the new protocol's own defaults.
    """
    base = {k: v for k, v in raw.items() if k != "sweep"}
    return apply_overrides(base, dict(point))


def read_toml(path: Path) -> dict[str, Any]:
    """A scenario file's raw tables.

    Raises:
        ScenarioError: the file is missing or is not valid TOML.
    """
    if not path.is_file():
        raise ScenarioError([f"scenario file {str(path)!r} does not exist"], str(path))
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError([f"TOML syntax error: {exc}"], str(path)) from None


def load_scenario(
    path: str | Path,
    overrides: Sequence[str] | Mapping[str, Any] = (),
    seed: int | None = None,
) -> Scenario:
    """Read a TOML scenario file, apply overrides (and ``seed``) and validate it.

    Raises:
        ScenarioError: missing file, TOML syntax error, or invalid settings.
    """
    path = Path(path)
    raw = apply_overrides(read_toml(path), overrides)
    if seed is not None:
        raw["seed"] = seed
    return parse_scenario(raw, str(path))
