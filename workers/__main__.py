"""``python -m workers [--threads N]``: a worker process (see ``workers.run``)."""

from __future__ import annotations

import argparse

from workers.run import serve


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m workers", description="Run synchub worker threads.")
    parser.add_argument("command", choices=["worker"], nargs="?", default="worker")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--broker", default=None, help="broker URL (default: env SYNCHUB_BROKER_URL)")
    args = parser.parse_args()
    serve(args.broker, threads=args.threads)


if __name__ == "__main__":
    main()
