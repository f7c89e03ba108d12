"""The test processes' collector: paused while pytest imports and collects, then frozen.

Collection imports torch, cv2 and every test module and builds the items; a set-up that
spans two hooks (the conftest's import, then the end of collection), so it does not fit
``actiontag.collector.setting_up``'s block.
"""

from __future__ import annotations

import gc


def freeze_collected() -> None:
    """Collect once, freeze what is left, and run the collector again."""
    # Garbage made while the collector was paused must not be frozen for good.
    gc.collect()
    gc.freeze()
    gc.enable()
