"""What a remedy is (its kind and parameters), and the options that choose them for ``audit-client
remediate``; the rewrites themselves are `rewrites`, which loads ONNX (this module does not: the CLI's flags
are made from it at start-up)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import InputError
from .options import named_options, option

REMEDIES = ("blur", "input-blur", "shift-average")
BINOMIAL = {3: [1, 2, 1], 5: [1, 4, 6, 4, 1]}  # a binomial low-pass's taps, by size
GROUP = "remedies"


@dataclass(frozen=True)
class Remedy:
    """One rewrite: its kind (`REMEDIES`) and parameters. ``size``: the binomial's taps (blur, input-blur);
    ``at``: for blur, "all", "first:K" or the node or output names to rewrite; ``grid``: for shift-average,
    the shifts 0..grid-1 on each axis."""

    kind: str
    size: int = 3
    at: tuple[str, ...] = ("all",)
    grid: int = 2

    def __post_init__(self) -> None:
        if self.kind not in REMEDIES:
            raise InputError(f"unknown remedy {self.kind!r}; choose from {', '.join(REMEDIES)}")
        if self.size not in BINOMIAL:
            raise InputError(f"a blur has 3 or 5 taps, not {self.size}")
        if not 1 <= self.grid <= 4:
            raise InputError(f"a shift grid has 1 to 4 shifts a side, not {self.grid}")

    @property
    def name(self) -> str:
        """The variant's name: its kind and parameters."""
        if self.kind == "blur":
            at = "" if self.at == ("all",) else "-" + "-".join(a.replace(":", "") for a in self.at)
            return f"blur{self.size}{at}"
        return f"input-blur{self.size}" if self.kind == "input-blur" else f"shift-average{self.grid}x{self.grid}"

    def to_json(self) -> dict:
        return {"kind": self.kind, **({"size": self.size} if self.kind != "shift-average" else {}),
                **({"at": list(self.at)} if self.kind == "blur" else {}),
                **({"grid": self.grid} if self.kind == "shift-average" else {})}


@named_options
@dataclass(frozen=True)
class RemedyOptions:
    """Which remedies ``remediate`` tries, and how."""

    remedies: tuple[str, ...] = option(REMEDIES, "a remedy to try; repeat for several", flag="--remedy",
                                       choices=REMEDIES, repeat=True, group=GROUP)
    blur_size: int = option(3, "taps of the binomial low-pass of blur and input-blur (3 or 5)", parse=int,
                            choices=(3, 5), group=GROUP)
    blur_at: tuple[str, ...] = option(("all",), "which subsampling ops blur rewrites: all, first:K, or a node or "
                                      "output name (audit-client layers names them); repeat for several",
                                      repeat=True, group=GROUP, metavar="OP")
    shift_grid: int = option(2, "shift-average's shifts: 0..G-1 pixels on each axis (G x G copies)", parse=int,
                             group=GROUP, metavar="G")
    write: Path | None = option(None, "save the variants here (each an ONNX file, its remedy and preprocessing in "
                                "its metadata), to audit, fine-tune or deploy", parse=Path, group=GROUP,
                                metavar="DIR", default_text="not saved")
    profile: bool = option(False, "also profile each variant layer by layer (audit-client layers): where the "
                           "invariance breaks after the remedy", flag="--layers", group=GROUP)

    def chosen(self) -> list[Remedy]:
        return [Remedy(kind, self.blur_size, self.blur_at, self.shift_grid) for kind in self.remedies]
