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

from pydantic import Field, SerializeAsAny, ValidationError, field_validator, model_validator

from sim.consensus.base import ProtocolParams, get_protocol, protocol_names
from sim.errors import ScenarioError
from sim.network.topology import TOPOLOGIES
from sim.schema import StrictModel
from sim.workload.settings import WorkloadKeys, workload_problems
from sim.workload.types import TX_TYPES

__all__ = [
    "MetricsConfig",
    "NetworkConfig",
    "NodeConfig",
    "Scenario",
    "WorkloadConfig",
    "apply_overrides",
    "load_scenario",
    "parse_scenario",
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


class Scenario(StrictModel):
    """One experiment: everything needed to run it, with units in every name."""

    name: str = Field(..., pattern=r"^[A-Za-z0-9_.-]+$", description="names the results folder")
    description: str = ""
    duration_s: float = Field(60.0, gt=0, description="simulated time, seconds")
    warmup_s: float = Field(0.0, ge=0, description="start of the measured window, seconds")
    seed: int = Field(1, ge=0, description="root seed of every random stream")
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    node: NodeConfig = Field(default_factory=NodeConfig)
    protocol: SerializeAsAny[ProtocolParams] = Field(default_factory=ProtocolParams)
    workload: WorkloadConfig = Field(default_factory=WorkloadConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)

    @field_validator("protocol", mode="before")
    @classmethod
    def _protocol_params(cls, value: Any) -> Any:
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
        if problems:
            raise ValueError("; ".join(problems))
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


def _describe(error: Mapping[str, Any], raw: Mapping[str, Any]) -> str:
    loc = [str(p) for p in error["loc"]]
    field = ".".join(loc) or "<scenario>"
    kind = error["type"]
    if kind == "extra_forbidden":
        owner = _model_at(error["loc"][:-1], raw)
        allowed = sorted(owner.model_fields) if owner else []
        hint = _did_you_mean(loc[-1], allowed)
        where = ".".join(loc[:-1]) or "the top level"
        return f"{field}: unknown key{hint}; allowed in {where}: {', '.join(allowed)}"
    if kind == "missing":
        return f"{field}: required, but missing"
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind in {"value_error", "assertion_error"}:
        return f"{field}: {message}" if loc else message
    return f"{field} = {error.get('input')!r}: {message}"


def parse_scenario(raw: Mapping[str, Any], source: str = "<scenario>") -> Scenario:
    """Validate a scenario given as a mapping; raise :class:`ScenarioError` listing every problem."""
    try:
        return Scenario.model_validate(dict(raw))
    except ValidationError as exc:
        raise ScenarioError([_describe(e, raw) for e in exc.errors()], source) from None


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
    if not path.is_file():
        raise ScenarioError([f"scenario file {str(path)!r} does not exist"], str(path))
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError([f"TOML syntax error: {exc}"], str(path)) from None
    raw = apply_overrides(raw, overrides)
    if seed is not None:
        raw["seed"] = seed
    return parse_scenario(raw, str(path))
