"""Trading on a venue account: the ccxt adapter, its rate limiter and typed outcomes, the order
state machine, the pure planner and the order manager that ties them together.

``OrderManager(venue, adapter, store, clock, instance_prefix, on_fill, startup_policy,
on_order_event=...)`` is the entry point (``stop()`` cancels everything it owns, ``detach()``
leaves the orders for an adopting restart); ``client_ids.instance_prefix(instance)`` gives the
prefix for an instance name; ``daemon.store.Store`` implements the :class:`ExecutionStore` it
writes to.
"""
