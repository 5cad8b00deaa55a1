"""Start-up's heap is frozen once the lifespan has started: full collections set off by
requests do not walk it again and again."""

from __future__ import annotations

import gc

from tests.unit.api.asgi import running


async def test_the_lifespan_freezes_what_start_up_made() -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    try:
        async with running() as app:
            assert gc.get_freeze_count() > 0
            assert app.state.runtime is not None
    finally:
        gc.unfreeze()
