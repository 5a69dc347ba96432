"""Reference values for notebook 07's hidden tests (lib.lora).

Most of notebook 07's hidden tests compare with loralib inside the kernel; this file holds what only
lib answers: which keys an adapter state dict keeps.
"""

import torch.nn as nn

import lib.lora as ref_lora
import lib.mha as ref_mha


def test_adapter():
    # the layout the hidden test builds in the kernel: adapted q and v, a head, and a 'header' that is
    # not the head
    model = nn.ModuleDict(
        {"enc": ref_mha.MultiHeadAttention(8, 2), "head": nn.Linear(8, 2), "header": nn.Linear(2, 2)}
    )
    ref_lora.add_lora(model, ("W_q", "W_v"), r=2, alpha=2)
    return sorted(ref_lora.lora_state_dict(model, extra=("head",)))
