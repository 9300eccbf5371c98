"""tune_gc: the start-up heap frozen out of the collector, young collections less often."""

import gc

from framework.runtime import tune_gc


def test_tune_gc_freezes_the_start_up_heap_and_raises_the_young_threshold():
    before = gc.get_threshold()
    try:
        tune_gc(young=12_345)
        assert gc.get_threshold() == (12_345, 50, 1000)
        assert gc.get_freeze_count() > 1000  # everything alive at the call: modules, the pool, strategies
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
