"""A stand-in for Katib's ``/opt/pytorch-mnist/mnist.py`` (whose image we cannot pull): same
command-line flags, same output shapes, a tiny deterministic objective instead of MNIST.

Loss after each step is ``base * decay + floor`` where ``base`` grows with the distance of
(lr, momentum) from (0.03, 0.7): lower is better near that point. Prints ``loss=...`` lines to
stdout as mnist.py does and, with ``--log-path``, writes Katib's file-collector example format
``{metricName: loss, metricValue: 0.1234}`` (plus accuracy). ``TOY_STEP_SECONDS`` (env) slows
each step down, for early-stopping tests.
"""

import argparse
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--momentum", type=float, default=0.5)
    parser.add_argument("--log-path", default="")
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    pause = float(os.environ.get("TOY_STEP_SECONDS", "0"))
    base = 100 * (args.lr - 0.03) ** 2 + (args.momentum - 0.7) ** 2 + 0.01
    log = open(args.log_path, "a") if args.log_path else None  # noqa: SIM115
    steps = args.epochs * args.steps
    for step in range(1, steps + 1):
        loss = base * (1 + 1.0 / step) + 0.001 * 32 / args.batch_size
        accuracy = 1 - loss
        print(f"Train Epoch: {step} [{step * args.batch_size}/60000]\tloss={loss:.6f}", flush=True)
        if log:
            log.write(f"{{metricName: loss, metricValue: {loss:.6f}}}\n")
            log.write(f"{{metricName: accuracy, metricValue: {accuracy:.6f}}}\n")
            log.flush()
        if pause:
            time.sleep(pause)
    print(f"accuracy={accuracy:.4f}", flush=True)


if __name__ == "__main__":
    main()
