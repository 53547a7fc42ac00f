"""Stand-in for the upstream MNIST example images (``pytorch-dist-mnist``, ``pytorch-mnist``):
a small CNN trained with DistributedDataParallel on MNIST-shaped data.

This machine cannot download MNIST, so the data is synthetic and deterministic: 28x28 images
whose class decides which image quadrant is bright, plus noise, so the model really learns.
It reads the same environment the upstream script does (``WORLD_SIZE``, ``RANK``,
``MASTER_ADDR``, ``MASTER_PORT``) and accepts its flags (``--epochs``, ``--batch-size``,
``--lr``, ``--backend``, ...; unknown ones are ignored). Each rank trains on its shard; after
every epoch the loss is all-reduced and printed, so every rank prints the same value.
``--result-file`` writes ``{"rank", "world_size", "losses", "checksum"}`` as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 5, 2)
        self.fc = nn.Linear(8 * 12 * 12, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.fc(torch.flatten(F.relu(self.conv(x)), 1))
        return out


def synthetic_mnist(samples: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 10, (samples,), generator=gen)
    images = torch.rand(samples, 1, 28, 28, generator=gen) * 0.3
    for i, label in enumerate(labels.tolist()):
        row, col = divmod(label, 4)
        images[i, 0, row * 7 : (row + 1) * 7, col * 7 : (col + 1) * 7] += 1.0
    return images, labels


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--backend", default="gloo")
    parser.add_argument("--samples", type=int, default=1024)
    parser.add_argument("--result-file", default="")
    args, _unknown = parser.parse_known_args()
    torch.manual_seed(0)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    distributed = world > 1
    if distributed:
        dist.init_process_group(backend=args.backend)
    model = Net()
    ddp = nn.parallel.DistributedDataParallel(model) if distributed else model
    images, labels = synthetic_mnist(args.samples)
    shard = slice(rank, None, world)
    images, labels = images[shard], labels[shard]
    optimizer = torch.optim.SGD(ddp.parameters(), lr=args.lr)
    losses = []
    for epoch in range(1, args.epochs + 1):
        total = torch.zeros(1)
        for start in range(0, len(labels), args.batch_size):
            optimizer.zero_grad()
            loss = F.cross_entropy(
                ddp(images[start : start + args.batch_size]),
                labels[start : start + args.batch_size],
            )
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            total += loss.detach()
        if distributed:
            dist.all_reduce(total)
        mean = total.item() / world
        losses.append(mean)
        print(f"rank {rank}: epoch {epoch} loss {mean:.6f}", flush=True)
    checksum = float(sum(p.detach().sum() for p in model.parameters()))
    if args.result_file:
        Path(args.result_file).write_text(
            json.dumps({"rank": rank, "world_size": world, "losses": losses, "checksum": checksum})
        )
    if distributed:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
