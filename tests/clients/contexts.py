"""The Flower context a SuperNode gives the ClientApp, built in-process for the client tests."""

from __future__ import annotations

from flwr.app import Context, RecordDict

from common.config import RunConfig


def node_context(
    cfg: RunConfig, node_config: dict[str, int | str], state: RecordDict | None = None
) -> Context:
    """The context of a node with ``node_config`` in a run of ``cfg`` (a fresh state unless
    ``state``: pass the same one to carry a client across rounds)."""
    return Context(
        run_id=1,
        node_id=1,
        node_config=dict(node_config),
        state=RecordDict() if state is None else state,
        run_config=cfg.to_mapping(),
    )
