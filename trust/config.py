"""One base for every experiment's frozen config: built from a dict (CLI arguments or a stored
``config.json``) and written back to one, so a run directory records everything that determined it."""

from __future__ import annotations

from dataclasses import asdict, fields


class Config:
    """Mix into a frozen dataclass. ``from_dict`` keeps only the dataclass's fields (argparse adds others)
    and turns JSON lists back into tuples for tuple fields, so ``from_dict(c.to_dict()) == c``."""

    @classmethod
    def from_dict(cls, d: dict):
        kinds = {f.name: str(f.type) for f in fields(cls)}
        return cls(**{k: tuple(v) if kinds[k].startswith("tuple") and v is not None else v
                      for k, v in d.items() if k in kinds})

    def to_dict(self) -> dict:
        return asdict(self)
