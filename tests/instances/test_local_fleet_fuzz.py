"""The seeded fleet fuzz (:mod:`tests.support.fleetfuzz`): two ``wopibridge`` processes on one
folder and one redis-server, interleaved PutFile, RenameFile, DeleteFile, Lock and Unlock.

``FLEET_FUZZ_OPS`` raises the number of operations (the default keeps CI short) and
``FLEET_FUZZ_SEED`` picks another seed; the same seed sends the same plan.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.fleet import local_fleet
from tests.support.fleetfuzz import FleetFuzz
from tests.support.procs import RedisServer


async def test_fleet_fuzz_keeps_every_save_where_its_id_says(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    operations = int(os.environ.get("FLEET_FUZZ_OPS", "800"))
    seed = int(os.environ.get("FLEET_FUZZ_SEED", "2406"))
    with local_fleet(tmp_path / "fleet", redis_server.url, data) as fleet:
        tally = await FleetFuzz(fleet, data, seed, operations).run()
    print(f"fleet fuzz: seed {seed}, {tally.operations} operations, {tally.statuses}")
    assert tally.operations >= operations
