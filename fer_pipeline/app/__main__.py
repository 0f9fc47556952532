"""``python -m fer_pipeline.app``: start the app on 127.0.0.1 (see :mod:`fer_pipeline.app`)."""

from __future__ import annotations

import argparse
import socket
import sys

from fer_pipeline.errors import PipelineError, exit_on_error
from fer_pipeline.quiet import quiet_libraries

GRACE_S = 5  # seconds a stopping server waits for the requests it is answering


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m fer_pipeline.app",
        description="The GUI: pick a trained network and optimizer, classify the faces of a photo.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (%(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="port (%(default)s)")
    parser.add_argument(
        "--device", default=None, help="torch device (default: cuda if any, else cpu)"
    )
    parser.add_argument(
        "--precision", default="fp32", choices=["fp32", "bf16"],
        help="bf16: faster on CPUs with bf16 instructions, probabilities within about 0.01",
    )  # fmt: skip
    parser.add_argument(
        "--tracking-uri", default=None,
        help="MLflow store of the runs (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)",
    )  # fmt: skip
    return parser.parse_args(argv)


def check_port(host: str, port: int) -> None:
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError as err:
            raise PipelineError(
                f"cannot listen on {host}:{port} ({err.strerror}): pass another --port"
            ) from None


@exit_on_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    quiet_libraries()  # a server log without MLflow's download bars and info lines
    import uvicorn

    from fer_pipeline.app.server import create_app
    from fer_pipeline.devices import resolve_device
    from fer_pipeline.inference.recognizer import tracking_uri
    from fer_pipeline.tracking.server import check_tracking_uri

    resolve_device(args.device)  # a bad --device fails now, in one line
    check_port(args.host, args.port)
    store = args.tracking_uri or tracking_uri()
    check_tracking_uri(store)  # an unreachable server fails now, not in the page's first request
    app = create_app(args.tracking_uri, args.device, precision=args.precision)
    print(f"app: http://{args.host}:{args.port} (models from {store}; Ctrl-C stops)", flush=True)
    # SIGTERM (and Ctrl-C) stop it within GRACE_S even with a request still being answered
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning",
                timeout_graceful_shutdown=GRACE_S)  # fmt: skip


if __name__ == "__main__":
    main()
