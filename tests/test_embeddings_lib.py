"""lib.embeddings against torch's own building blocks."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from lib import embeddings as E


def test_lecture_vocabulary():
    sents = [E.tokenize("I love artificial intelligence"), E.tokenize("I like computational intelligence")]
    v = E.build_vocab(sents)
    assert v.itos == ["i", "love", "artificial", "intelligence", "like", "computational"]
    assert len(v) == 6 and v.stoi["intelligence"] == 3 and v.counts[v.stoi["i"]] == 2
    assert v.decode(v.encode(["like", "i"])) == ["like", "i"]


def test_unknown_words_case_and_repeats():
    v = E.build_vocab([E.tokenize("The cat, the CAT; the hat!")], unk="<unk>")
    assert v.itos == ["<unk>", "the", "cat", "hat"] and v.counts == [0, 3, 2, 1]
    assert v.encode(["dog", "the"]).tolist() == [0, 1]
    strict = E.build_vocab([["a", "b"]])
    with pytest.raises(KeyError, match="not in the vocabulary: \\['z'\\]"):
        strict.encode(["a", "z"])
    assert E.build_vocab([["a", "b", "a"]], min_count=2).itos == ["a"]


def test_one_hot_and_embedding_equal_nn_embedding():
    g = torch.Generator().manual_seed(0)
    W = torch.randn(7, 5, generator=g)
    ids = torch.tensor([[3, 0, 6], [1, 1, 2]])
    oh = E.one_hot(ids, 7)
    assert oh.shape == (2, 3, 7) and torch.equal(oh.sum(-1), torch.ones(2, 3))
    torch.testing.assert_close(oh, F.one_hot(ids, 7).float())
    torch.testing.assert_close(E.embed(ids, W), nn.Embedding.from_pretrained(W)(ids))
    with pytest.raises(IndexError, match=r"\[0, 7\)"):
        E.one_hot(torch.tensor([7]), 7)


def test_cosine_matches_torch():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(4, 3, 9, generator=g), torch.randn(3, 9, generator=g)
    torch.testing.assert_close(E.cosine_similarity(a, b), F.cosine_similarity(a, b.expand_as(a), dim=-1))
    assert E.cosine_similarity(torch.tensor([1.0, 0]), torch.tensor([0.0, 0])).item() == 0.0  # no NaN


def test_skipgram_pairs_by_hand():
    pairs = E.skipgram_pairs(torch.tensor([10, 11, 12, 13]), window=1)
    assert pairs.tolist() == [[10, 11], [11, 10], [11, 12], [12, 11], [12, 13], [13, 12]]
    p2 = E.skipgram_pairs(torch.arange(5), window=2)
    assert len(p2) == 2 * (4 + 3)  # every ordered pair at distance 1 or 2
    with pytest.raises(ValueError):
        E.skipgram_pairs(torch.arange(3), 0)


def test_sgns_loss_matches_formula_and_bce():
    g = torch.Generator().manual_seed(2)
    v, u, n = (
        torch.randn(6, 4, generator=g),
        torch.randn(6, 4, generator=g),
        torch.randn(6, 3, 4, generator=g),
    )
    loss = E.sgns_loss(v, u, n)
    pos_logit = (v * u).sum(-1)
    neg_logit = torch.einsum("bkd,bd->bk", n, v)
    bce = F.binary_cross_entropy_with_logits(
        pos_logit, torch.ones(6), reduction="none"
    ) + F.binary_cross_entropy_with_logits(neg_logit, torch.zeros(6, 3), reduction="none").sum(-1)
    torch.testing.assert_close(loss, bce.mean())


def test_noise_distribution():
    p = E.noise_distribution([16, 1])
    torch.testing.assert_close(p, torch.tensor([8 / 9, 1 / 9]))


def test_tokenize_keeps_apostrophes_between_letters_only():
    # by hand: inner apostrophes stay (one or several), quotes and digits go
    assert E.tokenize("Rock'n'roll isn't 'quoted', 42 times") == ["rock'n'roll", "isn't", "quoted", "times"]
