"""Just enough of a Flower Grid for a strategy's configure_train: the connected node ids."""

from __future__ import annotations


class LoopbackGrid:
    def __init__(self, nodes: list[int]) -> None:
        self.nodes = nodes

    def get_node_ids(self) -> list[int]:
        return self.nodes
