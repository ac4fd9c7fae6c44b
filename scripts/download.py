"""Download the authors' released weights and the datasets, into the layout the scripts read by default.

Names: weights (-> --weights_dir), static, davis2016, davis2017, youtube2018, youtube2019, bl30k (-> under
--root), all (every name but bl30k, which is 700 GB). Each dataset's licence is shown and must be accepted
first (or --yes). Downloads resume from their .part file, are checked against the catalogue's size and checksum
where it has them, and archives are unpacked beside their place and renamed into it; --list shows sizes.
Example: python scripts/download.py weights davis2017 youtube2019
"""
import argparse
from pathlib import Path

from util.cli import ArgumentParser, existing_file, output_folder, run_cli
from util.download import download_command


def main() -> int:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="what to fetch (see --list)")
    parser.add_argument("--root", type=output_folder, default=Path(".."),
                        help="folder that receives static/, DAVIS/, YouTube/, YouTube2018/, BL30K/ (default ..)")
    parser.add_argument("--weights_dir", type=output_folder, default=Path("saves"),
                        help="folder for the weights (default saves)")
    parser.add_argument("--yes", action="store_true", help="accept the licences without a prompt")
    parser.add_argument("--list", action="store_true", help="print the catalogue: names, contents, sizes, licences")
    parser.add_argument("--catalogue", type=existing_file,
                        help="a JSON catalogue to use instead of the built-in one (e.g. a mirror)")
    args = parser.parse_args()
    return download_command(args.names, args.root, args.weights_dir, assume_yes=args.yes, show_list=args.list,
                            catalogue_file=args.catalogue)


if __name__ == "__main__":
    run_cli(main)
