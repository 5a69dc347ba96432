"""A real English text corpus that works offline, for training word embeddings.

The default is the Lee background corpus: 300 news articles from the Australian Broadcasting
Corporation (about 60,000 words), collected by Lee, Pincombe and Welsh (2005) for a study of
document similarity. It ships inside the gensim package as ``test/test_data/lee_background.cor``,
so it is on every machine that installed this course. Any plain-text file with one document per
line can be used instead.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

LEE = ("gensim", "test/test_data/lee_background.cor")


def corpus_path() -> Path:
    package, name = LEE
    try:
        path = Path(str(resources.files(package).joinpath(name)))
    except ModuleNotFoundError as e:
        raise FileNotFoundError(
            "the Lee corpus ships with gensim: install it with `pip install gensim`"
        ) from e
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing from the installed gensim; reinstall gensim or pass a path"
        )
    return path


def load_corpus(path: str | Path | None = None, verbose: bool = True) -> list[str]:
    """Documents (one per non-empty line) of ``path``, or of the Lee background corpus."""
    source = Path(path) if path is not None else corpus_path()
    if not source.is_file():
        raise FileNotFoundError(
            f"no corpus file at {source}: give a plain-text file with one document per line"
        )
    docs = [
        line.strip()
        for line in source.read_text(encoding="utf-8", errors="replace").splitlines()
        if line.strip()
    ]
    if not docs:
        raise ValueError(f"{source} holds no text")
    if verbose:
        name = "Lee background corpus (ABC news, via gensim)" if path is None else source.name
        print(f"{name}: {len(docs)} documents, {sum(len(d.split()) for d in docs):,} words from {source}")
    return docs
