"""Options <-> API messages: derived from the option fields, so every field must map to the message and
back, and nothing in the message may be left unmapped."""
from __future__ import annotations

import pytest

from shiftaudit.server.engine.options import AuditOptions, options_of
from shiftaudit.server.engine.preprocessing import Preprocessing
from shiftaudit.server.wire import (
    options_from_proto,
    options_to_proto,
    preprocessing_from_proto,
    preprocessing_to_proto,
)
from shiftaudit.v1 import audit_service_pb2 as pb


@pytest.mark.parametrize("cls,message", [(AuditOptions, pb.AuditOptions), (Preprocessing, pb.Preprocessing)])
def test_every_option_has_its_message_fields_and_every_message_field_an_option(cls, message):
    mapped = [part for name, opt, _ in options_of(cls) for part in (opt.wire or (name,))]
    assert sorted(mapped) == sorted(message.DESCRIPTOR.fields_by_name)


def test_options_round_trip_exactly():
    options = AuditOptions(protocols=("scale-sweep", "crop"), seed=2**40, canvas=(96, 128), size=40, shift=(-2, 1),
                           pairs_per_image=3, filter="nearest", sweep_pixels=4, sweep_step=0.25,
                           size_sweep=(20, 60, 10), batch=7, strict=True)
    assert options_from_proto(options_to_proto(options)) == options
    assert options_from_proto(pb.AuditOptions()) == AuditOptions()  # nothing set: the defaults


def test_half_of_a_pair_is_refused():
    with pytest.raises(ValueError, match="shift needs all of shift_x, shift_y"):
        options_from_proto(pb.AuditOptions(shift_x=2))


def test_preprocessing_overrides_round_trip():
    overrides = {"mean": (0.5, 0.4, 0.3), "std": (0.2, 0.2, 0.1), "pixel_range": 255.0, "channel_order": "BGR",
                 "output": "probabilities"}
    assert preprocessing_from_proto(preprocessing_to_proto(overrides)) == overrides
    assert preprocessing_from_proto(preprocessing_to_proto({"output": "logits"})) == {"output": "logits"}
