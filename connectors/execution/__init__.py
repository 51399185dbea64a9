"""Trading on a venue account: the ccxt adapter, its rate limiter and typed outcomes, the order
state machine, the pure planner and the order manager that ties them together.

``OrderManager(venue, adapter, store, clock, instance_prefix, on_fill, startup_policy)`` is the
entry point; ``daemon.store.Store`` implements the :class:`ExecutionStore` it writes to.
"""
