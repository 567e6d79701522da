"""Training over a device mesh: data-parallel and component-parallel, on JAX's own runtime.

Two modes, both expressed as sharding annotations that ``jax.jit`` compiles (no hand-written
collectives; the compiler inserts the all-reduces and all-gathers):

- ``"data"``: every mini-batch is split over the mesh, parameters and optimiser state are
  replicated, and the gradient's sum over the batch becomes an all-reduce.
- ``"components"``: the leading K axis of ``params["components"]`` (and of the matching
  Adam moments and batch-norm state) is split over the mesh, so each device evaluates and
  updates its own K / n_devices flows; the posterior network and prior are replicated, the
  batch is replicated, and the (n, K) log-densities meet in the logsumexp over K. K must be a
  multiple of the device count: anything else is a ``ValueError`` (by design, no padding).

Example:
    >>> from vmonf_jax import parallel
    >>> spec = parallel.Parallel("data", parallel.make_mesh(4))      # or "components"
    >>> res = fit(key, x, config, parallel=spec)                      # or parallel="data", mesh=4
    >>> VMoNF(n_components=8, parallel="components", devices=4).fit(X)

Several hosts: call ``initialize_distributed`` first on every host, read ``host_rows`` of
the data on each, and ``gather_rows`` them (see docs/distributed.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

MODES = ("data", "components")
AXIS = "devices"


def _auto_types(n: int):
    """``(AxisType.Auto,) * n`` where this JAX has axis types, else None."""
    axis_type = getattr(jax.sharding, "AxisType", None)
    return None if axis_type is None else (axis_type.Auto,) * n


def _as_auto(mesh: Mesh) -> Mesh:
    """The same mesh with every axis in Auto mode (sharding propagated by the compiler)."""
    types = _auto_types(len(mesh.axis_names))
    if types is None or tuple(getattr(mesh, "axis_types", types)) == types:
        return mesh
    return Mesh(mesh.devices, mesh.axis_names, axis_types=types)


def make_mesh(devices: int | Sequence | None = None, axis_name: str = AXIS) -> Mesh:
    """Make a 1-D mesh named ``axis_name``.

    Its devices: all of them (None), the first ``devices`` of ``jax.devices()`` (an int),
    or the given device objects.

    Raises:
        ValueError: more devices asked for than exist, or fewer than one.
    """
    available = jax.devices()
    if devices is None:
        devs = list(available)
    elif isinstance(devices, int | np.integer):
        if not 1 <= int(devices) <= len(available):
            raise ValueError(f"asked for {int(devices)} devices but {len(available)} are "
                             f"available ({available[0].platform}); on CPU, set XLA_FLAGS="
                             "--xla_force_host_platform_device_count=N before importing jax "
                             "to test with N fake devices")
        devs = list(available[: int(devices)])
    else:
        devs = list(devices)
        if not devs:
            raise ValueError("devices is empty")
    try:
        return jax.make_mesh((len(devs),), (axis_name,), axis_types=_auto_types(1),
                             devices=devs)
    except (AttributeError, TypeError):  # older JAX: no make_mesh / axis_types / devices=
        return Mesh(np.asarray(devs), (axis_name,))


def as_mesh(mesh) -> Mesh:
    """A ``Mesh`` (made Auto) from a Mesh, a device count, a device list or None (all)."""
    return _as_auto(mesh) if isinstance(mesh, Mesh) else make_mesh(mesh)


@dataclass(frozen=True)
class Parallel:
    """How to spread training over devices.

    ``mode`` is "data" or "components"; ``mesh`` is a ``jax.sharding.Mesh``, a device count,
    a device list, or None for all devices.

    Every axis of the mesh is used for the one split (a 2-D mesh acts as its flattened size).
    """

    mode: str = "data"
    mesh: Mesh | int | Sequence | None = None

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"parallel mode must be one of {MODES}, got {self.mode!r}")
        object.__setattr__(self, "mesh", as_mesh(self.mesh))

    # -- geometry -------------------------------------------------------------------------
    @property
    def n_devices(self) -> int:
        """Number of devices in the mesh."""
        return int(self.mesh.size)

    @property
    def axes(self):
        """The mesh axis name (a tuple of them for a multi-axis mesh) to split over."""
        names = tuple(self.mesh.axis_names)
        return names[0] if len(names) == 1 else names

    def check(self, n_components: int) -> None:
        """Component-parallel needs K divisible by the device count (a clear ValueError)."""
        if self.mode == "components" and int(n_components) % self.n_devices:
            raise ValueError(
                f"component-parallel training splits the K axis evenly, but n_components="
                f"{int(n_components)} is not divisible by the {self.n_devices} devices of "
                f"the mesh; use a K that is a multiple of {self.n_devices}, fewer devices, "
                "or parallel='data'")

    # -- shardings ------------------------------------------------------------------------
    def replicated(self) -> NamedSharding:
        """Fully replicated over the mesh."""
        return NamedSharding(self.mesh, P())

    def split(self) -> NamedSharding:
        """Leading axis split over the mesh."""
        return NamedSharding(self.mesh, P(self.axes))

    def batch_sharding(self) -> NamedSharding:
        """Where a mini-batch lives: split in data mode, replicated in component mode."""
        return self.split() if self.mode == "data" else self.replicated()

    def shardings(self, tree, stacked: bool = False):
        """Return a ``NamedSharding`` per leaf of ``tree`` (params, optimiser state, ...).

        In component mode a leaf is split on its leading axis when its path passes through
        a ``"components"`` key, or everywhere with ``stacked=True`` (the batch-norm state,
        whose every leaf has a leading K axis), provided that axis divides evenly over the
        devices; the rest is replicated. In data mode everything is replicated.
        """
        rep, split = self.replicated(), self.split()
        if self.mode != "components":
            return jax.tree.map(lambda _: rep, tree)

        def pick(path, leaf):
            ndim = getattr(leaf, "ndim", 0)
            under = stacked or any(getattr(k, "key", None) == "components" for k in path)
            ok = ndim >= 1 and leaf.shape[0] % self.n_devices == 0
            return split if under and ok else rep

        return jax.tree_util.tree_map_with_path(pick, tree)

    def carry_shardings(self, carry):
        """Shardings of a train carry ``(params, opt_state, flow state)``."""
        params, opt_state, state = carry
        return (self.shardings(params), self.shardings(opt_state),
                self.shardings(state, stacked=True))

    # -- placing --------------------------------------------------------------------------
    def place_carry(self, carry):
        """``device_put`` a train carry onto the mesh (a no-op for what is already there)."""
        return jax.device_put(carry, self.carry_shardings(carry))

    def constrain_carry(self, carry):
        """Inside ``jit``: pin a carry to its shardings."""
        return jax.lax.with_sharding_constraint(carry, self.carry_shardings(carry))

    def constrain_batch(self, batch):
        """Inside ``jit``: split (data mode) or replicate (component mode) a batch's rows."""
        return jax.lax.with_sharding_constraint(
            batch, jax.tree.map(lambda _: self.batch_sharding(), batch))

    def replicate(self, tree):
        """Every leaf replicated on the mesh: readable with ``np.asarray`` on every host."""
        return jax.device_put(tree, jax.tree.map(lambda _: self.replicated(), tree))

    def constrain_replicated(self, tree):
        """Inside ``jit``: every leaf replicated (for losses/metrics read back on hosts)."""
        return jax.lax.with_sharding_constraint(
            tree, jax.tree.map(lambda _: self.replicated(), tree))


def resolve(parallel=None, mesh=None) -> Parallel | None:
    """Normalise the ``parallel=``/``mesh=`` arguments of ``fit`` into a ``Parallel`` or None.

    ``parallel``: None, "data", "components" or a ``Parallel``. ``mesh``: None, a ``Mesh``,
    a device count or a device list. A mesh alone means data-parallel; a mode alone means
    all devices; neither means no mesh (plain single-device training).
    """
    if parallel is None and mesh is None:
        return None
    if isinstance(parallel, Parallel):
        return parallel if mesh is None else Parallel(parallel.mode, mesh)
    if parallel is not None and not isinstance(parallel, str):
        raise TypeError(f"parallel must be None, a mode string {MODES} or a Parallel, "
                        f"got {type(parallel).__name__}")
    return Parallel(parallel or "data", mesh)


# -- several hosts ------------------------------------------------------------------------
def initialize_distributed(coordinator_address: str | None = None,
                           num_processes: int | None = None, process_id: int | None = None,
                           *, enabled: bool = True, cpu_collectives: str | None = None,
                           **kwargs) -> bool:
    """Join a multi-host JAX job (``jax.distributed.initialize``).

    Call once per process, before any other JAX call. With no arguments JAX auto-detects
    the cluster (SLURM, Open MPI, TPU pods, Kubernetes/GKE); otherwise give
    ``coordinator_address="host:port"`` of process 0, ``num_processes`` and this
    ``process_id``. ``enabled=False`` (or a single process) skips it. Processes that run on
    CPU devices need ``cpu_collectives="gloo"`` (or "mpi") for their cross-host reductions.
    Extra keyword arguments go to ``jax.distributed.initialize`` (e.g. ``local_device_ids``).

    Returns:
        Whether the distributed runtime was started.
    """
    if not enabled or num_processes == 1:
        return False
    if cpu_collectives is not None:
        jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
    jax.distributed.initialize(coordinator_address=coordinator_address,
                               num_processes=num_processes, process_id=process_id, **kwargs)
    return True


def host_rows(n_rows: int, process_index: int | None = None,
              process_count: int | None = None) -> slice:
    """Return the contiguous rows ``[start, stop)`` of ``n_rows`` that this host loads.

    Shares differ by at most one row. ``process_index`` and ``process_count`` default to
    ``jax.process_index()`` and ``jax.process_count()``.

    Raises:
        ValueError: ``process_index`` is outside ``[0, process_count)``.
    """
    i = jax.process_index() if process_index is None else int(process_index)
    n = jax.process_count() if process_count is None else int(process_count)
    if not 0 <= i < n:
        raise ValueError(f"process_index {i} is outside [0, {n})")
    base, extra = divmod(int(n_rows), n)
    start = i * base + min(i, extra)
    return slice(start, start + base + (i < extra))


def host_shard(x, process_index: int | None = None, process_count: int | None = None):
    """This host's rows of ``x`` (any array-like or memory-map with a leading row axis)."""
    return x[host_rows(len(x), process_index, process_count)]


def gather_rows(local) -> np.ndarray:
    """Concatenate every host's rows (in process order) into the full array on every host.

    Used once before ``fit``: the data of these models fit in host memory, and a full copy
    on each host keeps the host-side steps (k-means warm start, validation split, restart
    choice) identical on all hosts. Single-process: returns ``local`` as an array.
    """
    local = np.asarray(local)
    if jax.process_count() == 1:
        return local
    from jax.experimental import multihost_utils

    counts = multihost_utils.process_allgather(np.asarray([local.shape[0]]))
    counts = np.asarray(counts).reshape(-1)
    width = int(counts.max())
    padded = np.zeros((width, *local.shape[1:]), local.dtype)
    padded[: local.shape[0]] = local
    parts = np.asarray(multihost_utils.process_allgather(padded))  # (hosts, width, ...)
    return np.concatenate([parts[i, : int(c)] for i, c in enumerate(counts)])
