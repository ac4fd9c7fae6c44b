"""The browser tool: segment your own video, correct any frame, propagate again, export.

  python scripts/app.py --port 7860            # then open http://127.0.0.1:7860
  python scripts/app.py --host 0.0.0.0 --model saves/stcn.pth   # reachable from other machines
On a cluster, serve on the GPU node and forward its port: ssh -L 7860:localhost:7860 <node>.
"""
import argparse
from pathlib import Path

from inference.config import add_schedule_args, schedule_settings
from stcn.app import AppConfig, default_weights, serve
from util.cli import ArgumentParser, Renamed, output_folder, run_cli, weights_file

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to serve on (default: this machine only; 0.0.0.0: every interface)")
    parser.add_argument("--model", type=weights_file,
                        help="weights offered first, as eval_*.py --model (default: the network `make demo` trained, "
                             "else saves/stcn.pth)")
    parser.add_argument("--weights", type=weights_file, dest="model", action=Renamed, new_name="--model",
                        help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=output_folder,
                        help="where sessions keep frames, masks and exports (default: a folder in the system's "
                             "temporary folder)")
    parser.add_argument("--size", type=int, default=None, help="process at this shorter side (default: as stored)")
    parser.add_argument("--amp", action="store_true", help="fp16 autocast on CUDA, bf16 on the CPU")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    add_schedule_args(parser)
    args = parser.parse_args()
    config = AppConfig(args.model or default_weights(ROOT), args.device,
                       settings={**schedule_settings(args), "size": args.size, "amp": args.amp})
    if args.workdir:
        config.workdir = args.workdir
    print(f"weights offered: {config.weights or 'none (give a path in the page)'}; sessions in {config.workdir}")
    serve(config, args.host, args.port)
    return 0


if __name__ == "__main__":
    run_cli(main)
