"""An upper bound on the bytes of an audit's report, known before the audit runs: a server reserves it
against its ``max_state_bytes`` at admission, so that the reports it stores cannot take the node over
the cap it was given (an audit whose report might not fit is refused first, not stored past it).

The report grows with its per-image records: one per image, one entry per unit, a few numbers and a
class name per frame. The frames of an image are bounded by planning its units on an image larger than
any canvas (every size of a size sweep fits); each part of a record is bounded by its longest possible
JSON text (`json.dumps` escapes non-ASCII names, as the report does). The constants are the longest
texts of their fields with room to spare; `tests/engine/test_report_size.py` checks the bound against
real reports of every protocol.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace

from .options import AuditOptions
from .precision import CANDIDATES, PILOT_PAIRS
from .protocols import plan

LARGEST = 1 << 14  # pixels a side: larger than any canvas, so that every planned size fits
BASE = 16_000  # model, config, device, the report's own keys (the labels' summary names a few images)
PER_PROTOCOL = 8_000  # a protocol's summary (estimates, intervals, gates) and its tallies
PER_STRATUM = 1_500  # a stratum's (an embedded size, a confidence bin) summary and tallies
CONFIDENCE_STRATA = 8
PER_IMAGE = 400  # an image's record: its keys, digest, size (plus its name and label)
PER_SKIP = 400  # a skipped image or protocol: its reason (plus the name)
PER_UNIT = 200  # a unit's keys, protocol, index, changes, size
PER_FRAME = 100  # a frame's top-1 index, probability and placement (plus its class name)


def report_bytes_bound(options: AuditOptions, images: Sequence[str], class_names: Sequence[str] | None) -> int:
    """At least the bytes of the JSON report of an audit of ``images`` (their names) with ``options``
    (resolved: a canvas known), whatever the images' sizes and the model's answers."""
    pairs = max(options.pairs_per_image, PILOT_PAIRS, int(CANDIDATES.max())) if options.choose_pairs \
        else options.pairs_per_image
    planning = replace(options, pairs_per_image=pairs)
    units = frames = strata = 0
    for protocol in options.protocols:
        planned = plan(protocol, (LARGEST, LARGEST), "0" * 64, planning)
        units += len(planned)
        frames += sum(len(u.frames) for u in planned)
        strata += len({u.param for u in planned}) + CONFIDENCE_STRATA
    longest_class = max((len(json.dumps(n)) for n in class_names), default=8) if class_names else 8
    longest_name = max((len(json.dumps(n)) for n in images), default=2)
    per_image = (PER_IMAGE + longest_name + longest_class + units * PER_UNIT + frames * (PER_FRAME + longest_class)
                 + len(options.protocols) * (PER_SKIP + longest_name))
    return (BASE + 20 * longest_name + len(options.protocols) * PER_PROTOCOL + strata * PER_STRATUM
            + len(images) * per_image)
