"""`make demo`: show the codebase working end to end on this machine, with no dataset and no GPU.

Step 1 (parity): build STCN, load the reference's deterministic weights, segment the reference clip
through the propagation core and print the agreement with the authors' implementation.
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from util.reference import DEFAULT_REFERENCE, deterministic_stcn, segment_reference_clip  # noqa: E402


def parity_step(reference_dir: Path) -> dict:
    """Segment the reference clip with the reference weights; return the agreement numbers."""
    start = time.perf_counter()
    net = deterministic_stcn(reference_dir)
    agreement = segment_reference_clip(net, reference_dir)
    agreement["seconds"] = time.perf_counter() - start
    return agreement


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE,
                        help="folder of the reference fixtures (default: ../shared/reference)")
    args = parser.parse_args()
    print(f"[1] Parity with the authors' implementation ({args.reference})")
    agreement = parity_step(args.reference)
    print(f"    clip: {agreement['frames']} frames, {agreement['objects']} objects, "
          f"{agreement['seconds']:.1f} s including model construction")
    print(f"    mean |prob - reference prob| = {agreement['mean_abs_diff']:.2e}   (tolerance 1e-4)")
    print(f"    pixels with the reference label = {100 * agreement['label_agreement']:.3f}%   (tolerance 99.9%)")
    ok = agreement["mean_abs_diff"] <= 1e-4 and agreement["label_agreement"] >= 0.999
    print("    PASS: same model as the reference" if ok else "    FAIL: outputs differ from the reference")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
