"""Write the PyTorch fixture of the safetensors adapter (``trust.core.adapters.torch_file``): a small pre-activation
ResNet and an MLP built in PyTorch, trained a few steps on the digits so their weights and BatchNorm running
statistics are not the initial ones, saved with ``safetensors.torch.save_file``, and their eval-mode logits on a
fixed batch saved beside them. The tests read these files with safetensors' NumPy API and never import torch.

Run once, in an environment with PyTorch's CPU wheel (CI never installs torch: its default wheel carries CUDA)::

    pip install torch --index-url https://download.pytorch.org/whl/cpu
    pip install safetensors numpy scikit-learn
    python scripts/torch_fixture.py      # writes tests/fixtures/torch_{resnet,mlp}.safetensors and torch_logits.npz

The ResNet mirrors ``trust.core.nets.ResNet(image=(8, 8, 1), n_classes=10, widths=(4, 8), blocks=(1, 1),
norm="batch")`` in PyTorch's own layouts (OIHW kernels, ``(out, in)`` linear weights, ``weight``/``bias`` and
``running_mean``/``running_var`` per BatchNorm), with XLA's "SAME" padding of a stride-2 convolution (one row and
column after the image) written out, since PyTorch pads symmetrically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from sklearn.datasets import load_digits
from torch import nn

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
SEED = 20201123


def same_conv(x, conv: nn.Conv2d, stride: int):
    """XLA's "SAME" padding: total ``max((⌈n/s⌉ − 1)·s + k − n, 0)`` split with the smaller half before."""
    k, n = conv.kernel_size[0], x.shape[-1]
    total = max((-(-n // stride) - 1) * stride + k - n, 0)
    x = F.pad(x, (total // 2, total - total // 2, total // 2, total - total // 2))
    return F.conv2d(x, conv.weight, None, stride)


class Block(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.stride = stride
        self.norm1, self.norm2 = nn.BatchNorm2d(c_in), nn.BatchNorm2d(c_out)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, bias=False)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, bias=False)
        self.proj = nn.Conv2d(c_in, c_out, 1, bias=False) if stride != 1 or c_in != c_out else None

    def forward(self, h):
        a = F.relu(self.norm1(h))
        shortcut = same_conv(a, self.proj, self.stride) if self.proj is not None else h
        z = same_conv(F.relu(self.norm2(same_conv(a, self.conv1, self.stride))), self.conv2, 1)
        return shortcut + z


class ResNet(nn.Module):
    def __init__(self, widths=(4, 8), n_classes: int = 10):
        super().__init__()
        self.stem = nn.Conv2d(1, widths[0], 3, bias=False)
        self.blocks = nn.ModuleList(
            [Block(widths[0], widths[0], 1)] + [Block(a, b, 2) for a, b in zip(widths[:-1], widths[1:])]
        )
        self.norm = nn.BatchNorm2d(widths[-1])
        self.head = nn.Linear(widths[-1], n_classes)

    def forward(self, x):  # x: (n, 8, 8, 1), NHWC as trust's data
        h = same_conv(x.permute(0, 3, 1, 2), self.stem, 1)
        for block in self.blocks:
            h = block(h)
        return self.head(F.relu(self.norm(h)).mean(dim=(2, 3)))


def mlp(widths=(64, 32, 32, 10)) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def train(model: nn.Module, x, y, steps: int = 20) -> None:
    """A few Adam steps in training mode (BatchNorm's running statistics move), then evaluation mode."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    model.eval()


def main() -> None:
    torch.manual_seed(SEED)
    digits = load_digits()
    x = torch.tensor(digits.data[:256] / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target[:256])
    batch = x[:32]
    OUT.mkdir(parents=True, exist_ok=True)
    resnet, net = ResNet(), mlp()
    train(resnet, x.reshape(-1, 8, 8, 1), y)
    train(net, x, y)
    with torch.no_grad():
        logits = {"resnet": resnet(batch.reshape(-1, 8, 8, 1)).numpy(), "mlp": net(batch).numpy()}
    save_file({k: v.contiguous() for k, v in resnet.state_dict().items()}, OUT / "torch_resnet.safetensors")
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, OUT / "torch_mlp.safetensors")
    np.savez(OUT / "torch_logits.npz", x=batch.numpy(), **logits)
    print(f"wrote {OUT}: torch {torch.__version__}, logits {[v.shape for v in logits.values()]}")


if __name__ == "__main__":
    main()
