"""A node: CPU, mempool, ledger and its protocol, seen through a NodeContext."""
