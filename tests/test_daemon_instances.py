"""Two instances on one account never touch each other's orders, whatever their names.

Client order ids start with ``instance_prefix(instance)`` (a stem of the name and a hash of
all of it): a cut of the name to 12 characters gave ``bera_mm_<tag>`` to both names below, and
the second instance's start-up ("cancel my leftovers") cancelled the first one's quotes.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from connectors.paper import PaperExchange
from daemon.app import Daemon
from tests.fixtures.daemon import in_process_daemon, own_open_ids, running


async def test_a_second_instance_whose_name_shares_a_long_stem_leaves_the_first_ones_orders(
    tmp_path: Path, paper_exchange: PaperExchange, redis_url: str
) -> None:
    tag = uuid.uuid4().hex[:4]  # Redis keys of this run only (names are at most 16 characters)
    first, first_notes = in_process_daemon(
        Daemon, tmp_path, paper_exchange, redis_url, instance=f"bera-mm-{tag}-1"
    )
    second, second_notes = in_process_daemon(
        Daemon, tmp_path, paper_exchange, redis_url, instance=f"bera-mm-{tag}-2"
    )
    async with running(first):
        await first_notes.wait_for(lambda n: n.get("READY") == "1")
        assert all(own_open_ids(paper_exchange, first.instance).values())
        async with running(second):
            await second_notes.wait_for(lambda n: n.get("READY") == "1")
            theirs = own_open_ids(paper_exchange, second.instance)
            assert all(theirs.values())
            ours = own_open_ids(paper_exchange, first.instance)
            assert all(ours.values())
            assert not set().union(*ours.values()) & set().union(*theirs.values())
            # the second one's start-up found no leftovers of its own: the first one's are not
            for venue in ("alpha", "beta"):
                manager = second.venues[venue].orders
                assert manager is not None and manager.stats.leftovers_cancelled == 0
