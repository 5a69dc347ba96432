"""course.text: the offline corpus for notebook 01."""

import pytest

from course.text import corpus_path, load_corpus


def test_lee_corpus_ships_with_gensim(capsys):
    docs = load_corpus()
    assert len(docs) == 300 and sum(len(d.split()) for d in docs) > 50_000
    assert docs[0].startswith("Hundreds of people have been forced to vacate their homes")
    assert "Lee background corpus" in capsys.readouterr().out
    assert corpus_path().name == "lee_background.cor"


def test_own_corpus_and_bad_paths(tmp_path):
    f = tmp_path / "mine.txt"
    f.write_text("first document\n\nsecond one\n")
    assert load_corpus(f, verbose=False) == ["first document", "second one"]
    with pytest.raises(FileNotFoundError, match="one document per line"):
        load_corpus(tmp_path / "missing.txt")
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(ValueError, match="holds no text"):
        load_corpus(tmp_path / "empty.txt")
