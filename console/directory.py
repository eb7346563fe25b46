"""The data a responder works with: partner services to refer to, and canned
responses in every language with an English gloss. Both are files a region
edits (``console/partners.yml``, ``console/canned/<code>.yml``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

__all__ = ["Canned", "Directory", "Partner"]

FOLDER = Path(__file__).parent


@dataclass(frozen=True)
class Partner:
    id: str
    name: str
    services: tuple[str, ...]
    regions: tuple[str, ...]
    languages: tuple[str, ...]
    populations: tuple[str, ...]
    contact: str


@dataclass(frozen=True)
class Canned:
    id: str
    text: str
    gloss: str


@dataclass(frozen=True)
class Directory:
    partners: dict[str, Partner]
    canned: dict[str, list[Canned]]  # language code → responses

    @classmethod
    def load(cls, folder: Path = FOLDER) -> Directory:
        raw = yaml.safe_load((folder / "partners.yml").read_text(encoding="utf-8"))["partners"]
        partners = {
            p["id"]: Partner(id=p["id"], name=p["name"], services=tuple(p["services"]),
                             regions=tuple(p["regions"]), languages=tuple(p["languages"]),
                             populations=tuple(p["populations"]), contact=str(p.get("contact", "")))
            for p in raw
        }
        canned = {
            path.stem: [Canned(c["id"], c["text"], c["gloss"])
                        for c in yaml.safe_load(path.read_text(encoding="utf-8"))["canned"]]
            for path in sorted((folder / "canned").glob("*.yml"))
        }
        return cls(partners, canned)

    def closing(self, language: str) -> str:
        """The closing message of a conversation handed back to the bot."""
        responses = self.canned.get(language) or self.canned["en"]
        return next(c.text for c in responses if c.id == "closing")
