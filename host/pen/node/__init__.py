"""The CTB node: a store behind an HTTP API, kept in step with its peers by
set reconciliation (docs/node.md).

    core.Node      the store, its sync index, the views the API serves (no I/O)
    server         aiohttp app over a Node; serve_in_thread() for tests/tools
    client         NodeClient: blocking HTTP client (sync, bridge, CLI)
    sync           sync_with(node, client): reconcile, then pull and push
"""
