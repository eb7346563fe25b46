"""Train the Rasa model only when its data or configuration changed.

The model's file name carries a fingerprint of everything it is trained from, so
the server can refuse a stale model, and a cache outside the work tree (keyed by
the same fingerprint, with Rasa's own training cache beside it) lets a fresh
checkout reuse a model trained before instead of training again.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from bot.settings import PROJECT_ROOT, Settings

__all__ = ["CONFIG", "DOMAIN", "fingerprint", "model_path", "train", "training_files"]

CONFIG = PROJECT_ROOT / "config.yml"
DOMAIN = PROJECT_ROOT / "bot" / "domain.yml"
# Our pipeline components: their code shapes the model as much as the data does.
COMPONENTS = [PROJECT_ROOT / "bot" / name
              for name in ("segment.py", "tokenizer.py", "featurizer.py", "classifier.py")]


def training_files() -> list[Path]:
    return sorted((PROJECT_ROOT / "intents").glob("*.yml")) + sorted(
        (PROJECT_ROOT / "bot" / "data").glob("*.yml")
    )


def fingerprint(config: Path = CONFIG) -> str:
    """A hash of the config, the domain, the training data, our pipeline components
    and the Rasa version."""
    import rasa

    digest = hashlib.sha256(rasa.__version__.encode())
    components = COMPONENTS if config == CONFIG else []  # another config uses Rasa's only
    for path in [config, DOMAIN, *components, *training_files()]:
        digest.update(path.relative_to(PROJECT_ROOT).as_posix().encode() + b"\x00")
        digest.update(path.read_bytes() + b"\x00")
    return digest.hexdigest()[:16]


def model_path(settings: Settings, config: Path = CONFIG) -> Path:
    """Our model is ``hotline-<fingerprint>``; one trained from another config (the
    benchmark's ``rasa init`` baseline) is named after that config's file."""
    name = "hotline" if config == CONFIG else config.stem
    return settings.model_dir / f"{name}-{fingerprint(config)}.tar.gz"


def train(settings: Settings, config: Path = CONFIG) -> tuple[Path, str]:
    """Return the current model's path and how it was obtained."""
    target = model_path(settings, config)
    if target.exists():
        return target, "up to date"
    settings.model_dir.mkdir(parents=True, exist_ok=True)
    cached = settings.cache_dir / "models" / target.name
    if cached.exists():
        shutil.copy2(cached, target)
        return target, "restored from cache"

    # Rasa's training cache keys on component names, configs and data, not on code:
    # a cache per version of our components' code keeps a changed tokenizer from
    # reusing what the old one produced.
    code = hashlib.sha256(b"".join(path.read_bytes() for path in COMPONENTS)).hexdigest()[:12]
    os.environ["RASA_CACHE_DIRECTORY"] = str(settings.cache_dir / "rasa" / code)
    from rasa.model_training import train as rasa_train

    result = rasa_train(
        domain=str(DOMAIN),
        config=str(config),
        training_files=[str(p) for p in training_files()],
        output=str(settings.model_dir),
        fixed_model_name=target.name.removesuffix(".tar.gz"),
    )
    if result.code != 0 or result.model is None:
        raise RuntimeError(f"training failed (code {result.code})")
    for old in settings.model_dir.glob(target.name.rsplit("-", 1)[0] + "-*.tar.gz"):
        if old != target:
            old.unlink()
    cached.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(target, cached)
    return target, "trained"
