"""Probes for notebook 06's hidden tests (convolution, batch normalization, VGG16's make_layers, early
stopping, feature maps through forward hooks).

The reference run uses lib (conv2d, batch_norm, its backward pass, improved, EarlyStopper),
torchvision (make_layers and configuration D) and torch (the output size F.conv2d gives, the maps
``model.features[:i + 1](x)`` computes). None of them is imported at module level: the sandbox has no lib.
"""

import contextlib
import math
import tempfile
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from course.grading import mistake, standin


# ------------------------------------------------------------------------------------------ reference
def reference() -> dict:
    """lib's (and torchvision's) objects under the notebook's names (outside the sandbox only)."""
    from torchvision.models import vgg as tv_vgg

    import lib.batchnorm as ref_bn
    import lib.cnn as ref_cnn
    import lib.early_stopping as ref_es

    return {
        "conv2d": ref_cnn.conv2d,
        "conv_output_size": _output_size_of_f_conv2d,
        "batch_norm": ref_bn.batch_norm,
        "batch_norm_backward": ref_bn.batch_norm_backward,
        "make_layers": tv_vgg.make_layers,
        "CFG_D": list(tv_vgg.cfgs["D"]),
        "improved": ref_es.improved,
        "EarlyStopper": ref_es.EarlyStopper,
        "capture_feature_maps": _maps_by_slicing,
    }


@standin("conv_output_size")
def _output_size_of_f_conv2d(n, k, stride=1, padding=0):
    """The size torch itself gives (reference run only)."""
    return F.conv2d(torch.zeros(1, 1, n, n), torch.zeros(1, 1, k, k), stride=stride, padding=padding).shape[
        -1
    ]


@standin("capture_feature_maps")
def _maps_by_slicing(model, x, layers):
    """model.features[i]'s output as the first i + 1 layers compute it, without hooks (reference run only)."""
    with torch.no_grad():
        return {i: model.features[: i + 1](x) for i in layers}


# ------------------------------------------------------------------------------------ Part 1: conv2d
CONV_CASES = [  # input shape, kernel (k_h, k_w), stride, padding; the old fixture's cases
    ((1, 1, 5, 5), (3, 3), 1, 0),
    ((2, 3, 9, 6), (3, 2), 1, 1),
    ((3, 2, 8, 11), (5, 5), 3, 2),
    ((1, 4, 6, 6), (1, 1), 2, 0),
]
CONV = "conv2d differs from the sum over channels and kernel offsets o[f, x, y] = sum w[f, c, s, t] i[c, Sx + s, Sy + t] + b[f]"


@mistake
def _flipped(x, w, b=None, stride=1, padding=0):
    return F.conv2d(x, w.flip(-1, -2), b, stride=stride, padding=padding)


@mistake
def _no_padding(x, w, b=None, stride=1, padding=0):
    return F.conv2d(x, w, b, stride=stride)


@mistake
def _no_stride(x, w, b=None, stride=1, padding=0):
    return F.conv2d(x, w, b, padding=padding)


def test_conv2d(p):
    conv2d = p.get("conv2d")
    cases = list(CONV_CASES)
    h, w_ = int(p.randint(4, 12)), int(p.randint(4, 12))
    k = (int(p.randint(1, min(h, 5) + 1)), int(p.randint(1, min(w_, 5) + 1)))
    cases.append(
        ((int(p.randint(1, 4)), int(p.randint(1, 5)), h, w_), k, int(p.randint(1, 4)), int(p.randint(0, 3)))
    )
    for shape, k, stride, padding in cases:
        x = p.randn(*shape)
        w = p.randn(int(p.randint(1, 5)), shape[1], *k)
        b = p.randn(w.shape[0])
        key = f"conv2d, input {shape}, kernel {k}, stride {stride}, padding {padding}"
        p.call(key, conv2d, x, w, b, stride=stride, padding=padding, atol=1e-5, rtol=1e-5, msg=CONV)
        for message, fn in [
            (
                "the kernel is flipped (a true convolution): deep-learning layers compute cross-correlation, "
                "o[x, y] = sum w[s, t] i[x + s, y + t]",
                _flipped,
            ),
            (
                "the zero padding is missing: pad every side of the input with `padding` zeros first",
                _no_padding,
            ),
            (
                "the stride is ignored: with stride S output (x, y) reads the input at (S x + s, S y + t)",
                _no_stride,
            ),
        ]:
            p.mistake(key, message, fn, x, w, b, stride, padding)
    p.call(
        "conv2d with bias=None",
        conv2d,
        x,
        w,
        None,
        stride=2,
        atol=1e-5,
        rtol=1e-5,
        msg="conv2d with bias=None must add no bias",
    )


# ------------------------------------------------------------------------------- Part 1: output size
SIZE_CASES = [(7, 3, 2, 0), (8, 3, 2, 1), (5, 5, 1, 2), (11, 4, 3, 1), (224, 7, 2, 3), (9, 1, 4, 0)]


@mistake
def _size_rounded(n, k, s, pad):
    return int((n + 2 * pad - k) / s + 1 + 0.5)


@mistake
def _size_true_division(n, k, s, pad):
    return (n + 2 * pad - k) / s + 1


@mistake
def _size_without_padding(n, k, s, pad):
    return (n - k) // s + 1


def test_conv_output_size(p):
    conv_output_size = p.get("conv_output_size")
    cases = list(SIZE_CASES)
    for _ in range(3):
        n, pad = int(p.randint(3, 65)), int(p.randint(0, 4))
        cases.append((n, int(p.randint(1, min(n, 8) + 1)), int(p.randint(1, 5)), pad))
    for n, k, s, pad in cases:
        key = f"conv_output_size({n}, {k}, stride={s}, padding={pad})"
        p.call(
            key,
            conv_output_size,
            n,
            k,
            s,
            pad,
            atol=0,
            rtol=0,
            msg="the output size differs from floor((n + 2 padding - k) / stride) + 1",
        )
        p.mistake(
            key,
            "the division must round down: floor((n + 2p - k) / S) + 1",
            _size_rounded,
            n,
            k,
            s,
            pad,
        )
        p.mistake(
            key,
            "the division must round down: floor((n + 2p - k) / S) + 1",
            _size_true_division,
            n,
            k,
            s,
            pad,
        )
        p.mistake(
            key,
            "the padding is missing: p zeros on each side add 2p to n",
            _size_without_padding,
            n,
            k,
            s,
            pad,
        )


# ----------------------------------------------------------------------------- Part 2: batch norm
BN_SHAPES = [(4, 3, 5, 5), (2, 6, 3, 7), (16, 2, 1, 1)]


@mistake
def _bn_unbiased(x, gamma, beta):
    C = x.shape[1]
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = x.var(dim=(0, 2, 3), unbiased=True, keepdim=True)
    return gamma.view(1, C, 1, 1) * (x - mean) / torch.sqrt(var + 1e-5) + beta.view(1, C, 1, 1)


def test_batch_norm_training(p):
    batch_norm = p.get("batch_norm")
    for shape in BN_SHAPES:
        x = p.randn(*shape) * 2 + 0.5
        gamma = p.rand(shape[1]) + 0.5
        beta = p.randn(shape[1])
        key = f"training-mode batch_norm, x of shape {shape}"
        p.call(
            key,
            batch_norm,
            x,
            gamma,
            beta,
            atol=1e-6,
            msg="the training-mode output differs from Algorithm 1: statistics are per channel, over (N, H, W)",
        )
        p.mistake(
            key,
            "normalised with the unbiased variance (1/(m-1)): Algorithm 1 divides by m; only the running estimate is unbiased",
            _bn_unbiased,
            x,
            gamma,
            beta,
        )


@mistake
def _biased_running_var(xs, gamma, beta, momentum):
    rv = torch.ones(xs[0].shape[1], dtype=xs[0].dtype)
    for x in xs:
        rv = (1 - momentum) * rv + momentum * x.var(dim=(0, 2, 3), unbiased=False)
    return rv


@mistake
def _eval_with_batch_stats(x, gamma, beta):
    return F.batch_norm(x, None, None, gamma, beta, training=True)


def _check_running_updates(p, batch_norm, xs, gamma, beta, momentum):
    """running_mean and running_var after three training-mode calls on ``xs``."""
    C = gamma.shape[0]

    def three_updates():  # the running estimates start as nn.BatchNorm2d's: mean 0, variance 1
        rm, rv = torch.zeros(C, dtype=torch.float64), torch.ones(C, dtype=torch.float64)
        for x in xs:
            batch_norm(x, gamma, beta, rm, rv, training=True, momentum=momentum)
        return rm, rv

    p.call(
        "running_mean after 3 updates",
        lambda: three_updates()[0],
        atol=1e-6,
        msg="running_mean differs after 3 updates: (1 - momentum) * old + momentum * batch mean, in place",
    )
    key = "running_var after 3 updates"
    p.call(
        key,
        lambda: three_updates()[1],
        atol=1e-6,
        msg="running_var differs after 3 updates: it stores the unbiased variance, var * m / (m - 1), in place",
    )
    p.mistake(
        key,
        "running_var must store the unbiased variance, var * m / (m - 1), not the biased one",
        _biased_running_var,
        xs,
        gamma,
        beta,
        momentum,
    )


def _check_evaluation(p, batch_norm, x, gamma, beta, momentum, rm0, rv0):
    """The evaluation-mode output, and that it leaves the running estimates rm0, rv0 alone."""

    def evaluation():
        rm, rv = rm0.clone(), rv0.clone()
        y = batch_norm(x, gamma, beta, rm, rv, training=False, momentum=momentum)
        return y, bool(torch.equal(rm, rm0) and torch.equal(rv, rv0))

    key = "evaluation-mode output"
    p.call(
        key,
        lambda: evaluation()[0],
        atol=1e-6,
        msg="the evaluation-mode output differs: at test time normalise with running_mean and running_var",
    )
    p.mistake(
        key,
        "evaluation mode used the batch's own statistics: at test time normalise with running_mean and running_var",
        _eval_with_batch_stats,
        x,
        gamma,
        beta,
    )
    p.call(
        "evaluation mode leaves the running estimates alone",
        lambda: evaluation()[1],
        exact=True,
        msg="evaluation mode must not change the running estimates",
    )


def test_batch_norm_running_and_eval(p):
    batch_norm = p.get("batch_norm")
    C, momentum = 4, 0.2
    gamma, beta = p.rand(C) + 0.5, p.rand(C) * 2 - 1
    xs = [p.randn(5, C, 3, 6) * (step + 1) + step for step in range(3)]
    _check_running_updates(p, batch_norm, xs, gamma, beta, momentum)
    x = p.randn(3, C, 2, 2) + 2
    rm0, rv0 = p.randn(C) * 0.5, p.rand(C) + 0.5
    _check_evaluation(p, batch_norm, x, gamma, beta, momentum, rm0, rv0)


@mistake
def _backward_without_dbeta(dy, x, gamma, eps=1e-5):
    C, m = x.shape[1], x.numel() // x.shape[1]
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    sigma = torch.sqrt(x.var(dim=(0, 2, 3), unbiased=False, keepdim=True) + eps)
    x_hat = (x - mean) / sigma
    dgamma = (dy * x_hat).sum(dim=(0, 2, 3))
    return gamma.view(1, C, 1, 1) / (m * sigma) * (m * dy - x_hat * dgamma.view(1, C, 1, 1))


@mistake
def _dgamma_without_x_hat(dy, x, gamma, eps=1e-5):
    return dy.sum(dim=(0, 2, 3))


def _jacobian(backward, x, gamma):
    """(dx, dgamma, dbeta) for every one-hot dy, stacked: the analytic Jacobian gradcheck checks."""
    rows = [backward(e.view_as(x), x, gamma) for e in torch.eye(x.numel(), dtype=x.dtype)]
    return tuple(torch.stack([r[j].reshape(-1) for r in rows]) for j in range(3))


def test_batch_norm_backward(p):
    backward = p.get("batch_norm_backward")
    for shape in [(2, 3, 4, 5), (7, 1, 2, 2)]:
        x = p.randn(*shape) * 3
        gamma = p.randn(shape[1])
        dy = p.randn(*shape)
        where = f"x of shape {shape}"
        p.call(
            f"dbeta, {where}",
            lambda *a: backward(*a)[2],
            dy,
            x,
            gamma,
            atol=1e-8,
            msg="dbeta differs from autograd's: dL/dbeta = sum of dy over (N, H, W)",
        )
        key = f"dgamma, {where}"
        p.call(
            key,
            lambda *a: backward(*a)[1],
            dy,
            x,
            gamma,
            atol=1e-8,
            msg="dgamma differs from autograd's: dL/dgamma = sum of dy * x_hat over (N, H, W)",
        )
        p.mistake(key, "dgamma is the sum of dy * x_hat, not of dy", _dgamma_without_x_hat, dy, x, gamma)
        key = f"dx, {where}"
        p.call(
            key,
            lambda *a: backward(*a)[0],
            dy,
            x,
            gamma,
            atol=1e-8,
            msg="dx differs from autograd's gradient of batch normalization",
        )
        p.mistake(
            key,
            "dx misses the - dL/dbeta term: every input also moves the batch mean",
            _backward_without_dbeta,
            dy,
            x,
            gamma,
        )
    x, gamma = p.randn(3, 2, 2, 3), p.rand(2) + 0.5
    p.call(
        "the Jacobian of the backward pass",
        _jacobian,
        backward,
        x,
        gamma,
        atol=1e-5,
        rtol=1e-3,
        msg="torch.autograd.gradcheck: the gradients disagree with finite differences",
    )


# ------------------------------------------------------------------------------ Part 3: make_layers
ORDER = (
    "make_layers lays the modules out differently: per number Conv2d(3 x 3, padding 1), with batch_norm=True "
    "then BatchNorm2d, then ReLU; per 'M' a MaxPool2d; all in one flat nn.Sequential"
)


@mistake
def _bn_after_relu_kinds(cfg, batch_norm):
    kinds = []
    for v in cfg:
        kinds += ["MaxPool2d"] if v == "M" else ["Conv2d", "ReLU"] + (["BatchNorm2d"] if batch_norm else [])
    return kinds


def _fill(p, module):
    """Every weight and buffer from p's generator, scaled so a deep stack keeps activations near 1."""
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            if t.dim() == 4:  # a convolution's kernel: He's scale
                t.copy_(p.randn(*t.shape, dtype=torch.float32) * math.sqrt(2 / (t[0].numel())))
            elif name.endswith("running_var") or name.endswith("weight"):
                t.copy_(p.rand(*t.shape, dtype=torch.float32) + 0.5)
            else:  # biases, running means
                t.copy_(p.randn(*t.shape, dtype=torch.float32) * 0.1)


def test_make_layers(p):
    make_layers, CFG_D = p.get("make_layers"), p.get("CFG_D")
    seeded = []  # five VGG blocks of 1 to 3 convolutions each, seeded channel counts
    for _ in range(5):
        seeded += [int(c) for c in p.randint(1, 17, (int(p.randint(1, 4)),))] + ["M"]
    poolings = {
        "a seeded configuration": "make_layers must add one MaxPool2d(2, 2) per 'M'",
        "your CFG_D": "your CFG_D: the number of max-poolings is wrong; VGG16 closes each of its five blocks "
        "with one, taking 32 x 32 to 1 x 1",
    }
    for use_bn in (False, True):
        for cfg_name, cfg in (("a seeded configuration", seeded), ("your CFG_D", CFG_D)):
            where = f"make_layers({cfg_name}, batch_norm={use_bn})"
            layout_only = p.reference and cfg is not seeded  # lib's VGG16 outside: its layout, no weights
            with torch.device("meta") if layout_only else contextlib.nullcontext():
                mine = make_layers(cfg, batch_norm=use_bn).eval()
            kinds = [type(m).__name__ for m in mine]
            p.put(f"{where}: poolings", kinds.count("MaxPool2d"), exact=True, msg=poolings[cfg_name])
            key = f"{where}: layer types"
            p.put(key, kinds, exact=True, msg=ORDER)
            if use_bn and cfg is seeded:
                p.mistake(
                    key,
                    "BatchNorm2d comes after the ReLU: batch normalization goes between each convolution and its ReLU",
                    _bn_after_relu_kinds,
                    cfg,
                    use_bn,
                )
            layout = [[name, list(t.shape)] for name, t in mine.state_dict().items()]
            p.put(
                f"{where}: state_dict layout",
                layout,
                exact=True,
                msg=f"torchvision's make_layers weights (batch_norm={use_bn}) do not load into "
                f"make_layers({cfg_name}): lay out the layers in torchvision's order",
            )
            if cfg is not seeded:  # VGG16 itself: its structure; what it computes is asked of the small one
                continue
            _fill(p, mine)
            x = p.randn(2, 3, 32, 32, dtype=torch.float32)
            with torch.no_grad():
                p.call(
                    f"{where}: output",
                    mine,
                    x,
                    atol=1e-4,
                    rtol=1e-4,
                    msg=f"with torchvision's layout and the same weights, make_layers({cfg_name}) computes "
                    f"something else (batch_norm={use_bn})",
                )


# ---------------------------------------------------------------------------- Part 4: early stopping
IMPROVED_CASES = [
    (0.6, 0.6, 0.0, "min"),
    (0.6, 0.6, 0.0, "max"),
    (0.55, 0.6, 0.1, "min"),
    (0.45, 0.6, 0.1, "min"),
    (0.65, 0.6, 0.1, "max"),
    (0.75, 0.6, 0.1, "max"),
    (-1.0, 0.0, 0.0, "min"),
    (0.61, 0.6, 0.0, "max"),
    (0.3, None, 0.0, "min"),
    (0.3, None, 0.1, "max"),
]
TIE = "a tie is no improvement: on a plateau the patience must run out, or training never stops"


@standin("improved")
def _improved(value, best, min_delta=0.0, mode="min"):
    """The stand-in for `improved` while EarlyStopper is tested (and the mistakes' base)."""
    if best is None:
        return True
    return value < best - min_delta if mode == "min" else value > best + min_delta


@mistake
def _tie_improves(value, best, min_delta=0.0, mode="min"):
    if best is None:
        return True
    return value <= best - min_delta if mode == "min" else value >= best + min_delta


@mistake
def _ignores_min_delta(value, best, min_delta=0.0, mode="min"):
    return _improved(value, best, 0.0, mode)


@mistake
def _ignores_mode(value, best, min_delta=0.0, mode="min"):
    return _improved(value, best, min_delta, "min")


def test_improved(p):
    improved = p.get("improved")
    cases = list(IMPROVED_CASES)
    while len(cases) < len(IMPROVED_CASES) + 6:
        value, best = round(float(p.rand(())), 2), round(float(p.rand(())), 2)
        min_delta, mode = p.choice([0.0, 0.25]), p.choice(["min", "max"])
        edge = abs(abs(value - best) - min_delta) < 1e-6 and value != best  # on the edge of min_delta
        if not edge and (value, best, min_delta, mode) not in cases:
            cases.append((value, best, min_delta, mode))
    for args in cases:
        key = f"improved{args}"
        p.call(
            key,
            lambda *a: bool(improved(*a)),
            *args,
            exact=True,
            msg="improved(value, best, min_delta, mode) is wrong: an improvement beats best by more than "
            "min_delta (lower in mode 'min', higher in mode 'max'); best None always improves",
        )
        p.mistake(key, TIE, _tie_improves, *args)
        p.mistake(key, "the gain must exceed min_delta", _ignores_min_delta, *args)
        p.mistake(key, "in mode 'max' (accuracy) higher is better", _ignores_mode, *args)


STOPPER_CASES = [  # curve, keyword arguments, what it shows; the old test's cases
    ([1.0, 0.9, 0.95, 0.85, 0.87, 0.86, 0.88, 0.7], dict(patience=3), "noise after the best epoch"),
    (
        [1.0, 0.9, 0.92, 0.91, 0.8, 0.85, 0.84, 0.83],
        dict(patience=3),
        "a late improvement resets the patience",
    ),
    ([1.0, 0.95, 0.93, 0.92, 0.5], dict(patience=3, min_delta=0.1), "gains below min_delta do not count"),
    ([1.0, 0.9, 0.8], dict(patience=5), "a curve that ends before patience runs out"),
    ([0.5, 0.7, 0.6, 0.65], dict(monitor="val_acc", patience=2), "monitoring val_acc: higher is better"),
]


def _stopper_run(EarlyStopper, path, curve, **kwargs):
    """Feed a curve to a stopper, a one-weight model's weight set to the epoch number before each call.

    Returns what the stopper said after each epoch (stop?, best_epoch), the weight restore() gives back
    and the weight in the file at `path` (so each tells which epoch's weights were kept).
    """
    monitor = kwargs.get("monitor", "val_loss")
    model = nn.Linear(1, 1, bias=False)
    stopper = EarlyStopper(path, **kwargs)
    stops, best_epochs = [], []
    for epoch, value in enumerate(curve, start=1):
        with torch.no_grad():
            model.weight.fill_(epoch)
        metrics = {"val_loss": 1.0, "val_acc": 0.5, "train_loss": 1.0, "train_acc": 0.5, monitor: value}
        stops.append(bool(stopper(epoch, metrics, model)))
        best_epochs.append(int(stopper.best_epoch))
        if stops[-1]:
            break
    restored = stopper.restore(nn.Linear(1, 1, bias=False))  # a fresh model, loaded from the file
    saved = torch.load(path, weights_only=True)
    return stops, best_epochs, int(round(restored.weight.item())), int(round(saved["weight"].item()))


def test_early_stopper(p):
    EarlyStopper = p.get("EarlyStopper")
    cases = list(STOPPER_CASES)
    for i in range(3):
        curve = [round(float(v), 1) for v in p.rand(int(p.randint(4, 11)))]
        kwargs = dict(patience=int(p.randint(1, 5)), min_delta=p.choice([0.0, 0.1]))
        if p.choice([False, True]):
            kwargs["monitor"] = "val_acc"
        cases.append((curve, kwargs, f"seeded curve {i + 1}"))
    with tempfile.TemporaryDirectory() as folder, p.standin("improved", _improved):
        # a correct `improved` while EarlyStopper runs, so a mistake in `improved` costs its own point only
        for i, (curve, kwargs, what) in enumerate(cases):
            where = f"{what}: curve {curve} with {kwargs}"
            ran = {}

            def run(*args, ran=ran, **kw):
                ran["result"] = _stopper_run(*args, **kw)
                return ran["result"][0]

            p.call(
                f"{where}: stop after each epoch",
                run,
                EarlyStopper,
                Path(folder) / f"run-{i}.pt",
                curve,
                exact=True,
                msg=f"{what}: the stopper stops at the wrong epoch; stop once `patience` epochs in a row "
                "bring no improvement",
                **kwargs,
            )
            if "result" not in ran:
                continue
            _, best_epochs, restored, saved = ran["result"]
            p.put(
                f"{where}: best_epoch after each epoch",
                best_epochs,
                exact=True,
                msg=f"{what}: best_epoch is wrong; record the epoch of every improvement",
            )
            p.put(
                f"{where}: the weights restore() gives back",
                restored,
                exact=True,
                msg=f"{what}: the weights restore() gives back are not the best epoch's: save the state_dict only "
                "on an improvement, to restore the best epoch",
            )
            p.put(
                f"{where}: the weights in the file",
                saved,
                exact=True,
                msg=f"{what}: the file at `path` must hold the best epoch's state_dict: save only on an improvement",
            )


# --------------------------------------------------------------------------- Part 6: feature maps
SMALL_VGG = [4, 4, "M", 8, 8, "M", 16, 16, 16, "M", 32, 32, 32, "M", 32, 32, 32, "M"]  # D at 1/16 width


@standin("make_layers")
def _plain_features(cfg):
    """make_layers(cfg, batch_norm=False), torchvision's layout: the small VGG's features."""
    layers, c = [], 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=True)]
            c = v
    return nn.Sequential(*layers)


class _SmallVGG(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = _plain_features(SMALL_VGG)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(32, 10))

    def forward(self, x):
        return self.classifier(self.features(x))


@mistake
def _relu_overwrote(model, x, layers):
    with torch.no_grad():
        return {i: model.features[: i + 1](x).clamp_min(0) for i in layers}


def test_feature_maps(p):
    capture = p.get("capture_feature_maps")
    model = _SmallVGG().eval()
    _fill(p, model)
    x = p.randn(3, 3, 32, 32, dtype=torch.float32)
    wanted = [0, 1, 4, 9, len(model.features) - 1]
    extra = p.choice([i for i in range(len(model.features)) if i not in wanted])
    wanted.insert(int(p.randint(0, len(wanted) + 1)), extra)
    ran = {}

    def run(*args):
        ran["maps"] = capture(*args)
        return sorted(int(i) for i in ran["maps"])

    p.call(
        "layers captured",
        run,
        model,
        x,
        wanted,
        exact=True,
        msg="capture_feature_maps must return one entry per requested layer index",
    )
    p.put(
        "hooks left on the model",
        sum(len(m._forward_hooks) for m in model.modules()),
        exact=True,
        msg="remove every hook after the forward pass (handle.remove())",
    )
    if "maps" not in ran:
        return
    got = ran["maps"]
    for i in wanted:
        key = f"the map of layer {i}"
        p.put(
            key,
            got.get(i) if isinstance(got, dict) else None,
            atol=1e-5,
            rtol=1e-4,
            msg=f"the map of layer {i} differs from model.features[:{i + 1}](x)",
        )
        if isinstance(model.features[i], nn.Conv2d):  # the in-place ReLU after it overwrites its output
            p.mistake(
                key,
                "the convolution's output was changed by the in-place ReLU after the hook ran: "
                "store output.detach().clone()",
                lambda *a, i=i: _relu_overwrote(*a)[i],
                model,
                x,
                [i],
            )
        p.put(
            f"the map of layer {i} is detached",
            not (isinstance(got, dict) and getattr(got.get(i), "requires_grad", False)),
            exact=True,
            msg="store detached tensors (output.detach())",
        )
