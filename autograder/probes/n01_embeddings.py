"""Probes for notebook 01's hidden tests (tokens, vocabulary, one-hot codes, cosine, skip-gram).

- An embedding is a one-hot row times a |V| x d matrix: one_hot(ids) @ E = E[ids].
- Cosine similarity: cos(theta) = a . b / (||a|| ||b||), 0 for a zero vector.
- Skip-gram with negative sampling, Mikolov et al. (2013), eq. 4:
  -log sigma(u_o . v_c) - sum_k log sigma(-u_k . v_c), averaged over the batch.
"""

import re

import torch
import torch.nn.functional as F

from course.grading import mistake, standin

TOKENS = "lower-case runs of letters a-z, keeping each apostrophe between two letters (it's, rock'n'roll)"
VOCAB = "words in order of first appearance, those below min_count left out, unk first"
ONE_HOT = "one row per index, a single 1.0 in column ids[i] (shape (..., vocab_size))"
COSINE = "cosine similarity is the dot product over the last dimension divided by both norms"
PAIRS = "every ordered pair (centre, context) within the window, by centre position, then offset -window..-1, 1..window"
SGNS = "the loss differs from -log σ(u_o · v_c) - Σ_k log σ(-u_k · v_c), averaged over the batch"

TEXTS = [
    "I love Artificial Intelligence!",
    "",
    "Don't stop, AI! 42 times.",
    "Hello, World!",
    "It's 3 o'clock -- isn't it?",
    "UPPER lower MiXeD",
    "  spaced   out\n\tlines ",
    "...",
    "rock'n'roll",
]
PIECES = ["the", "Cat", "SAT", "don't", "Rock'n'Roll", "42", "x2", "e-mail", "'quoted'", "it's", "well,", "...", "AI!", "o'clock", "  \n", "7th"]  # fmt: skip
SENTENCES = [
    ([["a", "b", "a"], ["c", "b"]], {}),
    ([["the", "cat", "the", "hat"], ["cat", "sat"]], {}),
    ([["the", "cat", "the", "hat"], ["cat", "sat"]], {"min_count": 2}),
    ([["x", "y"], ["y", "z", "z"]], {"unk": "<unk>"}),
    ([["x", "y"], ["y", "z", "z"]], {"unk": "<unk>", "min_count": 2}),
    ([[], ["solo"]], {}),
]
WORDS = ["red", "green", "blue", "cyan", "pink", "grey", "gold", "teal"]


def reference() -> dict:
    """lib's objects under the notebook's names (outside the sandbox only)."""
    import lib.embeddings as ref

    def build_vocab(sentences, min_count=1, unk=None):
        vocab = ref.build_vocab(sentences, min_count=min_count, unk=unk)
        return list(vocab.itos), dict(vocab.stoi)

    return {
        "tokenize": ref.tokenize,
        "build_vocab": build_vocab,
        "one_hot": ref.one_hot,
        "cosine_similarity": ref.cosine_similarity,
        "skipgram_pairs": ref.skipgram_pairs,
        "sgns_loss": ref.sgns_loss,
    }


# ------------------------------------------------------------------------------------------ tokenize
@mistake
def _keeps_digits(text):
    return re.findall(r"[a-z0-9]+(?:'[a-z0-9]+)*", text.lower())


@mistake
def _not_lowered(text):
    return re.findall(r"[A-Za-z]+(?:'[A-Za-z]+)*", text)


@mistake
def _splits_apostrophes(text):
    return re.findall(r"[a-z]+", text.lower())


@mistake
def _splits_on_spaces(text):
    return text.lower().split()


def test_tokenize(p):
    tokenize = p.get("tokenize")
    texts = [*TEXTS, " ".join(p.choice(PIECES) for _ in range(int(p.randint(4, 12))))]
    for text in texts:
        key = f"tokenize({text!r})"
        p.call(key, tokenize, text, exact=True, msg=TOKENS)
        p.mistake(key, "digits are not words: tokens are lower-case runs of letters a-z", _keeps_digits, text)
        p.mistake(key, "the words must be lower-cased: lower-case runs of letters a-z", _not_lowered, text)
        p.mistake(
            key,
            "an apostrophe between two letters stays inside the word (it's, rock'n'roll): lower-case runs of letters a-z",
            _splits_apostrophes,
            text,
        )
        p.mistake(
            key,
            "punctuation and digits must be dropped: lower-case runs of letters a-z, not split on spaces",
            _splits_on_spaces,
            text,
        )


# --------------------------------------------------------------------------------------- vocabulary
def _itos(build_vocab):
    return lambda sentences, **kw: list(build_vocab(sentences, **kw)[0])


def _stoi(build_vocab):
    return lambda sentences, **kw: dict(build_vocab(sentences, **kw)[1])


@mistake
def _sorted_vocab(sentences, min_count=1, unk=None):
    counts = {}
    for s in sentences:
        for w in s:
            counts[w] = counts.get(w, 0) + 1
    return ([unk] if unk is not None else []) + sorted(w for w in counts if counts[w] >= min_count)


@mistake
def _ignores_min_count(sentences, min_count=1, unk=None):
    itos = [unk] if unk is not None else []
    for s in sentences:
        for w in s:
            if w not in itos:
                itos.append(w)
    return itos


@mistake
def _unk_last(sentences, min_count=1, unk=None):
    itos = _first_appearance(sentences, min_count)
    return itos + ([unk] if unk is not None else [])


@standin("build_vocab")
def _first_appearance(sentences, min_count=1):
    """build_vocab's itos without unk (the base of _unk_last only): a correct vocabulary, never in a kernel."""
    counts = {}
    for s in sentences:
        for w in s:
            counts[w] = counts.get(w, 0) + 1
    itos = []
    for s in sentences:
        for w in s:
            if w not in itos and counts[w] >= min_count:
                itos.append(w)
    return itos


def test_build_vocab(p):
    build_vocab = p.get("build_vocab")
    n = int(p.randint(2, 5))
    drawn = [[p.choice(WORDS) for _ in range(int(p.randint(0, 7)))] for _ in range(n)]
    kw = {"min_count": int(p.randint(1, 4))}
    if bool(p.rand(()) < 0.5):
        kw["unk"] = "<unk>"
    for sentences, kwargs in [*SENTENCES, (drawn, kw)]:
        case = f"build_vocab({sentences}{''.join(f', {k}={v!r}' for k, v in kwargs.items())})"
        key = f"itos of {case}"
        p.call(key, _itos(build_vocab), sentences, **kwargs, exact=True, msg=VOCAB)
        p.mistake(
            key,
            "the words are sorted: keep them in order of first appearance",
            _sorted_vocab,
            sentences,
            **kwargs,
        )
        p.mistake(
            key,
            "words below min_count must be left out of the vocabulary",
            _ignores_min_count,
            sentences,
            **kwargs,
        )
        p.mistake(key, "unk, when given, comes first (index 0)", _unk_last, sentences, **kwargs)
        p.call(
            f"stoi of {case}",
            _stoi(build_vocab),
            sentences,
            **kwargs,
            exact=True,
            msg="stoi must invert itos",
        )


# ------------------------------------------------------------------------------------------- one-hot
@mistake
def _flattened(ids, vocab_size):
    return torch.eye(vocab_size)[torch.as_tensor(ids).flatten()]


def _lookup(one_hot):
    """one_hot(ids) @ E, in float64 whatever the dtype of the codes (the dtype is checked on its own)."""
    return lambda ids, vocab_size, E: one_hot(ids, vocab_size).to(torch.float64) @ E


def _is_float(one_hot):
    return lambda ids, vocab_size: bool(torch.is_floating_point(one_hot(ids, vocab_size)))


def _raises(fn):
    def outcome(*args):
        try:
            fn(*args)
        except IndexError:
            return "IndexError"
        except Exception as e:
            return type(e).__name__
        return "no exception"

    return outcome


def test_one_hot(p):
    one_hot = p.get("one_hot")
    cases = [(torch.tensor([2, 0]), 4)]
    for shape, V in [((5,), 7), ((3, 4), 10), ((2, 1, 6), 3), ((), 5)]:
        cases.append((p.randint(0, V, shape), V))
    for ids, V in cases:
        key = f"one_hot of indices of shape {tuple(ids.shape)}"
        p.call(key, one_hot, ids, V, msg=ONE_HOT)
        p.mistake(
            key, "one_hot must keep the batch shape: one row per index, (..., vocab_size)", _flattened, ids, V
        )
    p.call(
        "one_hot returns floats",
        _is_float(one_hot),
        torch.tensor([2, 0]),
        4,
        exact=True,
        msg="one_hot must return a float tensor of 0.0 and 1.0",
    )
    for ids, V in cases[1:]:
        p.call(
            f"one_hot @ E for indices of shape {tuple(ids.shape)}",
            _lookup(one_hot),
            ids,
            V,
            p.randn(V, 4),
            msg="one_hot(ids) @ E must equal the embedding lookup E[ids]",
        )
    for bad in ([5], [-1], [0, 7, 2]):
        p.call(
            f"one_hot({bad}, 5)",
            _raises(one_hot),
            torch.tensor(bad),
            5,
            exact=True,
            msg="an index outside [0, vocab_size) must raise IndexError, not be clipped or wrapped around",
        )


# --------------------------------------------------------------------------------------------- cosine
@mistake
def _unnormalised(a, b, eps=1e-8):
    return (a * b).sum(-1)


@mistake
def _one_norm(a, b, eps=1e-8):
    return (a * b).sum(-1) / (a.norm(dim=-1) * a.norm(dim=-1)).clamp_min(eps)


@mistake
def _squared_norms(a, b, eps=1e-8):
    return (a * b).sum(-1) / ((a * a).sum(-1) * (b * b).sum(-1)).clamp_min(eps)


def _cosine_mistakes(p, key, a, b):
    for message, fn in [
        ("divide the dot product by both norms: parallel vectors have cosine 1", _unnormalised),
        ("divide by the norms of both vectors, ||a|| ||b||: parallel vectors have cosine 1", _one_norm),
        ("divide by the norms, not their squares: parallel vectors have cosine 1", _squared_norms),
    ]:
        p.mistake(key, message, fn, a, b)


def test_cosine_similarity(p):
    cosine_similarity = p.get("cosine_similarity")
    a = p.randn(6)
    fixed = [
        (
            "parallel vectors",
            torch.tensor([3.0, 4.0]),
            torch.tensor([6.0, 8.0]),
            "parallel vectors have cosine 1",
        ),
        (
            "opposite vectors",
            torch.tensor([1.0, 0.0]),
            torch.tensor([-2.0, 0.0]),
            "opposite vectors have cosine -1",
        ),
        ("parallel drawn vectors", a, a * (0.5 + 3 * p.rand(())), "parallel vectors have cosine 1"),
    ]
    for key, x, y, msg in fixed:
        p.call(key, cosine_similarity, x, y, msg=msg)
        _cosine_mistakes(p, key, x, y)
    for sa, sb in [((5, 8), (5, 8)), ((4, 3, 9), (3, 9)), ((7, 16), (16,))]:
        x, y = p.randn(*sa), p.randn(*sb)
        key = f"cosine of shapes {sa} and {sb}"
        p.call(key, cosine_similarity, x, y, atol=1e-5, msg=f"{COSINE}, broadcasting the other dimensions")
        _cosine_mistakes(p, key, x, y)
    p.call(
        "a zero vector",
        cosine_similarity,
        torch.zeros(3),
        torch.ones(3),
        msg="a zero vector must give 0, not NaN (guard the norms with eps)",
    )


# ---------------------------------------------------------------------------------------- skip-gram
@mistake
def _pairs(ids, offsets):
    """The pairs for the given offsets: with the right ones (-window..-1, 1..window) a solution, so outside only."""
    ids = torch.as_tensor(ids).tolist()
    pairs = [(ids[t], ids[t + o]) for t in range(len(ids)) for o in offsets if 0 <= t + o < len(ids)]
    return torch.tensor(pairs, dtype=torch.long).view(-1, 2)


def test_skipgram_pairs(p):
    skipgram_pairs = p.get("skipgram_pairs")
    cases = [(torch.tensor([5, 6, 7]), 2), (torch.tensor([10, 11, 12, 13]), 1)]
    for n, window in [
        (1, 2),
        (2, 1),
        (10, 2),
        (30, 5),
        (4, 10),
        (int(p.randint(5, 40)), int(p.randint(1, 6))),
    ]:
        cases.append((p.randint(0, 50, (n,)), window))
    for ids, window in cases:
        key = f"skipgram_pairs of {len(ids)} words, window={window}"
        p.call(key, skipgram_pairs, ids, window, exact=True, msg=PAIRS)
        w = window
        for message, offsets in [
            ("the window misses its last offset: every ordered pair up to window words away", [o for o in range(-w, w) if o != 0]),
            ("a word is not its own context: every ordered pair of two positions, offset 0 left out",
             range(-w, w + 1)),
            ("only the words after the centre are used: every ordered pair, on both sides",
             range(1, w + 1)),
            ("the pairs are out of order: every ordered pair, by centre position, then offset -window..-1, 1..window",
             [*range(1, w + 1), *range(-w, 0)]),
        ]:  # fmt: skip
            p.mistake(key, message, _pairs, ids, offsets)


# ------------------------------------------------------------------------------------- sgns loss
@mistake
def _flipped_sign(v_c, u_o, u_neg):
    pos = F.logsigmoid((v_c * u_o).sum(-1))
    return -(pos + F.logsigmoid((u_neg @ v_c.unsqueeze(-1)).squeeze(-1)).sum(-1)).mean()


@mistake
def _mean_over_noise(v_c, u_o, u_neg):
    pos = F.logsigmoid((v_c * u_o).sum(-1))
    return -(pos + F.logsigmoid(-(u_neg @ v_c.unsqueeze(-1)).squeeze(-1)).mean(-1)).mean()


@mistake
def _sum_over_batch(v_c, u_o, u_neg):
    pos = F.logsigmoid((v_c * u_o).sum(-1))
    return -(pos + F.logsigmoid(-(u_neg @ v_c.unsqueeze(-1)).squeeze(-1)).sum(-1)).sum()


@mistake
def _not_negated(v_c, u_o, u_neg):
    pos = F.logsigmoid((v_c * u_o).sum(-1))
    return (pos + F.logsigmoid(-(u_neg @ v_c.unsqueeze(-1)).squeeze(-1)).sum(-1)).mean()


def _ranks(sgns_loss):
    """True when noise words that score high cost more than noise words that score low."""

    def ranks(v, u, far, near):
        return bool(sgns_loss(v, u, far) < sgns_loss(v, u, near))

    return ranks


def _shape(sgns_loss):
    return lambda *args: tuple(sgns_loss(*args).shape)


SIGN = "noise words that score high must cost more: the noise term is log σ(-u_k · v_c), with a minus sign inside"


def test_sgns_loss(p):
    sgns_loss = p.get("sgns_loss")
    v, u = torch.tensor([[1.0, 0.0]]), torch.tensor([[2.0, 0.0]])
    far, near = torch.tensor([[[-3.0, 0.0]]]), torch.tensor([[[3.0, 0.0]]])
    p.call("high-scoring noise costs more", _ranks(sgns_loss), v, u, far, near, exact=True, msg=SIGN)
    p.mistake("high-scoring noise costs more", SIGN, _ranks(_flipped_sign), v, u, far, near)
    p.call(
        "the loss is a scalar",
        _shape(sgns_loss),
        v,
        u,
        far,
        exact=True,
        msg="return the mean over the batch, a scalar",
    )
    cases = [(torch.zeros(2, 5), torch.zeros(2, 5), torch.zeros(2, 3, 5))]
    for B, K, d in [(4, 5, 8), (1, 1, 3), (16, 10, 32), (int(p.randint(2, 9)), int(p.randint(2, 9)), 6)]:
        cases.append((p.randn(B, d), p.randn(B, d), p.randn(B, K, d)))
    for v_c, u_o, u_neg in cases:
        B, K, _ = u_neg.shape
        key = f"loss for B={B}, K={K}"
        p.call(key, sgns_loss, v_c, u_o, u_neg, atol=1e-5, msg=SGNS)
        for message, fn in [
            ("the noise term needs a minus sign inside: log σ(-u_k · v_c)", _flipped_sign),
            ("the noise terms are summed over the K negative words, not averaged", _mean_over_noise),
            (
                "average the loss over the batch (the mean over the B centre words), do not sum it",
                _sum_over_batch,
            ),
            ("the loss is the negative log-likelihood: minus the log-sigmoid terms", _not_negated),
        ]:
            p.mistake(key, message, fn, v_c, u_o, u_neg)
